"""hwsim.energy and hwsim.tables: table files, width scaling, hand-computed energy sums, FPGA areas."""

from __future__ import annotations

import json

import pytest

from hwsim.cli import resolve_table
from hwsim.config import ArrayConfig
from hwsim.energy import array_area, layer_energy, pe_area, pe_op_energy_pj
from hwsim.tables import fpga_table, load_table, load_table_file
from hwsim.synthfile import SYNTH_KEYS, read_synth_json
from hwsim.layers import LayerShape
from hwsim.mapping import map_layer

TOY = """
name = "toy"
title = "round numbers"
source = "made up for the test"
area_unit = "um2"
[add]
ref_bits = 8
energy_pj = 1.0
area = 10.0
energy_width_exponent = 1.0
area_width_exponent = 1.0
[mult]
ref_bits = 8
energy_pj = 4.0
area = 100.0
energy_width_exponent = 2.0
area_width_exponent = 2.0
[register]
energy_pj_per_bit = 0.5
area_per_bit = 2.0
[sram]
energy_pj_per_bit = 3.0
[dram]
energy_pj_per_bit = 100.0
[adder_pe]
abs_in_adds = 1.0
"""


@pytest.fixture
def toy(tmp_path):
    p = tmp_path / "toy.toml"
    p.write_text(TOY)
    return load_table_file(p)


def test_width_scaling_from_the_file(toy):
    assert toy.add.energy(16) == 2.0  # linear
    assert toy.mult.energy(16) == 16.0  # quadratic
    assert toy.mult.area_of(4) == 25.0


def test_builtin_tables_reproduce_their_sources():
    t45 = load_table("45nm")
    assert t45.add.energy(32) == pytest.approx(0.1)
    assert t45.add.energy(16) == pytest.approx(0.05)
    assert t45.add.energy(8) == pytest.approx(0.03, abs=0.006)  # measured 0.03, linear model 0.025
    assert t45.mult.energy(32) == pytest.approx(3.1)
    assert t45.mult.energy(8) == pytest.approx(0.2, abs=0.01)  # measured 0.2, quadratic 0.194
    assert t45.sram_pj_per_bit * 64 == pytest.approx(10.0)
    assert 1300 <= t45.dram_pj_per_bit * 64 <= 2600
    assert "Horowitz" in t45.source
    t40 = load_table("40nm")
    assert (t40.add.energy(32), t40.add.area_of(32)) == (0.21, 278.0)
    assert (t40.mult.energy(32), t40.mult.area_of(32)) == (12.68, 6350.0)
    assert (t40.reg_pj_per_bit, t40.reg_area_per_bit) == (0.009, 5.98)
    assert "Aladdin" in t40.source


def test_pe_costs_by_hand(toy):
    # 8-bit operands, max_k 16: adder acc 12 bits, mult acc 20 bits
    a = ArrayConfig(rows=2, cols=3, bits=8, max_k=16)
    m = a.replace(pe="mult")
    # adder: 9-bit subtract + 9-bit abs + 12-bit accumulate, linear from 8 bits at 1 pJ
    assert pe_op_energy_pj(a, toy) == pytest.approx(9 / 8 + 9 / 8 + 12 / 8)
    # mult: 8x8 multiply + 20-bit accumulate
    assert pe_op_energy_pj(m, toy) == pytest.approx(4.0 + 20 / 8)
    # area: arithmetic + accumulator and shadow registers (2 * acc_bits bits)
    assert pe_area(a, toy) == pytest.approx(10 * (9 + 9 + 12) / 8 + 2 * 12 * 2.0)
    assert pe_area(m, toy) == pytest.approx(100.0 + 10 * 20 / 8 + 2 * 20 * 2.0)
    assert array_area(a, toy) == pytest.approx(6 * pe_area(a, toy) + (2 + 3) * 8 * 2.0)


def test_layer_energy_by_hand(toy):
    # O=2, P=3, K=4 on a 2x3 array: one tile, 4 steps
    cfg = ArrayConfig(rows=2, cols=3, bits=8, max_k=16)
    layer = LayerShape(name="l", kind="adder_conv", out_channels=2, out_pixels=3, k=4, in_elems=10)
    m = map_layer(layer, cfg, first=True, last=True)
    assert (m.weight_dram_bytes, m.act_dram_bytes, m.out_dram_bytes) == (8, 10, 6)
    e = layer_energy(m, toy)
    assert e.pe_pj == pytest.approx(24 * (9 / 8 + 9 / 8 + 12 / 8))
    # registers: 4 steps x (6 accumulators x 12 + 5 operands x 8) + shadow 6x12 + outputs 6x8
    assert e.reg_pj == pytest.approx(0.5 * (4 * (6 * 12 + 5 * 8) + 6 * 12 + 6 * 8))
    # SRAM: 4 beats x 5 x 8 bits read, 6 x 8 output bits written, 24 DRAM bytes written in
    assert e.buffer_pj == pytest.approx(3.0 * (4 * 5 * 8 + 6 * 8 + 24 * 8))
    assert e.dram_pj == pytest.approx(100.0 * 24 * 8)
    assert e.total_pj == pytest.approx(e.pe_pj + e.reg_pj + e.buffer_pj + e.dram_pj)


