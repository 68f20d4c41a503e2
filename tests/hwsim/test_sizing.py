"""hwsim.sizing: one width rule, memories sized by the compiler, typed refusals, the multiplier twin."""

import numpy as np
import pytest

from hwsim.compiler import RegionTooSmall, compile_model
from hwsim.samples import small_model
from hwsim.sizing import engine_config_for, mult_engine, size_engine


def test_widths_from_the_model():
    seed = 41
    print("seed", seed)
    model = small_model(np.random.default_rng(seed), c0=2, h=4, w=4, c1=3, bits=6, stem="conv")
    cfg = engine_config_for(model, rows=4, cols=2)
    assert (cfg.rows, cfg.cols, cfg.pe, cfg.mult_rows, cfg.bits) == (4, 2, "adder", 2, 6)
    assert cfg.max_k == max(l.K for l in model.layers if l.kind.endswith(("conv", "linear")))
    assert cfg.requant == ("fixed",)
    assert engine_config_for(model, rows=4, cols=2, mult_rows=1, clock_mhz=50.0).mult_rows == 1
    adder_only = small_model(np.random.default_rng(seed), c0=2, h=4, w=4, c1=3, bits=6)
    assert engine_config_for(adder_only, rows=4, cols=2).mult_rows == 0


def test_sized_to_a_model():
    seed = 41
    print("seed", seed)
    model = small_model(np.random.default_rng(seed), c0=2, h=4, w=4, c1=3, bits=6, stem="conv")
    cfg, cm = size_engine(model, rows=2, cols=2)
    assert cfg == engine_config_for(model, rows=2, cols=2, act_words=cfg.act_words, weight_words=cfg.weight_words)
    mm = cm.program.memory_map()
    assert cfg.regions == 3  # a residual block: input, branch, output
    assert cfg.act_words == tuple(mm[f"R{r}"]["peak_words"] for r in range(3))
    assert cfg.weight_words == mm["weights"]["peak_words"]
    compile_model(model, cfg)  # fits exactly
    with pytest.raises(RegionTooSmall, match="activation region too small") as info:
        compile_model(model, cfg.replace(act_words=tuple(d - 1 for d in cfg.act_words)))
    e = info.value
    assert e.tensor in cm.program.tensors and e.words == cm.program.tensors[e.tensor].words
    assert e.free and all(depth < e.words for depth in e.free.values())
    # explicit memories: compiled once for them; too small is the compiler's typed refusal
    small = dict(act_words=(4, 4, 4), weight_words=cfg.weight_words)
    with pytest.raises(RegionTooSmall):
        size_engine(model, rows=2, cols=2, **small)


def test_mult_engine():
    model = small_model(np.random.default_rng(3), stem="conv")
    cfg = engine_config_for(model, rows=4, cols=4)
    m = mult_engine(cfg)
    assert (m.pe, m.mult_rows, m.mult_acc_bits) == ("mult", 0, 0)
    assert m.acc_bits > cfg.acc_bits and (m.act_words, m.weight_words) == (cfg.act_words, cfg.weight_words)
