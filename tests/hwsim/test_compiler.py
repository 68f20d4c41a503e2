"""hwsim.compiler: memory map, weight-stream order, parameter packing, refusals by message."""

import dataclasses

import numpy as np
import pytest

from hwsim.config import EngineConfig
from quant.intmodel import golden
from quant.intmodel.artifact import AdderLayer, FlattenLayer, IntModel, Requant
from hwsim.compiler import PAD, compile_model, from_words, pack_params, to_words, unpack_params, window_addresses
from hwsim.reference import run_engine
from hwsim.samples import small_model
from tests.hwsim import models


def test_words_round_trip_and_zero_lanes():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(5, 3, 2))
    w = to_words(x, 4)
    assert w.shape == (3 * 2 * 2, 4)
    # word (y*W + x)*G + g holds channels g*4 .. g*4+3 of pixel (y, x); lanes beyond C are 0
    assert list(w[(1 * 2 + 1) * 2 + 0]) == list(x[0:4, 1, 1])
    assert list(w[(1 * 2 + 1) * 2 + 1]) == [x[4, 1, 1], 0, 0, 0]
    assert np.array_equal(from_words(w, 5, 3, 2), x)


def test_window_addresses_padding_and_order():
    a = window_addresses(3, 4, 2, (3, 3), 2, 1)  # OH = 2, OW = 2
    assert a.shape == (4, 3, 3, 2)
    # pixel (0, 0): kernel row 0 and column 0 are padding
    assert (a[0, 0] == PAD).all() and (a[0, :, 0] == PAD).all()
    # pixel (1, 1) = output (1, 1): input (iy, ix) = (1 + i, 1 + j); iy = 3 is outside
    assert a[3, 0, 0, 1] == (1 * 4 + 1) * 2 + 1
    assert (a[3, 2] == PAD).all()


@pytest.mark.parametrize("mode", ["fixed", "threshold"])
def test_param_pack_round_trip(mode):
    seed = 5
    print("seed", seed)
    rng = np.random.default_rng(seed)
    cfg = EngineConfig(rows=3, cols=2, bits=4, requant=("fixed", "threshold"))
    if mode == "fixed":
        rows = np.stack([rng.integers(-(1 << 15), 1 << 15, 3), rng.integers(-(1 << 39), 1 << 39, 3)], axis=1)
    else:
        rows = np.concatenate([np.sort(rng.integers(0, 1 << cfg.thr_bits, (3, 15)), axis=1),
                               rng.integers(0, 2, (3, 1))], axis=1)
    beats = pack_params(cfg, mode, rows)
    assert len(beats) == cfg.param_beats(mode, 3)
    assert all(0 <= b < 1 << cfg.weight_word_bits for b in beats)
    assert np.array_equal(unpack_params(cfg, mode, beats, 3), rows)
    with pytest.raises(ValueError, match=r"requant field m=32768 does not fit 16 signed bits"):
        pack_params(cfg, "fixed", np.array([[1 << 15, 0]]))


def test_weight_stream_is_in_engine_k_order():
    seed = 9
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, c0=3, c1=5, bits=6)
    cfg = EngineConfig(rows=2, cols=2, bits=6, mult_rows=1)
    cm = compile_model(model, cfg)
    stem = model.layer("stem")
    op = cm.program.ops[0]
    assert (op.steps, op.tiles, op.rows) == (3 * 3 * 2, 3, 2)
    words = cm.weights.words
    kh, kw = stem.kernel
    # tile t, step s = (i*kw + j)*G + g, row r, lane n: weight[o0+r, c*kh*kw + i*kw + j] with c = g*cols + n
    for t in range(op.tiles):
        for s in range(op.steps):
            ij, g = divmod(s, 2)
            i, j = divmod(ij, kw)
            for r in range(2):
                for n in range(2):
                    o, c = t * 2 + r, g * 2 + n
                    want = stem.weight[o, c * kh * kw + i * kw + j] if (o < 5 and c < 3) else 0
                    assert words[t * op.steps + s, r, n] == want
    # each tile's parameters follow its words on the stream
    beats = cm.weights.params[: op.param_beats]
    assert np.array_equal(unpack_params(cfg, "fixed", beats, 2)[:, 0], stem.requant.m[:2])


