"""verification.engine_verify without a simulator: the design and its program, images, operations, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.config import EngineConfig
from rtl.array import BlockConfig
from rtl.engine.generate import generate_engine
from rtl.engine.top import Build
from hwsim.samples import SMALL_ENGINE, small_model
from rtl.study import generate_block
from verification.engine_verify import (REPORT_FORMAT, engine_design, engine_images, report_entries, select_ops,
                                        write_report)
from verification.runner import CaseResult, RunResult

SEED = 20261206


@pytest.fixture(scope="module")
def model():
    print("seed", SEED)
    return small_model(np.random.default_rng(SEED), c0=2, h=4, w=4, c1=3, bits=5)


def test_engine_design_compiles_once_and_refuses(tmp_path, model):
    cfg = EngineConfig(**SMALL_ENGINE)
    d = generate_engine(tmp_path / "ok", config=cfg, max_ops=8, build=Build.VERIFY)
    design, compiled = engine_design(d.path, model)
    assert design.to_json() == d.to_json() and compiled.program.config == cfg
    assert [op.name for op in compiled.program.ops] == ["stem", "conv", "add", "pool", "fc"]
    few = generate_engine(tmp_path / "few", config=cfg, max_ops=4, build=Build.VERIFY)
    with pytest.raises(ValueError, match=f"^the engine {few.name} holds 4 operations, the program of small has 5$"):
        engine_design(few.path, model)
    deploy = generate_engine(tmp_path / "deploy", config=cfg, max_ops=8)
    with pytest.raises(ValueError, match="is the deployable engine, without the counters the testbench reads: "
                                         "generate it with --build verify$"):
        engine_design(deploy.path, model)
    study = generate_block(BlockConfig(bits=4, max_k=8), tmp_path / "study", block="pe")
    with pytest.raises(ValueError, match="is a block of the PE-arithmetic study \\(pe\\), not an engine$"):
        engine_design(study.path, model)
    d.verilog.unlink()
    with pytest.raises(FileNotFoundError, match="the Verilog of .* is missing"):
        engine_design(d.path, model)


def test_select_ops():
    names = ["a", "b", "c"]
    assert select_ops(names, None, "m") == names
    assert select_ops(names, "b", "m") == ["b"] and select_ops(names, "2", "m") == ["c"]
    with pytest.raises(ValueError, match="^--layer 3 is out of range: the engine's program for m has 3 operations"):
        select_ops(names, "3", "m")
    with pytest.raises(ValueError, match="^--layer 'z' is not an operation of the engine's program for m"):
        select_ops(names, "z", "m")


def test_random_images_are_seeded(model):
    a, source = engine_images(model, [0, 3], seed=5)
    b, _ = engine_images(model, [0, 3], seed=5)
    assert "random input codes" in source and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == tuple(model.input_shape) and not np.array_equal(a[0], a[1])


def _record(logits, golden, counters, pred):
    op = {"name": "fc", "start": 1, "end": 9, "start_predicted": 1, "end_predicted": 9, "cycles": 9,
          "cycles_predicted": 9, "counters": counters, "counters_predicted": pred}
    im = {"logits": logits, "golden": golden, "ref": golden, "ops": [op], "cycles_measured": 10,
          "cycles_predicted": 10, "mismatches": []}
    return {"images": [im], "exact_cycles": True, "cycles_measured": 10, "cycles_predicted": 10, "wall_s": 0.1,
            "wall_s_per_image": [0.1], "python_wakeups": 7}


def test_report_rechecks_the_records(tmp_path):
    good = CaseResult("images", "verilator", True, record=_record([1, 2], [1, 2], {"w_beats": 3}, {"w_beats": 3}))
    bad = CaseResult("back_pressure", "verilator", True,
                     record=_record([1, 2], [1, 3], {"w_beats": 3}, {"w_beats": 4}))
    run = RunResult("verilator", (good, bad), Path("log"), Path("xml"), None)
    ok, wrong = report_entries(run, model_name="m", design="eng", images=[7])
    assert ok["passed"] and ok["name"] == "m/images" and ok["images"][0]["image"] == 7
    assert not wrong["passed"] and wrong["mismatches"] == 2  # the testbench saw nothing, the re-check did
    assert any("logits [1, 2], golden [1, 3]" in ln for ln in wrong["mismatch_lines"])
    write_report(tmp_path / "verify.json", entries=[ok], model={}, design={}, images={}, tools={})
    data = json.loads((tmp_path / "verify.json").read_text())
    assert data["format"] == REPORT_FORMAT and data["tests"] == [ok]
