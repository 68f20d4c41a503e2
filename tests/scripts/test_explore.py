"""``adderhw explore`` (hwsim.explore, scripts/explore.py): the counts equal ``estimate``'s, BRAM equals
hwsim.parts', the outputs, and the bad-input lines."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from hwsim.estimate import Design, estimate_source, load_source
from hwsim.explore import Objective, explore, parse_budget, parse_space, pareto
from hwsim.parts import bram_blocks
from hwsim.tables import load_table
from scripts.cli import Parser

ROOT = Path(__file__).resolve().parents[2]
CKPT = ROOT / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


@pytest.fixture(scope="module")
def lenet():
    from quant.quantizer.workflow import placeholder_model

    return load_source(CKPT, checkpoint_model=placeholder_model)


def _cli(argv):
    parser = Parser(prog="adderhw")
    from scripts.explore import register

    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explore", *map(str, argv)])
    return args.func(args)


def test_parse_space_and_budget():
    assert parse_space("rows=2,4,cols=8") == [{"rows": 2, "cols": 8}, {"rows": 4, "cols": 8}]
    assert parse_space("rows=2,mult_rows=0,1") == [{"rows": 2, "mult_rows": 0}, {"rows": 2, "mult_rows": 1}]
    assert parse_budget("luts=20000,bram=56") == {"luts": 20000, "bram": 56}


@pytest.mark.parametrize("space, msg", [
    ("rows", r"--space must be KEY=V"),
    ("depth=4", r"--space key must be one of rows, cols, mult_rows, not 'depth'"),
    ("rows=4,rows=8", r"--space key rows is given twice"),
    ("rows=four", r"--space rows: values must be non-negative integers, not 'four'"),
    ("rows=0", r"--space rows: values must be >= 1"),
])
def test_malformed_space(space, msg):
    with pytest.raises(ValueError, match=msg):
        parse_space(space)


@pytest.mark.parametrize("budget, msg", [
    ("luts", r"--budget must be KEY=V"),
    ("area=3", r"--budget key must be one of luts, ffs, bram, dsp, not 'area'"),
    ("bram=1,2", r"--budget bram: one value"),
    ("bram=-1", r"--budget bram: values must be non-negative integers"),
])
def test_malformed_budget(budget, msg):
    with pytest.raises(ValueError, match=msg):
        parse_budget(budget)


def test_counts_equal_estimate_and_bram_equals_parts(lenet):
    table = load_table("45nm")
    space = parse_space("rows=2,4,cols=4,8")
    res = explore(lenet, table, "ecp5-25k", space)
    assert len(res.points) == 2 * len(space)
    for sp in space:
        cmp_ = estimate_source(lenet, table, rows=sp["rows"], cols=sp["cols"])
        for d, est in cmp_.designs.items():
            (p,) = [p for p in res.points if p.design == d and (p.rows, p.cols) == (sp["rows"], sp["cols"])]
            assert p.total_cycles == est.counts.total_cycles
            assert p.energy_pj == est.energy.total.total_pj
            assert p.resources.bram == bram_blocks(est.config, "ecp5-25k")
            assert p.resources.dsp == 0
    fastest = max(res.feasible, key=lambda p: (p.fps, -p.energy_pj))
    assert res.best == fastest
    low = explore(lenet, table, "ecp5-25k", space, objective=Objective.ENERGY).best
    assert low.energy_pj == min(p.energy_pj for p in res.feasible)


def test_pareto_front_is_not_dominated(lenet):
    res = explore(lenet, load_table("45nm"), "ecp5-25k", parse_space("rows=2,4,8,cols=2,4,8"))
    front = pareto(res.points, "bram_blocks", "images_per_s", maximize_y=True)
    assert front
    for f in front:
        fr = f.row()
        assert not any(p.row()["bram_blocks"] <= fr["bram_blocks"] and p.row()["images_per_s"] > fr["images_per_s"]
                       for p in res.points)


def test_cli_writes_outputs_and_prints_generate(tmp_path, capsys):
    out = tmp_path / "x"
    assert _cli([CKPT, "--target", "ecp5-25k", "--space", "rows=2,4,cols=4", "-o", out]) == 0
    printed = capsys.readouterr().out
    assert "adderhw quantize" in printed and "adderhw generate --model build/q --rows 4 --cols 4" in printed
    rows = list(csv.DictReader((out / "explore.csv").open()))
    assert len(rows) == 4 and {r["design"] for r in rows} == {"adder", "mult"}
    assert (out / "report.md").read_text().count("adderhw generate") == 1
    assert "energy_per_image_uj" in rows[0] and "images_per_s" in rows[0]
    assert (out / "report.md").read_text().startswith("# explore:")
    assert (out / "pareto_fps.png").stat().st_size > 0 and (out / "pareto_energy.png").stat().st_size > 0


def test_unknown_part(tmp_path):
    with pytest.raises(ValueError, match=r"part must be one of ice40-hx8k, .*, not 'ecp5-12k'"):
        _cli([CKPT, "--target", "ecp5-12k", "-o", tmp_path / "x"])


def test_budget_nothing_fits_names_the_smallest(tmp_path):
    with pytest.raises(ValueError, match=r"nothing fits ecp5-25k within the budget and --min-fps: the smallest "
                       r"config, (adder|mult) 2x2 \(mult_rows \d\), needs \d+ LUTs, \d+ BRAM blocks, 0 DSPs at "
                       r"[\d.]+ images/s"):
        _cli([CKPT, "--target", "ecp5-25k", "--space", "rows=2,4,cols=2", "--budget", "bram=1", "-o", tmp_path / "x"])


def test_lut_budget_without_a_fitted_model_names_calibrate(tmp_path, monkeypatch):
    import hwsim.resources as r

    monkeypatch.setattr(r, "DATA_DIR", tmp_path / "none")
    with pytest.raises(ValueError, match=r"--budget luts/ffs: no resource model for ice40-hx8k .* run "
                       r"`adderhw explore --calibrate ice40-hx8k`"):
        _cli([CKPT, "--target", "ice40-hx8k", "--space", "rows=2,cols=2", "--budget", "luts=5000",
              "-o", tmp_path / "x"])


def test_address_that_does_not_answer(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"--address 127\.0\.0\.1:{port}: no Ray cluster answers within 10 s"):
        _cli([CKPT, "--target", "ice40-hx8k", "--space", "rows=2,cols=2", "--synth", "1",
              "--address", f"127.0.0.1:{port}", "-o", tmp_path / "x"])


@pytest.mark.parametrize("argv, msg", [
    (["--target", "ecp5-25k", "--jobs", "0"], r"--jobs must be a positive integer, got 0"),
    (["--target", "ecp5-25k", "--address", "nowhere"], r"--address must be HOST:PORT"),
])
def test_bad_synth_arguments(tmp_path, argv, msg):
    with pytest.raises(ValueError, match=msg):
        _cli([CKPT, *argv, "-o", tmp_path / "x"])


def test_mult_rows_space_one_mult_engine_per_shape(lenet):
    res = explore(lenet, load_table("45nm"), "ecp5-25k", parse_space("rows=2,4,cols=4,mult_rows=1,2,4"))
    assert res.notes[0] == "1 points of --space skipped: mult_rows > rows"  # rows 2 with mult_rows 4
    adders = [p for p in res.points if p.design == Design.ADDER]
    mults = [p for p in res.points if p.design == Design.MULT]
    assert sorted((p.rows, p.mult_rows) for p in adders) == [(2, 1), (2, 2), (4, 1), (4, 2), (4, 4)]
    assert sorted((p.rows, p.cols) for p in mults) == [(2, 4), (4, 4)]


@pytest.mark.parametrize("argv, msg", [
    (["--calibrate", "ice40-hx8k", "--target", "ice40-hx8k"], r"--calibrate PART names the part: drop --target"),
    ([CKPT, "--calibrate", "ice40-hx8k"], r"--calibrate takes no MODEL_DIR_OR_CKPT"),
    ([CKPT, "-o", "x"], r"--target PART is required \(or --calibrate PART\)"),
    (["--calibrate", "ecp5-85k"], r"--calibrate: ecp5-85k reads ecp5-25k's resource model .*: calibrate ecp5-25k"),
])
def test_bad_calibrate_arguments(argv, msg):
    with pytest.raises(ValueError, match=msg):
        _cli(argv)
