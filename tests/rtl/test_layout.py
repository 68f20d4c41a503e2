"""The one layout describer and the one payload codec (Payload), on layouts of the shapes the RTL uses."""

import random

import pytest
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from hwsim.config import EngineConfig
from rtl.engine.top import desc_layout
from rtl.layout import Field, Payload, describe_layout, pack_payload, unpack_payload

#: A struct with scalars, a nested struct, a vector and a matrix: every kind of field the describer knows.
MIXED = data.StructLayout({
    "k": unsigned(7),
    "ag": data.StructLayout({"h": unsigned(5), "pad": signed(3)}),
    "m": data.ArrayLayout(signed(4), 3),
    "thr": data.ArrayLayout(data.ArrayLayout(unsigned(5), 3), 2),
})


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


def _nested(flat: dict) -> dict:
    """``{"ag.h": 1}`` -> ``{"ag": {"h": 1}}`` (what ``Layout.const`` takes)."""
    out: dict = {}
    for name, v in flat.items():
        *path, leaf = name.split(".")
        d = out
        for p in path:
            d = d.setdefault(p, {})
        d[leaf] = v
    return out


def _amaranth_value(v):
    """A ``data.Const`` (or int) as nested lists of int."""
    if isinstance(v, int):
        return v
    return [_amaranth_value(v[i]) for i in range(v.shape().length)]


def test_describe_names_nested_fields_and_array_shapes():
    fields = describe_layout(MIXED)
    assert [(f["name"], f["offset"], f["width"], f["signed"], f["shape"]) for f in fields] == [
        ("k", 0, 7, False, []), ("ag.h", 7, 5, False, []), ("ag.pad", 12, 3, True, []),
        ("m", 15, 4, True, [3]), ("thr", 27, 5, False, [2, 3])]
    assert describe_layout(signed(9), "o") == [
        {"name": "o", "offset": 0, "width": 9, "signed": True, "shape": [], "stride": 9}]


def test_codec_equals_amaranth_const_and_from_bits():
    """The codec over the described fields packs as the RTL's own ``data.Layout`` does."""
    seed = 11
    print("seed", seed)
    rng = random.Random(seed)
    codec = Payload.of(MIXED)
    assert codec.width == Shape.cast(MIXED).width
    for _ in range(20):
        vals = _random_values(describe_layout(MIXED), rng)
        word = codec.pack(vals)
        assert word == MIXED.const(_nested(vals)).as_bits()
        view = MIXED.from_bits(word)
        assert codec.unpack(word)["m"] == _amaranth_value(view["m"])
        assert codec.unpack(word)["ag.pad"] == view["ag"]["pad"]
        assert codec.unpack(word) == vals
        assert unpack_payload(describe_layout(MIXED), pack_payload(describe_layout(MIXED), vals)) == vals
    vec = data.ArrayLayout(unsigned(4), 5)
    v = Payload.of(vec, "x", stream="x")
    for _ in range(10):
        xs = [rng.randint(0, 15) for _ in range(5)]
        assert v.pack_vector(xs) == vec.const(xs).as_bits()
        assert v.unpack_vector(v.pack_vector(xs)) == xs


def test_engine_descriptor_roundtrip():
    """The engine's ``prog`` payload (nested struct) through the codec and Amaranth."""
    lay = desc_layout(EngineConfig(rows=2, cols=2, act_words=(64, 64), weight_words=16, max_k=36))
    codec = Payload.of(lay, stream="prog")
    rng = random.Random(3)
    for _ in range(5):
        vals = _random_values(describe_layout(lay), rng)
        assert codec.pack(vals) == lay.const(_nested(vals)).as_bits()


def test_known_vectors():
    """Hand-computed words: fields from offset 0, elements LSB first, signed two's complement."""
    w = Payload.of(data.ArrayLayout(signed(4), 3), "w", stream="w")
    assert w.pack_vector([-1, 2, -8]) == 0x82F
    assert w.unpack_vector(0x82F) == [-1, 2, -8]
    c = Payload.of(data.StructLayout({"k": unsigned(2), "neg": data.ArrayLayout(unsigned(1), 2),
                                      "thr": data.ArrayLayout(data.ArrayLayout(unsigned(5), 3), 2)}), stream="cfg")
    assert [(f.name, f.offset, f.width, f.shape) for f in c.fields] == [
        ("k", 0, 2, ()), ("neg", 2, 1, (2,)), ("thr", 4, 5, (2, 3))]
    word = c.pack({"k": 3, "neg": [1, 0], "thr": [[1, 2, 3], [4, 5, 31]]})
    assert word == 3 | 1 << 2 | 1 << 4 | 2 << 9 | 3 << 14 | 4 << 19 | 5 << 24 | 31 << 29
    assert c["thr"].offsets() == [4, 9, 14, 19, 24, 29]
    assert (c["thr"].lo, c["thr"].hi, c.elements) == (0, 31, 9)
    assert [Field.from_dict(f.to_dict()) for f in c.fields] == list(c.fields)


def test_codec_errors_name_the_field():
    w = Payload.of(data.ArrayLayout(unsigned(4), 2), "w", stream="w")
    with pytest.raises(ValueError, match=r"^w payload field w\[1\]=16 is outside 0..15$"):
        w.pack_vector([0, 16])
    with pytest.raises(ValueError, match="^w payload has 2 elements, not 3$"):
        w.pack_vector([1, 2, 3])
    c = Payload.of(data.StructLayout({"k": unsigned(2), "neg": data.ArrayLayout(unsigned(1), 2),
                                      "thr": data.ArrayLayout(data.ArrayLayout(unsigned(5), 3), 2)}), stream="cfg")
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
