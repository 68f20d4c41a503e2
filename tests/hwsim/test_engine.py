"""hwsim.engine: the closed-form engine model equals the engine reference's counters exactly."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.engine import EngineModel, OpShape, in_bounds, op_shapes
from hwsim.config import EngineConfig
from quant.base.intops import conv_out_size
from hwsim.compiler import compile_model
from hwsim.reference import run_engine
from hwsim.samples import small_model
from tests.hwsim import models


def _compare(model, cfg, rng):
    cm = compile_model(model, cfg)
    spec = model.input
    run = run_engine(cm.program, cm.weights, rng.integers(spec.lo, spec.hi + 1, size=model.input_shape))
    est = EngineModel(cfg).estimate(model)
    assert [l.name for l in est.layers] == [c.name for c in run.ops]
    for got, want in zip(est.layers, run.ops):
        assert (got.op, got.unit, got.start, got.end) == (want.op, want.unit, want.start, want.end), got.name
        assert got == want, got.name  # one counter record: the whole EngineLayer, its requant form too
    assert est.totals() == run.totals()
    return est


@pytest.mark.parametrize("size, kernel, stride, padding", [(7, 3, 1, 1), (8, 3, 2, 1), (5, 5, 1, 2), (9, 2, 3, 1), (4, 4, 1, 0)])
def test_in_bounds_counts_every_window_position(size, kernel, stride, padding):
    n = conv_out_size(size, kernel, stride, padding)
    brute = sum(1 for o in range(n) for i in range(kernel) if 0 <= o * stride - padding + i < size)
    assert in_bounds(size, kernel, stride, padding) == brute


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_models_counters_exact(data):
    bits = data.draw(st.integers(4, 8))
    k1 = data.draw(st.integers(1, 3))
    p1 = data.draw(st.integers(0, k1 // 2))
    h, w = data.draw(st.integers(max(k1, 2), 7)), data.draw(st.integers(max(k1, 2), 7))
    rows = data.draw(st.integers(1, 6))
    seed = data.draw(st.integers(0, 2**31 - 1))
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, c0=data.draw(st.integers(1, 3)), h=h, w=w, c1=data.draw(st.integers(1, 7)),
                        k1=k1, s1=data.draw(st.integers(1, 2)), p1=p1, bits=bits,
                        stem=data.draw(st.sampled_from(["adder_conv", "conv"])),
                        mode=data.draw(st.sampled_from(["fixed", "threshold"])),
                        pool=data.draw(st.sampled_from(["maxpool", "avgpool"])), pool_pad=1,
                        head=data.draw(st.sampled_from(["adder_linear", "linear"])),
                        classes=data.draw(st.integers(1, 6)))
    cfg = EngineConfig(rows=rows, cols=data.draw(st.integers(1, 6)), mult_rows=data.draw(st.integers(1, rows)),
                       bits=8, requant=("fixed", "threshold") if data.draw(st.booleans()) else ("fixed",),
                       act_words=(512, 512, 512), weight_words=512,
                       pixel_tile=data.draw(st.sampled_from([1, 2, 3, 8])))
    if model.layer("conv").requant.mode == "threshold":
        cfg = cfg.replace(requant=("fixed", "threshold"))
    _compare(model, cfg, rng)


@pytest.fixture(scope="module")
def hw_models():
    return models


@pytest.mark.parametrize("rows, cols", [(4, 4), (8, 8)])
def test_lenet_counters_exact(hw_models, rows, cols):
    seed = 1234
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = hw_models.random_lenet(rng)
    cfg = EngineConfig(rows=rows, cols=cols, act_words=(1568, 1568), weight_words=100)
    _compare(model, cfg, rng)


@pytest.mark.parametrize("tp", [2, 8])
def test_pixel_tiles_share_weight_reads(hw_models, tp):
    """Pixel tiles of Tp (rules 3, 4): counters exact, the logits golden's, each conv's weight-buffer reads
    ``ceil(P / Tp)`` per step and tile (a linear layer's single pixel reuses nothing), the rest unchanged."""
    from quant.intmodel import golden

    seed = 1235
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = hw_models.random_lenet(rng)
    cfg = EngineConfig(rows=4, cols=4, act_words=(1568, 1568), weight_words=100, pixel_tile=tp)
    est = _compare(model, cfg, rng)
    base = EngineModel(cfg.replace(pixel_tile=1)).estimate(model)
    ops, _ = op_shapes(model)
    for shape, got, one in zip(ops, est.layers, base.layers):
        pixels = shape.dst[0] * shape.dst[1]
        assert got.wbuf_reads * pixels == one.wbuf_reads * -(-pixels // tp), got.name
        assert {k: v for k, v in got.as_dict().items() if k not in ("cycles", "wbuf_reads")} == \
            {k: v for k, v in one.as_dict().items() if k not in ("cycles", "wbuf_reads")}, got.name
    assert est.totals()["wbuf_reads"] < base.totals()["wbuf_reads"]
    cm = compile_model(model, cfg)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    want = golden.run_codes(model, x[None])[model.output.name][0].reshape(-1)
    assert np.array_equal(run_engine(cm.program, cm.weights, x).logits, want)


def test_resnet20_counters_exact_and_utilisation(hw_models):
    seed = 2020
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = hw_models.random_resnet20(rng)
    cfg = EngineConfig(rows=8, cols=8, mult_rows=4, act_words=(2048, 2048, 2048), weight_words=72)
    est = _compare(model, cfg, rng)
    three = [l for l in model.layers if l.kind == "adder_conv" and l.kernel == (3, 3)]
    assert min(est.layer(l.name).util for l in three) >= 0.95


def test_resnet20_at_4x4_meets_utilisation(hw_models):
    """Closed form only (no reference run): ResNet-20's 3x3 layers at 4x4 keep the array >= 95 % busy."""
    model = hw_models.random_resnet20(np.random.default_rng(7))
    est = EngineModel(EngineConfig(rows=4, cols=4, mult_rows=2, act_words=(4096,) * 3)).estimate(model)
    three = [l for l in model.layers if l.kind == "adder_conv" and l.kernel == (3, 3)]
    assert min(est.layer(l.name).util for l in three) >= 0.95
    assert est.total_cycles == sum(l.cycles for l in est.layers) + est.prog_beats + est.x_beats


def test_refuses_a_foreign_config():
    with pytest.raises(ValueError, match="config must be an EngineConfig, not dict"):
        EngineModel({"rows": 1})


def test_op_shapes_alone_give_the_same_estimate():
    """The cycle model reads shapes, kinds and requant forms only: the model's op shapes reproduce it."""
    model = models.random_resnet20(np.random.default_rng(3))
    cfg = EngineConfig(rows=4, cols=4, mult_rows=2)
    ops, source = op_shapes(model)
    assert source == (32, 32, 3) and all(isinstance(o, OpShape) for o in ops)
    assert [o.name for o in ops] == [l.name for l in model.layers if l.kind != "flatten"]
    assert ops[-1] == OpShape(name="fc", kind="linear", src=(1, 1, 64), dst=(1, 1, 10), mode="fixed")
    assert EngineModel(cfg).estimate_ops(ops, source) == EngineModel(cfg).estimate(model)
    with pytest.raises(ValueError, match="no engine operation"):
        EngineModel(cfg).estimate_ops((), source)
