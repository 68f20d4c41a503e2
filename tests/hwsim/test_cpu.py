"""hwsim.cpu: the AdderNet paper's CPU latency model, on the shipped LeNet-5-BN's layers."""

import numpy as np
import pytest

from hwsim.cpu import PAPER_LENET5_BN, CpuLatency, cpu_ops
from tests.hwsim.models import random_lenet


def test_lenet_reproduces_the_papers_cpu_cycles():
    ops = cpu_ops(random_lenet(np.random.default_rng(0)))
    lat = CpuLatency()
    # 416,520 terms: the paper rounds them to "about 435K"
    assert ops["cnn"].multiplications == ops["cnn"].additions == 416_520
    assert ops["addernet"] == type(ops["addernet"])(additions=2 * 416_520)
    assert lat.cycles(ops["cnn"]) == 6 * 416_520  # 2.5M (paper: 2.6M)
    assert lat.cycles(ops["addernet"]) == 4 * 416_520  # 1.7M (paper: 1.7M)
    assert lat.cycles(PAPER_LENET5_BN["cnn"]) == 2_610_000 and lat.cycles(PAPER_LENET5_BN["addernet"]) == 1_740_000


@pytest.mark.parametrize("field", ["mult_cycles", "add_cycles"])
def test_latency_refuses_bad_cycles(field):
    with pytest.raises(ValueError, match=f"{field} must be a positive integer, not 0"):
        CpuLatency(**{field: 0})
