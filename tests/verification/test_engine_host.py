"""verification.engine_host without a simulator: the engine's files in the build cache, the program's file."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.config import EngineConfig
from rtl.design import Block, read_design
from hwsim.compiler import compile_model
from hwsim.samples import SMALL_ENGINE, small_model
from verification.engine_host import emit_engine, load_program, save_program

CFG = EngineConfig(**SMALL_ENGINE)


def test_emit_writes_verilog_and_metadata_once(tmp_path):
    d = emit_engine(CFG, max_ops=8, build_root=tmp_path)
    assert d.block == Block.ENGINE and d.verilog.is_file() and d.path == d.verilog.with_suffix(".json")
    assert read_design(d.path).to_json() == d.to_json()
    stamp = d.verilog.stat().st_mtime_ns
    again = emit_engine(CFG, max_ops=8, build_root=tmp_path)
    assert again.to_json() == d.to_json() and d.verilog.stat().st_mtime_ns == stamp  # read back, not emitted
    assert emit_engine(CFG, max_ops=9, build_root=tmp_path).name != d.name


def test_mutant_keeps_the_correct_config(tmp_path):
    """The program is compiled for the metadata's config; only the Verilog is wrong."""
    good = emit_engine(CFG, max_ops=8, build_root=tmp_path)
    bad = emit_engine(CFG, max_ops=8, mutation="acc_minus_one", build_root=tmp_path)
    assert bad.name != good.name and bad.config == good.config == CFG
    assert bad.verilog.read_text() != good.verilog.read_text()
    with pytest.raises(ValueError, match="^mutation must be one of acc_minus_one, pad_edge, wbase_plus_one, bank_off, not 'x'$"):
        emit_engine(CFG, max_ops=8, mutation="x", build_root=tmp_path)


def test_program_file_roundtrip(tmp_path):
    seed = 9
    print("seed", seed)
    model = small_model(np.random.default_rng(seed), c0=2, h=4, w=4, c1=3, bits=5)
    cm = compile_model(model, CFG)
    back = load_program(save_program(cm, tmp_path / "p" / "program.pkl"))
    assert back.program.ops == cm.program.ops and back.program.config == CFG
    assert np.array_equal(back.weights.words, cm.weights.words) and back.weights.params == cm.weights.params
