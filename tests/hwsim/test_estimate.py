"""hwsim.estimate: both engines of a model or of layer shapes, typed results, sweeps, the command's library."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.energy import Placement
from hwsim.engine import EngineModel
from hwsim.estimate import (Comparison, Design, InputKind, compare, estimate_model, estimate_topology,
                            load_source, parse_sweep, run_estimate, sweep, topology_config)
from hwsim.preset_files import EnginePreset
from hwsim.report import EstimateSummary
from hwsim.sizing import mult_engine, size_engine
from hwsim.tables import load_table
from hwsim.topology import read_topology_csv, topology_ops


@pytest.fixture(scope="module")
def table():
    return load_table("45nm")


def test_model_on_both_engines(int_models, table):
    seed = 5
    print("seed", seed)
    model = int_models.resnet20(np.random.default_rng(seed))
    res = estimate_model(model, table, rows=8, cols=8, clock_mhz=200.0)
    assert isinstance(res, Comparison) and list(res.designs) == [Design.ADDER, Design.MULT]
    cfg, compiled = size_engine(model, rows=8, cols=8, clock_mhz=200.0)
    assert res.config == cfg and res.placement == Placement.from_program(compiled.program)
    assert res.adder.counts == EngineModel(cfg).estimate(model)
    assert res.mult.counts == EngineModel(mult_engine(cfg)).estimate(model)
    # the stem and the classifier run on 8 rows instead of 4 in the multiplier engine
    assert res.mult.counts.total_cycles < res.adder.counts.total_cycles
    assert res.ratio("total_cycles") == res.adder.counts.total_cycles / res.mult.counts.total_cycles
    assert res.ratio("pe_pj") < 1 and res.ratio("dram_pj") == pytest.approx(
        res.adder.energy.total.dram_pj / res.mult.energy.total.dram_pj)
    with pytest.raises(ValueError, match="no ratio for 'area'"):
        res.ratio("area")


def test_compare_refuses_a_multiplier_config(int_models, table):
    model = int_models.lenet(np.random.default_rng(1))
    cfg, _ = size_engine(model, rows=4, cols=4)
    from hwsim.engine import op_shapes

    ops, src = op_shapes(model)
    with pytest.raises(ValueError, match="config must be an adder EngineConfig"):
        compare(ops, src, mult_engine(cfg), table)


def test_topology_estimate_is_the_engine_model_on_its_shapes(topologies, table):
    layers = read_topology_csv(topologies / "lenet5_bn.csv")
    ops = topology_ops(layers)
    cfg = topology_config(ops, bits=8, rows=4, cols=4)
    # two regions as deep as the largest tensor (conv1's 32x32 input, 1 word per pixel; its 28x28x6 output,
    # 2 words), a weight buffer as deep as the largest tile (fc1: 400 channels / 4)
    assert cfg.act_words == (28 * 28 * 2, 28 * 28 * 2) and cfg.weight_words == 100
    assert (cfg.mult_rows, cfg.max_k, cfg.requant, cfg.out_bits) == (0, 400, ("fixed",), 16)
    res = estimate_topology(layers, table, rows=4, cols=4)
    assert res.adder.counts == EngineModel(cfg).estimate_ops(ops, (32, 32, 1))
    # every tile (6 filters on 4 rows: 2) reads every window position of the unpadded 32x32 input
    assert res.placement is None and res.adder.counts.layer("conv1").act_reads == 2 * 28 * 28 * 25


def test_load_source(topologies, int_models, tmp_path):
    src = load_source(topologies / "resnet20.csv", bits=6)
    assert src.kind is InputKind.TOPOLOGY and src.name == "resnet20" and src.model is None
    assert src.layers[0].bits == 8 and src.assumptions  # the CSV's Bits column wins
    from quant.intmodel.artifact import save_int_model

    save_int_model(int_models.lenet(np.random.default_rng(4)), tmp_path / "m")
    m = load_source(tmp_path / "m")
    assert m.kind is InputKind.MODEL and m.name == "lenet5-bn" and m.assumptions == ()
    with pytest.raises(ValueError, match="--model and --dataset are for checkpoints"):
        load_source(tmp_path / "m", model="lenet5-bn", dataset="mnist")
    with pytest.raises(FileNotFoundError):
        load_source(tmp_path / "none.csv")


def test_parse_sweep():
    assert parse_sweep(["rows=4,8", "cols=2"]) == [{"rows": 4, "cols": 2}, {"rows": 8, "cols": 2}]
    assert parse_sweep(["clock_mhz=50,100.5"]) == [{"clock_mhz": 50.0}, {"clock_mhz": 100.5}]
    for bad, msg in ((["rows"], "KEY=V1,V2"), (["pe=adder"], "sweep key must be one of"),
                     (["rows=4", "rows=8"], "given twice"), (["rows=a"], "must be numbers")):
        with pytest.raises(ValueError, match=msg):
            parse_sweep(bad)


def test_sweep_runs_every_point_on_both_engines(topologies, table):
    src = load_source(topologies / "resnet20.csv")
    grid = parse_sweep(["rows=4,8,16", "cols=4,8,16"])
    points = sweep(src, table, grid, base=EnginePreset(rows=8, cols=8, clock_mhz=200.0))
    assert len(points) == 18 and [p.design for p in points[:2]] == [Design.ADDER, Design.MULT]
    one = estimate_topology(src.layers, table, rows=16, cols=4, clock_mhz=200.0)
    p = next(p for p in points if dict(p.point) == {"rows": 16, "cols": 4} and p.design is Design.ADDER)
    assert (p.total_cycles, p.energy_pj) == (one.adder.counts.total_cycles, one.adder.energy.total.total_pj)
    assert p.as_row()["rows"] == 16 and p.as_row()["design"] == "adder"
    # more rows: fewer cycles on the same layers
    cyc = {dict(q.point)["rows"]: q.total_cycles for q in points if q.design is Design.ADDER and dict(q.point)["cols"] == 8}
    assert cyc[4] > cyc[8] > cyc[16]


def test_run_estimate_returns_the_summary(tmp_path, topologies):
    s = run_estimate(topologies / "lenet5_bn.csv", tmp_path / "est", preset="small", cols=8,
                     sweep_items=["rows=2,4"])
    assert isinstance(s, EstimateSummary) and (s.config.rows, s.config.cols, s.config.clock_mhz) == (4, 8, 50.0)
    assert s.kind is InputKind.TOPOLOGY and len(s.sweep) == 4
    assert {d for d in s.designs} == {Design.ADDER, Design.MULT}
    assert (tmp_path / "est" / "sweep.csv").is_file()


def test_both_weight_modes_of_a_model(int_models, table):
    """estimate_modes: streamed is today's engine; resident has no w beat per image, a load phase priced
    apart (its w beats at DRAM, its writes into the store) and the store's size in its SRAM energy."""
    from hwsim.config import WeightMode
    from hwsim.estimate import estimate_modes, Source

    model = int_models.lenet(np.random.default_rng(3))
    src = Source(kind=InputKind.MODEL, path="m", name="lenet", model=model)
    modes = estimate_modes(src, table, rows=4, cols=4)
    assert [m.mode for m in modes] == [WeightMode.STREAMED, WeightMode.RESIDENT]
    streamed, resident = (m.comparison for m in modes)
    assert streamed.adder.counts == estimate_model(model, table, rows=4, cols=4).adder.counts
    assert streamed.adder.energy.load is None and streamed.adder.counts.load is None
    a = resident.adder
    cfg = a.counts.config
    assert cfg.resident and a.counts.totals()["w_beats"] == 0 and a.counts.load.words == cfg.weight_words
    # the load: every store word once on w and into the store, plus its descriptor beat
    ww = cfg.weight_word_bits
    wbuf_pj = table.sram_pj_per_bit_of(cfg.weight_words * ww / 8) * ww
    assert a.energy.load.wbuf_sram_pj == pytest.approx(a.counts.load.words * wbuf_pj)
    assert a.energy.load.dram_pj == pytest.approx(
        (a.counts.load.words * ww + resident.prog_beat_bits) * table.dram_pj_per_bit)
    # per image: the same steps and the same weight words as streamed, fewer stream beats
    assert a.counts.totals()["busy_cycles"] == streamed.adder.counts.totals()["busy_cycles"]
    assert a.energy.total.dram_pj < streamed.adder.energy.total.dram_pj
    # the parameter bank is written with every tile's parameters in both modes
    assert ([l.param_writes for l in a.counts.layers] == [l.param_writes for l in streamed.adder.counts.layers]
            and sum(l.param_writes for l in a.counts.layers) > 0)
    op_regs = lambda d: sum(e.reg_pj for e in d.energy.ops)  # noqa: E731 - the descriptor's width differs
    assert op_regs(a) == pytest.approx(op_regs(streamed.adder))


