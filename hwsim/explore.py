"""Design-space exploration: every engine config of a space, both PE kinds, exact counts, predicted cost.

The library behind ``adderhw explore`` (DESIGN §8).  For each point of the space
(:func:`parse_space`: ``rows``, ``cols``, ``mult_rows``) the adder engine and the
all-multiplier engine of the same sizes are estimated by :func:`hwsim.estimate.estimate_source`
(exact cycles, accesses and energy: the same numbers ``adderhw estimate`` prints) and priced by
the resource model (:mod:`hwsim.resources`: BRAM and DSP exact, LUT/FF/carry and the Fmax band
from the part's fitted coefficients when it has them).  Images per second are at the low end
of the predicted Fmax band, or at the config's ``clock_mhz`` when the part has no fitted model
(the ``fps_clock`` column says which).

:func:`explore` returns :class:`ExploreResult`; :func:`write_outputs` writes ``explore.csv``
(units in the column names), ``report.md`` and the Pareto plots.
"""

from __future__ import annotations

import csv
import enum
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.config import EngineConfig
from hwsim.estimate import Design, Source, estimate_source
from hwsim.parts import PARTS
from hwsim.parts import part as get_part
from hwsim.resources import ResourceModel, Resources, calibration_part, load_model, predict_exact
from hwsim.tables import EnergyTable
from quant.base.files import atomic_write_text

__all__ = ["SPACE_KEYS", "BUDGET_KEYS", "DEFAULT_SPACE", "Objective", "Point", "ExploreResult", "parse_space",
           "parse_budget", "rank_key", "explore", "pareto", "write_outputs", "generate_command", "CSV_COLUMNS"]

#: Keys ``--space`` may vary (the engine parameters a config is sized from).
SPACE_KEYS = ("rows", "cols", "mult_rows")
#: Keys ``--budget`` may bound.
BUDGET_KEYS = ("luts", "ffs", "bram", "dsp")
#: The space explored when ``--space`` is not given: 2..16 square and rectangular arrays.
DEFAULT_SPACE = "rows=2,4,8,16,cols=2,4,8,16"


class Objective(enum.StrEnum):
    """What "best" means: the most images per second, or the least energy per image."""

    FPS = "fps"
    ENERGY = "energy"


def _ints(key: str, text: str, what: str) -> list[int]:
    out = []
    for v in text.split(","):
        v = v.strip()
        if not v:
            continue
        if not v.isdigit():
            raise ValueError(f"{what} {key}: values must be non-negative integers, not {v!r}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{what} {key}: no values")
    return out


def _pairs(text: str, keys: tuple, what: str) -> dict[str, str]:
    """``"rows=4,8,cols=4"`` -> ``{"rows": "4,8", "cols": "4"}`` (a value list runs to the next ``KEY=``)."""
    out: dict[str, str] = {}
    key = None
    for tok in str(text).split(","):
        tok = tok.strip()
        if "=" in tok:
            key, _, tok = tok.partition("=")
            key = key.strip()
            if key not in keys:
                raise ValueError(f"{what} key must be one of {', '.join(keys)}, not {key!r}")
            if key in out:
                raise ValueError(f"{what} key {key} is given twice")
            out[key] = tok
        elif key is None:
            raise ValueError(f"{what} must be KEY=V[,V...][,KEY=...], not {text!r}")
        else:
            out[key] += "," + tok
    if not out:
        raise ValueError(f"{what} must be KEY=V[,V...][,KEY=...], not {text!r}")
    return out


def parse_space(text: str) -> list[dict]:
    """``--space rows=4,8,cols=4,8,mult_rows=1,2`` -> the points (dicts), in order."""
    pairs = _pairs(text, SPACE_KEYS, "--space")
    keys = list(pairs)
    values = [_ints(k, pairs[k], "--space") for k in keys]
    for k, vs in zip(keys, values):
        if k != "mult_rows" and min(vs) < 1:
            raise ValueError(f"--space {k}: values must be >= 1")
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def parse_budget(text: str | None) -> dict[str, int]:
    """``--budget luts=20000,bram=56,dsp=0`` -> ``{"luts": 20000, ...}``."""
    if text is None:
        return {}
    pairs = _pairs(text, BUDGET_KEYS, "--budget")
    out = {}
    for k, v in pairs.items():
        vs = _ints(k, v, "--budget")
        if len(vs) != 1:
            raise ValueError(f"--budget {k}: one value, not {v!r}")
        out[k] = vs[0]
    return out


