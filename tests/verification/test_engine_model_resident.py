"""The testbench's checker with resident weights (no simulator): the load phase, then an image on the store."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import signed

from hwsim.compiler import compile_model
from hwsim.config import EngineConfig
from hwsim.engine import EngineModel
from hwsim.reference import load_store, run_engine
from hwsim.samples import small_model
from rtl.engine.top import COUNTERS, desc_layout, encode_load, encode_program, w_beats, x_beats
from rtl.layout import Payload
from verification.engine_model import ObservedRun, check_image, check_load, flat_values

SEED = 20261203
CFG = EngineConfig(rows=2, cols=2, bits=5, mult_rows=1, act_words=(64, 64, 64), weight_words=256, max_k=128,
                   weights="resident")


def test_checker_on_a_reference_load_and_image():
    """Feed the model what a perfect DUT shows (the reference's numbers, the image after a load of N beats);
    then corrupt one load beat: the load and the image's logits are reported."""
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    model = small_model(rng, c0=2, h=4, w=4, c1=3, bits=5)
    cm = compile_model(model, CFG)
    p = cm.program
    est = EngineModel(CFG).estimate(model)
    prog = Payload.of(desc_layout(CFG), stream="prog")
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    ld = load_store(p, cm.weights)
    ref = run_engine(p, cm.weights, x, store=ld)
    n = ld.counters["w_beats"]

    def observe(w):
        run = ObservedRun(model=model, compiled=cm, prog_payload=prog,
                          o_payload=Payload.of(signed(CFG.out_bits + 1), "o", stream="o"))
        run.loading = True
        t0 = 100
        run.on_prog(prog.pack(flat_values(encode_load(p))), t0)
        for b in w:
            run.on_w(b, 0)
        acc = {**dict.fromkeys(COUNTERS, 0), "prog_beats": 1, "w_beats": n, "wbuf_writes": n}
        run.on_op_done(t0 + n, {"op_index": 0, "cycles": n}, dict(acc))
        at = n + 1  # the image's cycle 0
        for i, b in enumerate(encode_program(p)):
            run.on_prog(prog.pack(flat_values(b)), t0 + at + (ref.ops[i].start - 1 if i else 0))
        xs = x_beats(p, x)
        for j, b in enumerate(xs):
            run.on_x(b, t0 + at + 1 + j)
        for o in ref.ops:
            for k, v in o.as_dict().items():
                if k != "cycles":
                    acc[k] = acc.get(k, 0) + v
            run.on_op_done(0, {"op_index": len(run.ops), "cycles": at + o.end},
                           {**acc, "prog_beats": 1 + len(p.ops), "x_beats": len(xs)})
        for i, v in enumerate(ref.logits):
            run.on_o(int(v) & ((1 << (CFG.out_bits + 1)) - 1), t0 + at + ref.ops[-1].end - len(ref.logits) + 1 + i)
        return run

    good = observe(w_beats(p, cm.weights))
    assert check_load(good, est, exact_cycles=True)["mismatches"] == []
    img = check_image(good, 0, est, exact_cycles=True)
    assert img["mismatches"] == [] and img["cycles_measured"] == est.total_cycles
    assert [op["start"] for op in img["ops"]] == [n + 1 + l.start for l in est.layers]
    corrupt = w_beats(p, cm.weights)
    corrupt[0] ^= 1
    bad = observe(corrupt)
    assert "w: the observed load differs from the compiled weight stream" in check_load(bad, est, exact_cycles=True)[
        "mismatches"]
    assert "w: the observed weight stream differs from the compiled one" in check_image(
        bad, 0, est, exact_cycles=True)["mismatches"]
