"""hwsim.energy: every counted access priced, by hand on a toy table; widths; regions."""

from __future__ import annotations

import pytest

from hwsim.tables import load_table
from tests.hwsim.models import tiny_engine_model


def test_engine_energy_by_hand(toy_scaled):
    """Every counter times its per-access cost, the costs worked out here from the toy table."""
    from hwsim.config import EngineConfig
    from hwsim.energy import ENGINE_COMPONENTS, Placement, engine_energy
    from hwsim.engine import EngineModel

    model = tiny_engine_model()
    cfg = EngineConfig(rows=2, cols=2, bits=8, max_k=8, requant=("fixed", "threshold"),
                       act_words=(4, 16), weight_words=8)
    assert (cfg.act_word_bits, cfg.weight_word_bits, cfg.tree_stages) == (16, 32, 1)
    place = Placement(input_region=0, srcs={"c1": (0,), "pool": (1,), "fc": (0,)},
                      dst={"c1": 1, "pool": 0, "fc": None})
    est = EngineModel(cfg).estimate(model)
    c1, pool, fc = (est.layer(n) for n in ("c1", "pool", "fc"))
    res = engine_energy(est, toy_scaled, prog_beat_bits=100, placement=place)
    # memories: R0 4 x 16 bits = 8 B (3 pJ/bit), R1 16 x 16 bits = 32 B (6 pJ/bit), weights 8 x 32 = 32 B
    r0, r1, wb = 3.0 * 16, 6.0 * 16, 6.0 * 32
    assert [res.memories[k]["pj_per_access"] for k in ("R0", "R1", "weights")] == pytest.approx([r0, r1, wb])
    acc = cfg.acc_bits
    # one adder step: 2x2 PEs x (9-bit subtract + 9-bit abs), per row one 8-bit tree add and one accumulate
    step = 4 * (9 / 8 + 9 / 8) + 2 * (8 / 8) + 2 * acc / 8
    step_regs = 2 * (2 * 8 + acc)  # term registers + row accumulators
    # fixed requant: a x 16 multiply (4 pJ at 8x8, quadratic), two adds + two clamp compares of sum_bits
    a = max(acc + 1, cfg.act_bits + 1 + (cfg.max_k - 1).bit_length())
    sum_bits = max(a + 16, cfg.n_bits) + 2
    fixed = 4.0 * a * 16 / 64 + 4 * sum_bits / 8
    thr = 255 * (acc + 1) / 8  # 2**8 - 1 compares of thr_bits
    lane = cfg.act_bits + 1 + (cfg.max_k - 1).bit_length()
    want = {
        "c1": dict(act_sram_pj=c1.act_reads * r0 + c1.act_writes * r1,
                   wbuf_sram_pj=(c1.wbuf_reads + c1.wbuf_writes) * wb, dram_pj=c1.w_beats * 32 * 100.0,
                   pe_pj=c1.busy_cycles * step, vector_pj=0.0, requant_pj=c1.requant_ops * fixed,
                   reg_pj=0.5 * (c1.busy_cycles * step_regs + c1.requant_ops * acc
                                 + (c1.w_beats - c1.wbuf_writes) * 32)),
        "pool": dict(act_sram_pj=pool.act_reads * r1 + pool.act_writes * r0, wbuf_sram_pj=0.0, dram_pj=0.0,
                     pe_pj=0.0, vector_pj=pool.busy_cycles * 2 * lane / 8, requant_pj=0.0,
                     reg_pj=0.5 * pool.busy_cycles * 2 * lane),
        "fc": dict(act_sram_pj=fc.act_reads * r0, wbuf_sram_pj=(fc.wbuf_reads + fc.wbuf_writes) * wb,
                   dram_pj=(fc.w_beats * 32 + fc.o_beats * 17) * 100.0, pe_pj=fc.busy_cycles * step,
                   vector_pj=0.0, requant_pj=fc.requant_ops * thr,
                   reg_pj=0.5 * (fc.busy_cycles * step_regs + fc.requant_ops * acc
                                 + (fc.w_beats - fc.wbuf_writes) * 32)),
    }
    assert (c1.act_writes, fc.act_writes, fc.o_beats) == (8, 0, 2)  # 4 pixels x 2 words (3 channels)
    for l, e in zip(est.layers, res.ops):
        assert e.as_dict() == pytest.approx(want[l.name]), l.name
    s = res.streams
    assert (s.act_sram_pj, s.dram_pj, s.reg_pj) == pytest.approx(
        (est.x_beats * r0, (est.x_beats * 16 + est.prog_beats * 100) * 100.0, 0.5 * est.prog_beats * 100))
    total = res.total
    assert total.total_pj == pytest.approx(sum(sum(w.values()) for w in want.values()) + s.total_pj)
    assert total.total_pj == pytest.approx(sum(getattr(total, c) for c in ENGINE_COMPONENTS))


