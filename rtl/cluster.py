"""The one copy of the project's Ray plumbing: open a session, run a list of tasks, collect results.

Sweeps (``explore --synth``, ``explore --calibrate``) and regressions (``verify --jobs``) run
their independent pieces through this module and nothing else (DESIGN §8).  Ray is an optional
extra (``pip install -e .[cluster]``, pinned ``ray==2.60.0``); it is imported only inside the
functions below, so importing this module (and ``make demo``) never needs it, and a run with
``jobs=1`` and no address never starts Ray (the *serial path*: the same function called in
this process, in order).

API (stable; other packages build on it)::

    from rtl.cluster import ClusterSpec, run_tasks

    spec = ClusterSpec(jobs=2)                     # local Ray, 2 CPUs, no dashboard
    spec = ClusterSpec(address="10.0.0.5:6379")    # join a running cluster (`ray start --head`)
    for index, result in run_tasks(fn, [args0, args1, ...], spec, what="synthesis"):
        ...                                        # results as they complete, any order

* ``fn`` is a module-level function (pickled by reference; cluster nodes need the project
  installed); each item of the list is the tuple of its positional arguments.
* Each task may be retried ``spec.max_retries`` times when its worker process dies (killed,
  out of memory, node lost); an exception raised *by* ``fn`` is not retried and propagates
  (the other tasks are cancelled first) as ``fn`` raised it, not as Ray's wrapper (whose text
  is the remote traceback).  A task that is retried must therefore be idempotent:
  write its outputs atomically, keyed by content (the callers' caches are).
* Progress: one line per finished task on ``progress`` (default: stderr when it is a
  terminal), ``what: k/n done``.
* Ctrl-C (or SIGTERM raised as a ``KeyboardInterrupt``) while tasks run: every unfinished
  task is cancelled (its worker is killed), the session is shut down, and the
  ``KeyboardInterrupt`` propagates, so the ``adderhw`` command exits 130.  Results already
  yielded (and anything the tasks wrote) are kept.
* ``address`` is ``HOST:PORT`` of a cluster's GCS (what ``ray start --head`` prints).  Before
  Ray is asked, a TCP connection is tried for ``connect_timeout_s`` seconds (default
  :data:`CONNECT_TIMEOUT_S`); an address that does not answer is one ``ValueError`` line
  naming ``--address``, never a hang; something that accepts the connection but is not a Ray
  GCS gets about as long again for Ray's handshake (one try a second), then one line too.
* :func:`session` is the context manager under :func:`run_tasks`, for callers that submit
  their own work (it yields the ``ray`` module, initialised).  A session already open in this
  process (``ray.is_initialized()``) is used as it is and left open.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

__all__ = ["ClusterSpec", "CONNECT_TIMEOUT_S", "RAY_VERSION", "parse_address", "check_address", "session",
           "run_tasks", "ray_available"]

#: Seconds a ``--address`` gets to accept a TCP connection before the run is refused.
CONNECT_TIMEOUT_S = 10.0
#: The pinned Ray (pyproject's ``cluster`` extra).
RAY_VERSION = "2.60.0"


@dataclass(frozen=True)
class ClusterSpec:
    """Where tasks run: ``jobs`` local CPUs (1 and no address: serial, no Ray) or a cluster at ``address``."""

    jobs: int = 1
    address: str | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    max_retries: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"--jobs must be a positive integer, got {self.jobs!r}")
        if self.address is not None:
            parse_address(self.address)
        if not self.connect_timeout_s > 0:
            raise ValueError(f"connect timeout must be > 0 s, got {self.connect_timeout_s!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")

    @property
    def serial(self) -> bool:
        """True when the tasks run in this process, one after another, without Ray."""
        return self.jobs == 1 and self.address is None


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; anything else is a ``ValueError`` naming ``--address``."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address must be HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}")
    return host.strip("[]"), int(port)


#: HTTP/2's client preface and an empty SETTINGS frame: a Ray GCS (gRPC) answers with its SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line, an address that does not accept a TCP connection and answer as a gRPC
    (HTTP/2) server within ``timeout_s`` — before Ray, whose own connect retries take minutes."""
    host, port = parse_address(address)
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    raise ConnectionResetError("closed the connection")
                head += chunk
        if head[3] != 4:  # the first frame a gRPC server sends is SETTINGS (type 4)
            raise ConnectionError("not a gRPC server")
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc) or exc.__class__.__name__)
        raise ValueError(f"--address {address}: no Ray cluster answers within {timeout_s:g} s ({reason}); "
                         "start one with `ray start --head` or leave --address out for a local run") from None


