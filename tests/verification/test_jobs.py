"""``adderhw verify --jobs N``: shards on a local Ray give the serial run's ``verify.json`` but for the run's cost."""

from __future__ import annotations

import json

import pytest

from scripts.cli import main
from verification.shards import RUN_COST_FIELDS, comparable

SEED = 20261206


@pytest.mark.sim
def test_jobs_equal_the_serial_run(lenet_dir, lenet_design, build_root, tmp_path, capsys):
    """The shipped LeNet-5-BN on Verilator, three images and back-pressure: serially, then with --jobs 2 on a
    local Ray (2 CPUs, no dashboard) into the same OUT; the shards are images 0..1, image 2 (its cycle numbers
    shifted by two images) and the back_pressure test."""
    out = tmp_path / "out"
    argv = ["verify", str(lenet_dir), "--design", str(lenet_design.path), "--sim", "verilator", "--images", "0,1,2",
            "--back-pressure", "0.3", "--seed", str(SEED), "--build-dir", str(build_root), "-o", str(out)]
    assert main(argv) == 0, capsys.readouterr().out
    serial = json.loads((out / "verify.json").read_text())
    capsys.readouterr()
    assert main([*argv, "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    sharded = json.loads((out / "verify.json").read_text())
    assert [t["passed"] for t in sharded["tests"]] == [True, True], text
    assert comparable(sharded) == comparable(serial)
    # what is compared: everything but the cost; the images are real and took cycles
    images = sharded["tests"][0]["images"]
    assert [im["image"] for im in images] == [0, 1, 2] and len({tuple(im["logits"]) for im in images}) == 3
    per = images[0]["cycles_predicted"]
    assert images[2]["ops"][0]["start"] == 2 * per + serial["tests"][0]["images"][0]["ops"][0]["start"]
    assert set(RUN_COST_FIELDS["test"]) <= set(sharded["tests"][0])
    # a line per shard, each run in its own folder
    done = sorted(ln.split(" (")[0].strip() for ln in text.splitlines() if " shards, " in ln)
    assert done == ["verilator back_pressure: images 0..1 passed", "verilator images: image 2 passed",
                    "verilator images: images 0..1 passed"], text
    runs = out / "runs" / "lenet5_bn-engine-verilator"
    assert sorted(p.name for p in runs.iterdir()) == ["back_pressure-0-1", "images-0-1", "images-2-2"]


@pytest.mark.sim
def test_a_shard_that_fails_is_one_line(tmp_path, capsys):
    """A design whose Verilog does not build: the shards' error (raised on a Ray worker) is the one line the
    serial run prints, and OUT is not written."""
    import numpy as np

    from hwsim.config import EngineConfig
    from hwsim.samples import SMALL_ENGINE, small_model
    from quant.intmodel.artifact import save_int_model
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build

    save_int_model(small_model(np.random.default_rng([SEED, 0]), c0=2, h=4, w=4, c1=3, bits=5), tmp_path / "model")
    d = generate_engine(tmp_path / "gen", config=EngineConfig(**SMALL_ENGINE), max_ops=8, build=Build.VERIFY)
    d.verilog.write_text(f"module {d.name}(input clk;\n")  # a syntax error
    argv = ["verify", str(tmp_path / "model"), "--design", str(d.path), "--sim", "icarus", "--images", "0,1",
            "--build-dir", str(tmp_path / "build"), "-o", str(tmp_path / "o")]
    assert main(argv) == 1
    (serial,) = capsys.readouterr().err.strip().splitlines()
    assert serial.startswith("adderhw verify: error: icarus build of "), serial
    assert main([*argv, "--jobs", "2"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == serial
    assert not (tmp_path / "o").exists()
