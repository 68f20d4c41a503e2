"""The engine's resource model: LUT, FF, carry, BRAM, DSP and an Fmax band per part, without synthesis.

DESIGN §5 and §8.  What is exact and what is fitted:

* **BRAM**: exact — :func:`hwsim.parts.bram_blocks`, yosys' own mapping of each memory's depth x
  width onto the part's block geometry (never a second copy here).
* **DSP**: exact for the project's synthesis flow, which maps multipliers to logic (``rtl.synth``:
  ``-nodsp`` unless ``dsp=True``; the iCE40 HX8K has none): 0.
* **LUT, FF, carry**: linear in per-unit features of the config, :func:`features`: one bit count per
  unit that scales with the config (the PE array of each kind, the per-row and per-lane units, the
  multiplier unit) and a constant for the units that do not (controller, address generator, requant
  unit).  The engine's memories are BRAM, priced exactly above, so the calibration designs are small
  engines with small memories.  The coefficients (one per feature and resource, LUTs or FFs per bit
  of that unit) are data — ``hwsim/data/resources_<part>.json``, written by
  ``adderhw explore --calibrate PART`` (:func:`fit`), which names the tool versions, the engine build
  and every generated design it synthesised (config and synthesised figures) and keeps the error
  table of the designs held out of the fit.  One calibration serves a whole family
  (:data:`CALIBRATION_PART`): yosys' cell counts come from the family's synthesis script, not from
  the part's size, so the ECP5-45K and -85K read the ECP5-25K's coefficients, with their own BRAM,
  DSP and capacities.  A family without that file has no LUT/FF prediction (:func:`load_model`
  raises, naming the command that makes it).  Six features on at least ten
  designs: the fit is over-determined (an earlier nine-feature model on eight designs was not,
  and missed its held-out designs by up to 19 %).
* **Fmax band**: the lowest and highest achieved Fmax among the fitted designs of the same PE kind
  that carry one.  ``--calibrate`` synthesises without place and route (yosys' cell counts are
  what is fitted, and an ECP5 placement costs minutes per design), so its models have no band and
  explore's images/s are at the config's clock.

Keep it explainable: a feature is a named product of config fields, a coefficient is
LUTs (or FFs) per bit of that feature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.config import EngineConfig
from hwsim.parts import Family, bram_blocks
from hwsim.parts import part as get_part
from quant.base.files import atomic_write_text
from quant.base.intops import PeKind

__all__ = ["FEATURES", "RESOURCES", "CALIBRATION_PART", "Resources", "ResourceModel", "features", "fit",
           "load_model", "save_model", "model_path", "calibration_part", "check_calibration_part", "DATA_DIR"]

#: Where the fitted coefficients live, one file per part.
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The fitted resources (BRAM and DSP are exact, not fitted).
RESOURCES = ("lut", "ff", "carry")
#: The part each family's resource model is calibrated on, and which every part of the family reads.
#: What the model fits are yosys' cell counts, and those come from the family's synthesis script
#: (``synth_ecp5``, ``synth_ice40``; :mod:`rtl.synth` passes them no device), not from the part's size.
CALIBRATION_PART = {Family.ECP5: "ecp5-25k", Family.ICE40: "ice40-hx8k"}


def calibration_part(part_name: str) -> str:
    """The part whose calibration ``part_name`` reads (:data:`CALIBRATION_PART`; itself for a calibrated part)."""
    return CALIBRATION_PART[get_part(part_name).family]


def check_calibration_part(part_name: str) -> None:
    """``ValueError`` (one line) unless ``part_name`` is its family's calibration part: calibrating another
    part would synthesise the same cell counts into a file nothing reads."""
    src = calibration_part(part_name)
    if part_name != src:
        raise ValueError(f"--calibrate: {part_name} reads {src}'s resource model (yosys' cell counts depend on "
                         f"the family, not the part's size): calibrate {src}")


def features(cfg: EngineConfig) -> dict[str, float]:
    """The per-unit bit counts of ``cfg`` the linear model is fitted on (module docstring).

    One feature per unit that scales with the config, and a constant for the units that do not::

        const           1                                       controller, address generator, requant unit, ports
        pe_add_bits     rows*cols*(bits+1)        adder PEs     |x - w|, its register, the row-tree slice, weights
        pe_mult_pp      rows*cols*(bits+1)*bits   mult PEs      partial products (same slice and weight bits)
        row_bits        rows*acc_bits                           per output row: tree root, accumulator, shadow, drain
        col_bits        cols*act_bits                           per lane: vector unit, writer, activation word
        mult_unit_pp    mult_rows*(cols*(bits+1)*bits + mult_acc_bits)   the multiplier unit beside an adder array
    """
    pes = cfg.rows * cfg.cols
    adder = cfg.pe == PeKind.ADDER
    return {
        "const": 1.0,
        "pe_add_bits": float(pes * (cfg.bits + 1)) if adder else 0.0,
        "pe_mult_pp": float(pes * (cfg.bits + 1) * cfg.bits) if not adder else 0.0,
        "row_bits": float(cfg.rows * cfg.acc_bits),
        "col_bits": float(cfg.cols * cfg.act_bits),
        "mult_unit_pp": float(cfg.mult_rows * (cfg.cols * (cfg.bits + 1) * cfg.bits + cfg.mult_acc_bits)),
    }


#: The feature names, in the order the coefficients are stored.
FEATURES = tuple(features(EngineConfig(rows=1, cols=1)))


@dataclass(frozen=True)
class Resources:
    """One config's predicted resources on one part; ``lut``/``ff``/``carry``/``fmax_*`` None when the
    part has no fitted model."""

    part: str
    bram: int
    dsp: int
    lut: int | None = None
    ff: int | None = None
    carry: int | None = None
    fmax_mhz_low: float | None = None
    fmax_mhz_high: float | None = None

    def fits(self) -> bool:
        p = get_part(self.part)
        return (self.bram <= p.bram_blocks and self.dsp <= p.dsps
                and (self.lut is None or self.lut <= p.luts) and (self.ff is None or self.ff <= p.ffs))


@dataclass(frozen=True)
class ResourceModel:
    """Fitted coefficients for one part (the data file's contents)."""

    part: str
    coefficients: dict            # resource -> {feature: value}
    fmax_mhz: dict                # pe kind -> [low, high]
    tools: dict = field(default_factory=dict)
    fitted_on: tuple = ()         # design names
    held_out: tuple = ()          # rows of the error table: {design, resource, predicted, synthesized, error_pct}
    designs: tuple = ()           # every design: {name, role (fit|held_out|failed), config, synthesized or error}
    engine_build: str = ""        # the generated engine's build (rtl.engine: the deployable engine by default)
    calibrated_on: str = ""       # the part the designs were synthesised for (calibration_part(part))

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibrated_on", self.calibrated_on or calibration_part(self.part))
        if self.calibrated_on != calibration_part(self.part):
            raise ValueError(f"resource model for {self.part}: calibrated_on must be "
                             f"{calibration_part(self.part)}, not {self.calibrated_on!r}")
        for res in RESOURCES:
            coef = self.coefficients.get(res)
            if not isinstance(coef, dict) or set(coef) != set(FEATURES):
                raise ValueError(f"resource model for {self.part}: {res} coefficients must name exactly "
                                 f"{', '.join(FEATURES)}")

    def predict(self, cfg: EngineConfig) -> Resources:
        f = features(cfg)
        vals = {r: max(0, round(sum(self.coefficients[r][k] * f[k] for k in FEATURES))) for r in RESOURCES}
        band = self.fmax_mhz.get(PeKind(cfg.pe).value)
        return Resources(part=self.part, bram=bram_blocks(cfg, self.part), dsp=0, **vals,
                         fmax_mhz_low=band[0] if band else None, fmax_mhz_high=band[1] if band else None)


    def error_table(self) -> str:
        """The held-out designs' error table in Markdown: per design, LUT and FF predicted / synthesised /
        error, BRAM and DSP predicted / synthesised (what ``adderhw explore --calibrate`` prints)."""
        by: dict[str, dict] = {}
        for r in self.held_out:
            by.setdefault(r["design"], {})[r["resource"]] = r
        pct = lambda e: "" if e is None else f"{e:+.1f} %"  # noqa: E731
        lines = ["| design | LUT predicted | LUT synthesised | LUT error | FF predicted | FF synthesised | FF error "
                 "| BRAM predicted / synthesised | DSP predicted / synthesised |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in by.items():
            lut, ff, bram, dsp = r["lut"], r["ff"], r["bram"], r["dsp"]
            lines.append(f"| {name} | {lut['predicted']:,} | {lut['synthesized']:,} | {pct(lut['error_pct'])} "
                         f"| {ff['predicted']:,} | {ff['synthesized']:,} | {pct(ff['error_pct'])} "
                         f"| {bram['predicted']} / {bram['synthesized']} | {dsp['predicted']} / {dsp['synthesized']} |")
        return "\n".join(lines)


def predict_exact(cfg: EngineConfig, part_name: str) -> Resources:
    """BRAM and DSP only (no fitted model needed)."""
    get_part(part_name)
    return Resources(part=part_name, bram=bram_blocks(cfg, part_name), dsp=0)


def model_path(part_name: str, data_dir: Path | None = None) -> Path:
    """The data file ``part_name`` reads: its family's calibration part's (:func:`calibration_part`)."""
    return (DATA_DIR if data_dir is None else Path(data_dir)) / f"resources_{calibration_part(part_name)}.json"


def load_model(part_name: str, data_dir: Path | None = None) -> ResourceModel:
    """The fitted model of ``part_name`` (its family's calibration, :func:`calibration_part`, with the part's
    own BRAM and capacities); ``FileNotFoundError`` naming the calibration command when none."""
    src = calibration_part(part_name)
    path = model_path(part_name, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no resource model for {part_name} ({path}): run "
                                f"`adderhw explore --calibrate {src}`")
    d = json.loads(path.read_text())
    if tuple(d.get("features", ())) != FEATURES:
        raise ValueError(f"{path} was fitted on other features ({', '.join(d.get('features', ()))}): run "
                         f"`adderhw explore --calibrate {src}`")
    if d.get("part") != src:
        raise ValueError(f"{path} holds a calibration of {d.get('part')!r}, not {src}: run "
                         f"`adderhw explore --calibrate {src}`")
    return ResourceModel(part=part_name, coefficients=d["coefficients"], fmax_mhz=d.get("fmax_mhz", {}),
                         tools=d.get("tools", {}), fitted_on=tuple(d.get("fitted_on", ())),
                         held_out=tuple(d.get("held_out", ())), designs=tuple(d.get("designs", ())),
                         engine_build=d.get("engine_build", ""), calibrated_on=src)


def save_model(model: ResourceModel, data_dir: Path | None = None) -> Path:
    """Write ``model``, a calibration (``model.part`` is its family's :func:`calibration_part`), atomically."""
    if model.part != model.calibrated_on:
        raise ValueError(f"save_model: {model.part} reads {model.calibrated_on}'s calibration; save that one")
    path = model_path(model.part, data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({
        "part": model.part, "features": list(FEATURES), "coefficients": model.coefficients,
        "fmax_mhz": model.fmax_mhz, "tools": model.tools, "engine_build": model.engine_build,
        "fitted_on": list(model.fitted_on), "held_out": list(model.held_out),
        "designs": list(model.designs)}, indent=1) + "\n")
    return path


#: What :func:`fit` keeps of each synthesised design in the data file.
SYNTH_FIELDS = ("lut", "ff", "carry", "bram", "dsp", "fmax_mhz", "fits")


def fit(part_name: str, fitted: list[tuple[str, EngineConfig, dict]], held_out: list[tuple[str, EngineConfig, dict]],
        *, tools: dict, engine_build: str = "", failed: list[tuple[str, EngineConfig, str]] = ()) -> ResourceModel:
    """Least squares of each fitted resource on :func:`features` over ``fitted`` (``(name, config,
    synthesized)`` with ``synthesized`` holding ``lut``, ``ff``, ``carry``, ``fmax_mhz``); the
    held-out designs only fill the error table (LUT, FF, carry, BRAM, DSP per design).  ``failed``:
    ``(name, config, error)`` of designs the tools failed on, only recorded."""
    check_calibration_part(part_name)
    if len(fitted) <= len(FEATURES):
        raise ValueError(f"fit needs more synthesized designs than its {len(FEATURES)} features, "
                         f"not {len(fitted)}")
    fit_names = {n for n, _, _ in fitted}
    if any(n in fit_names for n, _, _ in held_out):
        raise ValueError("a held-out design is also in the fit")
    X = np.array([[features(c)[k] for k in FEATURES] for _, c, _ in fitted])
    coefficients = {}
    for res in RESOURCES:
        y = np.array([float(s[res]) for _, _, s in fitted])
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        coefficients[res] = {k: float(b) for k, b in zip(FEATURES, beta)}
    fmax: dict[str, list[float]] = {}
    for _, c, s in fitted:
        if s.get("fmax_mhz"):
            band = fmax.setdefault(PeKind(c.pe).value, [s["fmax_mhz"], s["fmax_mhz"]])
            band[0], band[1] = min(band[0], s["fmax_mhz"]), max(band[1], s["fmax_mhz"])
    model = ResourceModel(part=part_name, coefficients=coefficients, fmax_mhz=fmax, tools=tools)
    table = []
    for name, c, s in held_out:
        pred = model.predict(c)
        for res in RESOURCES + ("bram", "dsp"):
            got = s.get(res)
            p = getattr(pred, res)
            table.append({"design": name, "resource": res, "predicted": p, "synthesized": got,
                          "error_pct": (None if got is None else 0.0 if p == got == 0 else
                                        None if not got else round(100.0 * (p - got) / got, 1))})
    designs = tuple({"name": n, "role": role, "config": c.to_dict(), "synthesized": {k: s.get(k) for k in SYNTH_FIELDS}}
                    for role, rows in (("fit", fitted), ("held_out", held_out)) for n, c, s in rows) + tuple(
        {"name": n, "role": "failed", "config": c.to_dict(), "error": e} for n, c, e in failed)
    return ResourceModel(part=part_name, coefficients=coefficients, fmax_mhz=fmax, tools=tools,
                         fitted_on=tuple(n for n, _, _ in fitted), held_out=tuple(table), designs=designs,
                         engine_build=engine_build)
