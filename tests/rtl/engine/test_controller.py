"""The controller against a reference of what it loads and issues: operation 0, a padded conv of two tiles.

The controller runs with the real address generator and memories around it
(an activation region loaded through ``xw``, the weight buffer through
``wbuf_w``); the image, weight and program beats come with random gaps, the
array's ``i`` stream is taken with random back-pressure, and one run is reset
in the middle.  Reference: every step of :func:`addrgen_ref`'s passes, the
image word (or the pad value) and the tile's weight word it reads, and the
parameter beats in the tile's bank.
"""

import random

import pytest
from amaranth.hdl import Module, Mux
from amaranth.lib import memory, wiring

from hwsim.compiler import Unit
from hwsim.config import EngineConfig
from quant.base.intops import RequantMode
from rtl.engine.addrgen import AddrGen, addrgen_command, addrgen_ref
from rtl.engine.array import array_step_layout
from rtl.engine.controller import Controller
from hwsim.descriptor import DIM_BITS, addr_bits
from tests.rtl.engine.streams import run

CFG = EngineConfig(rows=2, cols=2, bits=4, max_k=16, act_words=(16, 16), weight_words=8, requant=("fixed",))
H = W = 2
IN_C, OUT_C, ROWS_U, PAD_VALUE = 3, 3, 2, 5
G = -(-IN_C // CFG.cols)
CMD = addrgen_command(H, W, G, (2, 2), 1, 1)
STEPS, TILES = 4 * G, -(-OUT_C // ROWS_U)
PARAM_BEATS = CFG.param_beats(RequantMode.FIXED, CFG.rows)
DESC = {"op": 0, "last": 1, "src0": 1, "in_words": H * W * G, "ag": CMD, "in_c": IN_C, "in_g": G, "out_c": OUT_C,
        "out_g": -(-OUT_C // CFG.cols), "pixels": 9, "tiles": TILES, "rows_u": ROWS_U, "steps": STEPS,
        "param_beats": PARAM_BEATS, "pad_value": PAD_VALUE}


def _ref(gen, image, weights):
    """The array steps (dicts of the step layout) of the operation: per tile, every address generator step."""
    cols, b = CFG.cols, CFG.bits
    out = []
    for t in range(TILES):
        for addr, s, g, last, _ in addrgen_ref(gen, [CMD]):
            if addr is None:
                x = [PAD_VALUE if g * cols + n < IN_C else 0 for n in range(cols)]
            else:
                x = [(image[addr] >> (n * CFG.act_bits)) & ((1 << CFG.act_bits) - 1) for n in range(cols)]
            word = weights[t][s]
            w = [[(word >> ((r * cols + n) * b)) & ((1 << b) - 1) for n in range(cols)] for r in range(CFG.rows)]
            out.append({"x": x, "w": w, "first": int(s == 0), "last": last})
    return out


def _control(image, weights, params, *, seed=None, reset_at=None):
    """The controller over the operation: the array steps it sent, its banks and ``op_done`` count."""
    ctrl = Controller(config=CFG, max_ops=2)
    top = Module()
    top.submodules.ctrl = ctrl
    top.submodules.ag = ag = AddrGen(addr_bits=addr_bits(CFG), dim_bits=DIM_BITS)
    top.submodules.region = region = memory.Memory(shape=CFG.act_word_bits, depth=16, init=[])
    top.submodules.wbuf = wbuf = memory.Memory(shape=CFG.weight_word_bits, depth=CFG.weight_words, init=[])
    wiring.connect(top, ctrl.cmd, ag.cmd)
    wiring.connect(top, ag.o, ctrl.step)
    wiring.connect(top, ctrl.wbuf_w, wbuf.write_port())
    wiring.connect(top, ctrl.wbuf_r, wbuf.read_port())
    rp, wp = region.read_port(), region.write_port(granularity=CFG.act_bits)
    top.d.comb += [rp.addr.eq(ctrl.rd.addr), rp.en.eq(ctrl.rd.en), ctrl.rd.x.eq(rp.data),
                   wp.addr.eq(ctrl.xw.addr), wp.data.eq(ctrl.xw.data), wp.en.eq(Mux(ctrl.xw.en, ctrl.xw.mask, 0))]
    rngs = [None] * 4 if seed is None else [random.Random(f"{seed}/{k}") for k in range(4)]
    w_beats = [v for t in range(TILES) for v in (*weights[t], *params[t])]
    arr = ctrl.adder
    res = {"steps": [], "op_done": 0, "ag": ag}
    n_steps = TILES * 9 * STEPS

    async def main(ctx):
        cycles, done_at = 0, None
        ctx.set(ctrl.vec.ready, 1)
        async for _, _, av, ar, ap, od in ctx.tick().sample(arr.valid, arr.ready, arr.payload, ctrl.events.op_done):
            if av and ar:
                res["steps"].append(ap.as_value().value)
            res["op_done"] += od
            cycles += 1
            ctx.set(ctrl.done, 0)
            if len(res["steps"]) == n_steps and done_at is None:
                done_at = cycles
                ctx.set(ctrl.done, 1)  # the writer's: the operation's last output is written
            if cycles > 8 * n_steps or (done_at is not None and cycles > done_at + 3):
                break
        res["banks"] = [ctx.get(ctrl.banks[k]) for k in range(2)]
        res["fetching"] = ctx.get(ctrl.prog.ready)

    run(top, [(ctrl.prog, [DESC], rngs[0]), (ctrl.x, image, rngs[1]), (ctrl.w, w_beats, rngs[2])],
        [(arr, rngs[3])], main, reset_at=reset_at)
    return res


@pytest.mark.parametrize("seed, reset_at", [(None, None), (1, None), (2, 40)])
def test_loads_and_issues_like_the_reference(seed, reset_at):
    print("seed", seed)
    rng = random.Random(seed)
    image = [rng.randrange(1 << CFG.act_word_bits) for _ in range(H * W * G)]
    weights = [[rng.randrange(1 << CFG.weight_word_bits) for _ in range(STEPS)] for _ in range(TILES)]
    params = [[rng.randrange(1 << CFG.weight_word_bits) for _ in range(PARAM_BEATS)] for _ in range(TILES)]
    res = _control(image, weights, params, seed=seed, reset_at=reset_at)
    layout = array_step_layout(CFG, Unit.ADDER)
    assert res["steps"] == [layout.const(s).as_value().value for s in _ref(res["ag"], image, weights)]
    assert res["op_done"] == 1 and res["fetching"] == 1
    beats = lambda t: sum(v << (k * CFG.weight_word_bits) for k, v in enumerate(params[t]))  # noqa: E731
    assert res["banks"] == [beats(0), beats(1)]


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not int$"):
        Controller(config=1)
    with pytest.raises(ValueError, match="^max_ops must be an integer in 1..256, not 0$"):
        Controller(config=CFG, max_ops=0)
