"""The engine testbench's model and codecs without a simulator: beats -> inputs are the inverses of the drivers'."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.config import EngineConfig
from hwsim.engine import EngineModel
from hwsim.compiler import compile_model
from hwsim.reference import run_engine
from hwsim.samples import small_model
from rtl.engine.top import desc_layout, encode_program, w_beats, x_beats
from amaranth.hdl import signed

from rtl.layout import Payload
from verification.engine_host import _mutant_config
from verification.engine_model import ObservedRun, check_image, flat_values, image_from_words, weights_from_beats

SEED = 20261202
CFG = EngineConfig(rows=2, cols=2, bits=5, mult_rows=1, requant=("fixed", "threshold"), act_words=(64, 64, 64),
                   weight_words=64, max_k=128)


@pytest.mark.parametrize("stem", ["adder_conv", "conv"])
def test_codecs_invert_the_drivers(stem):
    print("seed", SEED)
    rng = np.random.default_rng([SEED, len(stem)])
    model = small_model(rng, c0=2, h=4, w=4, c1=3, bits=5, stem=stem)
    cm = compile_model(model, CFG)
    p = cm.program
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    assert np.array_equal(image_from_words(p, x_beats(p, x)), x)
    ws = weights_from_beats(p, w_beats(p, cm.weights))
    assert np.array_equal(ws.words, cm.weights.words) and ws.params == cm.weights.params
    prog = Payload.of(desc_layout(CFG), stream="prog")
    assert sum(f.width for f in prog.fields) == desc_layout(CFG).size
    for beat in encode_program(p):
        flat = flat_values(beat)
        assert prog.unpack(prog.pack(flat)) == flat
    with pytest.raises(ValueError, match=r"^the program takes \d+ w beats per image, 3 were observed$"):
        weights_from_beats(p, [0, 0, 0])


def test_checker_on_a_reference_run_and_a_dropped_beat():
    """Feed the model what a perfect DUT would show (the reference's numbers); then drop one w beat."""
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    model = small_model(rng, c0=2, h=4, w=4, c1=3, bits=5)
    cm = compile_model(model, CFG)
    p = cm.program
    est = EngineModel(CFG).estimate(model)
    prog = Payload.of(desc_layout(CFG), stream="prog")
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    ref = run_engine(p, cm.weights, x)

    def observe(w):
        run = ObservedRun(model=model, compiled=cm, prog_payload=prog,
                          o_payload=Payload.of(signed(CFG.out_bits + 1), "o", stream="o"))
        # the streamed program: operation 0's beat in cycle 0, each later one the cycle before its operation
        for i, b in enumerate(encode_program(p)):
            run.on_prog(prog.pack(flat_values(b)), 100 + (ref.ops[i].start - 1 if i else 0))
        xs = x_beats(p, x)
        for j, b in enumerate(xs):
            run.on_x(b, 100 + 1 + j)
        for b in w:
            run.on_w(b, 0)
        acc = {}
        for o in ref.ops:
            for k, v in o.as_dict().items():
                acc[k] = acc.get(k, 0) + v
            run.on_op_done(100 + o.end, {"op_index": len(run.ops),
                                         "cycles": o.end},
                           {**acc, "prog_beats": len(p.ops), "x_beats": len(xs)})
        for n, v in enumerate(ref.logits):
            run.on_o(int(v) & ((1 << (CFG.out_bits + 1)) - 1), 100 + ref.ops[-1].end - len(ref.logits) + 1 + n)
        return run

    good = check_image(observe(w_beats(p, cm.weights)), 0, est, exact_cycles=True)
    assert good["mismatches"] == [] and good["cycles_measured"] == est.total_cycles
    wb = w_beats(p, cm.weights)
    with pytest.raises(ValueError, match="w beats per image"):
        check_image(observe(wb[:5] + wb[6:]), 0, est, exact_cycles=True)
    corrupt = list(wb)
    corrupt[3] ^= 1 << (CFG.bits - 1)
    bad = check_image(observe(corrupt), 0, est, exact_cycles=True)
    assert "w: the observed weight stream differs from the compiled one" in bad["mismatches"]


def test_mutant_config_is_one_bit_short():
    m = _mutant_config(CFG)
    assert m.acc_bits == CFG.acc_bits - 1 and m.max_k == 64