def test_padded_pes_are_charged(toy):
    # O=3 on 2 rows: 2 row tiles, the second half empty; the array still executes it
    cfg = ArrayConfig(rows=2, cols=1, bits=8, max_k=16)
    layer = LayerShape(name="l", kind="adder_linear", out_channels=3, out_pixels=1, k=5)
    m = map_layer(layer, cfg)
    assert m.pe_ops == 2 * 2 * 5
    assert layer_energy(m, toy).pe_pj == pytest.approx(20 * pe_op_energy_pj(cfg, toy))


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda t: t.replace('name = "toy"\n', ""), "missing name"),
        (lambda t: t.replace("energy_pj = 4.0", "energy_pj = -4.0"), r"\[mult\] unit: energy_pj must be positive"),
        (lambda t: t.replace("[sram]\nenergy_pj_per_bit = 3.0", "[sram]"), r"missing energy_pj_per_bit in \[sram\]"),
        (lambda t: t.replace('area_unit = "um2"', 'area_unit = "mm2"'), "area_unit must be one of um2, lc"),
        (lambda t: t + "extra = 1\n", "has unknown key"),
        (lambda t: t.replace("ref_bits = 8\nenergy_pj = 1.0", "energy_pj = 1.0"), r"\[add\] lacks ref_bits"),
        (lambda t: t + "[", "not a valid TOML energy table"),
    ],
)
def test_bad_table_files_are_refused(tmp_path, edit, msg):
    p = tmp_path / "bad.toml"
    p.write_text(edit(TOY))
    with pytest.raises(ValueError, match=msg):
        load_table_file(p)


def test_unknown_table_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown energy table '7nm'"):
        load_table("7nm")
    for spec in ("fpga", "fpga:"):
        with pytest.raises(ValueError, match="table fpga needs synthesis JSON"):
            resolve_table(spec)
    with pytest.raises(OSError):
        load_table(str(tmp_path / "missing.toml"))
    with pytest.raises(OSError):
        resolve_table(f"fpga:{tmp_path / 'missing.json'}")


def _synth(pe, lc, rows=4, cols=4, bits=8):
    """A complete synth.json object (every key the writer writes)."""
    rec = dict.fromkeys(SYNTH_KEYS)
    rec.update({"target": "ice40-up5k", "design": f"acc_{pe}", "block": "array", "dsp": False,
                "config": {"rows": rows, "cols": cols, "pe": pe, "bits": bits},
                "tools": {"yosys": "0.23", "nextpnr-ice40": "0.4"}, "freq_target_mhz": 100.0,
                "resources": {"lc": lc, "lut": lc, "ff": 0, "carry": 0, "dsp": 0, "bram": 0},
                "fmax_mhz": 80.0, "fits": True, "cells": {}, "lc_method": "test", "seconds": {}})
    return rec


def test_fpga_table_from_synthesis_json(tmp_path):
    p = tmp_path / "synth.json"
    p.write_text(json.dumps([_synth("adder", 1600), _synth("mult", 4800, rows=2, cols=4)]))
    t = resolve_table(f"fpga:{p}")
    assert t.area_unit == "lc"
    assert t.pe_area_measured == {"adder": 100.0, "mult": 600.0}
    cfg = ArrayConfig(rows=8, cols=8, max_k=64)
    assert array_area(cfg, t) == 64 * 100.0
    assert array_area(cfg.replace(pe="mult"), t) == 64 * 600.0
    assert "synth.json" in t.source and "yosys" in t.source
    with pytest.raises(ValueError, match="measured at 8-bit operands, the array has bits=4"):
        array_area(cfg.replace(bits=4), t)


