"""verification.meta: metadata loading and payload packing, cross-checked against rtl.layout."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from hwsim.config import ArrayConfig
from rtl.generate import generate
from rtl.layout import pack_payload, unpack_payload
from verification.meta import Layout, load_meta

SMALL = ArrayConfig(rows=2, cols=3, pe="adder", bits=4, max_k=20, requant="fixed")
SMALL_T = ArrayConfig(rows=2, cols=2, pe="mult", bits=3, max_k=9, requant="threshold")


@pytest.fixture(scope="module")
def metas(tmp_path_factory):
    out = tmp_path_factory.mktemp("meta")
    return {c.requant: load_meta(generate(c, out)[1]) for c in (SMALL, SMALL_T)}


def test_load_reads_config_ports_and_layouts(metas):
    m = metas["fixed"]
    assert m.config == SMALL
    assert m.name == m.raw["top"]
    assert m.verilog.exists() and m.verilog.suffix == ".v"
    assert m.cfg.width == m.ports["cfg__payload"]["width"]
    assert m.w.elements == SMALL.rows and m.x.elements == SMALL.cols and m.o.elements == SMALL.rows
    fb = m.field_bits()
    assert fb["k"] == SMALL.max_k.bit_length()
    assert fb["lo"] == SMALL.out_bits + 1 and fb["lo_signed"]


@pytest.mark.parametrize("mode", ["fixed", "threshold"])
def test_cfg_pack_matches_rtl_layout(metas, mode):
    """Our packer and rtl.layout's agree bit for bit on random in-range values."""
    m = metas[mode]
    fields = m.raw["payloads"]["cfg"]
    rng = np.random.default_rng(7)
    for _ in range(20):
        values = {}
        for f in fields:
            lo, hi = (-(1 << (f["width"] - 1)), (1 << (f["width"] - 1)) - 1) if f["signed"] else (0, (1 << f["width"]) - 1)
            values[f["name"]] = rng.integers(lo, hi + 1, size=f["shape"] or None).tolist()
        word = m.cfg.pack(values)
        assert word == pack_payload(fields, values)
        assert unpack_payload(fields, word) == values


def test_vector_pack_and_signed_unpack(metas):
    m = metas["threshold"]  # mult PE: signed operands
    word = m.w.pack_vector([-4, 3])
    assert word == pack_payload(m.raw["payloads"]["w"], {"w": [-4, 3]})
    lay = Layout("o", 8, [{"name": "o", "offset": 0, "width": 4, "signed": True, "shape": [2], "stride": 4}])
    assert lay.unpack_vector(0x8F) == [-1, -8]


def test_pack_errors_name_the_field(metas):
    m = metas["fixed"]
    with pytest.raises(ValueError, match=r"w\.w = 16 does not fit its 4-bit unsigned field"):
        m.w.pack_vector([16, 0])
    with pytest.raises(ValueError, match="has 2 elements, not 3"):
        m.w.pack_vector([1, 2, 3])
    with pytest.raises(ValueError, match="cfg payload field 'shift' not given"):
        m.cfg.pack({"k": 1})
    with pytest.raises(ValueError, match="has no field"):
        m.cfg.pack({"bogus": 1})
    with pytest.raises(ValueError, match="does not fit the 4-bit payload"):
        Layout("x", 4, [{"name": "x", "offset": 0, "width": 3, "signed": False, "shape": [2], "stride": 3}])


def test_load_errors(tmp_path, metas):
    with pytest.raises(FileNotFoundError, match="design metadata not found"):
        load_meta(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_meta(bad)
    raw = copy.deepcopy(metas["fixed"].raw)
    raw["block"] = "pe"
    blk = tmp_path / "blk.json"
    blk.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="describes a 'pe' block"):
        load_meta(blk)
    raw = copy.deepcopy(metas["fixed"].raw)
    del raw["payloads"]["o"]
    (tmp_path / "noo.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="no payload layout for stream 'o'"):
        load_meta(tmp_path / "noo.json")
    raw = copy.deepcopy(metas["fixed"].raw)
    (tmp_path / "nov.json").write_text(json.dumps(raw))  # no .v beside it
    with pytest.raises(FileNotFoundError, match="Verilog of the design not found"):
        load_meta(tmp_path / "nov.json")
