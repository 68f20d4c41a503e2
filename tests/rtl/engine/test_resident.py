"""The whole engine with resident weights (hwsim.engine rule 7) in the Amaranth simulator: one load phase,
then several images with only prog, x and o; logits == golden, the load phase's and every image's cycles and
counters == hwsim, with stalls (gaps on w during the load) and a reset in the middle."""

import numpy as np
import pytest

from hwsim.compiler import compile_model
from hwsim.config import EngineConfig
from hwsim.engine import COUNTER_NAMES, EngineModel
from hwsim.reference import load_store, run_engine
from hwsim.samples import small_model
from quant.intmodel import golden
from rtl.engine.top import Build, Engine
from tests.rtl.engine.streams import simulate_engine

CASES = [
    (dict(c0=2, h=4, w=4, c1=3, bits=6), dict(rows=2, cols=2, bits=6, mult_rows=1)),
    (dict(c0=1, h=5, w=4, c1=5, k1=3, s1=2, p1=1, bits=5, stem="conv", mode="threshold", pool="avgpool",
          pool_pad=1, head="linear", classes=3),
     dict(rows=3, cols=2, bits=5, mult_rows=2, requant=("fixed", "threshold"))),
]


def _setup(seed, mopts, copts, n_images=2):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = small_model(rng, **mopts)
    cfg = EngineConfig(act_words=(64, 64, 64), weight_words=256, max_k=256, weights="resident", **copts)
    cm = compile_model(model, cfg)
    xs = [rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape) for _ in range(n_images)]
    wants = [golden.run_codes(model, x[None])[model.output.name][0].reshape(-1) for x in xs]
    est = EngineModel(cfg).estimate(model)
    store = load_store(cm.program, cm.weights)
    for x, want in zip(xs, wants):
        assert np.array_equal(run_engine(cm.program, cm.weights, x, store=store).logits, want)
    assert store.counters == est.load.as_dict()
    return model, cfg, cm, xs, wants, est


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("tp", [1, 8])
def test_two_images_after_one_load(case, tp):
    """... also with pixel tiles of 8 (hwsim.engine rule 3: a resident tile's word s read once per pixel tile)."""
    mopts, copts = CASES[case]
    model, cfg, cm, xs, wants, est = _setup(800 + case, mopts, dict(copts, pixel_tile=tp))
    got = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs)
    load = est.load
    for k, (g, want) in enumerate(zip(got, wants)):
        assert np.array_equal(g["logits"], want)
        assert g["load"] == load.as_dict()
        at = load.cycles + k * est.total_cycles  # the image's cycle 0
        assert [(o["start"] - at, o["end"] - at) for o in g["ops"]] == [(l.start, l.end) for l in est.layers]
        for op, layer in zip(g["ops"], est.layers):
            assert {n: op[n] for n in COUNTER_NAMES} == layer.as_dict(), layer.name
        assert g["total_cycles"] == at + est.total_cycles
        assert g["prog_beats"] == 1 + (k + 1) * est.prog_beats


@pytest.mark.slow
def test_stalls_and_a_reset_keep_the_store():
    """Gaps on every input (w included, during the load) and o back-pressure, a reset in the middle of the
    first image: the clean run after the reset takes no load (the store survives a reset) and still equals
    golden, its counters hwsim's; a second run reloads after the reset."""
    model, cfg, cm, xs, wants, est = _setup(810, *CASES[1])
    at = est.load.cycles + est.total_cycles // 2
    kept = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs, seed=810, reset_at=at,
                           reload=False)
    for g, want in zip(kept, wants):
        assert np.array_equal(g["logits"], want) and g["load"] == {}
        for op, layer in zip(g["ops"], est.layers):
            assert {n: op[n] for n in COUNTER_NAMES if n != "cycles"} == \
                {n: v for n, v in layer.as_dict().items() if n != "cycles"}, layer.name
    assert kept[0]["total_cycles"] > est.total_cycles
    again = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, xs, seed=811,
                            reset_at=est.load.cycles // 2)
    for g, want in zip(again, wants):
        assert np.array_equal(g["logits"], want)
        assert {k: v for k, v in g["load"].items() if k != "cycles"} == \
            {k: v for k, v in est.load.as_dict().items() if k != "cycles"}


