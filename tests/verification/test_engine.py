"""The network engine under cocotb on Icarus and Verilator (verification.tb.tb_engine).

Each run builds its engine (Verilog and metadata by ``rtl.design``, simulator
builds cached per session) and runs cocotb tests in one simulator process;
the records must show zero mismatches: logits equal to ``quant.intmodel.golden`` and
to the engine reference on the observed beats, every operation's cycles and
counters equal to hwsim ``cp`` (cycles no fewer under back-pressure).

Designs: two small random models (conv + residual add + pool + linear; an
adder stem, and a multiply stem with threshold requant and an average pool),
the shipped LeNet-5-BN (W8) on both simulators, one image of the shipped
in-house ResNet-20 (W8) on Verilator, a mutant whose accumulators are one bit
short, which a directed extreme model must expose while random images pass,
and a mutant address generator whose right-edge padding is off by one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hwsim.config import EngineConfig
from quant.intmodel import golden
from quant.intmodel.artifact import FlattenLayer, IntModel, Requant, load_int_model, save_int_model
from quant.base.intops import InputQuant
from hwsim.samples import SMALL_ENGINE, small_model
from verification.engine_host import ENGINE_TESTS, emit_engine, run_engine_tests

pytestmark = [pytest.mark.sim]

SIMS = ("icarus", "verilator")
SEED = 20261201

#: One small engine (hwsim.samples.SMALL_ENGINE: 2x2 adder array, a 1-row multiplier unit, both requant
#: forms) runs both random models and the mutant's extreme model: one Verilator build instead of three.
SMALL_CONFIG = SMALL_ENGINE
#: model options of the random models
SMALL = {
    "adder_stem": dict(c0=2, h=4, w=4, c1=3, bits=5),
    "mult_stem": dict(c0=1, h=5, w=4, c1=5, k1=3, s1=2, p1=1, bits=5, stem="conv", mode="threshold",
                      pool="avgpool", pool_pad=1, head="linear", classes=3),
}
#: LeNet-5-BN on a 4x4 engine, tracing every layer's output on o (rule 6 of hwsim.engine)
def _check(run, names):
    assert sorted(c.name for c in run.cases) == sorted(names)
    failed = [f"{c.name}: {c.message[:1500]}" for c in run.cases if not c.passed]
    assert not failed, f"{run.simulator}: failed tests (log {run.log}):\n" + "\n".join(failed)
    for c in run.cases:
        rec = c.record
        assert rec["mismatches"] == 0, c.name
        for im in rec["images"]:
            assert im["logits"] == im["golden"] == im["ref"], (c.name, im["image"])
            assert len(im["ops"]) > 0
            for op in im["ops"]:
                assert op["counters"] == op["counters_predicted"], (c.name, op["name"])
                if rec["exact_cycles"]:
                    assert (op["start"], op["end"]) == (op["start_predicted"], op["end_predicted"])
                else:
                    assert op["cycles"] >= op["cycles_predicted"]
        if rec["exact_cycles"]:
            assert rec["cycles_measured"] == rec["cycles_predicted"], c.name
        else:
            assert rec["cycles_measured"] >= rec["cycles_predicted"], c.name
        print(f"{run.simulator} {c.name}: {rec['cycles_measured']} cycles (hwsim {rec['cycles_predicted']}), "
              f"{rec['wall_s']} s, per image {rec['wall_s_per_image']} s, {rec['python_wakeups']} Python wake-ups")


def _random_images(model, rng, n):
    return [rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape) for _ in range(n)]


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    """``label -> (model folder, images)`` of the random models, seeded."""
    out = {}
    for i, (label, mopts) in enumerate(SMALL.items()):
        rng = np.random.default_rng([SEED, i])
        model = small_model(rng, **mopts)
        d = tmp_path_factory.mktemp(f"engine_{label}")
        save_int_model(model, d)
        out[label] = (d, _random_images(model, rng, 2))
    return out


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("label", list(SMALL))
def test_small_models(label, sim, small_models, build_root, tmp_path):
    """Two images, back-pressure, reset mid-network: exact against golden and hwsim."""
    print(f"seed {SEED}")
    model_dir, images = small_models[label]
    design = emit_engine(EngineConfig(**SMALL_CONFIG), max_ops=8, build_root=build_root)
    run = run_engine_tests(design, sim, model_dir=model_dir, images=images, out_dir=tmp_path,
                           build_root=build_root, seed=SEED)
    _check(run, ENGINE_TESTS)
    assert run.case("reset_mid_network").record["reset_after_ops"] >= 1


def extreme_model(*, bits: int, shape=(2, 8, 8), classes: int = 2) -> IntModel:
    """``input [C, H, W] -> flatten -> adder_linear`` with every weight 0 and logits = the accumulator.

    With the largest input code everywhere each accumulator reaches
    ``K * (2**bits - 1)``, its largest value (requant ``(2*acc + 1) >> 1``).
    """
    c, h, w = shape
    k = c * h * w
    rng = np.random.default_rng(0)
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(k,), out_channels=classes, bits=bits, mode="fixed",
                             name="fc", inputs=("flatten",))
    rq = Requant(mode="fixed", m=np.full(classes, 2, dtype=np.int64), n=np.zeros(classes, dtype=np.int64), shift=1,
                 lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=1.0, out_zero_point=0, out_bits=16, out_signed=True)
    zeroed = replace(fc, weight=np.zeros_like(np.asarray(fc.weight)), requant=rq,
                     compensation=np.zeros_like(np.asarray(fc.compensation)))
    flat = FlattenLayer(name="flatten", inputs=("input",), in_shape=shape, out_shape=(k,))
    spec = InputQuant(mean=(0.5,) * c, std=(0.25,) * c, scale=0.05, zero_point=0, bits=bits, signed=False)
    return IntModel(name="extreme", dataset="none", input=spec, input_shape=shape, layers=[flat, zeroed])


@pytest.fixture(scope="session")
def extreme_dir(tmp_path_factory):
    model = extreme_model(bits=SMALL_CONFIG["bits"])
    d = tmp_path_factory.mktemp("engine_extreme")
    save_int_model(model, d)
    top = np.full(model.input_shape, model.input.hi, dtype=np.int64)
    rng = np.random.default_rng([SEED, 99])
    # codes up to hi // 2: every sum stays below 2**(acc_bits - 1), so a one-bit-short accumulator does not wrap
    return d, [top, rng.integers(0, model.input.hi // 2 + 1, size=model.input_shape)]


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
def test_mutant_accumulator_is_caught(sim, extreme_dir, build_root, tmp_path):
    """Accumulators one bit short: the extreme image's logits wrap (random images pass); the correct engine passes."""
    print(f"seed {SEED}")
    model_dir, images = extreme_dir
    cfg = EngineConfig(**SMALL_CONFIG)
    model = load_int_model(model_dir)
    k = model.layers[-1].K
    assert k == cfg.max_k, "the extreme layer must use the whole accumulator"
    good = emit_engine(cfg, max_ops=8, build_root=build_root)
    run = run_engine_tests(good, sim, model_dir=model_dir, images=images, out_dir=tmp_path / "good",
                           build_root=build_root, seed=SEED, testcases=["images"])
    _check(run, ["images"])
    assert run.case("images").record["images"][0]["golden"] == [k * model.input.hi] * 2
    bad = emit_engine(cfg, max_ops=8, mutation="acc_minus_one", build_root=build_root)
    run = run_engine_tests(bad, sim, model_dir=model_dir, images=images, out_dir=tmp_path / "bad",
                           build_root=build_root, seed=SEED, testcases=["images"])
    case = run.case("images")
    assert not case.passed, "the mutant's accumulator overflow went unnoticed"
    extreme, rand = case.record["images"]
    assert extreme["mismatches"] and extreme["logits"] != extreme["golden"]
    assert extreme["logits"] == [v % (1 << (cfg.acc_bits - 1)) for v in extreme["golden"]]
    assert rand["mismatches"] == []  # random data alone would not have caught it


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
def test_mutant_padding_is_caught(sim, small_models, build_root, tmp_path):
    """An address generator whose right-edge padding test is off by one (reads where it must pad) is caught:
    the padded layer's act_reads differ from hwsim's and the logits from golden."""
    print(f"seed {SEED}")
    model_dir, images = small_models["mult_stem"]  # 3x3 stem with padding 1, a padded average pool
    bad = emit_engine(EngineConfig(**SMALL_CONFIG), max_ops=8, mutation="pad_edge", build_root=build_root)
    run = run_engine_tests(bad, sim, model_dir=model_dir, images=images[:1], out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=["images"])
    case = run.case("images")
    assert not case.passed, "the padding off-by-one went unnoticed"
    (im,) = case.record["images"]
    assert any("act_reads" in line for line in im["mismatches"]), im["mismatches"]


