"""hwsim.mapping: tiles, exact cycles (== hwsim.schedule), stalls, traffic, refusals."""

from __future__ import annotations

import pytest

from hwsim.config import ArrayConfig
from hwsim.layers import LayerShape, read_topology_csv
from hwsim.mapping import check_layer_fits, layer_config, map_layer, map_layers
from hwsim.schedule import layer_cycles, schedule_tiles, tile_grid


def shape(o, p, k, kind="adder_conv", bits=8, in_elems=1, name="l"):
    return LayerShape(name=name, kind=kind, out_channels=o, out_pixels=p, k=k, bits=bits, in_elems=in_elems)


@pytest.mark.parametrize("topo", ["lenet5_bn", "resnet20"])
@pytest.mark.parametrize("rows, cols, requant", [(4, 4, "fixed"), (8, 8, "fixed"), (16, 16, "threshold"),
                                                 (3, 7, "fixed"), (16, 4, "threshold")])
def test_default_streams_give_exactly_the_schedule(topologies, topo, rows, cols, requant):
    layers = read_topology_csv(topologies / f"{topo}.csv")
    cfg = ArrayConfig(rows=rows, cols=cols, requant=requant, max_k=max(l.k for l in layers))
    for design in ("adder", "mult"):
        for m in map_layers(layers, cfg, design):
            lay = m.layer
            assert m.total_cycles == layer_cycles(lay.out_channels, lay.out_pixels, lay.k, m.cfg), lay.name
            tr, tc = tile_grid(lay.out_channels, lay.out_pixels, m.cfg)
            timing = schedule_tiles([lay.k] * (tr * tc), m.cfg)
            assert m.total_cycles == timing.total_cycles
            assert m.shadow_stall_cycles == timing.stall_cycles
            assert m.stream_stall_cycles == 0
            assert m.dram_bound_cycles == max(m.total_cycles, m.dram_cycles)
            assert m.fill_cycles + m.steady_cycles + m.drain_cycles == m.total_cycles


def test_hand_computed_mapping():
    # O=5, P=6, K=9 on 4x4: 2x2 tiles, period max(9, 3+4-1) = 9
    m = map_layer(shape(5, 6, 9), ArrayConfig(rows=4, cols=4, max_k=16))
    assert (m.tiles_rows, m.tiles_cols, m.tiles) == (2, 2, 4)
    assert (m.fill_cycles, m.steady_cycles, m.drain_cycles, m.total_cycles) == (9, 27, 7, 43)
    assert m.pe_ops == 4 * 16 * 9
    assert m.utilization == pytest.approx(5 * 6 * 9 / (16 * 43))


def test_drain_bound_layer_by_hand():
    # K=2 on 1x4 (L=3): period 6, 4 stall cycles per later tile
    m = map_layer(shape(1, 12, 2), ArrayConfig(rows=1, cols=4, max_k=4))
    assert m.tiles == 3
    assert m.total_cycles == 2 + 2 * 6 + 3 + 4
    assert m.shadow_stall_cycles == 2 * 4


def test_stream_stalls_by_hand():
    # half rate: a tile's K=3 steps span 6 cycles; period max(6, 3+2-1) = 6; 2 tiles
    cfg = ArrayConfig(rows=2, cols=2, max_k=8, stream_beats_per_cycle=0.5)
    m = map_layer(shape(2, 4, 3), cfg)
    assert m.k_eff == 6
    assert m.total_cycles == 6 + 6 + 3 + 2
    assert m.stream_stall_cycles == m.total_cycles - layer_cycles(2, 4, 3, cfg)
    assert m.stream_stall_cycles == 17 - (3 + 4 + 3 + 2)  # the shadow wait of K=3 is absorbed
    # 0.75 beats/cycle: ceil(3 / 0.75) = 4 cycles for 3 steps
    assert map_layer(shape(2, 4, 3), cfg.replace(stream_beats_per_cycle=0.75)).k_eff == 4
    # slower streams never speed a layer up
    prev = 0
    for f in (1.0, 0.9, 0.5, 0.3, 0.1):
        t = map_layer(shape(7, 9, 5), cfg.replace(stream_beats_per_cycle=f)).total_cycles
        assert t >= prev
        prev = t


