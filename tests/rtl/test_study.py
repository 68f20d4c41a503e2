"""The PE-arithmetic study blocks: deterministic Verilog, metadata that matches it, lint, ``generate --block``."""

import re
import shutil
import subprocess

import pytest

from rtl.array import BlockConfig
from rtl.design import Block, read_design
from quant.base.intops import PeKind
from rtl.study import STUDY_BLOCKS, block_name, generate_block

CFG = BlockConfig(rows=2, cols=3, pe="adder", bits=4, max_k=16)


def _verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    """name -> (direction, width) from the top module's port declarations."""
    body = text.split(f"module {top}(", 1)[1].split("endmodule", 1)[0]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return ports


@pytest.mark.parametrize("block", STUDY_BLOCKS)
@pytest.mark.parametrize("pe", tuple(PeKind))
def test_metadata_matches_verilog(tmp_path, block, pe):
    d = generate_block(CFG.replace(pe=pe), tmp_path, block=block)
    text = d.verilog.read_text()
    assert {p.name: (p.direction, p.width) for p in d.ports} == _verilog_ports(text, d.name)
    m = read_design(d.path)
    assert (m.block, m.name, m.config, m.verilog) == (block, d.name, d.config, d.verilog)
    assert m.pe_form == ("cinv" if pe == PeKind.ADDER else None) and m.payloads == {}


def test_output_is_deterministic_and_named(tmp_path):
    a = generate_block(CFG, tmp_path / "a")
    b = generate_block(CFG, tmp_path / "b")
    assert a.verilog.read_bytes() == b.verilog.read_bytes() and a.path.read_bytes() == b.path.read_bytes()
    assert a.name == "array_adder_r2c3_b4_k16"
    assert block_name(CFG.replace(form="mux"), Block.PE) == "pe_adder_b4_k16_mux"
    assert block_name(CFG.replace(pe="mult", form="mux"), Block.ARRAY) == "array_mult_r2c3_b4_k16"
    with pytest.raises(ValueError, match="^block must be one of pe, array, not 'engine'$"):
        generate_block(CFG, tmp_path, block="engine")


def test_iverilog_parses(tmp_path):
    exe = shutil.which("iverilog")
    assert exe, "iverilog is part of the toolchain (apt-get install iverilog)"
    for block in STUDY_BLOCKS:
        v = generate_block(CFG, tmp_path, block=block).verilog
        res = subprocess.run([exe, "-g2012", "-o", str(tmp_path / "a.out"), str(v)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
