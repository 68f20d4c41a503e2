"""The whole engine with two weight buffers (hwsim.engine rule 2: tile loads overlap steps) in the Amaranth
simulator: logits == golden, cycles and every counter == hwsim, with stalls (gaps on every input, w included,
and o back-pressure) and a reset in the middle; the bank wait's mutant is caught."""

import numpy as np
import pytest

from hwsim.compiler import compile_model
from hwsim.config import EngineConfig
from hwsim.engine import COUNTER_NAMES, EngineModel
from hwsim.reference import run_engine
from hwsim.samples import small_model
from quant.intmodel import golden
from rtl.engine.top import Build, Engine
from tests.hwsim.test_double_buffer import MODELS
from tests.rtl.engine.streams import simulate_engine


def _setup(case, seed, n_images=1, words=None):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    mopts, copts = MODELS[case]
    model = small_model(rng, **mopts)
    copts = {"weight_words": 75, **copts, **({} if words is None else {"weight_words": words})}
    cfg = EngineConfig(act_words=(64, 64, 64), max_k=256, weight_buffers=2, **copts)
    cm = compile_model(model, cfg)
    xs = [rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape) for _ in range(n_images)]
    wants = [golden.run_codes(model, x[None])[model.output.name][0].reshape(-1) for x in xs]
    for x, want in zip(xs, wants):
        assert np.array_equal(run_engine(cm.program, cm.weights, x).logits, want)
    return cfg, cm, xs, wants, EngineModel(cfg).estimate(model)


def _check(got, est, want):
    assert np.array_equal(got["logits"], want)
    assert [(o["start"], o["end"]) for o in got["ops"]] == [(l.start, l.end) for l in est.layers]
    for op, layer in zip(got["ops"], est.layers):
        assert {k: op[k] for k in COUNTER_NAMES} == layer.as_dict(), layer.name
    assert got["total_cycles"] == est.total_cycles


@pytest.mark.parametrize("case, words", [(c, None) for c in range(len(MODELS))] + [(0, 64), (2, 64)])
def test_engine_equals_golden_and_hwsim(case, words):
    """Halves of 37 and 9 words (an add forms a word's address), and of 32 (a concatenation)."""
    cfg, cm, xs, wants, est = _setup(case, 950 + case, words=words)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs)
    _check(got, est, wants[0])


def test_missing_bank_wait_is_caught():
    """Case 3 (one step, one parameter beat a tile): without the wait a tile's parameters overwrite the bank
    the drain still reads for the tile two before it."""
    cfg, cm, xs, wants, est = _setup(3, 953)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY, mutation="no_bank_wait"), cm, xs)
    assert not np.array_equal(got["logits"], wants[0])


@pytest.mark.parametrize("case", [0, 3])
def test_stalls_reset_and_a_second_image(case):
    cfg, cm, xs, wants, est = _setup(case, 960 + case, n_images=2)
    got = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs, seed=960 + case,
                          reset_at=est.total_cycles // 2)
    for g, want in zip(got, wants):
        assert np.array_equal(g["logits"], want)
        for op, layer in zip(g["ops"], est.layers):  # stalls change the cycles, nothing else
            assert {k: op[k] for k in COUNTER_NAMES if k != "cycles"} == \
                {k: v for k, v in layer.as_dict().items() if k != "cycles"}, layer.name
    assert got[0]["total_cycles"] > est.total_cycles
    clean = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs)
    _check(clean[0], est, wants[0])
    assert [(o["start"], o["end"]) for o in clean[1]["ops"]] == \
        [(l.start + est.total_cycles, l.end + est.total_cycles) for l in est.layers]


def test_cli_generate_two_buffers(tmp_path, capsys):
    """``generate --model --weight-buffers 2``: the buffer holds two of the largest tile (memory map and
    metadata); without --model the field goes into the config; with --block it is refused in one line."""
    from quant.intmodel.artifact import save_int_model
    from rtl.design import read_design
    from scripts.cli import main

    model = small_model(np.random.default_rng(7), c0=1, h=4, w=4, c1=2, bits=4)
    save_int_model(model, tmp_path / "small")
    argv = ["generate", "--model", str(tmp_path / "small"), "--rows", "2", "--cols", "2"]
    names = []
    for wb in (1, 2):
        assert main(argv + ["--weight-buffers", str(wb), "-o", str(tmp_path / f"g{wb}")]) == 0
        (v,) = (tmp_path / f"g{wb}").glob("*.v")
        d = read_design(v.with_suffix(".json"))
        assert d.config.weight_buffers == wb
        peak = d.memory_map["weights"]["peak_words"]
        assert d.config.weight_words == (peak if wb == 1 else 2 << (peak - 1).bit_length())
        assert ("weight_buffers" in json_config(v)) == (wb == 2)
        names.append(d.name)
    assert names[0] != names[1]
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--weight-buffers", "2",
                 "-o", str(tmp_path / "c")]) == 0
    (v,) = (tmp_path / "c").glob("*.v")
    assert read_design(v.with_suffix(".json")).config.weight_buffers == 2
    capsys.readouterr()
    assert main(["generate", "--block", "pe", "--rows", "1", "--cols", "1", "--bits", "4", "--weight-buffers", "2",
                 "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weight-buffers: for the engine" in err[0], err


def json_config(verilog) -> dict:
    import json

    return json.loads(verilog.with_suffix(".json").read_text())["config"]


def test_verify_request_takes_the_buffers():
    from pathlib import Path

    from verification.engine_verify import VerifyRequest

    with pytest.raises(ValueError, match="--weight-buffers must be 1 or 2, not 3"):
        VerifyRequest(model_dir=Path("m"), out=Path("o"), weight_buffers=3)
    with pytest.raises(ValueError, match="--weight-buffers 2: the engine of --design"):
        VerifyRequest(model_dir=Path("m"), out=Path("o"), design=Path("d.json"), weight_buffers=2)
