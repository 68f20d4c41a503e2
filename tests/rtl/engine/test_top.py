"""The whole engine in the Amaranth simulator: logits == golden, cycles and every counter == hwsim cp."""

import numpy as np
import pytest

from hwsim.engine import EngineModel
from hwsim.config import EngineConfig
from quant.intmodel import golden
from quant.intmodel.artifact import IntModel
from hwsim.compiler import compile_model
from hwsim.engine import COUNTER_NAMES
from hwsim.reference import run_engine
from hwsim.samples import small_model
from rtl.engine.top import Build, Engine
from tests.rtl.engine.streams import simulate_engine

CASES = [
    # (model options, config options)
    (dict(c0=2, h=4, w=4, c1=3, bits=6), dict(rows=2, cols=2, bits=6, mult_rows=1)),
    (dict(c0=1, h=5, w=4, c1=5, k1=3, s1=2, p1=1, bits=5, stem="conv", mode="threshold", pool="avgpool",
          pool_pad=1, head="linear", classes=3),
     dict(rows=3, cols=2, bits=5, mult_rows=2, requant=("fixed", "threshold"))),
    (dict(c0=3, h=4, w=3, c1=2, k1=2, p1=0, bits=4, pool="maxpool", pool_pad=1, head="adder_linear", classes=2),
     dict(rows=1, cols=4, bits=4, mult_rows=1)),
    (dict(c0=2, h=3, w=3, c1=4, k1=1, p1=0, bits=8, stem="conv", pool="avgpool", head="linear"),
     dict(rows=4, cols=3, bits=8, mult_rows=3)),
]


def _expect(model, cm, cfg, x):
    want = golden.run_codes(model, x[None])[model.output.name][0].reshape(-1)
    est = EngineModel(cfg).estimate(model)
    ref = run_engine(cm.program, cm.weights, x)
    assert np.array_equal(ref.logits, want)
    return want, est


def _check_ops(got, est):
    assert len(got["ops"]) == len(est.layers)
    for op, layer in zip(got["ops"], est.layers):
        assert (op["start"], op["end"]) == (layer.start, layer.end), layer.name
        assert {k: op[k] for k in COUNTER_NAMES} == layer.as_dict(), layer.name
    assert got["total_cycles"] == est.total_cycles
    assert (got["prog_beats"], got["x_beats"]) == (est.prog_beats, est.x_beats)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_engine_equals_golden_and_hwsim(case):
    seed = 300 + case
    _clean_run(seed, *CASES[case])


def _clean_run(seed, mopts, copts):
    """A random model (``mopts``) on the engine (``copts``): logits == golden, cycles and counters == hwsim."""
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, **mopts)
    cfg = EngineConfig(act_words=(64, 64, 64), weight_words=64, max_k=256, **copts)
    cm = compile_model(model, cfg)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    want, est = _expect(model, cm, cfg, x)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, [x])
    assert np.array_equal(got["logits"], want)
    _check_ops(got, est)
    return cfg, cm, x, want, est


@pytest.mark.slow
def test_back_pressure_reset_and_a_second_image():
    seed = 401
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, c0=2, h=4, w=4, c1=3, bits=6, mode="threshold", pool="avgpool", stem="conv")
    cfg = EngineConfig(rows=2, cols=2, bits=6, mult_rows=1, act_words=(64, 64, 64), weight_words=64, max_k=256,
                       requant=("fixed", "threshold"))
    cm = compile_model(model, cfg)
    xs = [rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape) for _ in range(2)]
    wants = [_expect(model, cm, cfg, x)[0] for x in xs]
    est = EngineModel(cfg).estimate(model)
    got = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs, seed=seed, reset_at=250)
    for g, want in zip(got, wants):
        assert np.array_equal(g["logits"], want)
        for op, layer in zip(g["ops"], est.layers):  # stalls change the cycles, nothing else
            assert {k: op[k] for k in COUNTER_NAMES if k != "cycles"} == \
                {k: v for k, v in layer.as_dict().items() if k != "cycles"}
    assert got[0]["total_cycles"] > est.total_cycles
    # without stalls the second image's program and image follow the first's last o beat: the schedule repeats
    clean = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs)
    _check_ops(clean[0], est)
    assert [(o["start"], o["end"]) for o in clean[1]["ops"]] == \
        [(l.start + est.total_cycles, l.end + est.total_cycles) for l in est.layers]
    assert clean[1]["total_cycles"] == 2 * est.total_cycles
    assert clean[1]["prog_beats"] == 2 * est.prog_beats


