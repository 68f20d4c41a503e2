"""Tests of quant.quantizer.groups and of group-shared scales through the quantizer, golden, fake-quant and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.intmodel import golden
from quant.intmodel.artifact import save_int_model, load_int_model
from quant.quantizer.fakequant import FakeQuantLayer, FakeQuantModel
from quant.quantizer.groups import channel_ranges, choose_group_range, cluster_channels
from quant.base.intops import exact_clamp

SEED = 2024


def test_cluster_channels_is_optimal_contiguous_and_non_empty():
    v = np.array([0.1, 5.0, 0.12, 5.2, 2.0, 0.11, 2.1])
    lab = cluster_channels(v, 3)
    assert lab.tolist() == [0, 2, 0, 2, 1, 0, 1]
    assert set(cluster_channels(np.ones(5), 5).tolist()) == set(range(5))  # ties: still every group used
    assert np.all(cluster_channels(v, 1) == 0)
    with pytest.raises(ValueError, match="cannot split 7 channels into 8 groups"):
        cluster_channels(v, 8)


def test_group_range_never_worse_than_the_full_range():
    """The full input range is a candidate, so a group of small weights picks a smaller range only if it helps."""
    rng = np.random.default_rng(SEED)
    x = np.abs(rng.normal(0, 1, 4000))
    small = rng.uniform(0, 0.3, size=(4, 30))
    hi_small = choose_group_range(x, small, 0.0, 4.0, 4)
    hi_wide = choose_group_range(x, rng.uniform(0, 4, size=(4, 30)), 0.0, 4.0, 4)
    assert 0 < hi_small <= 4.0 and 0 < hi_wide <= 4.0
    assert channel_ranges(np.array([[-1.0, 9.0], [0.5, 0.2]]), 0.0, 4.0).tolist() == [4.0, 0.5]


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["adder_conv", "adder_linear"]), groups=st.integers(2, 6), extra=st.integers(0, 6),
       bits=st.integers(2, 10), o=st.integers(6, 11), c=st.integers(1, 3), hw=st.integers(3, 7),
       padding=st.integers(0, 1), stride=st.integers(1, 2), mode=st.sampled_from(["fixed", "threshold"]),
       seed=st.integers(0, 2**32 - 1))
def test_random_grouped_layers_golden_equals_fake_quant(kind, groups, extra, bits, o, c, hw, padding, stride, mode,
                                                        seed):
    """Golden (C and numpy backends) == fake-quant bit for bit; groups need not divide the channels."""
    if mode == "threshold" and bits > 8:
        mode = "fixed"
    rng = np.random.default_rng(seed)
    shape = (c, hw, hw) if kind == "adder_conv" else (c * hw,)
    layer = golden.random_layer(rng, kind=kind, in_shape=shape, out_channels=o, bits=bits, mode=mode,
                                padding=padding, stride=stride, groups=groups, in_bits=min(16, bits + extra))
    x = rng.integers(0, 1 << layer.scale_groups.in_bits, size=(2,) + layer.in_shape)
    x.flat[0] = 0
    x.flat[-1] = (1 << layer.scale_groups.in_bits) - 1  # the extremes of the input codes
    got = golden.run_layer(layer, [x])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
        ref = golden.run_layer(layer, [x])
    fq = FakeQuantLayer(layer, [(1.0, 0)])(torch.from_numpy(x.astype(np.float64)))
    assert np.array_equal(got, ref), f"seed {seed}"
    assert np.array_equal(torch.round(fq).to(torch.int64).numpy(), got), f"seed {seed}"
    # one group's channels equal an ungrouped layer over that group's re-scaled codes
    g = int(layer.scale_groups.channel_group[0])
    rows = layer.scale_groups.channels(g)
    xg = golden.group_codes(layer, x, g)
    pad = int(golden.group_codes(layer, np.array([layer.in_zero_point]), g)[0])
    x4 = xg.reshape(2, -1, 1, 1) if kind == "adder_linear" else xg
    cols = golden.im2col_batch(x4, layer.kernel, layer.stride, layer.padding, pad)
    assert np.array_equal(golden.layer_acc(layer, x)[:, rows], golden.adder_acc(cols, layer.weight[rows]))


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 8), groups=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
def test_exact_clamp_holds_per_group(bits, groups, seed):
    """In each group's own codes: sum |x - w| == sum |x - clamp(w)| + C_o for every x in 0..2**bits-1."""
    rng = np.random.default_rng(seed)
    qmax = (1 << bits) - 1
    scales = rng.uniform(0.05, 1.0, size=groups)
    w_real = rng.normal(0, 3, size=(groups, 3, 12))
    for g in range(groups):
        codes = w_real[g] / scales[g]
        clamped, comp = exact_clamp(codes, qmax)
        x = rng.integers(0, qmax + 1, size=(50, 12)).astype(np.float64)
        lhs = np.abs(x[:, None, :] - codes[None]).sum(-1)
        rhs = np.abs(x[:, None, :] - clamped[None]).sum(-1) + comp[None]
        assert np.allclose(lhs, rhs, rtol=0, atol=1e-9 * (1 + np.abs(lhs).max()))


