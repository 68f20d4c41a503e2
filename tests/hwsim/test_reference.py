"""hwsim.reference: the word-level engine equals the golden integer model (random small models, the shipped LeNet)."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.config import EngineConfig
from quant.intmodel import golden
from quant.base.intops import conv_out_size
from hwsim.compiler import compile_model
from hwsim.engine import COUNTER_NAMES, EngineLayer
from hwsim.reference import run_engine
from hwsim.samples import SMALL_ENGINE, small_model
from tests.hwsim import models

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHIPPED_LENET = Path(__file__).resolve().parents[2] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def _image(model, rng):
    spec = model.input
    return rng.integers(spec.lo, spec.hi + 1, size=model.input_shape)


def _check_equal(model, cm, x):
    run = run_engine(cm.program, cm.weights, x)
    want = golden.run_codes(model, x[None])
    for layer in model.layers:
        got = run.outputs[layer.name]
        assert got.shape == want[layer.name][0].shape, layer.name
        assert np.array_equal(got, want[layer.name][0]), f"layer {layer.name} differs"
    assert np.array_equal(run.logits, want[model.output.name][0].reshape(-1))
    return run


@st.composite
def _cases(draw):
    bits = draw(st.integers(4, 8))
    c0 = draw(st.integers(1, 3))
    k1 = draw(st.integers(1, 3))
    p1 = draw(st.integers(0, k1 // 2 + (1 if k1 > 1 else 0)))
    s1 = draw(st.integers(1, 2))
    h = draw(st.integers(max(k1 - 2 * p1, 1) + 1, 8))
    w = draw(st.integers(max(k1 - 2 * p1, 1) + 1, 8))
    oh, ow = conv_out_size(h, k1, s1, p1), conv_out_size(w, k1, s1, p1)
    pool_pad = draw(st.integers(0, 1)) if min(oh, ow) >= 1 else 0
    if conv_out_size(oh, 2, 2, pool_pad) < 1 or conv_out_size(ow, 2, 2, pool_pad) < 1:
        pool_pad = 1
    rows = draw(st.integers(1, 5))
    return dict(
        seed=draw(st.integers(0, 2**31 - 1)),
        model=dict(c0=c0, h=h, w=w, c1=draw(st.integers(1, 6)), k1=k1, s1=s1, p1=p1, bits=bits,
                   stem=draw(st.sampled_from(["adder_conv", "conv"])),
                   mode=draw(st.sampled_from(["fixed", "threshold"])),
                   pool=draw(st.sampled_from(["maxpool", "avgpool"])), pool_pad=pool_pad,
                   head=draw(st.sampled_from(["adder_linear", "linear"])),
                   classes=draw(st.integers(1, 5))),
        config=dict(rows=rows, cols=draw(st.integers(1, 5)), mult_rows=draw(st.integers(1, rows)),
                    bits=draw(st.integers(bits, 8)), requant=("fixed", "threshold")),
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_random_models_equal_golden(case):
    print("case", case)
    rng = np.random.default_rng(case["seed"])
    model = small_model(rng, **case["model"])
    # regions deep enough for any drawn tensor (at most 6 channels of 12x12 padded pixels, one lane each)
    cfg = EngineConfig(act_words=(1024, 1024, 1024), weight_words=512, **case["config"])
    cm = compile_model(model, cfg)
    run = _check_equal(model, cm, _image(model, rng))
    # every counter is a non-negative integer; region counts add up to the op counts
    for c in run.ops:
        assert all(isinstance(v, int) and v >= 0 for v in c.as_dict().values())
    tot = run.totals()
    assert sum(run.region_reads) == tot["act_reads"]
    assert sum(run.region_writes) == tot["act_writes"] + run.x_beats
    assert tot["w_beats"] == cm.weights.beats
    assert tot["o_beats"] == model.output.out_shape[0]


def test_all_multiplier_engine_runs_a_cnn():
    seed = 77
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, stem="conv", head="linear", bits=8, c1=3)
    # the 3x3 conv of small_model is an adder layer: an all-multiplier engine refuses it
    with pytest.raises(ValueError, match="layer conv: an adder_conv layer needs adder PEs; this engine has multiplier PEs"):
        compile_model(model, EngineConfig(rows=2, cols=2, pe="mult"))
    from quant.intmodel.artifact import IntModel

    cnn = IntModel(name="cnn", dataset="none", input=model.input, input_shape=model.input_shape,
                   layers=[model.layer("stem"), model.layer("pool").__class__(
                       name="pool", inputs=("stem",), in_shape=model.layer("stem").out_shape,
                       out_shape=model.layer("pool").out_shape, kernel=(2, 2), stride=2,
                       padding=model.layer("pool").padding),
                       model.layer("flatten"), model.layer("fc")])
    cm = compile_model(cnn, EngineConfig(rows=3, cols=2, pe="mult"))
    assert {op.unit for op in cm.program.ops} == {"mult", "vector"}
    _check_equal(cnn, cm, _image(cnn, rng))


def test_random_resnet20_layout_equals_golden():
    """A reference-layout ResNet-20 (multiply stem and classifier) at 8x8 with a 4-row multiplier unit."""
    seed = 2020
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = models.random_resnet20(rng)
    cfg = EngineConfig(rows=8, cols=8, mult_rows=4, act_words=(2048, 2048, 2048), weight_words=72)
    cm = compile_model(model, cfg)
    assert sorted({t.region for t in cm.program.tensors.values() if t.region is not None}) == [0, 1, 2]
    x = rng.integers(-128, 128, size=model.input_shape)
    run = _check_equal(model, cm, x)
    util = {c.name: c.busy_cycles / c.cycles for c in run.ops}
    three = [l.name for l in model.layers if l.kind == "adder_conv" and l.kernel == (3, 3)]
    assert min(util[n] for n in three) >= 0.95, util


@pytest.fixture(scope="module")
def shipped_lenet():
    """The shipped LeNet-5-BN quantised twice: 8-bit fixed point and 4-bit thresholds."""
    import torch

    from quant.training import checkpoint
    from quant.training.datasets import load_dataset
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model

    torch.set_num_threads(1)
    ck = checkpoint.load(SHIPPED_LENET)
    images, _ = load_dataset("fashion-mnist", "train")
    rng = np.random.default_rng(0)
    calib = images[rng.choice(images.shape[0], 256, replace=False)]
    norm = ck.meta["normalization"]
    out = {}
    for bits, mode in ((8, "fixed"), (4, "threshold")):
        out[mode], _ = quantize_model(ck.model, calib, mean=norm["mean"], std=norm["std"],
                                      cfg=QuantConfig(bits=bits, requant=mode), name="lenet5_bn",
                                      dataset="fashion-mnist")
    return out, images[:3]


@pytest.mark.parametrize("mode", ["fixed", "threshold"])
def test_shipped_lenet_equals_golden(shipped_lenet, mode):
    models, images = shipped_lenet
    model = models[mode]
    bits = model.input.bits
    cfg = EngineConfig(rows=4, cols=4, bits=bits, requant=("fixed", "threshold"),
                       act_words=(784, 1568), weight_words=100)
    cm = compile_model(model, cfg)
    codes = golden.quantize_input(images, model.input)
    for x in codes[:2]:
        _check_equal(model, cm, x)


def test_counters_are_engine_layers():
    """The reference reports the one counter record, with every counter the RTL exposes."""
    model = small_model(np.random.default_rng(5), bits=5)
    cm = compile_model(model, EngineConfig(**SMALL_ENGINE))
    run = run_engine(cm.program, cm.weights, np.zeros(model.input_shape, dtype=np.int64))
    assert all(isinstance(c, EngineLayer) for c in run.ops)
    assert set(run.ops[0].as_dict()) == set(COUNTER_NAMES)
