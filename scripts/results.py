"""Results tables from committed JSON: collect them from run outputs, render them, keep the README in step.

The documentation's results pages and the README's results table are never
typed by hand.  A *results file* (``docs/results/<name>.json``) holds the
numbers of one run, extracted from the JSON the subcommands wrote, and names
the command and the commit that made each of them::

    {"format": "adderhw-results", "version": 1, "name": "demo",
     "title": ..., "commit": "2d61a6f", "collected_by": "python -m scripts.results collect ...",
     "steps": {"sweep": {"command": "adderhw quantize ... --sweep 8,6,5,4 ...", "commit": ...}, ...},
     "accuracy": [...], "estimate": {...}, "verify": [...], "synth": [...]}

A step that did not run (synthesis, say) is simply absent, and so are its
tables.

The benchmarks (``scripts/bench_*.py``) write a *benchmark file*
(:func:`write_bench`, default ``build/bench/<bench>.json``): its tables as
rows whose keys name their units (``time_ms``), the exact command line, the
commit and the tool versions.  ``collect --bench`` turns one into a results
file whose "steps" are its tables (each with the command, commit and tools
that made it) and whose ``tables`` hold the rows; ``--update`` replaces only
the tables the new run made (``bench_quant.py --skip-speed`` keeps the speed
table of an earlier run).  :func:`render` turns a results file into one Markdown table; the
docs hook (``docs/hooks/generate.py``) calls it for every
``<!-- results:NAME:TABLE -->`` marker of a page, and :func:`update_readme`
writes the README's block between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` (a flow's summary table) or between
``<!-- results:NAME:TABLE -->`` and ``<!-- /results:NAME:TABLE -->`` (one
table of a benchmark's results file; ``<!-- results:NAME:TABLE:COL,COL -->``
shows only those columns, so a wide table fits a short README) from the same function, so the two cannot
disagree (``tests/scripts/test_results.py`` checks the README).

Command line::

    python -m scripts.results collect --demo build/demo -o docs/results/demo.json
    python -m scripts.results collect --quantize Q --sweep S --estimate E --verify V [--synth Y] -o FILE
    python -m scripts.results collect --synth build/bench_synth/bench_synth.json --update -o FILE
    python -m scripts.results collect --bench build/bench/hwsim.json [--update] -o docs/results/bench_hwsim.json
    python -m scripts.results collect --update --bench build/bench/*.json   # each to docs/results/bench_<bench>.json
    python -m scripts.results readme            # rewrite README.md's results block(s)
    python -m scripts.results readme --check    # exit 1 when README.md is out of date

One more source renders the same way: :data:`RESOURCE_MODEL` (``<!-- results:resource_model:heldout -->``),
the resource model's held-out error table, read from the data files ``adderhw explore --calibrate
PART`` writes (``hwsim/data/resources_PART.json``, one per family: :data:`hwsim.resources.CALIBRATION_PART`)
instead of a results file, so the numbers have one copy (:func:`resource_model_results`).
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from quant.base.files import atomic_write_text, dist_versions
from quant.base.intops import PeKind

__all__ = ["FORMAT", "BENCH_FORMAT", "Table", "MissingStep", "BenchTable", "bench_json_option", "bench_command",
           "write_bench", "collect", "collect_bench", "merge", "commits", "page_tables", "render", "render_block", "rows_table",
           "update_readme", "load_results", "resource_model_results", "RESOURCE_MODEL", "main"]

FORMAT = "adderhw-results"
VERSION = 1
ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"
BENCH_FORMAT = "adderhw-bench"
#: Where a benchmark writes its file unless ``--json`` says otherwise: ``build/bench/<bench>.json``.
BENCH_DIR = ROOT / "build" / "bench"

#: Energy components of ``estimate`` (``energy_breakdown_pj``), in table order.
ENERGY_COMPONENTS = (("dram_pj", "DRAM (streams)"), ("act_sram_pj", "activation SRAM"),
                     ("wbuf_sram_pj", "weight SRAM"), ("pe_pj", "PE arithmetic"), ("requant_pj", "requant"),
                     ("vector_pj", "vector unit"), ("reg_pj", "registers"))

#: Where each step of ``adderhw flow`` writes what we read (relative to the flow's ``-o``).
FLOW_LAYOUT = {"quantize": "quantize/report.json", "sweep": "sweep/sweep.json",
               "estimate": "estimate/summary.json", "synth": "synth/engine/compare.json",
               "verify": "verify/verify.json"}


class Table(enum.StrEnum):
    """The tables a results file renders to."""

    SUMMARY = "summary"      # the README's one small table
    ACCURACY = "accuracy"    # float vs integer accuracy per bit width
    CYCLES = "cycles"        # cycles per image: predicted (hwsim) and measured (RTL)
    ENERGY = "energy"        # counted energy per image by component
    SYNTHESIS = "synthesis"  # resources and Fmax of both engines
    PROVENANCE = "provenance"  # which command and commit made each step's numbers
    BENCHMARK = "benchmark"  # every table of a benchmark's results file, each under its title


class MissingStep(KeyError):
    """A table needs a step the results file does not hold."""


# ---------------------------------------------------------------------------------------------- collect

def _read(path: Path):
    return json.loads(Path(path).read_text())


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def collect(paths: dict[str, Path], commands: dict[str, str], *, name: str, title: str, commit: str,
            collected_by: str) -> dict:
    """Extract the numbers of one run from the JSON its steps wrote.

    Parameters
    ----------
    paths : dict of str to Path
        Step name (``quantize``, ``sweep``, ``estimate``, ``synth``, ``verify``) to the JSON file
        that step wrote (see :data:`FLOW_LAYOUT`).  Missing steps are left out.
    commands : dict of str to str
        Step name to the command line that made it (shown beside the tables).
    name, title : str
        The results file's name (``demo``) and its heading.
    commit : str
        The commit of the tree the steps ran on.
    collected_by : str
        The command line of this collection.

    Returns
    -------
    dict
        The results file's content (see the module docstring).
    """
    out: dict = {"format": FORMAT, "version": VERSION, "name": name, "title": title, "commit": commit,
                 "collected_by": collected_by, "steps": {}}
    for step, path in paths.items():
        out["steps"][step] = {"command": commands.get(step, ""), "commit": commit}
    if "quantize" in paths:
        q = _read(paths["quantize"])
        out["model"] = {"name": q["model"], "dataset": q["dataset"], "checkpoint": q["source"].get("path")}
    if "sweep" in paths:
        s = _read(paths["sweep"])
        out["accuracy"] = [{"bits": r["bits"], "act_bits": r["act_bits"], "requant": r["requant"],
                            "float_pct": r["float_accuracy"], "int_pct": r["int_accuracy"],
                            "drop_points": r["accuracy_drop_points"],
                            "agreement_pct": r["int_float_top1_agreement_pct"], "images": r["eval_images"]}
                           for r in sorted(s["rows"], key=lambda r: -r["bits"])]
    if "estimate" in paths:
        e = _read(paths["estimate"])
        out["estimate"] = {
            "rows": e["config"]["rows"], "cols": e["config"]["cols"], "table": e["table"]["name"],
            "table_title": e["table"]["title"],
            "designs": {d: {"total_cycles": v["total_cycles"], "energy_pj": v["energy_pj"],
                            "on_chip_energy_pj": v["on_chip_energy_pj"],
                            "breakdown_pj": {k: v["energy_breakdown_pj"][k] for k, _ in ENERGY_COMPONENTS}}
                        for d, v in e["designs"].items()}}
    if "verify" in paths:
        v = _read(paths["verify"])
        out["verify"] = [{"test": t["name"], "simulator": t["simulator"], "passed": t["passed"],
                          "design": v["design"]["name"], "image": im["image"], "logits_ok": im["logits_ok"],
                          "cycles_measured": im["cycles_measured"], "cycles_predicted": im["cycles_predicted"],
                          "counters_ok": im["counters_ok"]}
                         for t in v["tests"] for im in t["images"]]
    if "synth" in paths:
        records = _read(paths["synth"])
        if isinstance(records, dict):  # scripts/bench_synth.py: {"results": [...], "ratios": ...}
            records = records["results"]
        out["synth"] = [{"block": r.get("block", "engine"), "pe": r["config"]["pe"], "dsp": bool(r.get("dsp")),
                         "target": r["target"],
                         "lut": r["resources"].get("lut"), "ff": r["resources"].get("ff"),
                         "bram": r["resources"].get("bram"), "dsp_blocks": r["resources"].get("dsp"),
                         "fmax_mhz": r.get("fmax_mhz"), "fits": r.get("fits"),
                         "tools": f"yosys {r['tools'].get('yosys')}, nextpnr {r['tools'].get('nextpnr')}"}
                        for r in records]
    return out


# -------------------------------------------------------------------------------------------- benchmarks

@dataclass(frozen=True)
class BenchTable:
    """One table of a benchmark.

    Parameters
    ----------
    name : str
        Its key (``accuracy``): a ``<!-- results:bench_NAME:TABLE -->`` marker names it.
    title : str
        Its heading on the results page.
    rows : tuple of dict
        One dict per row, the same keys in each, in column order; a key names the unit of its
        value (``time_ms``, ``energy_uj``, ``golden_over_float_x``).
    """

    name: str
    title: str
    rows: tuple[dict, ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "rows": [dict(r) for r in self.rows]}


def bench_json_option(parser: argparse.ArgumentParser, bench: str) -> None:
    """Add ``--json PATH`` (default ``build/bench/<bench>.json``) to a benchmark's parser."""
    parser.add_argument("--json", type=Path, default=BENCH_DIR / f"{bench}.json", metavar="PATH",
                        help=f"write the tables here as JSON (default build/bench/{bench}.json), "
                             "for python -m scripts.results collect --bench")


