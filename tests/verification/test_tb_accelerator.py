"""The accelerator testbench on Icarus and Verilator: one pytest function per design and simulator.

Each function builds its design (cached per session) and runs every cocotb
test of :mod:`verification.tb.tb_accelerator` that applies in one simulator
process; it then checks the per-test records: every test passed, zero
mismatched beats, and measured cycles equal to hwsim's prediction wherever
there is no back-pressure.
"""

from __future__ import annotations

import numpy as np
import pytest

from quant.artifact import load_int_model
from verification.suite import MATRIX, MUTANT, RANDOM_TESTS, DesignSpec, config_for_model, generate_design, run_design

SIMS = ("icarus", "verilator")
SEED = 20260522


def _check(run):
    failed = [f"{c.name}: {c.message}" for c in run.cases if not c.passed]
    assert not failed, f"{run.simulator}: failed tests (log {run.log}):\n" + "\n".join(failed)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("label", [s.label for s in MATRIX])
def test_random_suite(label, sim, design_meta, build_root, tmp_path):
    """Random tiles, requant corners, extremes at max K, reset mid-tile, back-pressure."""
    print(f"seed {SEED}")
    meta = design_meta(label)
    run = run_design(meta, sim, out_dir=tmp_path, build_root=build_root, seed=SEED)
    assert sorted(c.name for c in run.cases) == sorted(RANDOM_TESTS)
    _check(run)
    for c in run.cases:
        rec = c.record
        assert rec["mismatches"] == 0, c.name
        assert rec["beats"] > 0, c.name
        if c.name == "back_pressure":
            assert rec["cycles_predicted"] is None
            assert rec["cycles_measured"] > 0
        else:
            assert rec["cycles_measured"] == rec["cycles_predicted"], c.name
    # extremes really runs the largest reduction the design accepts
    assert run.case("extremes").record["k"] == meta.config.max_k


@pytest.mark.parametrize("sim", SIMS)
def test_mutant_is_caught(sim, design_meta, build_root, tmp_path):
    """The one-bit-narrower accumulator passes random data but fails the extreme test."""
    meta = design_meta(MUTANT.label)
    assert meta.raw["mutation"] == "acc_minus_one"
    run = run_design(meta, sim, out_dir=tmp_path, build_root=build_root, seed=SEED)
    ext = run.case("extremes")
    assert not ext.passed, "the mutant's accumulator overflow went unnoticed"
    assert ext.record["mismatches"] > 0
    assert not run.passed


@pytest.fixture(scope="session")
def lenet_design(lenet_dir, designs_dir):
    model = load_int_model(lenet_dir)
    cfg = config_for_model(model, rows=4, cols=4)
    return model, generate_design(DesignSpec("lenet", cfg), designs_dir)


@pytest.mark.parametrize("sim", SIMS)
def test_lenet_layer_by_layer(sim, lenet_dir, lenet_design, build_root, tmp_path):
    """conv1 end to end as its own test, then the whole LeNet-5-BN through the array."""
    model, meta = lenet_design
    run = run_design(meta, sim, out_dir=tmp_path, build_root=build_root, seed=SEED,
                     testcases=["layer_conv1", "network"], model_dir=lenet_dir,
                     layers=["conv1"], network=True, images=[0])
    assert sorted(c.name for c in run.cases) == ["layer_conv1", "network"]
    _check(run)
    conv1 = run.case("layer_conv1").record
    assert conv1["mismatches"] == 0
    assert conv1["cycles_measured"] == conv1["cycles_predicted"]
    net = run.case("network").record
    compute = [ly.name for ly in model.layers if ly.pe is not None]
    assert [r["layer"] for r in net["layers"]] == compute
    for r in net["layers"]:
        assert r["mismatches"] == 0, r
        assert r["cycles_measured"] == r["cycles_predicted"], r
    assert net["cycles_measured"] == net["cycles_predicted"] == sum(r["cycles_predicted"] for r in net["layers"])
    (logits,) = net["logits"]
    assert logits["rtl"] == logits["golden"]
    assert len(logits["rtl"]) == model.layers[-1].out_shape[0]
    assert np.ptp(logits["golden"]) > 0  # real logits, not a constant
