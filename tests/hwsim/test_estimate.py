"""hwsim.estimate: both designs, totals, ratios, sweeps."""

from __future__ import annotations

import pytest

from hwsim.config import ArrayConfig
from hwsim.energy import array_area, layer_energy
from hwsim.tables import load_table
from hwsim.estimate import estimate, parse_sweep, sweep
from hwsim.layers import read_topology_csv
from hwsim.mapping import map_layers


@pytest.fixture
def resnet(topologies):
    return read_topology_csv(topologies / "resnet20.csv")


def test_totals_are_sums_of_layers(resnet):
    cfg = ArrayConfig(rows=8, cols=8, max_k=576)
    t = load_table("45nm")
    est = estimate(resnet, cfg, t)
    for design in ("adder", "mult"):
        res = est.designs[design]
        maps = map_layers(resnet, cfg, design)
        assert res.total_cycles == sum(m.total_cycles for m in maps)
        assert res.energy.total_pj == pytest.approx(sum(layer_energy(m, t).total_pj for m in maps))
    a, m = est.designs["adder"], est.designs["mult"]
    # same schedule, cheaper arithmetic and narrower accumulators on the adder side
    assert a.total_cycles == m.total_cycles
    assert a.energy.pe_pj < m.energy.pe_pj
    assert a.energy.reg_pj < m.energy.reg_pj
    assert a.energy.dram_pj == m.energy.dram_pj
    assert est.ratio("energy_pj") == pytest.approx(a.energy.total_pj / m.energy.total_pj)
    # the adder design's first conv and classifier run on a multiplier array
    assert [x.cfg.pe for x in a.mappings].count("mult") == 2
    assert a.mult_path_area == array_area(cfg.replace(pe="mult"), t) == m.area
    assert a.area == array_area(cfg, t) < m.area


def test_all_adder_network_needs_no_multiplier_path(topologies):
    lenet = read_topology_csv(topologies / "lenet5_bn.csv")
    est = estimate(lenet, ArrayConfig(rows=4, cols=4, max_k=400), load_table("40nm"))
    assert est.designs["adder"].mult_path_area == 0.0
    assert est.cpu["addernet"].multiplications == 0


def test_parse_sweep():
    assert parse_sweep(["rows=4,8,16", "cols=4"]) == {"rows": [4, 8, 16], "cols": [4]}
    assert parse_sweep(["stream_beats_per_cycle=0.5,1"]) == {"stream_beats_per_cycle": [0.5, 1.0]}


@pytest.mark.parametrize(
    "items, msg",
    [
        (["rows"], "must look like KEY=V1,V2"),
        (["depth=4"], "'depth' is not an array config field"),
        (["pe=adder"], "'pe' is not numeric"),
        (["rows=4", "rows=8"], "given twice"),
        (["rows=4,x"], "sweep value 'x' for rows is not an integer"),
    ],
)
def test_bad_sweeps_are_refused(items, msg):
    with pytest.raises(ValueError, match=msg):
        parse_sweep(items)


def test_sweep_rows(resnet):
    cfg = ArrayConfig(rows=8, cols=8, max_k=576)
    rows = sweep(resnet, cfg, load_table("45nm"), parse_sweep(["rows=4,16", "cols=4,8,16"]))
    assert len(rows) == 2 * 3 * 2
    by = {(r["rows"], r["cols"], r["design"]): r for r in rows}
    # a 16x16 array is faster than a 4x4 one for ResNet-20
    assert by[(16, 16, "adder")]["total_cycles"] < by[(4, 4, "adder")]["total_cycles"]
    one = estimate(resnet, cfg.replace(rows=16, cols=8), load_table("45nm"))
    assert by[(16, 8, "mult")]["total_cycles"] == one.designs["mult"].total_cycles
    with pytest.raises(ValueError, match="rows must be a positive integer, not 0"):
        sweep(resnet, cfg, load_table("45nm"), {"rows": [0]})
