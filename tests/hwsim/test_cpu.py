"""hwsim.cpu: the AdderNet paper's CPU latency model on quant.opcount's counts."""

from __future__ import annotations

import pytest

from hwsim.cpu import PAPER_LENET5_BN, CpuLatency, cpu_cycles, cpu_ops
from hwsim.layers import LayerShape, read_topology_csv
from quant.opcount import OpCount


def test_paper_lenet_figures():
    # 435K mult + 435K add = 2.61M cycles; 870K add = 1.74M cycles
    assert cpu_cycles(PAPER_LENET5_BN) == {"cnn": 2_610_000, "addernet": 1_740_000}


def test_our_lenet(topologies):
    ops = cpu_ops(read_topology_csv(topologies / "lenet5_bn.csv"))
    assert ops == {"cnn": OpCount(additions=416_520, multiplications=416_520),
                   "addernet": OpCount(additions=833_040)}
    assert cpu_cycles(ops) == {"cnn": 2_499_120, "addernet": 1_666_080}


def test_multiply_layers_stay_multiply_layers():
    def l(name, kind, o, p, k):
        return LayerShape(name=name, kind=kind, out_channels=o, out_pixels=p, k=k)

    ops = cpu_ops([l("a", "conv", 10, 10, 1), l("b", "adder_conv", 10, 10, 10), l("c", "linear", 10, 1, 1)])
    assert ops["cnn"] == OpCount(additions=1110, multiplications=1110)
    assert ops["addernet"] == OpCount(additions=110 + 2000, multiplications=110)
    assert cpu_cycles(ops, CpuLatency(mult_cycles=3, add_cycles=1)) == {
        "cnn": 1110 * 4, "addernet": 110 * 3 + 2110}


def test_bad_latencies_are_refused():
    with pytest.raises(ValueError, match="mult_cycles must be a positive integer, not 0"):
        CpuLatency(mult_cycles=0)
