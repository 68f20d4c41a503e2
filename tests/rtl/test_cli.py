"""``adderhw generate`` (rtl.cli): the engine sized to a model or to explicit sizes, the PE study blocks, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from rtl.array import BlockConfig
from rtl.design import read_design
from hwsim.samples import small_model
from rtl.study import generate_block
from scripts.cli import main

CFG = BlockConfig(rows=2, cols=3, pe="adder", bits=4, max_k=16)


@pytest.mark.slow
def test_cli_generate_engine_for_a_model(tmp_path, capsys):
    from quant.intmodel.artifact import save_int_model

    model = small_model(np.random.default_rng(7), c0=1, h=4, w=4, c1=2, bits=4)
    save_int_model(model, tmp_path / "small")
    argv = ["generate", "--model", str(tmp_path / "small"), "--rows", "2", "--cols", "2"]
    assert main(argv + ["-o", str(tmp_path / "g1")]) == 0
    assert main(argv + ["-o", str(tmp_path / "g2")]) == 0
    capsys.readouterr()
    (v1,) = (tmp_path / "g1").glob("*.v")
    assert v1.read_bytes() == (tmp_path / "g2" / v1.name).read_bytes()
    meta = read_design(v1.with_suffix(".json"))
    assert meta.model["name"] == "small" and meta.max_ops == meta.model["ops"] == 5
    assert main([*argv[:1], "--engine", *argv[1:], "-o", str(tmp_path / "g0")]) == 0
    assert capsys.readouterr().err == "generate: --engine is deprecated: the network engine is the only design\n"
    assert v1.read_bytes() == (tmp_path / "g0" / v1.name).read_bytes()
    assert main(argv + ["--bits", "8", "-o", str(tmp_path / "g3")]) == 1
    assert "--bits: an engine sized to --model takes its widths" in capsys.readouterr().err
    assert main(["generate", "--engine", "--rows", "2", "--cols", "2", "--bits", "4", "--block", "pe",
                 "-o", str(tmp_path / "g4")]) == 1
    assert "--engine and --block pe: choose one" in capsys.readouterr().err
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--block", "array", "--max-ops", "3",
                 "-o", str(tmp_path / "g5")]) == 1
    assert "--max-ops: for the engine, not --block array" in capsys.readouterr().err
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--form", "mux",
                 "-o", str(tmp_path / "g6")]) == 1
    assert "--form is for the PE study blocks" in capsys.readouterr().err
    # --trace: the same engine with traces (another name: the config differs in trace only)
    assert main(argv + ["--trace", "-o", str(tmp_path / "g7")]) == 0
    capsys.readouterr()
    (v7,) = (tmp_path / "g7").glob("*.v")
    traced = read_design(v7.with_suffix(".json")).config
    assert v7.name != v1.name and traced.trace and traced == meta.config.replace(trace=True)
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--trace",
                 "-o", str(tmp_path / "g8")]) == 0
    (v8,) = (tmp_path / "g8").glob("*.json")
    assert read_design(v8).config.trace


def test_cli_generate_block(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--block", "array", "--rows", "2", "--cols", "3", "--bits", "4", "--max-k", "16",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "array_adder_r2c3_b4_k16.v"), str(out / "array_adder_r2c3_b4_k16.json")]
    assert (out / "array_adder_r2c3_b4_k16.v").read_bytes() == generate_block(CFG, tmp_path / "b").verilog.read_bytes()
    assert main(["generate", "--block", "pe", "--pe", "mult", "--rows", "1", "--cols", "1", "--bits", "4",
                 "-o", str(out)]) == 0
    assert capsys.readouterr().out.split()[0] == str(out / "pe_mult_b4_k4608.v")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rows", "0"], "rows must be a positive integer, not 0"),
        (["--bits", "17"], "bits must be an integer in 2..16, not 17"),
        (["--max-k", "0"], "max_k must be a positive integer, not 0"),
        (["--model", "m"], "--model: for the engine, not --block array"),
        (["--requant", "threshold"], "--requant: for the engine, not --block array"),
    ],
)
def test_cli_generate_block_errors(tmp_path, capsys, args, message):
    # argparse: a later option wins, so the case's options come after the base ones
    argv = ["generate", "--block", "array", "--rows", "2", "--cols", "2", "--bits", "4", *args, "-o",
            str(tmp_path / "g")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adderhw generate: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "g").exists()


def test_cli_generate_for_a_model_with_a_chosen_multiplier_unit(tmp_path, capsys):
    """``--mult-rows`` with ``--model``: the engine explore's best point names (its default is the compiler's)."""
    from quant.base.intops import LayerKind
    from quant.intmodel.artifact import save_int_model

    model = small_model(np.random.default_rng(7), c0=1, h=4, w=4, c1=2, bits=4, stem=LayerKind.CONV)
    save_int_model(model, tmp_path / "m")
    argv = ["generate", "--model", str(tmp_path / "m"), "--rows", "4", "--cols", "2"]
    assert main(argv + ["-o", str(tmp_path / "d")]) == 0
    assert main(argv + ["--mult-rows", "1", "-o", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    default = read_design(next((tmp_path / "d").glob("*.json"))).config
    one = read_design(next((tmp_path / "one").glob("*.json"))).config
    assert (default.mult_rows, one.mult_rows) == (2, 1) and one == default.replace(mult_rows=1)
    assert main(argv + ["--pe", "mult", "--mult-rows", "1", "-o", str(tmp_path / "bad")]) == 1
    assert capsys.readouterr().err.strip() == ("adderhw generate: error: --mult-rows 1: the all-multiplier engine "
                                               "(--pe mult) "
                                               "has no multiplier unit")
    assert not (tmp_path / "bad").exists()


def test_cli_generate_pixel_tile(tmp_path, capsys, tiny_model_dir):
    """``generate --pixel-tile Tp``: with --model through the sizing into the metadata's config, without it into
    the config; bad values, Tp > 1 with two weight buffers and --block: one line, nothing written."""
    import json

    model = tiny_model_dir(tmp_path)
    for i, size in enumerate((["--model", str(model)], ["--bits", "4"])):
        assert main(["generate", *size, "--rows", "2", "--cols", "2", "--pixel-tile", "8",
                     "-o", str(tmp_path / f"g{i}")]) == 0
        (j,) = (tmp_path / f"g{i}").glob("*.json")
        assert json.loads(j.read_text())["config"]["pixel_tile"] == 8
    capsys.readouterr()
    cases = [
        (["--model", str(model), "--pixel-tile", "0"], 1, "--pixel-tile must be an integer in 1..64, not 0"),
        (["--bits", "4", "--pixel-tile", "65"], 1, "--pixel-tile must be an integer in 1..64, not 65"),
        (["--bits", "4", "--pixel-tile", "x"], 2, "argument --pixel-tile: invalid int value: 'x'"),
        (["--model", str(model), "--pixel-tile", "8", "--weight-buffers", "2"], 1,
         "--weight-buffers 2 is built for --pixel-tile 1 only (the two have not been joined in the cycle "
         "contract), not --pixel-tile 8"),
        (["--bits", "4", "--block", "array", "--pixel-tile", "2"], 1, "--pixel-tile: for the engine, not --block array"),
    ]
    for argv, rc, msg in cases:
        try:
            got = main(["generate", "--rows", "2", "--cols", "2", *argv, "-o", str(tmp_path / "bad")])
        except SystemExit as exc:  # argparse's own errors
            got = exc.code
        assert got == rc, argv
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("adderhw generate: error: ") and msg in err[0], err
        assert not (tmp_path / "bad").exists()
