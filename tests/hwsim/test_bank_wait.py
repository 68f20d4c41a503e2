"""Rule 2's bank wait with one weight buffer (hwsim.engine): a conv tile's parameter beats (``w`` beats, or
resident store reads) wait until the drain has read the bank's previous tile (two tiles before) for the last
time.  It binds only where tiles are short (small ``S``, few pixels, a long drain); there the closed form and
the reference agree with it, and the schedule is later than without it."""

import numpy as np
import pytest

from hwsim.compiler import Op, compile_model
from hwsim.config import EngineConfig
from hwsim.engine import EngineModel
from hwsim.reference import load_store, run_engine
from hwsim.samples import small_model
from quant.intmodel import golden

#: (seed, model options, config options), each with a layer where the wait binds: the fc layer (one pixel,
#: ``S`` of 1 to 2 words) streamed and resident, with pixel tiles of 2 and 4; and a resident stem conv of four
#: pixels in one pixel tile of 4.  The first is the case found in the RTL (cols 16, so ``D`` = 3).
CASES = [
    (905, dict(c0=2, h=2, w=2, c1=3, k1=1, p1=0, classes=13), dict(rows=4, cols=16, weight_words=18)),
    (31, dict(c0=1, h=3, w=3, c1=4, k1=1, p1=0, classes=9), dict(rows=4, cols=16, weights="resident")),
    (2, dict(c0=1, h=2, w=2, c1=2, k1=1, p1=0, classes=12), dict(rows=3, cols=16, pixel_tile=2)),
    (36, dict(c0=1, h=3, w=3, c1=1, k1=1, p1=0, classes=8), dict(rows=3, cols=16, pixel_tile=4)),
    (135, dict(c0=2, h=2, w=2, c1=6, k1=1, p1=0, classes=3), dict(rows=1, cols=16, weights="resident", pixel_tile=4)),
]


def setup_case(seed, mopts, copts):
    """The model, its engine config, compiled program, one image and its golden logits."""
    rng = np.random.default_rng(seed)
    model = small_model(rng, bits=8, **mopts)
    cfg = EngineConfig(**{"act_words": (64, 64, 64), "weight_words": 256, "max_k": 256, "bits": 8, **copts})
    cm = compile_model(model, cfg)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    want = golden.run_codes(model, x[None])[model.output.name][0].reshape(-1)
    return model, cfg, cm, x, want


def no_wait_end(cfg, program, op, start):
    """A conv operation's last event without the bank wait: each tile's load right after the previous tile's
    last step, its first pixel tile's last step gated only by the previous tile's shadow (rules 2-4)."""
    dst = program.tensors[op.dst]
    P, S, tp = dst.pixels, op.steps, cfg.pixel_tile
    n0, n_last = min(tp, P), P - (-(-P // tp) - 1) * tp
    n_load = op.param_beats + (0 if cfg.resident else S)
    last, rt = None, 0
    for t in range(op.tiles):
        rt = min(op.rows, dst.channels - t * op.rows)
        first = start + n_load if last is None else last + 1 + n_load
        pl = first + S * n0 - 1 if last is None else max(first + S * n0 - 1, last + n_last * op.rows)
        for q in range(1, -(-P // tp)):
            n_q = min(tp, P - q * tp)
            pl += max(S * n_q, tp * rt)
        last = pl
    return last + cfg.step_latency + n_last * rt + cfg.requant_latency


def check_closed_form_and_reference(model, cfg, cm, x, want):
    """Closed form == reference (every operation's cycles and counters), logits == golden; the conv
    operations where the wait binds (they end later than :func:`no_wait_end`)."""
    est = EngineModel(cfg).estimate(model)
    store = load_store(cm.program, cm.weights) if cfg.resident else None
    run = run_engine(cm.program, cm.weights, x, store=store)
    assert [l.as_dict() for l in run.ops] == [l.as_dict() for l in est.layers]
    assert [(l.start, l.end) for l in run.ops] == [(l.start, l.end) for l in est.layers]
    assert run.totals() == est.totals()
    assert np.array_equal(run.logits, want)
    bound = []
    for op, layer in zip(cm.program.ops, est.layers):
        if op.op == Op.CONV:
            free = no_wait_end(cfg, cm.program, op, layer.start)
            assert layer.end >= free, op.name
            if layer.end > free:
                bound.append(op.name)
    return bound


@pytest.mark.parametrize("case", range(len(CASES)))
def test_closed_form_equals_reference_where_the_wait_binds(case):
    seed, mopts, copts = CASES[case]
    bound = check_closed_form_and_reference(*setup_case(seed, mopts, copts))
    assert ("stem" if case == 4 else "fc") in bound


def test_random_small_models():
    """Random shapes (1x1 stems, small maps, 1-4 rows, cols 4 or 16), streamed and resident, pixel tiles of
    1, 2, 4: closed form == reference everywhere, and the wait binds in a good share of them."""
    bound = 0
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        h = int(rng.integers(2, 5))
        mopts = dict(c0=int(rng.integers(1, 3)), h=h, w=h, c1=int(rng.integers(1, 7)), k1=1, p1=0,
                     classes=int(rng.integers(2, 14)))
        copts = dict(rows=int(rng.integers(1, 5)), cols=int(rng.choice([4, 16])),
                     weights=("streamed", "resident")[seed % 2], pixel_tile=int(rng.choice([1, 2, 4])))
        print(seed, mopts, copts)
        bound += bool(check_closed_form_and_reference(*setup_case(1000 + seed, mopts, copts)))
    assert bound >= 8, bound


def test_shipped_shapes_keep_their_cycles():
    """LeNet-5-BN at 4x4 W8 (streamed and resident) and ResNet-20 at 16x16: the wait never binds there."""
    from hwsim.sizing import size_engine
    from tests.hwsim import models

    for model, rc in ((models.random_lenet(np.random.default_rng(5), "fixed"), 4),
                      (models.random_resnet20(np.random.default_rng(6)), 16)):
        for weights in ("streamed", "resident"):
            cfg, cm = size_engine(model, rows=rc, cols=rc, weights=weights)
            est = EngineModel(cfg).estimate(model)
            for op, layer in zip(cm.program.ops, est.layers):
                if op.op == Op.CONV:
                    assert layer.end == no_wait_end(cfg, cm.program, op, layer.start), (weights, op.name)
