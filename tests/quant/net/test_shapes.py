"""quant.net.shapes: the compute-layer shapes of a float model, and the op counts they give."""

from quant.base.opcount import count_layer_ops
from quant.net.models import lenet5_bn
from quant.net.shapes import float_layer_shapes


def test_lenet_float_model_counts():
    def counts(kind):
        return {s.name: count_layer_ops(s.kind, s.out_channels, s.out_pixels, s.k)
                for s in float_layer_shapes(lenet5_bn(kind), (1, 28, 28))}

    adder = counts("adder")
    macs = {"conv1": 117_600, "conv2": 240_000, "fc1": 48_000, "fc2": 10_080, "fc3": 840}
    assert {k: v.additions for k, v in adder.items()} == {k: 2 * v for k, v in macs.items()}
    assert sum(v.multiplications for v in adder.values()) == 0
    cnn = counts("cnn")
    assert sum(v.multiplications for v in cnn.values()) == sum(macs.values()) == 416_520
