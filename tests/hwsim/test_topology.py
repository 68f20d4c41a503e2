"""hwsim.topology: SCALE-Sim topology CSVs as engine operations."""

from __future__ import annotations

import pytest

from hwsim.engine import OpShape
from hwsim.topology import read_topology_csv, topology_ops

HEADER = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"


def test_scalesim_csv_by_hand(tmp_path):
    p = tmp_path / "t.csv"
    # SCALE-Sim's own style: trailing comma, IFMAP includes padding
    p.write_text(HEADER + "c1,34,34,3,3,3,16,1,\nc2,34,34,3,3,16,32,2,\nfc,1,1,1,1,64,10,1,\n")
    a, b, c = read_topology_csv(p)
    assert (a.out_hw, a.k, a.kind, a.bits) == ((32, 32), 27, "adder_conv", 8)
    assert (b.out_hw, b.k) == ((16, 16), 144)
    assert (c.out_hw, c.k, c.filters) == ((1, 1), 64, 10)
    ops = topology_ops([a, b, c])
    assert ops[1] == OpShape(name="c2", kind="adder_conv", src=(34, 34, 16), dst=(16, 16, 32), kernel=(3, 3),
                             stride=2, padding=0, mode="fixed")


def test_kind_and_bits_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER.rstrip(",\n") + ",Kind,Bits\nc1,8,8,3,3,1,4,1,conv,4\nc2,6,6,3,3,4,4,1,,\nf,2,2,2,2,4,3,1,linear,\n")
    a, b, f = read_topology_csv(p, default_bits=6)
    assert (a.kind, a.bits) == ("conv", 4)
    assert (b.kind, b.bits) == ("adder_conv", 6)
    assert topology_ops([f])[0].dst == (1, 1, 3)  # a linear row: one output pixel


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


def test_bad_kind_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER.rstrip(",\n") + ",Kind\nc1,8,8,3,3,1,4,1,pool\n")
    with pytest.raises(ValueError, match="t.csv:2: layer c1: kind must be one of"):
        read_topology_csv(p)
