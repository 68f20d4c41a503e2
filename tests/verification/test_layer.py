"""verification.layer: host-side planning of real layers (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.schedule import layer_cycles
from quant import golden
from quant.artifact import load_int_model
from verification.layer import check_layer_fits, layer_requant, plan_layer_run
from verification.model import assemble, tile_outputs
from verification.suite import config_for_model


def test_every_lenet_layer_plans_to_the_golden_output(lenet_dir, design_meta):
    """Tiling + the tile model reproduce each compute layer of the golden model exactly."""
    model = load_int_model(lenet_dir)
    meta = design_meta("adder_4x4_b8_fixed")
    assert config_for_model(model, rows=4, cols=4) == meta.config
    images = golden.quantize_input(np.zeros((1,) + model.input_shape) + 0.5, model.input)
    ref = golden.run_codes(model, images)
    for layer in model.layers:
        if layer.pe is None:
            continue
        x = ref[layer.inputs[0]][0]
        plan = plan_layer_run(layer, x, meta)
        out = assemble(plan.tiles, [tile_outputs(t, meta.config) for t in plan.tiles],
                       plan.out_channels, plan.out_pixels)
        assert np.array_equal(out, plan.expected), layer.name
        assert np.array_equal(out.reshape(layer.out_shape), ref[layer.name][0]), layer.name
        o_ch, k = layer.weight.shape
        assert plan.cycles_predicted == layer_cycles(o_ch, plan.out_pixels, k, meta.config)
        rq = layer_requant(layer)
        assert rq.mode == layer.requant.mode and len(rq.m) == o_ch


def test_layer_fits_check(lenet_dir, design_meta):
    """A layer that does not match the design is refused with a message naming the mismatch."""
    model = load_int_model(lenet_dir)
    conv1 = model.layer("conv1")
    with pytest.raises(ValueError, match="needs adder PEs; the design has mult PEs"):
        check_layer_fits(conv1, design_meta("mult_4x4_b8_fixed"))
    with pytest.raises(ValueError, match="8-bit operands; the design 4-bit"):
        check_layer_fits(conv1, design_meta("adder_8x4_b4_threshold"))
    with pytest.raises(ValueError, match="is a maxpool: it does not run on the array"):
        check_layer_fits(model.layer("pool1"), design_meta("adder_4x4_b8_fixed"))
    with pytest.raises(ValueError, match=r"expects an input of shape \(1, 28, 28\)"):
        plan_layer_run(conv1, np.zeros((28, 28), dtype=np.int64), design_meta("adder_4x4_b8_fixed"))
