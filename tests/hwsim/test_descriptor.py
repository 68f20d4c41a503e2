"""hwsim.descriptor: the prog beat's fields, their widths and the beat's width."""

from __future__ import annotations

from hwsim.config import EngineConfig
from hwsim.descriptor import (DIM_BITS, OP_CODES, addr_bits, addrgen_command_fields, descriptor_bits,
                              descriptor_fields, field_bits)
from hwsim.energy import requant_widths


def test_fields_of_a_small_engine():
    cfg = EngineConfig(rows=4, cols=4, act_words=(784, 1568), weight_words=100)
    assert addr_bits(cfg) == 1568 .bit_length() + 1 == 12
    f = descriptor_fields(cfg)
    assert list(f)[:4] == ["op", "mult", "last", "threshold"] and list(f)[-1] == "pad_value"
    assert f["op"] == (2, False) and len(OP_CODES) == 4
    assert f["src0"] == f["dst"] == (1, False)  # two regions: a 1-bit index
    assert f["in_words"] == f["pixels"] == (12, False) and f["tiles"] == (DIM_BITS, False)
    assert f["lo"] == f["hi"] == (cfg.out_bits + 1, True) and f["pad_value"] == (cfg.bits + 1, True)
    assert f["shift"] == (requant_widths(cfg)["sum_bits"].bit_length(), False)
    ag = f["ag"]
    assert ag == addrgen_command_fields(12, DIM_BITS) and ag["base0"] == (12 + DIM_BITS + 2, True)
    assert field_bits(ag) == 10 * DIM_BITS + 3 * 13 + 30
    assert descriptor_bits(cfg) == field_bits(f) == sum(v[0] for k, v in f.items() if k != "ag") + field_bits(ag)


def test_width_follows_the_config():
    small = EngineConfig(rows=4, cols=4, act_words=(16, 16), weight_words=8)
    three = small.replace(act_words=(16, 16, 16))
    assert descriptor_fields(three)["src1"] == (2, False)
    assert descriptor_bits(three) == descriptor_bits(small) + 3  # src0, src1, dst each one bit wider
    deep = small.replace(act_words=(4096, 16))
    assert descriptor_bits(deep) > descriptor_bits(small)