def bench_command(script: str, argv: list[str] | None) -> str:
    """The command line of a benchmark run: ``python scripts/<script> ARGS`` (``sys.argv`` when ``argv`` is None)."""
    return shlex.join(["python", f"scripts/{Path(script).name}", *(sys.argv[1:] if argv is None else argv)])


def write_bench(path: Path, *, bench: str, title: str, tables, command: str, tools: dict | None = None) -> dict:
    """Write a benchmark file atomically and return its content.

    Parameters
    ----------
    path : Path
        Where (its folder is made).
    bench : str
        The benchmark's name (``hwsim`` for ``scripts/bench_hwsim.py``).
    title : str
        The heading of its results page.
    tables : iterable of BenchTable
        Its tables, in page order.
    command : str
        The command line that ran it (:func:`bench_command`).
    tools : dict, optional
        Tool versions beyond Python's, numpy's and adderhw's (torch, the simulators).

    Returns
    -------
    dict
        ``{"format": "adderhw-bench", "version": 1, "bench", "title", "command", "commit", "tools", "tables"}``.

    Raises
    ------
    ValueError
        Two tables of one name, or one named like :attr:`Table.PROVENANCE` or :attr:`Table.BENCHMARK`.
    """
    tables = list(tables)
    names = [t.name for t in tables]
    if len(set(names)) != len(names) or {Table.PROVENANCE, Table.BENCHMARK} & set(names):
        raise ValueError(f"benchmark {bench}: table names must be distinct and not provenance/benchmark: {names}")
    rec = {"format": BENCH_FORMAT, "version": VERSION, "bench": bench, "title": title, "command": command,
           "commit": _git_commit(),
           "tools": {"python": sys.version.split()[0], **dist_versions(("adderhw", "numpy")), **(tools or {})},
           "tables": [t.as_dict() for t in tables]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rec, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return rec


def collect_bench(record: dict, *, name: str, collected_by: str) -> dict:
    """A results file from a benchmark file (:func:`write_bench`): one step per table.

    Raises
    ------
    ValueError
        When ``record`` is not a benchmark file.
    """
    if record.get("format") != BENCH_FORMAT or record.get("version") != VERSION:
        raise ValueError(f"not an {BENCH_FORMAT} v{VERSION} file")
    prov = {"command": record["command"], "commit": record["commit"], "tools": record["tools"]}
    return {"format": FORMAT, "version": VERSION, "name": name, "title": record["title"], "commit": record["commit"],
            "collected_by": collected_by, "bench": record["bench"],
            "steps": {t["name"]: dict(prov) for t in record["tables"]}, "tables": record["tables"]}


#: The keys of a results file that each step fills.
STEP_KEYS = {"quantize": ("model",), "sweep": ("accuracy",), "estimate": ("estimate",), "synth": ("synth",),
             "verify": ("verify",)}


def merge(old: dict, new: dict) -> dict:
    """``old`` with the steps of ``new`` (and their numbers) replacing its own; the other steps stay.

    For a benchmark's results file the steps are its tables: those ``new`` holds replace ``old``'s
    of the same name, in place; new ones come last.

    Raises
    ------
    ValueError
        When one file is a benchmark's and the other is not, or they are of two benchmarks.
    """
    if old.get("bench") != new.get("bench"):
        raise ValueError(f"cannot merge results of {new.get('bench') or 'a flow'} into {old.get('bench') or 'a flow'}'s")
    out = dict(old)
    out["steps"] = {**old["steps"], **new["steps"]}
    if "bench" in new:
        fresh = {t["name"]: t for t in new["tables"]}
        out["tables"] = [fresh.pop(t["name"], t) for t in old["tables"]] + list(fresh.values())
    for step in new["steps"] if "bench" not in new else ():
        for key in STEP_KEYS[step]:
            if key in new:
                out[key] = new[key]
    out["commit"], out["collected_by"] = new["commit"], f"{old['collected_by']}; {new['collected_by']}"
    return out


# ----------------------------------------------------------------------------------------------- render

def _table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _uj(pj: float) -> str:
    return f"{pj / 1e6:.3f}"


def _need(res: dict, key: str, table: Table):
    if key not in res:
        raise MissingStep(f"results {res.get('name')!r} has no {key!r}: table {table.value!r} needs it")
    return res[key]


#: The engines by the PE kind of their main array (the key of an estimate's designs and of a synthesis run).
_DESIGNS = {PeKind.ADDER: "adder engine", PeKind.MULT: "all-multiplier engine"}


def _synth_label(r: dict) -> str:
    if r.get("block", "engine") == "engine":
        return _DESIGNS.get(r["pe"], r["pe"])
    return f"{r['pe']} {r['block']} (PE study)"


def commits(res: dict) -> str:
    """The commits the steps of a results file ran on, in step order, each once."""
    return ", ".join(dict.fromkeys(v["commit"] for v in res["steps"].values()))


def _value(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return _cell(v)


def _cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def rows_table(rows: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """Benchmark rows (dicts, the units in the keys) as the Markdown table a results page shows: what a
    ``scripts/bench_*.py`` prints is what its page will show."""
    return _bench_table({"name": "rows", "rows": rows}, columns)


def _bench_table(t: dict, columns: tuple[str, ...] | None = None) -> str:
    """A benchmark table, all its columns or only ``columns`` (in that order; an unknown one is refused)."""
    head = list(t["rows"][0]) if t["rows"] else ["(no rows)"]
    if columns:
        unknown = [c for c in columns if c not in head]
        if unknown:
            raise MissingStep(f"benchmark table {t['name']!r} has no column {', '.join(map(repr, unknown))} "
                              f"(it has {', '.join(head)})")
        head = list(columns)
    return _table(head, [[_value(r.get(k)) for k in head] for r in t["rows"]])


def page_tables(res: dict) -> list[tuple[str, str]]:
    """``(table, heading)`` of each table a results file's page shows, in order (a benchmark's: its own)."""
    if "bench" in res:
        return [*((t["name"], t["title"]) for t in res["tables"]), (Table.PROVENANCE.value, "Commands and commits")]
    titles = {Table.SUMMARY: "Summary", Table.ACCURACY: "Accuracy and quantization", Table.CYCLES: "Cycles",
              Table.ENERGY: "Energy per image", Table.SYNTHESIS: "Synthesis", Table.PROVENANCE: "Commands and commits"}
    return [(t.value, title) for t, title in titles.items()]


def render(res: dict, table: Table | str, columns: tuple[str, ...] | None = None) -> str:
    """One Markdown table of a results file.

    Parameters
    ----------
    res : dict
        A results file's content (:func:`load_results`).
    table : Table or str
        Which table; for a benchmark's results file also the name of one of its tables.
    columns : tuple of str, optional
        Only these columns of a benchmark's own table, in this order.

    Returns
    -------
    str
        The table, without a trailing newline.

    Raises
    ------
    MissingStep
        When the results file lacks the step the table needs.
    """
    own = {t["name"]: t for t in res.get("tables", ())}
    if table in own:  # a benchmark's own table wins over a flow table of the same name
        return _bench_table(own[table], columns)
    if columns:
        raise MissingStep(f"results {res.get('name')!r}: only a benchmark's own table can show some columns")
    table = Table(table)
    if table is Table.PROVENANCE:
        rows = [[s, f"`{v['command']}`", f"`{v['commit']}`"] for s, v in res["steps"].items()]
        if any("tools" in v for v in res["steps"].values()):
            return _table(["table" if "bench" in res else "step", "command", "commit", "tools"],
                          [[*r, ", ".join(f"{k} {v}" for k, v in p.get("tools", {}).items())]
                           for r, p in zip(rows, res["steps"].values())])
        return _table(["step", "command", "commit"], rows)
    if table is Table.BENCHMARK:
        if "bench" not in res:
            raise MissingStep(f"results {res.get('name')!r} are not a benchmark's: table {table.value!r} needs one")
        return "\n\n".join(f"**{t['title']}**\n\n{_bench_table(t)}" for t in res["tables"])
    if "bench" in res:
        raise MissingStep(f"results {res.get('name')!r} are benchmark {res['bench']!r}'s: no {table.value!r} table")
    if table is Table.ACCURACY:
        rows = _need(res, "accuracy", table)
        return _table(["weight/act bits", "requant", "float top-1 (%)", "integer top-1 (%)", "drop (points)",
                       "int/float agreement (%)", "test images"],
                      [[f"{r['bits']}/{r['act_bits']}", r["requant"], r["float_pct"], r["int_pct"],
                        r["drop_points"], r["agreement_pct"], f"{r['images']:,}"] for r in rows])
    if table is Table.CYCLES:
        est = _need(res, "estimate", table)
        measured = {}
        for v in res.get("verify", []):
            measured.setdefault(v["cycles_measured"], []).append(v)
        rows = []
        for d, v in est["designs"].items():
            rows.append([_DESIGNS.get(d, d), f"{est['rows']}x{est['cols']}", f"{v['total_cycles']:,}"])
        head = ["design", "array", "cycles per image (hwsim)"]
        text = _table(head, rows)
        if "verify" in res:
            text += "\n\n" + _table(
                ["design", "simulator", "image", "cycles measured (RTL)", "cycles predicted (hwsim)",
                 "counters", "logits vs golden"],
                [[v["design"], v["simulator"], v["image"], f"{v['cycles_measured']:,}",
                  f"{v['cycles_predicted']:,}", "equal" if v["counters_ok"] else "DIFFER",
                  "bit-exact" if v["logits_ok"] else "DIFFER"] for v in res["verify"]])
        return text
    if table is Table.ENERGY:
        est = _need(res, "estimate", table)
        rows = [[_DESIGNS.get(d, d), _uj(v["energy_pj"]), _uj(v["on_chip_energy_pj"]),
                 *[_uj(v["breakdown_pj"][k]) for k, _ in ENERGY_COMPONENTS]] for d, v in est["designs"].items()]
        return _table(["design", "total (uJ)", "on chip (uJ)", *[f"{label} (uJ)" for _, label in ENERGY_COMPONENTS]],
                      rows)
    if table is Table.SYNTHESIS:
        syn = _need(res, "synth", table)
        return _table(["design", "multipliers", "target", "LUT", "FF", "BRAM", "DSP", "Fmax (MHz)", "tools"],
                      [[_synth_label(r), "DSP" if r["dsp"] else "LUT", r["target"], r["lut"],
                        r["ff"], r["bram"], r["dsp_blocks"],
                        "does not fit" if r["fits"] is False else r["fmax_mhz"], r["tools"]] for r in syn])
    # Table.SUMMARY: the README's table
    rows = []
    if "accuracy" in res:
        acc = res["accuracy"]
        rows.append([f"top-1 accuracy, float / " + " / ".join(f"int{r['bits']}" for r in acc) + " (%)",
                     " / ".join([str(acc[0]["float_pct"]), *(str(r["int_pct"]) for r in acc)]), "—"])
    if "estimate" in res:
        est = res["estimate"]
        a, m = est["designs"][PeKind.ADDER], est["designs"][PeKind.MULT]
        rows.append([f"cycles per image, {est['rows']}x{est['cols']} engine (hwsim)",
                     f"{a['total_cycles']:,}", f"{m['total_cycles']:,}"])
        rows.append([f"energy per image, {est['table']} table: PE arithmetic / on chip / total (uJ)",
                     f"{_uj(a['breakdown_pj']['pe_pj'])} / {_uj(a['on_chip_energy_pj'])} / {_uj(a['energy_pj'])}",
                     f"{_uj(m['breakdown_pj']['pe_pj'])} / {_uj(m['on_chip_energy_pj'])} / {_uj(m['energy_pj'])}"])
    if "synth" in res:
        pair = {r["pe"]: r for r in res["synth"] if not r["dsp"] and r.get("block", "engine") == "engine"}
        if all(p in pair for p in PeKind):
            rows.append([f"engine on {pair[PeKind.ADDER]['target']} (LUT-only): LUT, BRAM, Fmax (MHz)",
                         *(f"{pair[p]['lut']:,}, {pair[p]['bram']}, {pair[p]['fmax_mhz']}" for p in PeKind)])
    if "verify" in res:
        ok = all(v["logits_ok"] and v["counters_ok"] and v["cycles_measured"] == v["cycles_predicted"]
                 for v in res["verify"])
        sims = sorted({v["simulator"] for v in res["verify"]})
        n = len(res["verify"])
        rows.append([f"whole network on the RTL ({', '.join(sims)}, {n} image{'s' if n != 1 else ''}): "
                     "logits vs golden, cycles and counters vs hwsim",
                     "bit-exact, equal" if ok else "DIFFER", "—"])
    return _table(["", "adder engine", "all-multiplier engine"], rows)


def render_block(res: dict, table: str | None = None, columns: tuple[str, ...] | None = None) -> str:
    """A README results block: a flow's summary table, or one table of a benchmark, and the line naming its source."""
    if table is None:
        return (render(res, Table.SUMMARY)
                + f"\n\n<sub>Generated by `python -m scripts.results readme` from `docs/results/{res['name']}.json` "
                  f"(commit `{commits(res)}`; the command of each step is in that file and on the docs' results page).</sub>")
    if table not in res.get("steps", {}) or "bench" not in res:
        raise MissingStep(f"results {res.get('name')!r} have no benchmark table {table!r}")
    step = res["steps"][table]
    if "source" in res:  # not a results file: the files it was read from and the command that writes them
        return (render(res, table, columns)
                + f"\n\n<sub>Generated by `python -m scripts.results readme` from {res['source']}, written by "
                  f"`{step['command']}` ({', '.join(f'{k} {v}' for k, v in step['tools'].items())}).</sub>")
    return (render(res, table, columns)
            + f"\n\n<sub>Generated by `python -m scripts.results readme` from `docs/results/{res['name']}.json`, "
              f"the table {table} of `{step['command']}` (commit `{step['commit']}`).</sub>")


#: The name under which the resource model's error table renders (:func:`resource_model_results`).
RESOURCE_MODEL = "resource_model"


def resource_model_results() -> dict:
    """The resource model's held-out designs as a benchmark-like results dict (one table, ``heldout``), read
    from the calibration data files of :data:`hwsim.resources.CALIBRATION_PART` (module docstring)."""
    from hwsim.resources import CALIBRATION_PART, load_model, model_path

    rows, tools = [], {}
    for part_name in CALIBRATION_PART.values():
        model = load_model(part_name)
        tools[part_name] = f"yosys {model.tools.get('yosys')}"
        by: dict[str, dict] = {}
        for r in model.held_out:
            by.setdefault(r["design"], {})[r["resource"]] = r
        for design, r in by.items():
            rows.append({"design": design, "part": part_name,
                         **{f"{res}_{k}": r[res][key] for res in ("lut", "ff") for k, key in
                            (("predicted", "predicted"), ("synthesized", "synthesized"), ("error_pct", "error_pct"))},
                         **{f"{res}_{k}": r[res][k] for res in ("bram", "dsp") for k in ("predicted", "synthesized")}})
    parts = list(CALIBRATION_PART.values())
    sources = f"`{model_path(parts[0]).parent.relative_to(ROOT)}/resources_{{{','.join(parts)}}}.json`"
    step = {"command": "adderhw explore --calibrate PART", "commit": "—", "tools": tools}
    return {"format": FORMAT, "version": VERSION, "name": RESOURCE_MODEL, "bench": RESOURCE_MODEL,
            "title": "Resource model: held-out error", "source": sources, "steps": {"heldout": step},
            "tables": [{"name": "heldout", "title": "Designs held out of the fit: predicted, synthesised, error",
                        "rows": rows}]}


def load_results(name: str, folder: Path = RESULTS_DIR) -> dict:
    """Read and check ``folder/<name>.json`` (:data:`RESOURCE_MODEL`: :func:`resource_model_results`)."""
    if name == RESOURCE_MODEL:
        return resource_model_results()
    res = _read(Path(folder) / f"{name}.json")
    if res.get("format") != FORMAT or res.get("version") != VERSION:
        raise ValueError(f"{folder}/{name}.json is not an {FORMAT} v{VERSION} file")
    return res


_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+)(?::(?P<table>\w+)(?::(?P<cols>[\w,]+))?)? -->\n)(?P<body>.*?)"
                    r"(\n<!-- /results:(?P=name)(?::(?P=table))? -->)", re.S)