def test_memory_maps_lenet_and_resnet():
    mods = models
    lenet = mods.random_lenet(np.random.default_rng(1))
    cm = compile_model(lenet, EngineConfig(rows=4, cols=4, act_words=(784, 1568), weight_words=100))
    t = cm.program.tensors
    assert [t[n].region for n in ("input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2")] == [0, 1, 0, 1, 0, 1, 0]
    assert t["fc3"].region is None and cm.program.output == "fc3"
    assert cm.program.tensor_of("flatten") is t["pool2"]
    fc1 = cm.program.ops[4]
    assert fc1.name == "fc1" and fc1.kernel == (5, 5) and fc1.steps == 100
    mm = cm.program.memory_map()
    assert mm["R1"]["peak_words"] == 1568 and mm["weights"]["peak_words"] == 100
    res = mods.random_resnet20(np.random.default_rng(2))
    cm = compile_model(res, EngineConfig(rows=8, cols=8, mult_rows=4, act_words=(2048, 2048, 2048)))
    t = cm.program.tensors
    blk = ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample", "layer2.0.add"]
    regions = [t[n].region for n in ["layer1.2.add"] + blk]
    # block input, branch, skip, output: the add never overwrites what it reads
    assert len({regions[0], regions[1]}) == 2 and regions[2] != regions[0]
    assert regions[4] not in (regions[2], regions[3])
    assert {op.unit for op in cm.program.ops if op.name in ("conv1", "fc")} == {"mult"}


def _lenet():
    return models.random_lenet(np.random.default_rng(1))


def test_refusals_name_the_layer_and_sizes():
    lenet = _lenet()
    with pytest.raises(ValueError, match=r"layer conv1: activation region too small: \[6, 28, 28\] needs 1568 words "
                                         r"of 4 lanes; free regions: R1 1000 words"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, act_words=(1000, 1000)))
    with pytest.raises(ValueError, match=r"the input: activation region too small: \[1, 28, 28\] needs 784 words"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, act_words=(700, 700)))
    with pytest.raises(ValueError, match=r"layer fc1: weight buffer too small: a tile needs 100 weight words "
                                         r"\(5x5 kernel x 4 channel groups\), the buffer holds 64"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, act_words=(1568, 1568), weight_words=64))
    with pytest.raises(ValueError, match=r"layer conv1: accumulator too narrow: K=25 at 8 bits needs 13 bits, "
                                         r"the engine's adder array has 12"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, max_k=16, act_words=(1568, 1568)))
    with pytest.raises(ValueError, match=r"layer conv1: an adder_conv layer needs adder PEs; this engine has multiplier PEs"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, pe="mult", act_words=(1568, 1568)))
    with pytest.raises(ValueError, match=r"layer conv1: input codes 0..255 do not fit the adder PE operands 0..63"):
        compile_model(lenet, EngineConfig(rows=4, cols=4, bits=6, act_bits=8, act_words=(1568, 1568)))
    res = models.random_resnet20(np.random.default_rng(2))
    with pytest.raises(ValueError, match=r"layer conv1: a conv layer needs multipliers; this adder engine has mult_rows=0"):
        compile_model(res, EngineConfig(rows=8, cols=8))