@pytest.fixture(scope="session")
def lenet_images(lenet_dir):
    from quant.training.datasets import load_dataset

    model = load_int_model(lenet_dir)
    images, _ = load_dataset(model.dataset, "test")
    return list(golden.quantize_input(images[:2], model.input))


#: LeNet per simulator: (images, cocotb tests).  Icarus takes about a minute per LeNet image on the
#: 2-core machine, so it runs one image, no stalls; Verilator runs everything on two images.
LENET_RUNS = {"verilator": (2, list(ENGINE_TESTS)), "icarus": (1, ["images"])}


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
def test_lenet(sim, lenet_dir, lenet_images, lenet_design, build_root, tmp_path):
    """The shipped LeNet-5-BN W8 on test images: logits, cycles and counters exact (see LENET_RUNS)."""
    print(f"seed {SEED}")
    n, tests = LENET_RUNS[sim]
    run = run_engine_tests(lenet_design, sim, model_dir=lenet_dir, images=lenet_images[:n], out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=tests)
    _check(run, tests)
    logits = run.case("images").record["images"][0]["golden"]
    assert len(logits) == 10 and np.ptp(logits) > 0  # real logits, not a constant
    # every layer but the logits was traced and compared with golden (the mismatch list is empty)
    layers = ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]
    for c in run.cases:
        for im in c.record["images"]:
            assert im["traced_layers"] == layers, im["traced_layers"]


@pytest.mark.slow
def test_resnet20_on_verilator(resnet20_dir, build_root, tmp_path):
    """One Fashion-MNIST test image through the in-house ResNet-20 W8 on its 4x4 engine (sized by the compiler,
    traced): logits, every layer's output, cycles and counters exact."""
    from quant.training.datasets import load_dataset
    from hwsim.sizing import size_engine

    model = load_int_model(resnet20_dir)
    images, _ = load_dataset(model.dataset, "test", shape=model.input_shape)
    codes = list(golden.quantize_input(images[:1], model.input))
    cfg, compiled = size_engine(model, rows=4, cols=4, trace=True)
    ops = [op.name for op in compiled.program.ops]
    assert cfg.mult_rows >= 1 and any(op.op == "add" for op in compiled.program.ops)  # stem/classifier, skips
    design = emit_engine(cfg, max_ops=len(ops), build_root=build_root)
    run = run_engine_tests(design, "verilator", model_dir=resnet20_dir, images=codes, out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=["images"])
    _check(run, ["images"])
    (im,) = run.case("images").record["images"]
    assert im["traced_layers"] == ops[:-1] and all(im["traces_ok"].values())
    assert np.ptp(im["golden"]) > 0