def test_dram_bound_layer_by_hand():
    # weights 4x100 bytes + input 1000 bytes + output 4 bytes = 1404 bytes at 1 B/cycle
    cfg = ArrayConfig(rows=4, cols=1, max_k=100, dram_bytes_per_cycle=1.0)
    m = map_layer(shape(4, 1, 100, in_elems=1000), cfg, first=True, last=True)
    assert (m.weight_dram_bytes, m.act_dram_bytes, m.out_dram_bytes) == (400, 1000, 4)
    assert m.schedule_cycles == m.total_cycles == 100 + 3 + 1
    assert m.dram_cycles == m.dram_bound_cycles == 1404
    assert m.dram_stall_cycles == 1404 - 104
    # twice the bandwidth halves the bound; a wide bus is not the bottleneck
    assert map_layer(shape(4, 1, 100, in_elems=1000), cfg.replace(dram_bytes_per_cycle=2.0)).dram_cycles == 702
    assert map_layer(shape(4, 1, 100, in_elems=1000), cfg.replace(dram_bytes_per_cycle=64.0)).dram_bound_cycles == 104


def test_traffic_rules():
    cfg = ArrayConfig(rows=2, cols=2, max_k=64, weight_buffer_kib=1, act_buffer_kib=1)
    # input on chip from the previous layer: no activation traffic; output stays on chip
    m = map_layer(shape(4, 4, 16, in_elems=100), cfg, first=False, last=False, input_on_chip=True)
    assert (m.act_dram_bytes, m.out_dram_bytes, m.weight_dram_bytes) == (0, 0, 64)
    # an input larger than the activation buffer is re-read per row tile
    m = map_layer(shape(4, 4, 16, in_elems=2000), cfg, first=False, last=False, input_on_chip=True)
    assert m.act_dram_bytes == 2 * 2000
    # one row tile of weights (2 x 600 bytes) does not fit 1 KiB: weights re-read per tile
    m = map_layer(shape(4, 1, 600, in_elems=600), cfg.replace(max_k=600), first=False, last=True)
    assert m.weight_dram_bytes == m.tiles * 2 * 600


def test_multiply_layers_use_the_multiplier_path():
    cfg = ArrayConfig(rows=4, cols=4, max_k=64)
    conv, add = shape(4, 4, 27, kind="conv"), shape(4, 4, 27)
    assert layer_config(conv, cfg, "adder").pe == "mult"
    assert layer_config(add, cfg, "adder").pe == "adder"
    assert layer_config(add, cfg, "mult").pe == "mult"
    assert layer_config(add, cfg, "mult").acc_bits == 16 + 6
    with pytest.raises(ValueError, match="design must be one of adder, mult"):
        layer_config(add, cfg, "both")


@pytest.mark.parametrize(
    "layer, cfg, msg",
    [
        (shape(4, 4, 100), ArrayConfig(rows=2, cols=2, max_k=64), "layer l has K=100, more than the array's max_k=64"),
        (shape(4, 4, 10, bits=8), ArrayConfig(rows=2, cols=2, bits=4, max_k=64),
         "layer l has 8-bit operands but the array has bits=4"),
    ],
)
def test_layers_that_do_not_fit_are_refused(layer, cfg, msg):
    with pytest.raises(ValueError, match=msg):
        map_layer(layer, cfg)


def test_narrow_accumulator_is_refused():
    # a config whose accumulator was sized for 4-bit operands cannot take an
    # 8-bit layer even if max_k allows it
    cfg = ArrayConfig(rows=2, cols=2, bits=8, max_k=16)
    object.__setattr__(cfg, "acc_bits", 10)  # as a hand-edited RTL config would be
    with pytest.raises(ValueError, match="layer l needs a 12-bit accumulator on adder PEs"):
        check_layer_fits(shape(2, 2, 16), cfg)