def test_wrong_weight_base_is_caught():
    """A controller that reads the store one word past each operation's base: the logits differ from golden
    (the counters alone would not show it: the mutant reads as often, from the wrong words)."""
    model, cfg, cm, xs, wants, est = _setup(820, *CASES[0], n_images=1)
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY, mutation="wbase_plus_one"), cm, xs)
    assert not np.array_equal(got["logits"], wants[0])


def test_cli_generate_resident(tmp_path, capsys):
    """``generate --model --weights``: resident sizes the store to the whole w stream (memory map and metadata
    say so); forced resident beyond the part's block RAMs and --part without --model are refused in one line."""
    from quant.intmodel.artifact import save_int_model
    from rtl.design import read_design
    from scripts.cli import main

    model = small_model(np.random.default_rng(7), c0=1, h=4, w=4, c1=2, bits=4)
    save_int_model(model, tmp_path / "small")
    argv = ["generate", "--model", str(tmp_path / "small"), "--rows", "2", "--cols", "2"]
    assert main(argv + ["--weights", "resident", "--part", "ecp5-25k", "-o", str(tmp_path / "g")]) == 0
    (v,) = (tmp_path / "g").glob("*.v")
    d = read_design(v.with_suffix(".json"))
    store = compile_model(model, d.config).program.store_words
    assert d.config.resident and d.config.weight_words == store == d.memory_map["weights"]["store_words"]
    assert d.model["w_beats"] == 0  # per image
    capsys.readouterr()
    big = small_model(np.random.default_rng(8), c0=16, h=8, w=8, c1=64, bits=8)
    save_int_model(big, tmp_path / "big")
    bad = ["generate", "--model", str(tmp_path / "big"), "--rows", "1", "--cols", "1", "--weights", "resident"]
    assert main(bad + ["--part", "ice40-up5k", "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resident weights do not fit: the weight store needs" in err[0], err
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--part", "ecp5-25k",
                 "-o", str(tmp_path / "c")]) == 1
    assert "--part size an engine to --model" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [830, 831])
def test_store_equals_numpy_after_a_load_with_gaps(seed):
    """The load phase alone, with random gaps on w and prog: the weight store's words equal the reference's store
    (hwsim.reference.load_store, packed as the w beats), word for word, and the load's counters hwsim's."""
    from hwsim.engine import LOAD_COUNTERS
    from rtl.engine.top import COUNTERS, encode_load, w_beats
    from tests.rtl.engine.streams import _rngs, run

    model, cfg, cm, _, _, est = _setup(seed, *CASES[seed % 2], n_images=1)
    e = Engine(config=cfg, max_ops=8, build=Build.VERIFY)
    ws = w_beats(cm.program, cm.weights)
    ref = load_store(cm.program, cm.weights)
    b = cfg.bits
    packed = [p if isinstance(p, int) else sum((int(v) & ((1 << b) - 1)) << (k * b)
                                               for k, v in enumerate(np.asarray(p).reshape(-1)))
              for p in ref.store]
    assert packed == ws  # the reference's store is the w stream, beat i at address i
    rng_p, rng_w = _rngs(seed, 2)
    got = {}

    async def main(ctx):
        async for _, _, done in ctx.tick().sample(e.op_done):
            if done:
                got.update({n: ctx.get(getattr(e, n)) for n in COUNTERS})
                await ctx.tick()
                got["store"] = [ctx.get(e.core.wbuf.data[i]) for i in range(cfg.weight_words)]
                return

    run(e, [(e.prog, [encode_load(cm.program)], rng_p), (e.w, ws, rng_w)], [(e.o, None)], main)
    assert got["store"][: len(ws)] == ws and not any(got["store"][len(ws):])
    assert {n: got[n] for n in LOAD_COUNTERS if n != "cycles"} == \
        {n: v for n, v in est.load.as_dict().items() if n != "cycles"}
    assert got["cycles"] >= est.load.cycles - 1  # the counter before the last beat's edge; gaps only add