@pytest.mark.parametrize(
    "content, msg",
    [
        ([_synth("adder", 1600)], "no mult variant; run the synthesis with --compare"),
        ([dict(_synth("adder", 1600), config=None)], "lacks config.pe/rows/cols or resources.lc"),
        ([_synth("adder", 1600), _synth("mult", 10, bits=4)], "different bit widths"),
        ({"resources": {}}, r"not an adderhw synth JSON \(missing target, design"),
        ([dict(_synth("adder", 1), extra=1)], "entry 0: not an adderhw synth JSON \\(unknown extra\\)"),
        ([dict(_synth("adder", 1), resources={"lc": 1})], "resources must have exactly lc, lut, ff"),
        ([3], "entry 0: not a synthesis result object"),
    ],
)
def test_bad_synthesis_json_is_refused(tmp_path, content, msg):
    p = tmp_path / "synth.json"
    p.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=msg):
        fpga_table(read_synth_json(p))
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a synthesis JSON file"):
        read_synth_json(p)


def test_fpga_table_from_separate_files_prefers_array_blocks(tmp_path):
    pe_only = dict(_synth("adder", 61, rows=4, cols=4), block="pe")
    arr = dict(_synth("adder", 1076, rows=4, cols=4), block="array")
    mult_pe = dict(_synth("mult", 298, rows=4, cols=4), block="pe")
    (tmp_path / "a.json").write_text(json.dumps(pe_only))
    (tmp_path / "b.json").write_text(json.dumps([arr]))
    (tmp_path / "m.json").write_text(json.dumps(mult_pe))
    t = resolve_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 61.0, "mult": 298.0}  # a "pe" block is one PE
    t = resolve_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'b.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 1076 / 16, "mult": 298.0}  # the array measurement wins


# --- the network engine (dataflow cp) -----------------------------------------------------

TOY_SCALED = TOY.replace("[sram]\nenergy_pj_per_bit = 3.0", """[sram]
energy_pj_per_bit = 3.0
ref_bytes = 8
size_exponent = 0.5
size_source = "made up: sqrt(size) from 8 bytes"
""")


@pytest.fixture
def toy_scaled(tmp_path):
    p = tmp_path / "toy_scaled.toml"
    p.write_text(TOY_SCALED)
    return load_table_file(p)


def _tiny_engine_model():
    """input [2, 2, 2] -> 1x1 adder conv to 3 channels (fixed) -> 2x2 max pool -> flatten -> adder
    linear 3 -> 2 (threshold requant, the logits)."""
    import numpy as np

    from quant.artifact import IntLayer, IntModel
    from tests.hwsim.conftest import _input, compute_layer

    rng = np.random.default_rng(3)
    print("seed 3")
    c1 = compute_layer(rng, "c1", "adder_conv", "input", (2, 2, 2), 3, 1, 1, 0)
    pool = IntLayer(name="pool", kind="maxpool", inputs=("c1",), in_shape=(3, 2, 2), out_shape=(3, 1, 1),
                    kernel=(2, 2), stride=2, padding=0)
    flat = IntLayer(name="flat", kind="flatten", inputs=("pool",), in_shape=(3, 1, 1), out_shape=(3,))
    fc = compute_layer(rng, "fc", "adder_linear", "flat", (3,), 2, requant="threshold")
    return IntModel(name="tiny", dataset="fashion-mnist", input=_input(2, False), input_shape=(2, 2, 2),
                    layers=[c1, pool, flat, fc])


def test_sram_energy_by_size_from_the_file(toy_scaled):
    t45 = load_table("45nm")
    assert t45.sram_pj_per_bit_of(8192) * 64 == pytest.approx(10.0)  # the Horowitz anchor
    assert t45.sram_pj_per_bit_of(32768) * 64 == pytest.approx(20.0)  # sqrt(4) = 2
    assert "sqrt" in t45.sram_size_source and "assumption" in t45.sram_size_source
    assert load_table("40nm").sram_pj_per_bit_of(8192) == t45.sram_pj_per_bit_of(8192)
    sizes = [64, 512, 4096, 8192, 65536]
    per_bit = [t45.sram_pj_per_bit_of(s) for s in sizes]
    assert per_bit == sorted(per_bit) and len(set(per_bit)) == len(per_bit)
    assert toy_scaled.sram_pj_per_bit_of(32) == pytest.approx(6.0)


def test_sram_scaling_keys_go_together(tmp_path, toy):
    p = tmp_path / "half.toml"
    p.write_text(TOY_SCALED.replace("size_exponent = 0.5\n", ""))
    with pytest.raises(ValueError, match=r"SRAM size scaling needs ref_bytes, size_exponent and size_source"):
        load_table_file(p)
    with pytest.raises(ValueError, match="energy table 'toy' has no SRAM size scaling"):
        toy.sram_pj_per_bit_of(8192)


