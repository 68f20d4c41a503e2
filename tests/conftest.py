"""Suite-wide settings: tests write nothing into the source tree.

Hypothesis keeps its example database in ``.hypothesis/`` under the working
directory by default; the ``adderhw`` profile turns it off and derandomizes
the search (every run draws the same examples, so CI cannot turn red on a
new draw; failures print their reproducing example).
Per-test ``@settings(...)`` inherit it.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("adderhw", database=None, print_blob=True, derandomize=True)
settings.load_profile("adderhw")


def write_tiny_model(root: Path) -> Path:
    """Write a tiny valid integer model (adder conv, flatten, adder linear with 16-bit logits) to ``root/model``."""
    from quant.intmodel import golden
    from quant.intmodel.artifact import FlattenLayer, IntModel, Requant, save_int_model
    from quant.base.intops import InputQuant

    rng = np.random.default_rng(7)
    conv = golden.random_layer(rng, kind="adder_conv", in_shape=(1, 6, 6), out_channels=3, bits=6, name="c1")
    flat = FlattenLayer(name="f", inputs=("c1",), in_shape=(3, 6, 6), out_shape=(108,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(108,), out_channels=4, bits=6, name="fc",
                             inputs=("f",))
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1,
                     out_scale=0.5, out_zero_point=0, out_bits=16, out_signed=True)
    fc = replace(fc, requant=logits)
    spec = InputQuant(mean=(0.5,), std=(0.25,), scale=4.0 / 63, zero_point=3, bits=6, signed=False)
    model = IntModel(name="tiny", dataset="none", input=spec, input_shape=(1, 6, 6), layers=[conv, flat, fc],
                     class_names=[f"c{i}" for i in range(4)])
    out = root / "model"
    save_int_model(model, out)
    return out


@pytest.fixture
def tiny_model_dir():
    """Function ``root -> Path``: writes :func:`write_tiny_model` under ``root``."""
    return write_tiny_model
