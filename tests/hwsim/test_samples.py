"""hwsim.samples: the random small models run on the small engine and equal golden."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.compiler import compile_model
from hwsim.config import EngineConfig
from hwsim.reference import run_engine
from hwsim.samples import SMALL_ENGINE, small_model
from quant.intmodel import golden


@pytest.mark.parametrize("kw", [dict(), dict(stem="conv", pool="avgpool"), dict(mode="threshold", pool_pad=1)])
def test_small_models_run_on_the_small_engine(kw):
    seed = 17
    print("seed", seed, kw)
    rng = np.random.default_rng(seed)
    model = small_model(rng, bits=5, **kw)
    assert [l.kind for l in model.layers][2:] == ["add", kw.get("pool", "maxpool"), "flatten", "adder_linear"]
    cm = compile_model(model, EngineConfig(**SMALL_ENGINE))
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    got = run_engine(cm.program, cm.weights, x).logits
    assert np.array_equal(got, golden.run_codes(model, x[None])[model.output.name][0].reshape(-1))
