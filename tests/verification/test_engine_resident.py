"""The network engine with resident weights (hwsim.engine rule 7) under cocotb on Icarus and Verilator.

The testbench (verification.tb.tb_engine) sends the load phase once, then each image's program and image only;
the records must show the load phase's counters and every image's logits, cycles and counters exact, the reset
test running its images on the store as it was (no reload).  A mutant that reads the store one word past each
operation's base must be caught.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.config import EngineConfig
from hwsim.samples import SMALL_ENGINE
from quant.intmodel import golden
from quant.intmodel.artifact import load_int_model
from tests.verification.test_engine import SEED, SIMS, _check, small_models  # noqa: F401 (fixture)
from verification.engine_host import ENGINE_TESTS, emit_engine, run_engine_tests

pytestmark = [pytest.mark.sim]

#: The small engine with its weights resident (a store deep enough for the random models' whole stream).
RESIDENT = dict(SMALL_ENGINE, weights="resident", weight_words=512)


def _check_load(run, tests):
    for name in tests:
        rec = run.case(name).record
        load = rec.get("load")
        if name == "reset_mid_network":  # its images run after the reset, on the store as it was
            assert load is None, name
            continue
        assert load["mismatches"] == [] and load["counters"]["w_beats"] > 0, name
        want = load["counters_predicted"]
        got = load["counters"]
        assert {k: v for k, v in got.items() if k != "cycles"} == {k: v for k, v in want.items() if k != "cycles"}
        assert got["cycles"] == want["cycles"] if rec["exact_cycles"] else got["cycles"] >= want["cycles"]


@pytest.mark.parametrize("sim", SIMS)
def test_small_model_resident(sim, small_models, build_root, tmp_path):
    """Load once, two images, back-pressure (gaps on w during the load), reset mid-network then two images
    without a reload: exact against golden and hwsim."""
    print(f"seed {SEED}")
    model_dir, images = small_models["mult_stem"]
    design = emit_engine(EngineConfig(**RESIDENT), max_ops=8, build_root=build_root)
    run = run_engine_tests(design, sim, model_dir=model_dir, images=images, out_dir=tmp_path,
                           build_root=build_root, seed=SEED)
    _check(run, ENGINE_TESTS)
    _check_load(run, ENGINE_TESTS)


@pytest.mark.slow
def test_wrong_weight_base_is_caught(small_models, build_root, tmp_path):
    """The store read one word past each operation's base: the logits differ from golden."""
    print(f"seed {SEED}")
    model_dir, images = small_models["mult_stem"]
    bad = emit_engine(EngineConfig(**RESIDENT), max_ops=8, mutation="wbase_plus_one", build_root=build_root)
    run = run_engine_tests(bad, "verilator", model_dir=model_dir, images=images[:1], out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=["images"])
    case = run.case("images")
    assert not case.passed, "the wrong weight base went unnoticed"
    (im,) = case.record["images"]
    assert any("golden" in line for line in im["mismatches"]), im["mismatches"]


#: LeNet resident per simulator: (images, cocotb tests); one load, then the images.
LENET_RESIDENT_RUNS = {"verilator": (3, list(ENGINE_TESTS)), "icarus": (2, ["images"])}


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
def test_lenet_resident(sim, lenet_dir, build_root, tmp_path):
    """The shipped LeNet-5-BN W8 on its 4x4 engine with resident weights (sized by the compiler): one load,
    then several test images; logits, the load phase and every image's cycles and counters exact."""
    from hwsim.sizing import size_engine
    from quant.training.datasets import load_dataset

    print(f"seed {SEED}")
    n, tests = LENET_RESIDENT_RUNS[sim]
    model = load_int_model(lenet_dir)
    images, _ = load_dataset(model.dataset, "test")
    codes = list(golden.quantize_input(images[:n], model.input))
    cfg, compiled = size_engine(model, rows=4, cols=4, weights="resident", part="ecp5-25k")
    assert cfg.resident and cfg.weight_words == compiled.program.store_words
    design = emit_engine(cfg, max_ops=len(compiled.program.ops), build_root=build_root)
    run = run_engine_tests(design, sim, model_dir=lenet_dir, images=codes, compiled=compiled, out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=tests)
    _check(run, tests)
    _check_load(run, tests)
    recs = run.case("images").record["images"]
    assert len(recs) == n and all(np.ptp(r["golden"]) > 0 for r in recs)
    for r in recs:
        assert sum(op["counters"]["w_beats"] for op in r["ops"]) == 0


@pytest.mark.slow
def test_resnet20_resident_on_verilator(resnet20_dir, build_root, tmp_path):
    """The shipped ResNet-20 W8 on its 4x4 engine with resident weights (the ECP5-85K's budget): one load, two
    test images; logits, the load phase and every image's cycles and counters exact."""
    from hwsim.sizing import size_engine
    from quant.training.datasets import load_dataset

    print(f"seed {SEED}")
    model = load_int_model(resnet20_dir)
    images, _ = load_dataset(model.dataset, "test", shape=model.input_shape)
    codes = list(golden.quantize_input(images[:2], model.input))
    cfg, compiled = size_engine(model, rows=4, cols=4, weights="resident", part="ecp5-85k")
    design = emit_engine(cfg, max_ops=len(compiled.program.ops), build_root=build_root)
    run = run_engine_tests(design, "verilator", model_dir=resnet20_dir, images=codes, compiled=compiled,
                           out_dir=tmp_path, build_root=build_root, seed=SEED, testcases=["images"])
    _check(run, ["images"])
    _check_load(run, ["images"])
    assert all(np.ptp(r["golden"]) > 0 for r in run.case("images").record["images"])
