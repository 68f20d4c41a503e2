"""Payload layouts, their JSON description and the one payload codec (Payload)."""

import random

import pytest
from amaranth.hdl import Shape

from hwsim.config import ArrayConfig
from rtl.layout import (
    Field,
    Payload,
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


@pytest.mark.parametrize("pe", ["adder", "mult"])
@pytest.mark.parametrize("requant", ["fixed", "threshold"])
def test_codec_equals_amaranth_const_and_from_bits(pe, requant):
    """The codec over the described fields packs as the RTL's own ``data.Layout`` does."""
    cfg = ArrayConfig(rows=3, cols=2, pe=pe, bits=3, max_k=40, requant=requant)
    seed = 11
    print("seed", seed)
    rng = random.Random(seed)
    for lay, name in ((cfg_layout(cfg), "payload"), (w_layout(cfg), "w"), (x_layout(cfg), "x"),
                      (o_layout(cfg), "o")):
        codec = Payload.of(lay, name)
        assert codec.width == Shape.cast(lay).width
        for _ in range(10):
            vals = _random_values(describe_layout(lay, name), rng)
            word = codec.pack(vals)
            if name == "payload":
                assert word == lay.const(vals).as_bits()
                view = lay.from_bits(word)
                assert codec.unpack(word) == {f.name: _amaranth_value(view[f.name]) for f in codec.fields}
            else:
                assert word == lay.const(vals[name]).as_bits()
                assert codec.unpack_vector(word) == _amaranth_value(lay.from_bits(word))
                assert codec.pack_vector(vals[name]) == word
            assert codec.unpack(word) == vals


def _amaranth_value(v):
    """A ``data.Const`` (or int) as nested lists of int."""
    if isinstance(v, int):
        return v
    return [_amaranth_value(v[i]) for i in range(v.shape().length)]


def test_known_vectors():
    """Hand-computed words: fields from offset 0, elements LSB first, signed two's complement."""
    w = Payload.of(w_layout(ArrayConfig(rows=3, cols=1, pe="mult", bits=4)), "w", stream="w")
    assert w.pack_vector([-1, 2, -8]) == 0x82F
    assert w.unpack_vector(0x82F) == [-1, 2, -8]
    cfg = ArrayConfig(rows=2, cols=1, bits=2, max_k=3, requant="threshold")
    c = Payload.of(cfg_layout(cfg), stream="cfg")
    assert [(f.name, f.offset, f.width, f.shape) for f in c.fields] == [
        ("k", 0, 2, ()), ("neg", 2, 1, (2,)), ("thr", 4, 5, (2, 3))]
    word = c.pack({"k": 3, "neg": [1, 0], "thr": [[1, 2, 3], [4, 5, 31]]})
    assert word == 3 | 1 << 2 | 1 << 4 | 2 << 9 | 3 << 14 | 4 << 19 | 5 << 24 | 31 << 29
    assert c["thr"].offsets() == [4, 9, 14, 19, 24, 29]
    assert (c["thr"].lo, c["thr"].hi, c.elements) == (0, 31, 9)


def test_codec_errors_name_the_field():
    w = Payload.of(w_layout(ArrayConfig(rows=2, cols=2, bits=4)), "w", stream="w")
    with pytest.raises(ValueError, match=r"^w payload field w\[1\]=16 is outside 0..15$"):
        w.pack_vector([0, 16])
    with pytest.raises(ValueError, match="^w payload has 2 elements, not 3$"):
        w.pack_vector([1, 2, 3])
    c = Payload.of(cfg_layout(ArrayConfig(rows=2, cols=2, bits=2, max_k=3, requant="threshold")), stream="cfg")
    with pytest.raises(ValueError, match=r"^cfg payload field thr\[1\]\[2\]=32 is outside 0..31$"):
        c.pack({"k": 1, "neg": [0, 0], "thr": [[0, 0, 0], [0, 0, 32]]})
    with pytest.raises(ValueError, match="^cfg payload field thr needs 3 elements along a dimension, not 2$"):
        c.pack({"k": 1, "neg": [0, 0], "thr": [[0, 0, 0], [0, 0]]})
    with pytest.raises(ValueError, match="^cfg payload fields missing: neg, thr$"):
        c.pack({"k": 1})
    with pytest.raises(ValueError, match="^unknown cfg payload fields: bogus$"):
        c.pack({"k": 1, "neg": [0, 0], "thr": [[0] * 3] * 2, "bogus": 1})
    with pytest.raises(ValueError, match="^cfg payload has 3 fields, not the one of a vector payload$"):
        c.pack_vector([1])
    with pytest.raises(KeyError, match="cfg payload has no field 'm'"):
        c["m"]
    entry = {"name": "x", "offset": 0, "width": 3, "signed": False, "shape": [2], "stride": 3}
    with pytest.raises(ValueError, match="^x payload field x \\(offset 0, 2 x 3 bits\\) does not fit the 4-bit payload$"):
        Payload([entry], width=4, stream="x")
    with pytest.raises(ValueError, match="^x payload layout has no fields$"):
        Payload([], stream="x")
    with pytest.raises(ValueError, match="lacks keys: stride$"):
        Payload([{k: v for k, v in entry.items() if k != "stride"}])
    with pytest.raises(ValueError, match="has unknown keys: count$"):
        Payload([{**entry, "count": 2}])
    assert Payload([entry]).width == 6 and Payload([Field.from_dict(entry)]).fields[0].shape == (2,)
