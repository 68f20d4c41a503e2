"""hwsim.functional: the tile schedule executed on integer data == the golden model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.config import ArrayConfig
from hwsim.functional import run_array_layer, run_functional
from hwsim.schedule import layer_cycles, tile_grid


def _codes(model, rng, n):
    return rng.integers(model.input.lo, model.input.hi + 1, (n,) + tuple(model.input_shape))


def _assert_equal_to_golden(model, x, cfg):
    from quant import golden

    ref = golden.run_codes(model, x)
    res = run_functional(model, x, cfg)
    assert set(res.values) == set(ref)
    for name, want in ref.items():
        np.testing.assert_array_equal(res.values[name], want, err_msg=name)
    return res


@pytest.mark.parametrize("requant", ["fixed", "threshold"])
@pytest.mark.parametrize("rows, cols", [(4, 4), (3, 5), (8, 1), (1, 16)])
def test_lenet_tile_by_tile_equals_golden(int_models, rows, cols, requant):
    seed = 100 + rows * 17 + cols
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    model = int_models.lenet(rng, requant)
    x = _codes(model, rng, 2)
    cfg = ArrayConfig(rows=rows, cols=cols, max_k=400, requant=requant)
    res = _assert_equal_to_golden(model, x, cfg)
    # the tiles ran in the schedule's order and their timing is the contract's
    for layer in model.compute_layers:
        tr, tc = tile_grid(layer.out_channels, layer.out_pixels, cfg)
        want = [(i * rows, j * cols) for i in range(tr) for j in range(tc)]
        assert res.tiles[layer.name] == want
        assert res.timings[layer.name].total_cycles == layer_cycles(layer.out_channels, layer.out_pixels, layer.K, cfg)


def test_reference_layout_resnet20_equals_golden(resnet_model):
    rng = np.random.default_rng(7)
    print("seed 7")
    x = _codes(resnet_model, rng, 1)
    res = _assert_equal_to_golden(resnet_model, x, ArrayConfig(rows=16, cols=16, max_k=576))
    assert len(res.timings) == 22  # conv1, 18 block convs, 2 downsamples, fc
    assert sum(1 for l in resnet_model.compute_layers if l.pe == "mult") == 2


def test_shipped_lenet_artifact_equals_golden(tmp_path, int_models):
    """Round trip through the artifact files (save + load) before the functional run."""
    from quant.artifact import load_int_model, save_int_model

    rng = np.random.default_rng(11)
    print("seed 11")
    model = int_models.lenet(rng, "fixed")
    save_int_model(model, tmp_path / "lenet")
    loaded = load_int_model(tmp_path / "lenet")
    _assert_equal_to_golden(loaded, _codes(loaded, rng, 3), ArrayConfig(rows=8, cols=8, max_k=400))


def test_the_comparison_detects_a_corrupted_requant_row(int_models):
    """Guard the comparison itself: a corrupted requant row changes the outputs."""
    import dataclasses

    from quant import golden

    rng = np.random.default_rng(3)
    model = int_models.lenet(rng, "fixed")
    layer = model.layer("conv2")
    x = golden.run_codes(model, _codes(model, rng, 1))["pool1"]
    cfg = ArrayConfig(rows=4, cols=4, max_k=400)
    good, _ = run_array_layer(layer, x, cfg)
    m = layer.requant.m.copy()
    m[5] += 1000
    bad_layer = dataclasses.replace(layer, requant=dataclasses.replace(layer.requant, m=m))
    bad, _ = run_array_layer(bad_layer, x, cfg)
    assert not np.array_equal(good, bad)
    np.testing.assert_array_equal(good, golden.run_layer(layer, [x]))


def test_operands_wider_than_the_array_are_refused(int_models):
    rng = np.random.default_rng(4)
    model = int_models.lenet(rng, "fixed")
    x = _codes(model, rng, 1)
    with pytest.raises(ValueError, match="layer conv1 has 8-bit operands but the array has bits=4"):
        run_functional(model, x, ArrayConfig(rows=4, cols=4, bits=4, max_k=400))
    layer = model.layer("conv1")
    with pytest.raises(ValueError, match=r"weight codes \d+\.\.255 do not fit the 7-bit unsigned operands"):
        run_array_layer(layer, x, ArrayConfig(rows=4, cols=4, bits=7, max_k=400))
    with pytest.raises(ValueError, match=r"K=150, more than the array's max_k=100"):
        run_functional(model, x, ArrayConfig(rows=4, cols=4, max_k=100))


# --- integer models made by the real quantizer ------------------------------------------

SHIPPED_LENET = Path(__file__).resolve().parents[2] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def _bn_calibrated(model, images, mean, std):
    """Give an untrained model's BatchNorm layers the statistics of ``images`` (so it quantizes sanely)."""
    import torch

    for mod in model.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.momentum = None  # cumulative average over the batches seen
    model.train()
    x = torch.from_numpy(images)
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        model(x)
    return model.eval()


def _quantized(ckpt_path, images, requant):
    from quant.checkpoint import load
    from quant.config import QuantConfig
    from quant.quantize import quantize_model

    ck = load(ckpt_path)
    norm = ck.meta["normalization"]
    im, _ = quantize_model(ck.model, images, mean=norm["mean"], std=norm["std"],
                           cfg=QuantConfig(bits=8, requant=requant), name=ck.meta["model"])
    return im


@pytest.mark.parametrize("requant", ["fixed", "threshold"])
def test_quantized_lenet_equals_golden(tmp_path, requant):
    import torch

    from quant.checkpoint import save
    from quant.models import build_model

    seed = 31
    print(f"seed {seed}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.random((16, 1, 28, 28)).astype(np.float32)
    model = _bn_calibrated(build_model("lenet5-bn"), images, (0.286,), (0.353,))
    save(tmp_path / "lenet.pt", model, {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist"})
    im = _quantized(tmp_path / "lenet.pt", images, requant)
    from quant import golden

    x = golden.quantize_input(images[:4], im.input)
    _assert_equal_to_golden(im, x, ArrayConfig(rows=4, cols=8, max_k=400, requant=requant))


def test_quantized_reference_resnet20_equals_golden(tmp_path):
    """A bare DataParallel-style state dict in the reference AdderNet layout, quantized, run tile by tile."""
    import torch

    from quant import golden
    from quant.models import build_model

    seed = 32
    print(f"seed {seed}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.random((8, 3, 32, 32)).astype(np.float32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    model = _bn_calibrated(build_model("resnet20"), images, mean, std)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "resnet20.pth")
    im = _quantized(tmp_path / "resnet20.pth", images, "fixed")
    assert sum(l.pe == "mult" for l in im.compute_layers) == 2  # stem conv and classifier
    x = golden.quantize_input(images[:1], im.input)
    _assert_equal_to_golden(im, x, ArrayConfig(rows=16, cols=16, max_k=576))


def test_shipped_lenet_checkpoint_equals_golden():
    assert SHIPPED_LENET.is_file(), f"the tracked checkpoint {SHIPPED_LENET} is missing"
    from quant import golden
    from quant.datasets import load_dataset

    images, _ = load_dataset("fashion-mnist", "test")
    images = np.asarray(images[:64], dtype=np.float32)
    im = _quantized(SHIPPED_LENET, images, "fixed")
    x = golden.quantize_input(images[:8], im.input)
    _assert_equal_to_golden(im, x, ArrayConfig(rows=8, cols=8, max_k=400))