@dataclass(frozen=True)
class Point:
    """One engine of one config: its exact counts (from hwsim) and its predicted resources."""

    space: tuple                 # (key, value) of the space point
    design: Design
    rows: int
    cols: int
    mult_rows: int
    total_cycles: int
    energy_pj: float
    dram_pj: float
    resources: Resources
    fps: float                   # images per second at fps_clock_mhz
    fps_clock_mhz: float
    config: EngineConfig | None = None  # the engine to generate (its PE kind is ``design``)

    @property
    def energy_uj(self) -> float:
        return self.energy_pj / 1e6

    def within(self, budget: dict[str, int]) -> bool:
        r = self.resources
        checks = {"luts": r.lut, "ffs": r.ff, "bram": r.bram, "dsp": r.dsp}
        return r.fits() and all(checks[k] is None or checks[k] <= v for k, v in budget.items())

    def row(self) -> dict:
        r = self.resources
        return {"design": self.design.value, "rows": self.rows, "cols": self.cols, "mult_rows": self.mult_rows,
                "cycles_per_image": self.total_cycles, "images_per_s": round(self.fps, 3),
                "fps_clock_mhz": self.fps_clock_mhz, "energy_per_image_uj": round(self.energy_uj, 4),
                "dram_energy_uj": round(self.dram_pj / 1e6, 4), "lut": r.lut, "ff": r.ff, "carry": r.carry,
                "bram_blocks": r.bram, "dsp": r.dsp, "fmax_mhz_low": r.fmax_mhz_low,
                "fmax_mhz_high": r.fmax_mhz_high, "fits_part": r.fits()}


#: explore.csv columns (units in the names), in order: the keys of :meth:`Point.row`.
CSV_COLUMNS = (
    "design", "rows", "cols", "mult_rows", "cycles_per_image", "images_per_s", "fps_clock_mhz",
    "energy_per_image_uj", "dram_energy_uj", "lut", "ff", "carry", "bram_blocks", "dsp", "fmax_mhz_low",
    "fmax_mhz_high", "fits_part")


@dataclass(frozen=True)
class ExploreResult:
    """Every explored point, the ones within budget and ``min_fps``, and the best for the objective."""

    source: str
    part: str
    objective: Objective
    budget: dict
    min_fps: float
    points: tuple
    feasible: tuple
    best: Point | None
    model: ResourceModel | None = None
    notes: tuple = field(default_factory=tuple)


def _point(space: dict, design: Design, est, res: Resources) -> Point:
    cfg = est.config
    clock = res.fmax_mhz_low if res.fmax_mhz_low else cfg.clock_mhz
    cycles = est.counts.total_cycles
    tot = est.energy.total
    return Point(space=tuple(space.items()), design=design, rows=cfg.rows, cols=cfg.cols, mult_rows=cfg.mult_rows,
                 total_cycles=cycles, energy_pj=tot.total_pj, dram_pj=tot.dram_pj, resources=res,
                 fps=clock * 1e6 / cycles, fps_clock_mhz=clock, config=cfg)


def rank_key(p: Point, objective: Objective):
    """Sort key: the best point for ``objective`` first."""
    return (-p.fps, p.energy_pj) if objective == Objective.FPS else (p.energy_pj, -p.fps)