@pytest.fixture(scope="module")
def grouped_lenet(tmp_path_factory):
    """A calibrated random LeNet quantized with groups=4 (6, 16, 120, 84 channels: 4 divides none but 16 and 120)."""
    from quant.quantizer.calibrate import recalibrate_bn
    from quant.training.datasets import NORMALIZATION, load_dataset
    from quant.net.models import lenet5_bn
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model

    xtr, _ = load_dataset("fashion-mnist", "train")
    torch.manual_seed(7)
    torch.set_num_threads(2)
    mean, std = NORMALIZATION["fashion-mnist"]
    model = recalibrate_bn(lenet5_bn("adder"), xtr[:128], mean, std)
    ims = {g: quantize_model(model, xtr[:128], mean=mean, std=std, cfg=QuantConfig(bits=4, groups=g,
                                                                                    bias_correction_images=64))[0]
           for g in (1, 4)}
    folder = tmp_path_factory.mktemp("g4") / "m"
    save_int_model(ims[4], folder)
    return ims, folder, xtr[128:160]


def test_quantized_groups_golden_equals_fake_quant(grouped_lenet):
    ims, folder, x = grouped_lenet
    im = load_int_model(folder)
    adders = [l for l in im.compute_layers if l.pe == "adder"]
    assert adders and all(l.groups == 4 for l in adders)
    assert im.input.bits == 8 and all(l.bits == 4 for l in adders)  # 4 + 4 bits of input codes, 4-bit operands
    q = golden.run(im, x)
    assert np.array_equal(FakeQuantModel(im).forward_int(x).numpy(), q)
    assert all(l.scale_groups is None for l in ims[1].layers if l.pe)


def test_group_op_counts(grouped_lenet):
    from quant.base.opcount import count_int_layer

    ims, _, _ = grouped_lenet
    a, b = ims[1].layer("conv2"), ims[4].layer("conv2")
    da = count_int_layer(b).multiplications - count_int_layer(a).multiplications
    assert da == 4 * int(np.prod(b.in_shape))  # one re-scale per input value and group


def test_hardware_refuses_group_shared_scales(grouped_lenet):
    """The engine compiler refuses a real G > 1 artifact by layer name."""
    from hwsim.compiler import compile_model
    from hwsim.config import EngineConfig

    _, folder, _ = grouped_lenet
    im = load_int_model(folder)
    with pytest.raises(ValueError, match=r"layer conv1: grouped convolution \(groups=4\) is not supported by the "
                                         r"engine: its group-shared scales"):
        compile_model(im, EngineConfig(rows=4, cols=4, bits=8, mult_rows=1))


def test_more_groups_than_a_layers_channels_is_refused_by_name():
    from quant.quantizer.calibrate import recalibrate_bn
    from quant.training.datasets import NORMALIZATION, load_dataset
    from quant.net.models import lenet5_bn
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model

    xtr, _ = load_dataset("fashion-mnist", "train")
    mean, std = NORMALIZATION["fashion-mnist"]
    model = recalibrate_bn(lenet5_bn("adder"), xtr[:16], mean, std)
    with pytest.raises(ValueError, match=r"layer conv1: 6 output channels cannot be split into --groups 9"):
        quantize_model(model, xtr[:16], mean=mean, std=std, cfg=QuantConfig(bits=4, groups=9))
    with pytest.raises(ValueError, match="groups must be an integer in 1..65536, not 0"):
        QuantConfig(groups=0)