def test_engine_energy_refusals(toy, toy_scaled):
    from hwsim.config import EngineConfig
    from hwsim.energy import engine_energy
    from hwsim.engine import EngineModel

    model = tiny_engine_model()
    cfg = EngineConfig(rows=2, cols=2, bits=8, max_k=8, requant=("fixed", "threshold"), act_words=(4, 16))
    est = EngineModel(cfg).estimate(model)
    with pytest.raises(ValueError, match=r"activation regions of different depths \[4, 16\] need the placement"):
        engine_energy(est, toy_scaled, prog_beat_bits=1)
    with pytest.raises(ValueError, match="has no SRAM size scaling"):
        engine_energy(est, toy, prog_beat_bits=1)


def test_engine_energy_monotonic_in_memory_size_and_adder_pe_cheaper(lenet_model):
    from hwsim.sizing import engine_config_for, mult_engine
    from hwsim.energy import engine_energy
    from hwsim.engine import EngineModel

    tab = load_table("45nm")
    totals = []
    for depth, wwords in ((1024, 128), (2048, 128), (4096, 128), (4096, 1024)):
        cfg = engine_config_for(lenet_model, rows=4, cols=4, act_words=(depth,) * 3, weight_words=wwords)
        est = EngineModel(cfg).estimate(lenet_model)
        totals.append(engine_energy(est, tab, prog_beat_bits=520).total)
    assert [t.act_sram_pj for t in totals[:3]] == sorted(t.act_sram_pj for t in totals[:3])
    assert totals[0].act_sram_pj < totals[1].act_sram_pj < totals[2].act_sram_pj
    assert totals[2].wbuf_sram_pj < totals[3].wbuf_sram_pj
    assert totals[0].pe_pj == totals[3].pe_pj and totals[0].dram_pj == totals[3].dram_pj
    cfg = engine_config_for(lenet_model, rows=4, cols=4)
    a = engine_energy(EngineModel(cfg).estimate(lenet_model), tab, prog_beat_bits=520).total
    m = engine_energy(EngineModel(mult_engine(cfg)).estimate(lenet_model), tab,
                      prog_beat_bits=520).total
    assert a.pe_pj < m.pe_pj and a.total_pj < m.total_pj
    assert (a.act_sram_pj, a.wbuf_sram_pj, a.dram_pj) == (m.act_sram_pj, m.wbuf_sram_pj, m.dram_pj)


def test_multiply_layers_of_the_adder_engine_are_charged_as_mults(resnet_model):
    from hwsim.sizing import engine_config_for, mult_engine
    from hwsim.energy import _cost, engine_energy, engine_step_units
    from hwsim.engine import EngineModel

    tab = load_table("45nm")
    cfg = engine_config_for(resnet_model, rows=8, cols=8)
    assert cfg.mult_rows == 4
    est = EngineModel(cfg).estimate(resnet_model)
    res = engine_energy(est, tab, prog_beat_bits=600)
    stem = est.layer("conv1")
    assert stem.unit == "mult"
    e = dict(zip((l.name for l in est.layers), res.ops))["conv1"]
    assert e.pe_pj == pytest.approx(stem.busy_cycles * _cost(engine_step_units(cfg, "mult", tab)))
    # the multiplier unit's step: 4 x 8 (b+1) x b multiplies, 4 trees and 4 mult_acc_bits accumulates
    units = engine_step_units(cfg, "mult", tab)
    assert units[0] == (tab.mult, (9, 8), 32.0) and units[-1] == (tab.add, cfg.mult_acc_bits, 4.0)
    mstep = engine_step_units(mult_engine(cfg), "mult", tab)
    assert mstep[0] == (tab.mult, (9, 8), 64.0)


def test_engine_tree_widths():
    from hwsim.energy import engine_tree

    assert engine_tree(1, 8, 1) == ([], [])
    assert engine_tree(4, 8, 1) == ([8, 8, 9], [])
    assert engine_tree(3, 8, 1) == ([8, 9], [])
    # 16 lanes, 2 stages: 4 levels, a register after the first 2 (4 sums of 10 bits)
    adds, regs = engine_tree(16, 8, 2)
    assert len(adds) == 15 and regs == [10] * 4 and adds[-1] == 11


def test_region_accesses_equal_the_reference(int_models):
    import numpy as np

    from hwsim.sizing import size_engine
    from hwsim.reference import run_engine

    from hwsim.energy import Placement, region_accesses
    from hwsim.engine import EngineModel

    seed = 8
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = int_models.lenet(rng, "fixed")
    cfg, compiled = size_engine(model, rows=4, cols=4)
    assert len(set(cfg.act_words)) > 1  # the regions differ: the placement matters
    place = Placement.from_program(compiled.program)
    est = EngineModel(cfg).estimate(model)
    reads, writes = [0] * cfg.regions, [0] * cfg.regions
    writes[place.input_region] += est.x_beats
    for l in est.layers:
        for r, (n_r, n_w) in region_accesses(l, place).items():
            reads[r] += n_r
            writes[r] += n_w
    lo, hi = compiled.program.tensors[compiled.program.input].lo, compiled.program.tensors[compiled.program.input].hi
    image = rng.integers(lo, hi + 1, model.input_shape)
    run = run_engine(compiled.program, compiled.weights, image)
    assert (reads, writes) == (list(run.region_reads), list(run.region_writes))
