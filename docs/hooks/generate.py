"""MkDocs hook: the pages and tables generated at build time, so none of them is copied by hand.

* ``reference/cli.md``: every ``adderhw`` subcommand and option, walked from the
  argparse parsers (:func:`scripts.cli.build_parser`) at build time.
* ``reference/api/<package>.md``: one mkdocstrings block per module, found by
  walking the package folders, so modules moved or deleted in the tree never
  break the build.
* ``results/<name>.md`` for every ``docs/results/<name>.json``, and the
  ``<!-- results:NAME:TABLE -->`` markers of any page (each alone on its line), rendered by
  :func:`scripts.results.render` (the same renderer writes the README's table).
* ``<!-- docstring:cycle-contract -->``: the module whose docstring holds the
  engine's cycle contract, found by its heading, rendered by mkdocstrings.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from mkdocs.structure.files import File

PACKAGES = ("quant", "hwsim", "rtl", "verification", "scripts")
ROOT = Path(__file__).resolve().parents[2]
#: Markers stand alone on their line (so the docs can quote them inline).
_RESULTS = re.compile(r"^<!-- results:(?P<name>[\w-]+):(?P<table>\w+) -->$", re.M)
_DOCSTRING = re.compile(r"^<!-- docstring:(?P<what>[\w-]+) -->$", re.M)
#: Docstring markers: what a page asks for -> the heading that identifies the docstring.
DOCSTRING_HEADINGS = {"cycle-contract": "The cycle contract"}


# ------------------------------------------------------------------------------------------ the CLI

def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser``, by name, in name order."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sp for a in subs for name, sp in sorted(a.choices.items())}


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The arguments a parser defines (positional and optional), ``--help`` excluded."""
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _flags(action: argparse.Action) -> str:
    if action.option_strings:
        return ", ".join(f"`{s}`" for s in action.option_strings)
    return f"`{action.metavar or action.dest}`"