def test_all_multiplier_engine_runs_a_cnn():
    seed = 402
    print("seed", seed)
    rng = np.random.default_rng(seed)
    m = small_model(rng, c0=1, h=4, w=4, c1=2, bits=5, stem="conv", head="linear")
    cnn = IntModel(name="cnn", dataset="none", input=m.input, input_shape=m.input_shape,
                   layers=[m.layer("stem"), m.layer("pool").__class__(
                       name="pool", inputs=("stem",), in_shape=m.layer("stem").out_shape,
                       out_shape=m.layer("pool").out_shape, kernel=(2, 2), stride=2, padding=0),
                       m.layer("flatten"), m.layer("fc")])
    cfg = EngineConfig(rows=2, cols=2, bits=5, pe="mult", act_words=(64, 64), weight_words=64, max_k=256)
    cm = compile_model(cnn, cfg)
    x = rng.integers(cnn.input.lo, cnn.input.hi + 1, size=cnn.input_shape)
    want, est = _expect(cnn, cm, cfg, x)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=4, build=Build.VERIFY), cm, [x])
    assert np.array_equal(got["logits"], want)
    _check_ops(got, est)


@pytest.mark.parametrize("kwargs, message", [
    (dict(config=1), "config must be an EngineConfig, not int"),
    (dict(config=EngineConfig(rows=1, cols=1), max_ops=0), "max_ops must be an integer in 1..256, not 0"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        Engine(**kwargs)


@pytest.mark.parametrize("case", [0, 1])
def test_trace_sends_every_layer(case):
    """config.trace: every operation's output on o before the logits (rule 6), equal to golden's layer outputs;
    cycles and counters (the trace's reads and beats included) equal hwsim's."""
    from rtl.engine.top import trace_codes

    seed = 500 + case
    print("seed", seed)
    rng = np.random.default_rng(seed)
    mopts, copts = CASES[case]
    model = small_model(rng, **mopts)
    cfg = EngineConfig(act_words=(64, 64, 64), weight_words=64, max_k=256, trace=True, **copts)
    cm = compile_model(model, cfg)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    want, est = _expect(model, cm, cfg, x)
    ref = run_engine(cm.program, cm.weights, x)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, [x])
    assert np.array_equal(got["logits"], want)
    _check_ops(got, est)
    outs = golden.run_codes(model, x[None])
    names = [op.name for op in cm.program.ops[:-1]]
    assert sorted(got["traces"]) == sorted(names) == sorted(ref.traces)
    for name in names:
        assert got["traces"][name] == ref.traces[name], name
        assert np.array_equal(trace_codes(cm.program, name, got["traces"][name]), outs[name][0]), name
    plain = EngineModel(cfg.replace(trace=False)).estimate(model)
    assert est.total_cycles > plain.total_cycles


@pytest.mark.parametrize("rows, cols, mopts, copts, seed", [
    (8, 4, dict(c0=5, h=4, w=3, c1=9, bits=5, stem="conv", head="linear", mode="threshold"),
     dict(mult_rows=3, requant=("fixed", "threshold")), 601),
    (16, 16, dict(c0=3, h=3, w=3, c1=18, bits=4, pool="avgpool"), dict(mult_rows=16), 602),
])
def test_random_models_at_8x4_and_16x16(rows, cols, mopts, copts, seed):
    """Rows != cols, and the largest array: a tiny random model, with stalls and a reset in the middle, equals
    golden; the clean run's cycles and every counter equal hwsim's."""
    cfg, cm, x, want, est = _clean_run(seed, mopts, dict(rows=rows, cols=cols, bits=mopts["bits"], **copts))
    (stalled,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, [x], seed=seed,
                                 reset_at=est.total_cycles // 2)
    assert np.array_equal(stalled["logits"], want) and stalled["total_cycles"] > est.total_cycles


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("tp", [2, 8])
def test_pixel_tiles_equal_golden_and_hwsim(case, tp):
    """Weight reuse (config.pixel_tile, rules 3-4): logits == golden, cycles and every counter (the weight-buffer
    reads ceil(P / Tp) per step and tile) == hwsim."""
    mopts, copts = CASES[case]
    _clean_run(700 + 10 * case + tp, mopts, dict(copts, pixel_tile=tp))


def test_pixel_tiles_with_stalls_and_a_reset():
    """Pixel tiles of 8 under random gaps and back-pressure, reset in the middle: logits == golden, every counter
    but cycles == hwsim (the pixel tiles' weight reads included)."""
    mopts, copts = CASES[1]
    cfg, cm, x, want, est = _clean_run(801, mopts, dict(copts, pixel_tile=8))
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, [x], seed=801,
                             reset_at=est.total_cycles // 2)
    assert np.array_equal(got["logits"], want) and got["total_cycles"] > est.total_cycles
    for op, layer in zip(got["ops"], est.layers):
        assert {k: op[k] for k in COUNTER_NAMES if k != "cycles"} == \
            {k: v for k, v in layer.as_dict().items() if k != "cycles"}, layer.name


def test_bank_off_mutant_is_caught():
    """The address generator's test-only 'bank_off' mutant (each step's accumulator bank one too high) gives
    wrong logits: the whole-engine comparison with golden catches it."""
    mopts, copts = CASES[0]
    cfg, cm, x, want, _ = _clean_run(802, mopts, dict(copts, pixel_tile=2))
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY, mutation="bank_off"), cm, [x],
                             max_cycles=20_000)
    assert not np.array_equal(got["logits"], want)