def update_readme(text: str, folder: Path = RESULTS_DIR) -> str:
    """``text`` with every ``<!-- results:NAME -->`` block rendered from ``folder/NAME.json`` (its summary table),
    every ``<!-- results:NAME:TABLE -->`` block with the benchmark table ``TABLE`` of it, and every
    ``<!-- results:NAME:TABLE:COL,COL -->`` block with those columns of it (closed by ``<!-- /results:NAME:TABLE -->``)."""
    def block(m) -> str:
        cols = tuple(m.group("cols").split(",")) if m.group("cols") else None
        return (m.group(1) + render_block(load_results(m.group("name"), folder), m.group("table"), cols)
                + m.group(6))  # the closing marker

    return _BLOCK.sub(block, text)


# ------------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.results", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="write a results file from a run's JSON outputs")
    c.add_argument("--demo", type=Path, help="an `adderhw flow` output folder (the make demo layout)")
    for step in FLOW_LAYOUT:
        c.add_argument(f"--{step}", type=Path, help=f"folder (or JSON file) of the {step} step (overrides --demo)")
        c.add_argument(f"--{step}-command", default="", help=f"the command that made the {step} step")
    c.add_argument("--bench", type=Path, nargs="+", metavar="FILE",
                   help="benchmark JSON files (scripts/bench_*.py --json; default build/bench/<bench>.json): their "
                        "tables, instead of a run's steps; each to -o, or without -o to docs/results/bench_<bench>.json")
    c.add_argument("--name", default=None, help="the results file's name (default demo; with --bench bench_<bench>)")
    c.add_argument("--title", default="make demo: the shipped LeNet-5-BN on the 4x4 engine",
                   help="its heading (with --bench: the benchmark's own)")
    c.add_argument("--commit", default=None, help="commit the steps ran on (default: this tree's HEAD)")
    c.add_argument("--update", action="store_true",
                   help="merge into an existing results file: the steps given replace theirs, the others stay")
    c.add_argument("-o", "--out", type=Path, help="the results file (required but with --bench)")
    r = sub.add_parser("readme", help="rewrite README.md's results blocks from docs/results/")
    r.add_argument("--check", action="store_true", help="exit 1 when README.md is out of date")
    r.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = p.parse_args(argv)

    if args.cmd == "readme":
        old = args.readme.read_text()
        new = update_readme(old)
        if args.check:
            if new != old:
                print(f"{args.readme} is out of date: run python -m scripts.results readme", file=sys.stderr)
                return 1
            return 0
        args.readme.write_text(new)
        return 0

    collected_by = "python -m scripts.results " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.bench is not None:
        if args.demo is not None or any(getattr(args, step) is not None for step in FLOW_LAYOUT):
            p.error("--bench collects a benchmark's file alone: no --demo or step options with it")
        if args.out is not None and len(args.bench) > 1:
            p.error("-o names one results file: give one --bench FILE with it, or leave -o out")
        for path in args.bench:
            record = _read(path)
            name = args.name or f"bench_{record.get('bench')}"
            _write_results(collect_bench(record, name=name, collected_by=collected_by),
                           args.out or RESULTS_DIR / f"{name}.json", update=args.update)
        return 0
    if args.out is None:
        p.error("-o/--out is required (but with --bench)")
    paths, commands = {}, {}
    for step, rel in FLOW_LAYOUT.items():
        folder = getattr(args, step)
        if folder is not None:
            paths[step] = folder if folder.is_file() else folder / Path(rel).name
        elif args.demo is not None and (args.demo / rel).exists():
            paths[step] = args.demo / rel
        if step in paths:
            commands[step] = getattr(args, f"{step}_command") or f"adderhw flow (step {step})"
    res = collect(paths, commands, name=args.name or "demo", title=args.title, commit=args.commit or _git_commit(),
                  collected_by=collected_by)
    return _write_results(res, args.out, update=args.update)


def _write_results(res: dict, out: Path, *, update: bool) -> int:
    if update and out.exists():
        res = merge(json.loads(out.read_text()), res)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
