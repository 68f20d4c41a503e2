"""scripts/bench_synth.py --scale: the part choice and the table row, on real synthesis results."""

from __future__ import annotations

import pytest

from hwsim.config import EngineConfig
from quant.base.intops import PeKind
from scripts.bench_synth import LENET_ENGINE, SCALE_SIZES, _sizes, first_part, scale_row


def test_first_part_is_the_smallest_ecp5_that_holds_the_memories_and_luts():
    cfg = {s: EngineConfig(**(LENET_ENGINE | {"rows": s[0], "cols": s[1]})) for s in SCALE_SIZES}
    # block RAMs 10, 27, 41 and 81 (the 16x16 weight buffer: 57 DP16KD)
    assert [first_part(cfg[s]) for s in SCALE_SIZES] == ["ecp5-25k", "ecp5-25k", "ecp5-25k", "ecp5-45k"]
    assert first_part(cfg[(4, 4)], luts=24289) == "ecp5-45k"
    assert first_part(cfg[(4, 4)], luts=10**6) is None
    assert _sizes("4x4,16X8") == [(4, 4), (16, 8)]
    with pytest.raises(ValueError, match="--sizes must be ROWSxCOLS"):
        _sizes("4x")


@pytest.mark.synth
def test_scale_row_from_real_generic_synthesis(tmp_path):
    """A 2x2 engine and array of each PE kind through yosys's generic flow (no Fmax), into one row."""
    from rtl.array import BlockConfig
    from rtl.design import Block
    from rtl.engine.generate import generate_engine
    from rtl.study import generate_block
    from rtl.synth import synthesize

    cfg = EngineConfig(rows=2, cols=2, bits=4, act_words=(16, 16), weight_words=8, max_k=16)
    engines, arrays = {}, {}
    for pe in PeKind:
        v = generate_engine(tmp_path / "g", config=cfg, pe=pe, max_ops=2).verilog
        engines[pe] = synthesize(v, tmp_path / v.stem, target="generic")
        v = generate_block(BlockConfig(rows=2, cols=2, pe=pe, bits=4, max_k=16), tmp_path / "g", block=Block.ARRAY).verilog
        arrays[pe] = synthesize(v, tmp_path / v.stem, target="generic")
    row = scale_row((2, 2), "generic", False, engines, arrays)
    a, m = engines[PeKind.ADDER]["resources"], engines[PeKind.MULT]["resources"]
    assert (row["pes"], row["adder_lut"], row["mult_lut"]) == (4, a["lut"], m["lut"])
    assert row["lut_ratio"] == round(a["lut"] / m["lut"], 3) and 0 < row["lut_ratio"] < 1
    assert row["array_lut_ratio"] == round(arrays[PeKind.ADDER]["resources"]["lut"]
                                           / arrays[PeKind.MULT]["resources"]["lut"], 3)
    assert row["adder_fmax_mhz"] is None and row["fmax_ratio"] is None and row["adder_critical_path"] is None
