"""The network engine with two weight buffers (hwsim.engine rule 2: tile loads overlap steps) under cocotb.

The shipped LeNet-5-BN W8 on its 4x4 streamed engine sized with two buffers, on Verilator: every cocotb test
(images, back-pressure with gaps on w, a reset in the middle of the network), logits against golden and every
image's cycles and counters against hwsim.
"""

from __future__ import annotations

import numpy as np
import pytest

from quant.intmodel import golden
from quant.intmodel.artifact import load_int_model
from tests.verification.test_engine import SEED, _check
from verification.engine_host import ENGINE_TESTS, emit_engine, run_engine_tests

pytestmark = [pytest.mark.sim]


@pytest.mark.slow
def test_lenet_two_weight_buffers_on_verilator(lenet_dir, build_root, tmp_path):
    from hwsim.engine import EngineModel
    from hwsim.sizing import size_engine
    from quant.training.datasets import load_dataset

    print(f"seed {SEED}")
    model = load_int_model(lenet_dir)
    images, _ = load_dataset(model.dataset, "test")
    codes = list(golden.quantize_input(images[:2], model.input))
    cfg, compiled = size_engine(model, rows=4, cols=4, weight_buffers=2)
    assert cfg.weight_buffers == 2 and not cfg.resident
    est = EngineModel(cfg).estimate(model)
    assert all(est.layer(n).util > 0.6 for n in ("fc1", "fc2", "fc3"))  # 0.44-0.49 with one buffer
    design = emit_engine(cfg, max_ops=len(compiled.program.ops), build_root=build_root)
    run = run_engine_tests(design, "verilator", model_dir=lenet_dir, images=codes, compiled=compiled,
                           out_dir=tmp_path, build_root=build_root, seed=SEED, testcases=list(ENGINE_TESTS))
    _check(run, list(ENGINE_TESTS))
    recs = run.case("images").record["images"]
    assert len(recs) == 2 and all(np.ptp(r["golden"]) > 0 for r in recs)
