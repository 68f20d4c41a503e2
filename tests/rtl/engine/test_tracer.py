"""The tracer (rule 6: a finished operation's output on o, lane by lane) against tracer_ref."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import memory

from hwsim.config import EngineConfig
from rtl.engine.tracer import Tracer, tracer_ref
from tests.rtl.engine.streams import run, stream_get


def _trace(cfg, words, pixels, out_g, **kw):
    """The tracer on a memory holding ``words``, started; the beats taken from ``o`` (:func:`run`'s
    ``seed``/``reset_at``)."""
    tr = Tracer(config=cfg)
    top = Module()
    top.submodules.tracer = tr
    top.submodules.mem = mem = memory.Memory(shape=cfg.act_word_bits, depth=len(words), init=words)
    rp = mem.read_port()
    top.d.comb += [rp.addr.eq(tr.raddr), rp.en.eq(tr.read), tr.data.eq(rp.data)]
    rng = None if kw.get("seed") is None else random.Random(kw["seed"])
    out = []

    async def main(ctx):
        ctx.set(tr.pixels, pixels)
        ctx.set(tr.out_g, out_g)
        while len(out) < pixels * out_g * cfg.cols:
            out.append(await stream_get(ctx, tr.o, rng))

    run(top, [], [], main, reset_at=kw.get("reset_at"), setup=((tr.start, 1), (tr.o.ready, 1),
                                                                (tr.pixels, pixels), (tr.out_g, out_g)))
    return out


@pytest.mark.parametrize("cols, act_bits, out_bits, pixels, out_g, seed, reset_at", [
    (2, 5, 8, 3, 2, None, None), (3, 4, 10, 4, 1, 11, None), (4, 8, 8, 2, 3, 12, 7), (1, 6, 6, 5, 2, 13, 3),
])
def test_sends_every_lane_of_every_word(cols, act_bits, out_bits, pixels, out_g, seed, reset_at):
    print("seed", seed)
    cfg = EngineConfig(rows=1, cols=cols, bits=4, act_bits=act_bits, out_bits=out_bits, max_k=16)
    rng = random.Random(seed)
    words = [rng.randrange(1 << cfg.act_word_bits) for _ in range(pixels * out_g + 2)]
    assert _trace(cfg, words, pixels, out_g, seed=seed, reset_at=reset_at) == tracer_ref(cfg, words, pixels, out_g)


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not int$"):
        Tracer(config=1)
