"""Model zoo structure: names, shapes, layer kinds, reference-layout keys."""

import pytest
import torch
from torch import nn

from quant.net.layers import AdderConv2d, AdderLinear
from quant.net.models import INPUT_SHAPES, MODELS, build_model, lenet5_bn, resnet20, resnet32


def test_lenet_structure_adder():
    m = lenet5_bn("adder")
    for name in ("conv1", "conv2"):
        assert isinstance(getattr(m, name), AdderConv2d)
    for name in ("fc1", "fc2", "fc3"):
        assert isinstance(getattr(m, name), AdderLinear)
    assert m.conv1.adder.shape == (6, 1, 5, 5) and m.conv1.padding == (2, 2)
    assert m.conv2.adder.shape == (16, 6, 5, 5) and m.conv2.padding == (0, 0)
    assert m.fc1.adder.shape == (120, 400)
    assert m.fc2.adder.shape == (84, 120)
    assert m.fc3.adder.shape == (10, 84)
    assert [type(getattr(m, f"bn{i}")) for i in range(1, 6)] == [nn.BatchNorm2d] * 2 + [nn.BatchNorm1d] * 3
    assert m.bn5.num_features == 10


def test_lenet_structure_cnn():
    m = lenet5_bn("cnn")
    assert isinstance(m.conv1, nn.Conv2d) and m.conv1.bias is None and m.conv1.padding == (2, 2)
    assert isinstance(m.fc1, nn.Linear) and m.fc1.bias is None
    assert not any(isinstance(x, (AdderConv2d, AdderLinear)) for x in m.modules())


@pytest.mark.parametrize("kind", ["adder", "cnn"])
def test_lenet_forward_shape(kind):
    torch.manual_seed(0)
    m = lenet5_bn(kind).eval()
    assert m(torch.randn(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("builder, blocks", [(resnet20, 3), (resnet32, 5)])
def test_resnet_reference_keys(builder, blocks, reference_resnet_keys):
    m = builder("adder")
    keys = [k for k in m.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(keys) == sorted(reference_resnet_keys(blocks))
    sd = m.state_dict()
    assert sd["conv1.weight"].shape == (16, 3, 3, 3)
    assert sd["layer1.0.conv1.adder"].shape == (16, 16, 3, 3)
    assert sd["layer2.0.conv1.adder"].shape == (32, 16, 3, 3)
    assert sd["layer2.0.downsample.0.adder"].shape == (32, 16, 1, 1)
    assert sd["layer3.0.downsample.0.adder"].shape == (64, 32, 1, 1)
    assert sd["fc.weight"].shape == (10, 64, 1, 1)
    assert m.layer2[0].downsample[0].stride == (2, 2)
    assert isinstance(m.conv1, nn.Conv2d) and isinstance(m.fc, nn.Conv2d)


def test_resnet_cnn_kind_has_no_adders():
    m = resnet20("cnn")
    assert not any(isinstance(x, AdderConv2d) for x in m.modules())
    assert m.state_dict()["layer2.0.downsample.0.weight"].shape == (32, 16, 1, 1)


def test_resnet_forward_shape():
    torch.manual_seed(0)
    m = resnet20("adder").eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_registry():
    assert set(MODELS) == {"lenet5-bn", "resnet20", "resnet32"} == set(INPUT_SHAPES)
    assert isinstance(build_model("resnet32", "cnn").layer1[4].conv1, nn.Conv2d)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")
    with pytest.raises(ValueError, match="kind must be one of adder, cnn, not 'mult'"):
        build_model("lenet5-bn", "mult")
