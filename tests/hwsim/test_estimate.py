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


# --- group-shared scales: the input re-scale of adder layers (issue 14) ------------------

def _grouped(groups, seed=5):
    import numpy as np

    from tests.quant.int_models import every_kind_model

    return every_kind_model(np.random.default_rng(seed), groups=groups)


def _without_groups(model):
    """The same model with every ``scale_groups`` dropped (G = 1: today's layer shapes)."""
    from dataclasses import replace

    return replace(model, layers=[replace(l, scale_groups=None) if getattr(l, "scale_groups", None) else l
                                  for l in model.layers])


@pytest.mark.parametrize("groups", [2, 4])
def test_group_rescale_counted_and_charged(groups):
    from hwsim.energy import rescale_energy_pj
    from hwsim.layers import shapes_from_int_model
    from hwsim.report import layer_rows
    from quant.opcount import count_group_rescale_ops, count_int_layer

    model = _grouped(groups)
    grouped = shapes_from_int_model(model)
    plain = shapes_from_int_model(_without_groups(model))
    cfg = ArrayConfig(rows=4, cols=4, max_k=128)
    t = load_table("45nm")
    eg, ep = estimate(grouped, cfg, t), estimate(plain, cfg, t)
    ints = {l.name: l for l in model.layers}
    want_total = 0
    for lg, lp in zip(grouped, plain):
        g = ints[lg.name].groups
        assert lg.groups == g and lp.groups == 1 and lp.rescales == 0
        # G re-scales (1 mult + 1 add) per input value, the count of quant.opcount
        assert lg.rescales == (g * lg.in_elems if g > 1 else 0)
        assert lg.rescale_ops == count_group_rescale_ops(g, lg.in_elems)
        if g > 1:
            assert count_int_layer(ints[lg.name]) == count_int_layer(_without_groups(model).layers[
                [l.name for l in model.layers].index(lg.name)]) + lg.rescale_ops
        want_total += lg.rescales
    assert sum(1 for l in grouped if l.groups > 1) == 2 and want_total > 0
    a, m = eg.designs["adder"], eg.designs["mult"]
    assert a.rescales == want_total and m.rescales == 0
    # everything else is exactly the ungrouped estimate; the re-scale energy is added on top
    for d in ("adder", "mult"):
        for mg, mp, e_g, e_p in zip(eg.designs[d].mappings, ep.designs[d].mappings,
                                    eg.designs[d].energies, ep.designs[d].energies):
            assert mg.total_cycles == mp.total_cycles and mg.dram_bytes == mp.dram_bytes
            assert (e_g.pe_pj, e_g.reg_pj, e_g.buffer_pj, e_g.dram_pj) == (e_p.pe_pj, e_p.reg_pj, e_p.buffer_pj,
                                                                          e_p.dram_pj)
            assert e_p.rescale_pj == 0.0
            want = mg.rescales * rescale_energy_pj(mg.layer, t)
            assert e_g.rescale_pj == pytest.approx(want) and (want > 0) == (d == "adder" and mg.layer.groups > 1)
            assert e_g.total_pj == pytest.approx(e_p.total_pj + want)
    one = mg.layer
    assert rescale_energy_pj(one, t) == pytest.approx(
        t.mult.energy(one.group_in_bits, one.group_m_bits) + t.add.energy(one.group_sum_bits))
    assert m.energy.total_pj == pytest.approx(ep.designs["mult"].energy.total_pj)
    assert a.energy.total_pj == pytest.approx(ep.designs["adder"].energy.total_pj + a.energy.rescale_pj)
    # the AdderNet CPU variant re-scales too (1 mult + 1 add each), the CNN does not
    assert eg.cpu["cnn"] == ep.cpu["cnn"]
    assert eg.cpu["addernet"].multiplications == ep.cpu["addernet"].multiplications + want_total
    assert eg.cpu["addernet"].additions == ep.cpu["addernet"].additions + want_total
    rows = layer_rows(eg)
    assert sum(r["rescales"] for r in rows) == want_total
    assert sum(r["rescale_pj"] for r in rows) == pytest.approx(a.energy.rescale_pj)


def test_group_one_is_todays_estimate():
    from hwsim.layers import shapes_from_int_model

    model = _grouped(1)
    assert all(getattr(l, "scale_groups", None) is None for l in model.layers)
    shapes = shapes_from_int_model(model)
    assert all(l.groups == 1 and l.rescales == 0 for l in shapes)
    cfg = ArrayConfig(rows=4, cols=4, max_k=128)
    est = estimate(shapes, cfg, load_table("45nm"))
    for res in est.designs.values():
        assert res.rescales == 0 and res.energy.rescale_pj == 0.0
        assert res.energy.total_pj == sum(e.pe_pj + e.reg_pj + e.buffer_pj + e.dram_pj for e in res.energies)


def test_groups_only_on_adder_layers():
    from hwsim.layers import LayerShape

    with pytest.raises(ValueError, match="adder layers only"):
        LayerShape(name="fc", kind="linear", out_channels=4, out_pixels=1, k=8, groups=2)
    with pytest.raises(ValueError, match="groups"):
        LayerShape(name="c", kind="adder_conv", out_channels=4, out_pixels=1, k=8, groups=0)