def explore(source: Source, table: EnergyTable, part_name: str, space: list[dict], *, budget: dict | None = None,
            min_fps: float = 0.0, objective: Objective = Objective.FPS, data_dir=None,
            require_model: bool = False) -> ExploreResult:
    """Both engines at every point of ``space`` on ``part_name`` (module docstring).

    Raises
    ------
    ValueError
        An unknown part, a config the engine refuses, or a LUT/FF budget on a part without a
        fitted model; no point within the budget (one line naming the smallest config and its
        predicted resources).
    """
    get_part(part_name)
    budget = dict(budget or {})
    try:
        model = load_model(part_name, data_dir)
    except FileNotFoundError as exc:
        if require_model or budget.keys() & {"luts", "ffs"}:
            raise ValueError(f"--budget luts/ffs: {exc}") from None
        model = None
    points = []
    # the multiplier unit is at most as tall as the array: such points of a product space are skipped
    skipped = [sp for sp in space if sp.get("mult_rows", 0) > sp.get("rows", 4)]
    space = [sp for sp in space if sp not in skipped]
    if not space:
        raise ValueError("--space: every point has mult_rows > rows")
    seen_mult: set = set()
    for sp in space:
        cmp_ = estimate_source(source, table, rows=sp.get("rows", 4), cols=sp.get("cols", 4),
                               mult_rows=sp.get("mult_rows"))
        for d, est in cmp_.designs.items():
            if d == Design.MULT and (est.config.rows, est.config.cols) in seen_mult:
                continue  # the all-multiplier engine has no multiplier unit: one per rows x cols
            if d == Design.MULT:
                seen_mult.add((est.config.rows, est.config.cols))
            res = model.predict(est.config) if model else predict_exact(est.config, part_name)
            points.append(_point(sp, d, est, res))
    feasible = [p for p in points if p.within(budget) and p.fps >= min_fps]
    notes = ((f"{len(skipped)} points of --space skipped: mult_rows > rows",) if skipped else ()) + (
        () if model else (f"{part_name} has no fitted resource model: LUT/FF/Fmax are not predicted and "
                          f"images/s are at the config's clock (run `adderhw explore --calibrate {calibration_part(part_name)}`)",)) + (
        (f"{part_name}'s resource model has no Fmax band (its calibration is not placed): images/s are at the "
         "config's clock",) if model and not model.fmax_mhz else ())
    if not feasible:
        small = min(points, key=lambda p: (p.resources.lut or 0, p.resources.bram, p.rows * p.cols))
        r = small.resources
        lut = f"{r.lut} LUTs, " if r.lut is not None else ""
        raise ValueError(f"nothing fits {part_name} within the budget and --min-fps: the smallest config, "
                         f"{small.design.value} {small.rows}x{small.cols} (mult_rows {small.mult_rows}), needs "
                         f"{lut}{r.bram} BRAM blocks, {r.dsp} DSPs at {small.fps:.1f} images/s")
    best = min(feasible, key=lambda p: rank_key(p, objective))
    return ExploreResult(source=source.path, part=part_name, objective=objective, budget=budget, min_fps=min_fps,
                         points=tuple(points), feasible=tuple(feasible), best=best, model=model, notes=notes)


def pareto(points, x: str, y: str, *, maximize_y: bool) -> list[Point]:
    """The points no other point beats on both ``x`` (less is better) and ``y``; sorted by ``x``."""
    pts = [p for p in points if p.row()[x] is not None]
    pts.sort(key=lambda p: (p.row()[x], -p.row()[y] if maximize_y else p.row()[y]))
    front, best = [], None
    for p in pts:
        v = p.row()[y]
        if best is None or (v > best if maximize_y else v < best):
            front.append(p)
            best = v
    return front


def generate_command(p: Point, model_dir: str, part_name: str) -> str:
    """The command lines that build ``p`` (a checkpoint is quantized first: ``generate`` takes an
    integer model folder); an adder point's multiplier unit is named (``--mult-rows``), since the
    space may hold other sizes of it than the one ``generate --model`` picks by itself."""
    pre = ""
    if str(model_dir).lower().endswith((".pt", ".pth")):
        pre = f"adderhw quantize {model_dir} -o build/q && "
        model_dir = "build/q"
    pe = " --pe mult" if p.design == Design.MULT else (f" --mult-rows {p.mult_rows}" if p.mult_rows else "")
    cmd = (f"{pre}adderhw generate --model {model_dir} --rows {p.rows} --cols {p.cols}{pe} "
           f"-o build/engine-{p.design.value}-{p.rows}x{p.cols}")
    return cmd


def _csv(points) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for p in points:
        w.writerow(p.row())
    return buf.getvalue()