def ray_available() -> bool:
    """Whether the optional ``ray`` package imports."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray():
    try:
        import ray
    except ImportError:
        raise OSError(f"ray is not installed: --jobs > 1 and --address need it "
                      f"(pip install -e '.[cluster]', ray=={RAY_VERSION})") from None
    return ray


def _worker_env() -> dict[str, str]:
    """What local workers need to import what this process imports: its ``sys.path`` as ``PYTHONPATH``."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [here] + [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


@contextlib.contextmanager
def session(spec: ClusterSpec) -> Iterator[Any]:
    """An initialised Ray for ``spec`` (local with ``spec.jobs`` CPUs, or joined at ``spec.address``),
    shut down on the way out unless it was already open."""
    if spec.address is not None:
        check_address(spec.address, spec.connect_timeout_s)
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                  logging_level="error")
    if spec.address is None:
        # "local": always a new instance, never one a `ray start` left in /tmp/ray/ray_current_cluster
        ray.init(address="local", num_cpus=spec.jobs, runtime_env={"env_vars": _worker_env()}, **kwargs)
    else:
        # a cluster's nodes run the project from their own install; no env is pushed to them
        # Ray's GCS handshake tries once a second, NUM_REDIS_GET_RETRIES times (default 20), read
        # from its constants module at call time: bound it by the stated timeout
        from ray._private import ray_constants

        retries = ray_constants.NUM_REDIS_GET_RETRIES
        ray_constants.NUM_REDIS_GET_RETRIES = max(1, math.ceil(spec.connect_timeout_s))
        try:
            ray.init(address=spec.address, **kwargs)
        except ConnectionError:
            raise ValueError(f"--address {spec.address}: answers, but no Ray cluster there completed the "
                             f"handshake (GCS) in about {spec.connect_timeout_s:g} s") from None
        finally:
            ray_constants.NUM_REDIS_GET_RETRIES = retries
    try:
        yield ray
    finally:
        ray.shutdown()


def _say(stream, what: str, done: int, total: int) -> None:
    if stream is not None:
        stream.write(f"{what}: {done}/{total} done\n")
        stream.flush()


def run_tasks(fn: Callable, args: Sequence[tuple], spec: ClusterSpec, *, what: str = "tasks",
              progress=None) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*args[i])`` for every ``i``; yield ``(i, result)`` as each completes.

    Serial (``spec.serial``): in this process, in order.  Otherwise one Ray task each, one CPU
    each, retried up to ``spec.max_retries`` times if its worker dies.  ``progress``: a text
    stream for ``what: k/n done`` lines (default stderr when it is a terminal; ``False``: none).
    See the module docstring for Ctrl-C.
    """
    args = [tuple(a) for a in args]
    stream = (sys.stderr if sys.stderr.isatty() else None) if progress is None else (progress or None)
    total = len(args)
    if spec.serial:
        for i, a in enumerate(args):
            result = fn(*a)
            _say(stream, what, i + 1, total)
            yield i, result
        return
    if not total:
        return
    with session(spec) as ray:
        remote = ray.remote(fn).options(num_cpus=1, max_retries=spec.max_retries, retry_exceptions=False)
        index = {}
        pending = []
        try:
            for i, a in enumerate(args):
                ref = remote.remote(*a)
                index[ref] = i
                pending.append(ref)
            done_count = 0
            while pending:
                # a short timeout keeps the driver responsive to Ctrl-C between completions
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in ready:
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        # fn's own exception, as fn raised it: Ray's wrapper's text is the remote
                        # traceback (with colour codes), not the one line a command prints
                        if not isinstance(getattr(exc, "cause", None), BaseException):
                            raise
                        raise exc.cause from exc
                    done_count += 1
                    _say(stream, what, done_count, total)
                    yield index[ref], result
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
