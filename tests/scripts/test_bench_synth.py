"""scripts/bench_synth.py --scale: the engines sized to LeNet-5-BN, the part choice and the table row, on real synthesis results."""

from __future__ import annotations

import pytest

from hwsim.sizing import size_engine
from quant.base.intops import PeKind
from scripts.bench_synth import (SCALE_MODEL, SCALE_SIZES, _sizes, dsp_need, first_part, path_rows, plot_ratio,
                                 scale_row)


@pytest.fixture(scope="module")
def lenet_configs():
    from quant.quantizer.workflow import placeholder_model

    model = placeholder_model(SCALE_MODEL)
    return {s: size_engine(model, rows=s[0], cols=s[1])[0] for s in SCALE_SIZES}


def test_first_part_is_the_smallest_ecp5_that_holds_the_memories_luts_and_dsps(lenet_configs):
    from hwsim.parts import PARTS, bram_blocks

    cfg = lenet_configs
    # LeNet-5-BN's engine at each size: 10, 23, 37 and 16 DP16KD (16x16: a 25-word weight buffer, in LUT RAM)
    assert [bram_blocks(cfg[s], PARTS["ecp5-85k"]) for s in SCALE_SIZES] == [10, 23, 37, 16]
    assert [first_part(cfg[s]) for s in SCALE_SIZES] == ["ecp5-25k"] * 4
    # with DSPs: one MULT18X18D per PE at least (28, 72, 156 on the three parts)
    assert [dsp_need(cfg[s], True) for s in SCALE_SIZES] == [16, 64, 128, 256]
    assert [first_part(cfg[s], dsps=dsp_need(cfg[s], True)) for s in SCALE_SIZES] == [
        "ecp5-25k", "ecp5-45k", "ecp5-85k", None]
    assert dsp_need(cfg[(4, 4)], False) == 0
    assert first_part(cfg[(4, 4)], luts=24289) == "ecp5-45k"
    assert first_part(cfg[(4, 4)], luts=100, after="ecp5-25k") == "ecp5-45k"
    assert first_part(cfg[(4, 4)], after="ecp5-85k") is None
    assert first_part(cfg[(4, 4)], luts=10**6) is None
    assert _sizes("4x4,16X8") == [(4, 4), (16, 8)]
    for bad in ("4x", "0x4"):
        with pytest.raises(ValueError, match="--sizes must be ROWSxCOLS"):
            _sizes(bad)


@pytest.mark.parametrize("argv", [["--sizes", "4x"], ["--dsp-sizes", "x"], ["--lut-only", "--dsp-sizes", "4x4"]])
def test_bad_scale_arguments_stop_before_any_work(argv, capsys, tmp_path):
    from scripts.bench_synth import main

    with pytest.raises(SystemExit) as exc:
        main(["--scale", *argv, "-o", str(tmp_path / "o"), "--json", str(tmp_path / "b.json")])
    assert exc.value.code == 2 and "error: --" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_size_not_synthesized_keeps_its_row_and_reason(tmp_path):
    row = scale_row((16, 16), None, True, {}, {}, note="not synthesized: needs 256")
    assert row["part"] is None and row["multipliers"] == "DSP" and row["pes"] == 256
    assert row["adder_lut"] is None and row["lut_ratio"] is None and row["note"] == "not synthesized: needs 256"
    assert path_rows((16, 16), True, {"mult engine": None}) == []
    plot_ratio([row], tmp_path / "p.png")  # nothing to draw: still a figure
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.mark.synth
def test_scale_row_from_real_generic_synthesis(tmp_path):
    """A 2x2 engine and array of each PE kind through yosys's generic flow (no Fmax), into one row."""
    from hwsim.config import EngineConfig
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
    assert (row["pes"], row["adder_lut"], row["mult_lut"], row["adder_ff"], row["mult_carry"]) == (
        4, a["lut"], m["lut"], a["ff"], m["carry"])
    assert row["lut_ratio"] == round(a["lut"] / m["lut"], 3) and 0 < row["lut_ratio"] < 1
    assert row["array_lut_ratio"] == round(arrays[PeKind.ADDER]["resources"]["lut"]
                                           / arrays[PeKind.MULT]["resources"]["lut"], 3)
    assert row["adder_fmax_mhz"] is None and row["fmax_ratio"] is None and row["note"] is None
    assert path_rows((2, 2), False, {"adder engine": engines[PeKind.ADDER]}) == []  # generic: nothing placed
    plot_ratio([row, row | {"multipliers": "DSP"}], tmp_path / "ratio.png")
    assert (tmp_path / "ratio.png").stat().st_size > 0
