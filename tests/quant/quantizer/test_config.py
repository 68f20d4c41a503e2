"""Tests of quant.quantizer.config: QuantConfig's validation, its modes as enums, its JSON form."""

from __future__ import annotations

import json

import pytest

from quant.quantizer.config import QuantConfig
from quant.base.intops import RequantMode
from quant.quantizer.rounding import Rounding


def test_quant_config_validation():
    assert QuantConfig(bits=4).act_bits == 4
    assert QuantConfig().percentile is None  # auto: best clipping percentile by MSE
    with pytest.raises(ValueError, match="bits must be an integer in 2..16, not 17"):
        QuantConfig(bits=17)
    with pytest.raises(ValueError, match=r"act_bits \(4\) must be >= bits \(6\)"):
        QuantConfig(bits=6, act_bits=4)
    with pytest.raises(ValueError, match="percentile must be in"):
        QuantConfig(percentile=20)
    assert QuantConfig(groups=4).groups == 4  # group-shared scales (tests/quant/test_groups.py)
    with pytest.raises(ValueError, match="groups must be an integer in 1..65536, not 0"):
        QuantConfig(groups=0)


def test_layer_bits_validation():
    cfg = QuantConfig(bits=8, layer_bits={"fc1": 4, "conv2": 6})
    assert cfg.layer_bits == (("conv2", 6), ("fc1", 4))  # sorted pairs: hashable, frozen
    assert (cfg.weight_bits("conv2"), cfg.weight_bits("fc1"), cfg.weight_bits("conv1")) == (6, 4, 8)
    assert QuantConfig(bits=8, layer_bits=[("fc1", 4)]) == QuantConfig(bits=8, layer_bits={"fc1": 4})
    d = cfg.to_dict()
    assert d["layer_bits"] == {"conv2": 6, "fc1": 4} and json.loads(json.dumps(d)) == d
    assert QuantConfig().to_dict()["layer_bits"] == {}
    with pytest.raises(ValueError, match="weight bits of layer 'fc1' must be an integer in 2..16, not 17"):
        QuantConfig(bits=8, act_bits=16, layer_bits={"fc1": 17})
    with pytest.raises(ValueError, match="weight bits of layer 'fc1' must be an integer in 2..16, not 1"):
        QuantConfig(layer_bits={"fc1": 1})
    with pytest.raises(ValueError, match=r"weight bits of layer 'fc1' \(8\) must be <= act_bits \(6\)"):
        QuantConfig(bits=4, act_bits=6, layer_bits={"fc1": 8})
    with pytest.raises(ValueError, match="weight bits of layer 'fc1' must be an integer, not 4.5"):
        QuantConfig(layer_bits={"fc1": 4.5})
    with pytest.raises(ValueError, match="layer_bits names must be non-empty strings"):
        QuantConfig(layer_bits={3: 4})
    with pytest.raises(ValueError, match="layer_bits must be a mapping"):
        QuantConfig(layer_bits=5)


def test_rounding_config():
    from quant.quantizer.rounding import AUTO_GREEDY_MAX_BITS

    assert QuantConfig(bits=4).rounding == "greedy" and QuantConfig(bits=8).rounding == "nearest"
    assert QuantConfig(bits=4, act_bits=8).rounding == "nearest"
    assert QuantConfig(bits=AUTO_GREEDY_MAX_BITS).rounding == "greedy"
    assert QuantConfig(bits=8, rounding="greedy").rounding == "greedy"
    with pytest.raises(ValueError, match="^rounding must be one of nearest, greedy, auto, not 'up'$"):
        QuantConfig(rounding="up")
    with pytest.raises(ValueError, match="rounding_patches must be"):
        QuantConfig(rounding_patches=0)


def test_modes_are_enums_and_serialise_as_strings():
    cfg = QuantConfig(bits=4, requant="threshold", logits="fixed", rounding="nearest")
    assert cfg.requant is RequantMode.THRESHOLD and cfg.logits is RequantMode.FIXED
    assert cfg.rounding is Rounding.NEAREST and cfg == QuantConfig(bits=4, requant=RequantMode.THRESHOLD,
                                                                    rounding=Rounding.NEAREST)
    d = cfg.to_dict()
    assert (d["requant"], d["logits"], d["rounding"]) == ("threshold", "fixed", "nearest")
    assert all(type(v) is str for v in (d["requant"], d["logits"], d["rounding"]))
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(ValueError, match="^requant must be fixed or threshold, not 'fix'$"):
        QuantConfig(requant="fix")
    with pytest.raises(ValueError, match="^logits must be fixed or threshold, not 'x'$"):
        QuantConfig(logits="x")