def test_refusals_of_requant_and_kinds():
    seed = 4
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, mode="threshold", bits=4, c1=2)
    with pytest.raises(ValueError, match=r"layer conv: threshold requant, which this engine's requant unit \(fixed\) lacks"):
        compile_model(model, EngineConfig(rows=2, cols=2, bits=4))
    model = small_model(rng, bits=4, c1=2, pool="avgpool")
    with pytest.raises(ValueError, match=r"layer stem: fixed requant, which this engine's requant unit \(threshold\) lacks"):
        compile_model(model, EngineConfig(rows=2, cols=2, bits=4, requant=("threshold",)))
    # a flatten of [C, H, W] feeding anything but a linear layer is refused
    stem, conv = model.layer("stem"), model.layer("conv")
    n = int(np.prod(stem.out_shape))
    fa = FlattenLayer(name="fa", inputs=("stem",), in_shape=stem.out_shape, out_shape=(n,))
    fb = FlattenLayer(name="fb", inputs=("conv",), in_shape=conv.out_shape, out_shape=(n,))
    add = dataclasses.replace(model.layer("add"), inputs=("fb", "fa"), in_shape=(n,), out_shape=(n,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(n,), out_channels=2, bits=4, name="fc",
                             inputs=("add",))
    bad = IntModel(name="m", dataset="d", input=model.input, input_shape=model.input_shape,
                   layers=[stem, conv, fa, fb, add, fc])
    c, h, w = conv.out_shape
    with pytest.raises(ValueError, match=rf"layer add: takes the flattened \[{c}, {h}, {w}\] tensor 'fb'; "
                                         r"the engine flattens only into a linear layer"):
        compile_model(bad, EngineConfig(rows=2, cols=2, bits=4))


def test_refusals_of_flatten_grouped_and_logits():
    seed = 6
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, bits=4, c1=2)

    @dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
    class Grouped(AdderLayer):
        groups: int = 2

    stem = model.layer("stem")
    g = Grouped(**{f.name: getattr(stem, f.name) for f in dataclasses.fields(AdderLayer) if f.init})
    layers = [g] + list(model.layers[1:])
    with pytest.raises(ValueError, match=r"layer stem: grouped convolution \(groups=2\) is not supported by the engine"):
        compile_model(dataclasses.replace(model, layers=layers), EngineConfig(rows=2, cols=2, bits=4, mult_rows=1))
    # logits wider than out_bits
    fc = model.layer("fc")
    rq = fc.requant
    wide = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1,
                   out_scale=1.0, out_zero_point=0, out_bits=16, out_signed=True)
    m16 = dataclasses.replace(model, layers=list(model.layers[:-1]) + [dataclasses.replace(fc, requant=wide)])
    with pytest.raises(ValueError, match=r"layer fc: logits -32768..32767 do not fit the engine's out_bits=8"):
        compile_model(m16, EngineConfig(rows=2, cols=2, bits=4, out_bits=8))
    compile_model(m16, EngineConfig(rows=2, cols=2, bits=4, out_bits=16))
    # codes that do not fit the activation lanes
    # a residual branch kept as signed 16-bit codes needs 16-bit lanes (and then runs exactly)
    conv = model.layer("conv")
    rq = conv.requant
    wide = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift - 4, lo=-(1 << 15), hi=(1 << 15) - 1,
                   out_scale=1.0, out_zero_point=0, out_bits=16, out_signed=True)
    m16 = dataclasses.replace(model, layers=[dataclasses.replace(l, requant=wide) if l.name == "conv" else l
                                             for l in model.layers])
    with pytest.raises(ValueError, match=r"layer conv: codes -32768..32767 do not fit the engine's 4-bit activation lanes"):
        compile_model(m16, EngineConfig(rows=2, cols=2, bits=4))
    cm = compile_model(m16, EngineConfig(rows=2, cols=2, bits=4, act_bits=16))
    x = rng.integers(0, 16, size=m16.input_shape)
    run = run_engine(cm.program, cm.weights, x)
    want = golden.run_codes(m16, x[None])
    assert want["conv"].min() < 0 or want["conv"].max() > 15  # the wide lanes are used
    for l in m16.layers:
        assert np.array_equal(run.outputs[l.name], want[l.name][0]), l.name
