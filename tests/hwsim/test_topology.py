"""hwsim.layers: topology CSV, integer-model and float-model layer shapes."""

from __future__ import annotations

import pytest

from hwsim.layers import LayerShape, read_topology_csv, shapes_from_float_model, shapes_from_int_model

HEADER = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"


def test_scalesim_csv_by_hand(tmp_path):
    p = tmp_path / "t.csv"
    # SCALE-Sim's own style: trailing comma, IFMAP includes padding
    p.write_text(HEADER + "c1,34,34,3,3,3,16,1,\nc2,34,34,3,3,16,32,2,\nfc,1,1,1,1,64,10,1,\n")
    a, b, c = read_topology_csv(p)
    assert (a.out_channels, a.out_pixels, a.k, a.in_elems, a.kind, a.bits) == (16, 32 * 32, 27, 34 * 34 * 3, "adder_conv", 8)
    assert (b.out_channels, b.out_pixels, b.k) == (32, 16 * 16, 144)
    assert (c.out_channels, c.out_pixels, c.k, c.macs) == (10, 1, 64, 640)


def test_kind_and_bits_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER.rstrip(",\n") + ",Kind,Bits\nc1,8,8,3,3,1,4,1,conv,4\nc2,6,6,3,3,4,4,1,,\n")
    a, b = read_topology_csv(p, default_bits=6)
    assert (a.kind, a.bits, a.is_adder) == ("conv", 4, False)
    assert (b.kind, b.bits, b.is_adder) == ("adder_conv", 6, True)


@pytest.mark.parametrize(
    "body, msg",
    [
        ("c1,8,8,3,3,1,x,1,\n", r"t.csv:2: column 'Num Filter' must be an integer, not 'x'"),
        ("c1,8,8,3,3,1,0,1,\n", r"t.csv:2: column 'Num Filter' must be positive, not 0"),
        ("c1,2,2,3,3,1,4,1,\n", "filter 3x3 is larger than IFMAP 2x2"),
        ("c1,8,8,3,3,1,4,1,\nc1,8,8,3,3,1,4,1,\n", "duplicate layer name"),
        ("", "has no layers"),
    ],
)
def test_bad_csv_is_refused(tmp_path, body, msg):
    p = tmp_path / "t.csv"
    p.write_text(HEADER + body)
    with pytest.raises(ValueError, match=msg):
        read_topology_csv(p)


def test_missing_column_and_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name,IFMAP Height\nc,1\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_topology_csv(p)
    with pytest.raises(OSError):
        read_topology_csv(tmp_path / "none.csv")


def test_bad_kind_is_refused():
    with pytest.raises(ValueError, match="layer x: kind must be one of"):
        LayerShape(name="x", kind="pool", out_channels=1, out_pixels=1, k=1)
    with pytest.raises(ValueError, match="layer x: k must be a positive integer, not 0"):
        LayerShape(name="x", kind="conv", out_channels=1, out_pixels=1, k=0)


@pytest.mark.parametrize("model, topo, shape", [("lenet5-bn", "lenet5_bn", (1, 28, 28)),
                                                 ("resnet20", "resnet20", (3, 32, 32))])
def test_shipped_topologies_match_the_float_models(topologies, model, topo, shape):
    from quant.models import build_model

    traced = shapes_from_float_model(build_model(model), shape)
    csv_layers = read_topology_csv(topologies / f"{topo}.csv")
    key = lambda l: (l.kind, l.out_channels, l.out_pixels, l.k)  # noqa: E731
    assert [key(l) for l in traced] == [key(l) for l in csv_layers]


def test_op_counts_of_the_shipped_topologies(topologies):
    lenet = read_topology_csv(topologies / "lenet5_bn.csv")
    assert [l.macs for l in lenet] == [117_600, 240_000, 48_000, 10_080, 840]
    assert sum(l.macs for l in lenet) == 416_520
    resnet = read_topology_csv(topologies / "resnet20.csv")
    assert len(resnet) == 22
    assert sum(l.macs for l in resnet) == 40_813_184
    assert sum(l.macs for l in resnet if not l.is_adder) == 442_368 + 640


def test_int_model_shapes_skip_non_array_layers(lenet_model):
    model = lenet_model
    shapes = shapes_from_int_model(model)
    assert [s.name for s in shapes] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert [(s.out_channels, s.out_pixels, s.k) for s in shapes] == [
        (6, 784, 25), (16, 100, 150), (120, 1, 400), (84, 1, 120), (10, 1, 84)]


def test_non_utf8_topology_names_the_file(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("Layer name,IFMAP Height\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"^{p}: not a UTF-8 text file \\(byte 27: invalid continuation byte\\)$"):
        read_topology_csv(p)
