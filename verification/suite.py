"""The verification suite: which designs are generated, which cocotb tests run on them, and the report.

Designs (:data:`MATRIX`) cover both PE kinds, both requant modes, operand
widths 4 and 8 and array shapes 4x4 and 8x4 with four builds instead of the
sixteen of a full cross product; :data:`MUTANT` is the test-only design with
a one-bit-narrower accumulator that the suite must reject.  A model's own
design (:func:`config_for_model`) runs its layers and the whole network.

Report entries (``verify.json``) are one object per cocotb test:
``name`` (``<design>/<test>``), ``simulator``, ``passed``,
``cycles_measured``, ``cycles_predicted`` (null where a test has no cycle
check), plus ``design``, ``mismatches``, ``message``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.config import ArrayConfig
from quant.files import atomic_write_bytes
from verification.meta import load_meta
from verification.runner import Design, RunResult, run_tests

if TYPE_CHECKING:
    from rtl.generate import DesignMeta

__all__ = [
    "TB_MODULE",
    "RANDOM_TESTS",
    "DesignSpec",
    "MATRIX",
    "MUTANT",
    "generate_design",
    "config_for_model",
    "run_design",
    "report_entries",
    "write_report",
    "summary_table",
]

#: The cocotb module with the accelerator tests.
TB_MODULE = "verification.tb.tb_accelerator"
#: Tests that need no model.
RANDOM_TESTS = ("random_tiles", "requant_corners", "extremes", "reset_mid_tile", "back_pressure")


@dataclass(frozen=True)
class DesignSpec:
    """A design of the suite: a label, its array config, an optional test-only mutation."""

    label: str
    config: ArrayConfig
    mutation: str | None = None


#: Four designs covering every (PE kind, requant mode), (PE kind, operand
#: width) and (PE kind, shape) pair instead of the full cross product.  The
#: first is the LeNet-5-BN design (:func:`config_for_model` of the 8-bit
#: fixed-point artifact gives the same config, so the build is shared).
#: 8-bit threshold designs (255 comparators per row) are left out: Verilator
#: with cocotb's ``--public-flat-rw`` takes many minutes to compile them.
MATRIX = (
    DesignSpec("adder_4x4_b8_fixed", ArrayConfig(rows=4, cols=4, pe="adder", bits=8, max_k=400,
                                                 requant="fixed", out_bits=16)),
    DesignSpec("adder_8x4_b4_threshold", ArrayConfig(rows=8, cols=4, pe="adder", bits=4, max_k=256,
                                                     requant="threshold")),
    DesignSpec("mult_4x4_b8_fixed", ArrayConfig(rows=4, cols=4, pe="mult", bits=8, max_k=128,
                                                requant="fixed", out_bits=16)),
    DesignSpec("mult_8x4_b4_threshold", ArrayConfig(rows=8, cols=4, pe="mult", bits=4, max_k=256,
                                                    requant="threshold")),
)

#: Test-only mutant (``rtl.accelerator.MUTATIONS``): the adder fixed-point
#: design with one accumulator bit fewer.  The suite must fail on it.
MUTANT = DesignSpec("mutant_acc_minus_one", MATRIX[0].config, mutation="acc_minus_one")


def generate_design(spec: DesignSpec, out_dir: Path) -> DesignMeta:
    """Emit ``spec`` with :func:`rtl.generate.generate` into ``out_dir``; return its metadata."""
    from rtl.generate import generate

    _, j = generate(spec.config, out_dir, mutation=spec.mutation)
    return load_meta(j)


def config_for_model(model, *, rows: int = 4, cols: int = 4) -> ArrayConfig:
    """The smallest array config of shape ``rows x cols`` that runs every compute layer of ``model``.

    Raises ValueError when the layers need more than one PE kind, operand
    width or requant mode (one design runs one of each).
    """
    layers = [ly for ly in model.layers if ly.pe is not None]
    if not layers:
        raise ValueError(f"model {model.name} has no compute layers")
    kinds = {ly.pe for ly in layers}
    bits = {ly.bits for ly in layers}
    modes = {ly.requant.mode for ly in layers}
    for what, vals in (("PE kinds", kinds), ("operand widths", bits), ("requant modes", modes)):
        if len(vals) != 1:
            raise ValueError(
                f"model {model.name} mixes {what} ({', '.join(map(str, sorted(vals)))}): "
                "one array design runs one of each"
            )
    max_k = max(int(ly.weight.shape[1]) for ly in layers)
    b = bits.pop()
    out_bits = max(b, max(ly.requant.out_bits for ly in layers))
    return ArrayConfig(rows=rows, cols=cols, pe=kinds.pop(), bits=b, max_k=max_k,
                       requant=modes.pop(), out_bits=out_bits)


def run_design(meta: DesignMeta, sim: str, *, out_dir: Path, build_root: Path | None = None,
               testcases: list[str] | None = None, model_dir: Path | None = None,
               layers: list[str] = (), network: bool = False, images: list[int] = (0,),
               seed: int = 1, waves: bool = False) -> RunResult:
    """Run the accelerator testbench on one design and simulator.

    Parameters
    ----------
    meta : DesignMeta
        The design (its Verilog is built, cached, under ``build_root``).
    sim : {"icarus", "verilator"}
    out_dir : Path
        This run's folder (job, log, results, records, waves).
    testcases : list of str, optional
        cocotb tests to run (default: all registered ones).
    model_dir : Path, optional
        Integer model artifact for ``layer_<name>`` tests and ``network``.
    layers : list of str
        Compute layers to run as separate tests.
    network : bool
        Run the whole network layer by layer.
    images : list of int
        Test-set image indices (layer tests use the first).
    seed : int
        Seed of the random tests.
    waves : bool
        Record waves (FST).
    """
    job = {"meta": str(Path(meta.path).resolve()), "seed": int(seed)}
    if model_dir is not None:
        job.update(model_dir=str(Path(model_dir).resolve()), layers=list(layers),
                   network=bool(network), images=[int(i) for i in images])
    return run_tests(Design(meta.verilog, meta.name), sim, module=TB_MODULE, job=job,
                     test_dir=out_dir, testcases=testcases, waves=waves, build_root=build_root,
                     seed=seed)


def report_entries(run: RunResult, label: str, *, expect_fail: bool = False) -> list[dict]:
    """``verify.json`` entries of one run: one per cocotb test.

    With ``expect_fail`` (the mutant) there is one entry, ``<label>/caught``,
    which passes when at least one test **failed** (its message names them).
    """
    if expect_fail:
        failed = [c.name for c in run.cases if not c.passed]
        return [{
            "name": f"{label}/caught",
            "simulator": run.simulator,
            "passed": bool(failed),
            "cycles_measured": None,
            "cycles_predicted": None,
            "design": label,
            "mismatches": None,
            "expect_fail": True,
            "message": (f"caught by {', '.join(failed)}" if failed
                        else f"NOT caught: all of {', '.join(c.name for c in run.cases)} passed"),
        }]
    out = []
    for c in run.cases:
        rec = c.record
        out.append({
            "name": f"{label}/{c.name}",
            "simulator": run.simulator,
            "passed": bool(c.passed),
            "cycles_measured": rec.get("cycles_measured"),
            "cycles_predicted": rec.get("cycles_predicted"),
            "design": label,
            "mismatches": rec.get("mismatches"),
            "expect_fail": False,
            "message": c.message.splitlines()[0][:200] if c.message else "",
        })
    return out


def write_report(entries: list[dict], path: Path) -> None:
    """Write ``entries`` as JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(entries, indent=1) + "\n").encode())


def summary_table(entries: list[dict]) -> str:
    """A fixed-width table of the entries, one line each, and a totals line."""
    head = ("test", "sim", "result", "cycles_measured", "cycles_predicted")
    rows = []
    for e in entries:
        res = "pass" if e["passed"] else "FAIL"
        if e.get("expect_fail"):
            res += " (caught)" if e["passed"] else " (NOT caught)"
        rows.append((e["name"], e["simulator"], res,
                     "-" if e["cycles_measured"] is None else str(e["cycles_measured"]),
                     "-" if e["cycles_predicted"] is None else str(e["cycles_predicted"])))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    bad = sum(1 for e in entries if not e["passed"])
    lines.append(f"{len(entries) - bad} of {len(entries)} passed")
    return "\n".join(lines)
