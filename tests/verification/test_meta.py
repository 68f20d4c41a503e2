"""verification.meta: the testbenches' design = rtl.generate's strict reader + the Verilog beside it.

The payload codec and the reader are tested beside them (tests/rtl/test_layout.py,
tests/rtl/test_generate.py).
"""

from __future__ import annotations

import json
import shutil

import pytest

from hwsim.config import ArrayConfig
from rtl.generate import generate
from verification.meta import load_meta

SMALL = ArrayConfig(rows=2, cols=3, pe="adder", bits=4, max_k=20, requant="fixed")


def test_load_reads_an_accelerator_with_its_verilog(tmp_path):
    v, j = generate(SMALL, tmp_path)
    m = load_meta(j)
    assert m.config == SMALL and m.verilog == v and m.name == m.raw["top"]
    assert m.w.pack_vector([15, 1]) == 0x1F and m.o.unpack_vector(m.o.pack_vector([-1, 2])) == [-1, 2]
    fb = m.field_bits()
    assert fb["lo"] == SMALL.out_bits + 1 and fb["lo_signed"]


def test_load_errors(tmp_path):
    _, pe_json = generate(SMALL, tmp_path / "pe", block="pe")
    with pytest.raises(ValueError, match="describes a 'pe' block, not the accelerator top"):
        load_meta(pe_json)
    _, j = generate(SMALL, tmp_path / "acc")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(j, alone / j.name)  # no .v beside it
    with pytest.raises(FileNotFoundError, match="Verilog of the design not found"):
        load_meta(alone / j.name)
    raw = json.loads(j.read_text())
    raw["format_version"] = 0
    (alone / j.name).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="format_version 0 is not supported"):
        load_meta(alone / j.name)