def test_engine_energy_by_hand(toy_scaled):
    """Every counter times its per-access cost, the costs worked out here from the toy table."""
    from hwsim.config import EngineConfig
    from hwsim.energy import ENGINE_COMPONENTS, Placement, engine_energy
    from hwsim.engine import EngineModel

    model = _tiny_engine_model()
    cfg = EngineConfig(rows=2, cols=2, bits=8, max_k=8, requant=("fixed", "threshold"),
                       act_words=(4, 16), weight_words=8)
    assert (cfg.act_word_bits, cfg.weight_word_bits, cfg.tree_stages) == (16, 32, 1)
    place = Placement(input_region=0, srcs={"c1": (0,), "pool": (1,), "fc": (0,)},
                      dst={"c1": 1, "pool": 0, "fc": None})
    est = EngineModel(cfg).estimate(model)
    c1, pool, fc = (est.layer(n) for n in ("c1", "pool", "fc"))
    res = engine_energy(est, model, toy_scaled, prog_beat_bits=100, placement=place)
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

    model = _tiny_engine_model()
    cfg = EngineConfig(rows=2, cols=2, bits=8, max_k=8, requant=("fixed", "threshold"), act_words=(4, 16))
    est = EngineModel(cfg).estimate(model)
    with pytest.raises(ValueError, match=r"activation regions of different depths \[4, 16\] need the placement"):
        engine_energy(est, model, toy_scaled, prog_beat_bits=1)
    with pytest.raises(ValueError, match="has no SRAM size scaling"):
        engine_energy(est, model, toy, prog_beat_bits=1)


def test_engine_energy_monotonic_in_memory_size_and_adder_pe_cheaper(lenet_model):
    from hwsim.sizing import engine_config_for, mult_engine
    from hwsim.energy import engine_energy
    from hwsim.engine import EngineModel

    tab = load_table("45nm")
    totals = []
    for depth, wwords in ((1024, 128), (2048, 128), (4096, 128), (4096, 1024)):
        cfg = engine_config_for(lenet_model, rows=4, cols=4, act_words=(depth,) * 3, weight_words=wwords)
        est = EngineModel(cfg).estimate(lenet_model)
        totals.append(engine_energy(est, lenet_model, tab, prog_beat_bits=520).total)
    assert [t.act_sram_pj for t in totals[:3]] == sorted(t.act_sram_pj for t in totals[:3])
    assert totals[0].act_sram_pj < totals[1].act_sram_pj < totals[2].act_sram_pj
    assert totals[2].wbuf_sram_pj < totals[3].wbuf_sram_pj
    assert totals[0].pe_pj == totals[3].pe_pj and totals[0].dram_pj == totals[3].dram_pj
    cfg = engine_config_for(lenet_model, rows=4, cols=4)
    a = engine_energy(EngineModel(cfg).estimate(lenet_model), lenet_model, tab, prog_beat_bits=520).total
    m = engine_energy(EngineModel(mult_engine(cfg)).estimate(lenet_model), lenet_model, tab,
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
    res = engine_energy(est, resnet_model, tab, prog_beat_bits=600)
    stem = est.layer("conv1")
    assert stem.unit == "mult"
    e = dict(zip((l.name for l in est.layers), res.ops))["conv1"]
    assert e.pe_pj == pytest.approx(stem.busy_cycles * _cost(engine_step_units(cfg, "mult", tab)))
    # the multiplier unit's step: 4 x 8 (b+1) x b multiplies, 4 trees and 4 mult_acc_bits accumulates
    units = engine_step_units(cfg, "mult", tab)
    assert units[0] == (tab.mult, (9, 8), 32.0) and units[-1] == (tab.add, cfg.mult_acc_bits, 4.0)
    mstep = engine_step_units(mult_engine(cfg), "mult", tab)
    assert mstep[0] == (tab.mult, (9, 8), 64.0)


def test_engine_widths_equal_the_rtl(resnet_model):
    from rtl.engine.requant import SerialRequant
    from rtl.engine.vector import VectorUnit

    from hwsim.sizing import engine_config_for
    from hwsim.energy import requant_widths, vector_lane_bits

    for cfg in (engine_config_for(resnet_model, rows=8, cols=8),
                engine_config_for(resnet_model, rows=4, cols=4, requant=("fixed",), act_bits=16)):
        rq = SerialRequant(config=cfg)
        w = requant_widths(cfg)
        assert (w["a_bits"], w["prod_bits"], w["sum_bits"]) == (rq.a_bits, rq.prod_bits, rq.sum_bits)
        assert w["b_bits"] == rq.entry_layout["b"].shape.width
        assert vector_lane_bits(cfg) == VectorUnit(config=cfg).sum_shape.width


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
