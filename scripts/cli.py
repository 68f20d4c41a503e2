"""The ``adderhw`` command: one parser, subcommands registered by each package.

Each package exposes ``register(subparsers)`` in its ``cli`` module and lists it
under the ``adderhw.commands`` entry-point group in ``pyproject.toml``.  A
subcommand sets ``func(args) -> int | None`` with ``set_defaults``.

Errors a user can fix (bad input, missing files, impossible configurations)
are raised as :class:`ValueError` or :class:`OSError` anywhere below; this
module turns them into one line on stderr and exit status 1.  Usage errors
(what argparse refuses) are one line too, with exit status 2
(:data:`USAGE_ERROR`).  Ctrl-C exits 130 and SIGTERM 143 (:class:`Terminated`,
raised like KeyboardInterrupt so the same clean-up runs).  Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from importlib import metadata

from quant.base.files import dist_version

__all__ = ["main", "build_parser", "register", "Parser", "Terminated", "USER_ERRORS", "USAGE_ERROR",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

PROG = "adderhw"

#: The documented user-facing error types: validation (``ValueError``) and
#: files or tools that are missing or unreadable (``OSError``, which includes
#: ``FileNotFoundError``).  Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError)


#: Exit status of a usage error (an unknown option, a value of the wrong type, a missing argument).
USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommands that belong to no single package (``doctor``)."""
    p = subparsers.add_parser(
        "doctor",
        help="check that every tool adderhw needs is installed",
        description="Print the versions of the tools adderhw uses and the "
        "Fashion-MNIST path; exit 1 naming whatever is missing.",
    )
    p.set_defaults(func=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from scripts.doctor import run_doctor

    return run_doctor()


class Parser(argparse.ArgumentParser):
    """The ``adderhw`` parser and its subcommands': a usage error is one line and exit status 2.

    ``adderhw train: error: argument --eta: ... (see adderhw train --help)``; the
    full usage is in ``--help``.  (Errors of the command itself exit 1:
    :func:`main`.)
    """

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="adderhw: AdderNets from a PyTorch checkpoint to verified hardware.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {dist_version('adderhw', '0+unknown')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    eps = sorted(metadata.entry_points(group="adderhw.commands"), key=lambda e: e.name)
    if not eps:
        raise RuntimeError("adderhw is not installed (no adderhw.commands entry points): run `make setup`")
    for ep in eps:
        ep.load()(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is (as Ctrl-C raises KeyboardInterrupt), so every staging folder
    and temporary file is removed the same way."""


#: Exit status after Ctrl-C (SIGINT) and after SIGTERM (128 + the signal's number).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _terminate(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return USAGE_ERROR
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        rc = args.func(args)
    except BrokenPipeError:  # e.g. `adderhw estimate ... | head`
        sys.stderr.close()
        return 1
    except USER_ERRORS as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"{PROG} {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    # `python -m scripts.cli`: run the imported module's main, so that Terminated is one class for the
    # command and for the flow steps that call scripts.cli.main
    from scripts.cli import main as _main

    rc = _main()
    # CPython under `python -m`: a KeyboardInterrupt that ended any string exec()/eval() on its way
    # (dataclasses and torch.fx make code that way) sets a flag that makes the interpreter kill itself
    # with SIGINT at exit, although main() caught the interrupt and returns 130.  A string exec resets
    # the flag, so the exit status is the one main() chose.
    exec("pass")
    sys.exit(rc)