def write_outputs(result: ExploreResult, out_dir, *, model_dir: str, synthesized: dict | None = None) -> dict:
    """``explore.csv``, ``report.md`` and the two Pareto plots in ``out_dir``; returns their paths.

    ``synthesized`` maps ``(design, rows, cols, mult_rows)`` to a synthesis result (``lut``, ``ff``,
    ``bram``, ``fmax_mhz``) for the report's predicted-vs-synthesized table.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "explore.csv", "report": out / "report.md"}
    atomic_write_text(paths["csv"], _csv(result.points))
    paths.update(_plots(result, out))
    lines = [f"# explore: {Path(result.source).name} on {result.part}", ""]
    lines += [f"* {len(result.points)} engines ({len(result.points) // 2} configs x adder and multiplier PEs), "
              f"{len(result.feasible)} within the budget {result.budget or '(none)'} and "
              f"--min-fps {result.min_fps:g}", f"* objective: {result.objective.value}"]
    if result.model is not None:
        lines.append(f"* resource model: fitted on {len(result.model.fitted_on)} designs, tools "
                     f"{result.model.tools}")
    lines += [f"* note: {n}" for n in result.notes]
    b = result.best
    if b is not None:
        lines += ["", "## Best", "", "```", generate_command(b, model_dir, result.part), "```", "",
                  f"{b.design.value} {b.rows}x{b.cols}: {b.fps:.1f} images/s at {b.fps_clock_mhz:g} MHz, "
                  f"{b.energy_uj:.2f} uJ/image, {b.resources.bram} BRAM blocks"]
    lines += ["", "## Pareto front: images/s vs LUTs" if result.model else "## Pareto front: images/s vs BRAM", ""]
    x = "lut" if result.model else "bram_blocks"
    lines += ["| design | rows x cols | mult_rows | images/s | uJ/image | LUT | FF | BRAM |", "|---|---|---|---|---|---|---|---|"]
    for p in pareto(result.feasible, x, "images_per_s", maximize_y=True):
        r = p.resources
        lines.append(f"| {p.design.value} | {p.rows}x{p.cols} | {p.mult_rows} | {p.fps:.1f} | {p.energy_uj:.2f} | "
                     f"{r.lut if r.lut is not None else '-'} | {r.ff if r.ff is not None else '-'} | {r.bram} |")
    if synthesized:
        lines += ["", "## Predicted vs synthesized", "",
                  "| design | rows x cols | LUT pred | LUT synth | FF pred | FF synth | BRAM pred | BRAM synth | Fmax band | Fmax synth |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for p in result.points:
            s = synthesized.get((p.design.value, p.rows, p.cols, p.mult_rows))
            if s is None:
                continue
            r = p.resources
            lines.append(f"| {p.design.value} | {p.rows}x{p.cols} | {r.lut} | {s.get('lut')} | {r.ff} | {s.get('ff')} "
                         f"| {r.bram} | {s.get('bram')} | {r.fmax_mhz_low}-{r.fmax_mhz_high} | {s.get('fmax_mhz')} |")
    lines += ["", "Files: `explore.csv` (every engine), " + ", ".join(f"`{p.name}`" for k, p in paths.items()
                                                                     if k.startswith("plot"))]
    atomic_write_text(paths["report"], "\n".join(lines) + "\n")
    return paths


def _plots(result: ExploreResult, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = "lut" if result.model else "bram_blocks"
    xlabel = "LUTs (predicted)" if result.model else "BRAM blocks (exact; no fitted LUT model for this part)"
    paths = {}
    for name, y, ylabel, maxy in (("plot_fps", "images_per_s", "images/s", True),
                                  ("plot_energy", "energy_per_image_uj", "energy per image (uJ)", False)):
        fig, ax = plt.subplots(figsize=(6, 4))
        for d, marker in ((Design.ADDER, "o"), (Design.MULT, "s")):
            pts = [p for p in result.feasible if p.design == d]
            ax.scatter([p.row()[x] for p in pts], [p.row()[y] for p in pts], marker=marker, alpha=0.35,
                       label=f"{d.value} (all)")
            front = pareto(pts, x, y, maximize_y=maxy)
            ax.plot([p.row()[x] for p in front], [p.row()[y] for p in front], marker=marker,
                    label=f"{d.value} Pareto front")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.set_title(f"{Path(result.source).name} on {result.part}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"pareto_{'fps' if maxy else 'energy'}.png"
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(path)
        paths[name] = path
    return paths


#: The parts ``--target`` accepts.
TARGET_PARTS = tuple(PARTS)
