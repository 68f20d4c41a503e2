"""Payload layouts, their JSON description and packing."""

import random

import pytest
from amaranth.hdl import Shape

from hwsim.config import ArrayConfig
from rtl.layout import (
    cfg_layout,
    describe_layout,
    fixed_widths,
    o_layout,
    pack_payload,
    requant_layout,
    unpack_payload,
    w_layout,
    x_layout,
)


def _random_values(fields, rng):
    vals = {}
    for f in fields:
        lo, hi = ((-(1 << (f["width"] - 1)), (1 << (f["width"] - 1)) - 1) if f["signed"]
                  else (0, (1 << f["width"]) - 1))
        if not f["shape"]:
            vals[f["name"]] = rng.randint(lo, hi)
        elif len(f["shape"]) == 1:
            vals[f["name"]] = [rng.randint(lo, hi) for _ in range(f["shape"][0])]
        else:
            vals[f["name"]] = [[rng.randint(lo, hi) for _ in range(f["shape"][1])]
                               for _ in range(f["shape"][0])]
    return vals


@pytest.mark.parametrize("pe", ["adder", "mult"])
@pytest.mark.parametrize("requant", ["fixed", "threshold"])
def test_cfg_roundtrip_and_widths(pe, requant):
    cfg = ArrayConfig(rows=3, cols=2, pe=pe, bits=4, max_k=100, requant=requant)
    lay = cfg_layout(cfg)
    fields = describe_layout(lay)
    assert fields[0]["name"] == "k" and fields[0]["offset"] == 0 and fields[0]["width"] == 7
    end = max(f["offset"] + f["stride"] * max(1, _count(f)) for f in fields)
    assert end == Shape.cast(lay).width
    seed = 7
    rng = random.Random(seed)
    for _ in range(20):
        vals = _random_values(fields, rng)
        assert unpack_payload(fields, pack_payload(fields, vals)) == vals
    names = [f["name"] for f in describe_layout(requant_layout(cfg))]
    assert [f["name"] for f in fields] == ["k"] + names
    by = {f["name"]: f for f in fields}
    if requant == "fixed":
        fw = fixed_widths(cfg)
        assert fw["prod_bits"] == 16 + cfg.acc_bits + (1 if pe == "adder" else 0)
        assert by["m"]["width"] == 16 and by["m"]["signed"] and by["m"]["shape"] == [3]
        assert by["n"]["width"] == fw["n_bits"] and by["lo"]["width"] == cfg.out_bits + 1
        assert (1 << by["shift"]["width"]) > fw["prod_bits"]
    else:
        assert by["thr"]["shape"] == [3, 15] and by["thr"]["width"] == cfg.acc_bits + 1
        assert by["thr"]["signed"] == (pe == "mult")


def _count(f):
    n = 1
    for d in f["shape"]:
        n *= d
    return n


def test_vector_layouts():
    cfg = ArrayConfig(rows=3, cols=5, pe="mult", bits=6)
    assert describe_layout(w_layout(cfg), "w") == [
        {"name": "w", "offset": 0, "width": 6, "signed": True, "shape": [3], "stride": 6}]
    assert describe_layout(x_layout(cfg), "x")[0]["shape"] == [5]
    o = describe_layout(o_layout(cfg), "o")[0]
    assert (o["width"], o["signed"]) == (7, True)
    o = describe_layout(o_layout(cfg.replace(requant="threshold")), "o")[0]
    assert (o["width"], o["signed"]) == (6, False)


def test_pack_errors():
    fields = describe_layout(w_layout(ArrayConfig(rows=2, cols=2, bits=4)), "w")
    with pytest.raises(ValueError, match=r"^payload field w\[1\]=16 is outside 0..15$"):
        pack_payload(fields, {"w": [1, 16]})
    with pytest.raises(ValueError, match="payload fields missing: w"):
        pack_payload(fields, {})
    with pytest.raises(ValueError, match="unknown payload fields: v"):
        pack_payload(fields, {"w": [1, 2], "v": 1})
    assert pack_payload(fields, {"w": [1, 15]}) == 0xF1


def test_threshold_mode_refuses_wide_operands():
    with pytest.raises(ValueError, match="^threshold requant needs 2\\*\\*bits-1 comparators per "
                       "row: bits must be at most 8 in threshold mode, not 9$"):
        cfg_layout(ArrayConfig(rows=1, cols=1, bits=9, requant="threshold"))