def cli_page() -> str:
    """``reference/cli.md``: usage, description and an options table per subcommand."""
    from scripts.cli import build_parser

    parser = build_parser()
    out = ["# Command line: `adderhw`\n",
           "Generated at build time from the argparse parsers (`scripts.cli.build_parser`), so it "
           "lists exactly what the installed `adderhw` accepts. `adderhw COMMAND --help` prints the same.\n",
           "```text", parser.format_usage().strip(), "```\n",
           "| command | what it does |", "|---|---|"]
    subs = subcommands(parser)
    helps = {c.dest: c.help for a in parser._actions if isinstance(a, argparse._SubParsersAction)
             for c in a._choices_actions}
    out += [f"| [`{name}`](#{name}) | {_cell(helps.get(name) or '')} |" for name in subs]
    for name, sp in subs.items():
        fmt = sp._get_formatter()
        out += ["", f"## `adderhw {name}` {{#{name}}}", "", "```text", sp.format_usage().strip(), "```", ""]
        if sp.description:
            out += [_cell(sp.description), ""]
        if not options(sp):
            out.append("No options.")
            continue
        out += ["| argument | value | default | help |", "|---|---|---|---|"]
        for a in options(sp):
            value = "" if a.nargs == 0 else (
                "{" + ",".join(map(str, a.choices)) + "}" if a.choices else (a.metavar or a.dest.upper()))
            if isinstance(value, tuple):
                value = " ".join(value)
            default = "" if a.default in (None, argparse.SUPPRESS, False) or a.nargs == 0 else f"`{a.default}`"
            helptext = fmt._expand_help(a) if a.help and a.help != argparse.SUPPRESS else ""
            out.append(f"| {_cell(_flags(a))} | {_cell(value)} | {_cell(default)} | {_cell(helptext)} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------ the API

def modules(package: str, root: Path = ROOT) -> list[str]:
    """Every importable module of ``package``: files under folders that hold an ``__init__.py``."""
    base = root / package
    found = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(root)
        if path.name == "__main__.py" or any(not (root / Path(*rel.parts[:i]) / "__init__.py").exists()
                                              for i in range(1, len(rel.parts))):
            continue
        parts = rel.with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def api_page(package: str) -> str:
    """``reference/api/<package>.md``: one mkdocstrings block per module of ``package``."""
    mods = modules(package)
    out = [f"# `{package}`\n",
           f"Every module of `{package}`, found by walking its folders at build time; rendered from the "
           "numpydoc docstrings by mkdocstrings. Private names (a leading `_`) are left out.\n"]
    for m in mods:
        out += [f"::: {m}", "    options:", "      members_order: source", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ docstrings

def module_with_heading(heading: str, packages=PACKAGES, root: Path = ROOT) -> str:
    """The one module whose docstring has the section ``heading`` (numpydoc underline)."""
    hits = []
    for pkg in packages:
        for m in modules(pkg, root):
            path = root / (m.replace(".", "/") + ".py")
            if not path.exists():
                path = root / m.replace(".", "/") / "__init__.py"
            doc = ast.get_docstring(ast.parse(path.read_text()), clean=True) or ""
            if re.search(rf"^{re.escape(heading)}\n-+$", doc, re.M):
                hits.append(m)
    if len(hits) != 1:
        raise ValueError(f"expected one module documenting {heading!r}, found {hits}")
    return hits[0]


# ------------------------------------------------------------------------------------------ results

def results_page(name: str) -> str:
    """``results/<name>.md``: every table :func:`scripts.results.page_tables` lists for the file, under its heading."""
    from scripts.results import MissingStep, commits, load_results, page_tables, render

    res = load_results(name)
    out = [f"# {res['title']}\n",
           f"Rendered at build time from `docs/results/{name}.json` (commits `{commits(res)}`) by "
           "`scripts.results.render`; see [how results are made](index.md).\n"]
    for table, title in page_tables(res):
        try:
            body = render(res, table)
        except MissingStep:
            body = "*Not in this results file: no run of that step was collected.*"
        out += [f"## {title}\n", body, ""]
    return "\n".join(out)


def results_files() -> str:
    """A table of every results file: its page, its steps and their commits."""
    from scripts.results import commits, load_results

    rows = ["| file | page | steps (a benchmark's: its tables) | commits |", "|---|---|---|---|"]
    for path in sorted((ROOT / "docs" / "results").glob("*.json")):
        res = load_results(path.stem)
        rows.append(f"| `docs/results/{path.name}` | [{res['title']}]({path.stem}.md) | "
                    f"{', '.join(res['steps'])} | `{commits(res)}` |")
    return "\n".join(rows)


def _render_marker(m: re.Match) -> str:
    from scripts.results import MissingStep, load_results, render

    try:
        return render(load_results(m.group("name")), m.group("table"))
    except MissingStep:
        return f"*No `{m.group('table')}` numbers in `docs/results/{m.group('name')}.json` yet.*"


# ------------------------------------------------------------------------------------------ hooks

def on_files(files, config):
    files.append(File.generated(config, "reference/cli.md", content=cli_page()))
    for pkg in PACKAGES:
        files.append(File.generated(config, f"reference/api/{pkg}.md", content=api_page(pkg)))
    for path in sorted((Path(config["docs_dir"]) / "results").glob("*.json")):
        files.append(File.generated(config, f"results/{path.stem}.md", content=results_page(path.stem)))
    return files


def on_page_markdown(markdown, page, config, files):
    markdown = _RESULTS.sub(_render_marker, markdown)
    markdown = re.sub(r"^<!-- results-files -->$", lambda m: results_files(), markdown, flags=re.M)

    def docstring(m: re.Match) -> str:
        module = module_with_heading(DOCSTRING_HEADINGS[m.group("what")])
        return (f"::: {module}\n    options:\n      members: false\n      show_root_heading: false\n"
                f"      show_root_toc_entry: false\n")

    return _DOCSTRING.sub(docstring, markdown)


#: Sphinx roles in the numpydoc docstrings (``:class:`X```) that mkdocstrings shows literally.
_ROLES = re.compile(r":(?:mod|class|func|data|meth|attr|exc|obj):(?=<code>)")


def on_page_content(html, page, config, files):
    return _ROLES.sub("", html)