def test_resident_weights_that_do_not_fit_are_a_reason_not_an_error(topologies, table):
    from hwsim.config import MAX_WEIGHT_WORDS
    from hwsim.estimate import estimate_modes, Source

    layers = tuple(read_topology_csv(topologies / "resnet20.csv"))
    src = Source(kind=InputKind.TOPOLOGY, path="t", name="resnet20", layers=layers)
    modes = estimate_modes(src, table, rows=4, cols=4)
    assert modes[1].comparison is not None and modes[1].comparison.adder.counts.config.resident
    big = tuple(l for l in read_topology_csv(topologies / "resnet20.csv"))
    with pytest.raises(ValueError, match=f"store holds at most {MAX_WEIGHT_WORDS}"):
        estimate_topology(big, table, rows=1, cols=1, weights="resident")
    modes = estimate_modes(Source(kind=InputKind.TOPOLOGY, path="t", name="r", layers=big), table, rows=1, cols=1)
    assert modes[1].comparison is None and "resident weights do not fit" in modes[1].why_not


def test_topology_with_two_weight_buffers_holds_two_tiles(topologies, table):
    """A topology estimate with weight_buffers=2 sizes the buffer as size_engine does: two halves, each the
    largest tile (fc1: 100 words at 4x4) rounded up to a power of two."""
    from hwsim.sizing import buffer_words

    layers = read_topology_csv(topologies / "lenet5_bn.csv")
    res = estimate_topology(layers, table, rows=4, cols=4, weight_buffers=2)
    cfg = res.adder.counts.config
    assert (cfg.weight_buffers, cfg.weight_words, cfg.half_words) == (2, 256, 128) == (2, buffer_words(100, 2), 128)
    one = estimate_topology(layers, table, rows=4, cols=4)
    assert res.adder.counts.total_cycles < one.adder.counts.total_cycles  # the loads overlap the steps
