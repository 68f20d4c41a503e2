"""Tests of quant.quantizer.report: the report dataclasses, their JSON/markdown layouts and the SQNR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant.base.opcount import OpCount
from quant.quantizer.report import LayerReport, QuantizeReport, sqnr_db, sweep_markdown


def test_sqnr_db():
    ref = np.array([1.0, -2.0, 2.0])
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(np.zeros(3), ref) is None
    assert sqnr_db(ref, ref * 0.9) == round(10 * np.log10(9 / (0.01 * 9)), 2) == 20.0


def _rows():
    conv = LayerReport(name="c", kind="adder_conv", in_shape=(1, 4, 4), out_shape=(2, 4, 4), ops=OpCount(10, 2, 0),
                       K=9, bits=8, weight_bits=8, acc_bits=12, clamped_weight_channels=1, requant="fixed", out_bits=8,
                       shift=20, n_bits=24, sum_bits=30, float_node="bn1", sqnr_db=30.5)
    pool = LayerReport(name="p", kind="maxpool", in_shape=(2, 4, 4), out_shape=(2, 2, 2), ops=OpCount(0, 0, 24),
                       float_node="pool1", sqnr_db=None)
    return conv, pool


def test_layer_rows_keep_the_report_json_layout():
    conv, pool = _rows()
    assert list(conv.to_dict()) == [
        "name", "kind", "in_shape", "out_shape", "K", "bits", "weight_bits", "acc_bits", "clamped_weight_channels",
        "requant", "out_bits", "shift", "n_bits", "sum_bits", "sqnr_db",
        "additions_per_image", "multiplications_per_image", "comparisons_per_image",
    ]
    assert pool.to_dict() == {"name": "p", "kind": "maxpool", "in_shape": [2, 4, 4], "out_shape": [2, 2, 2], "sqnr_db": None,
                              "additions_per_image": 0, "multiplications_per_image": 0, "comparisons_per_image": 24}
    assert "sqnr_db" not in LayerReport(name="f", kind="flatten", in_shape=(2,), out_shape=(2,), ops=OpCount()).to_dict()
    with pytest.raises(ValueError, match="needs the float node"):
        LayerReport(name="f", kind="flatten", in_shape=(2,), out_shape=(2,), ops=OpCount(), sqnr_db=3.0)


def _report(**kw):
    base = dict(versions={"adderhw": "1"}, source={"path": "x.pt", "sha256": "ab" * 32}, model="m", dataset="d", bits=8,
                act_bits=8, requant="fixed", percentile="auto", bias_correction=True, groups=1, calib_images=10,
                eval_images=20, eval_split="test", float_accuracy=90.5, int_accuracy=90.25,
                int_float_top1_agreement_pct=99.0, quantize_seconds=1.0, golden_seconds=2.0, layers=_rows(),
                ops_per_image=OpCount(10, 2, 24))
    base.update(kw)
    return QuantizeReport(**base)


def test_report_dict_markdown_and_sweep():
    r = _report()
    d = r.to_dict()
    assert list(d)[:3] == ["tool", "versions", "source"] and list(d)[-3:] == ["accuracy_drop_points", "layers", "ops_per_image"]
    assert d["accuracy_drop_points"] == 0.25 and d["ops_per_image"] == {"additions": 10, "multiplications": 2, "comparisons": 24}
    md = r.to_markdown()
    assert "| 90.5 | 90.25 | 0.25 | 99.0 | 2.0 |" in md and "| c | adder_conv | 9 | 8 | 12 | fixed | 30.5 | 10 | 2 | 0 |" in md
    assert "| p | maxpool | - | - | - | - | - | 0 | 0 | 24 |" in md
    nolabels = _report(float_accuracy=None, int_accuracy=None, eval_split="calibration")
    assert "accuracy_drop_points" not in nolabels.to_dict() and nolabels.accuracy_drop_points is None
    table = sweep_markdown([r.sweep_row(), nolabels.sweep_row()])
    assert "| 8 | 8 | fixed | 90.5 | 90.25 | 0.25 | 99.0 |" in table and "| 8 | 8 | fixed | - | - | - | 99.0 |" in table
    assert r.summary() == "W8A8 fixed: float 90.5%  int 90.25%  agreement 99.0% on 20 test images"
    with pytest.raises(ValueError, match="both given or both None"):
        _report(float_accuracy=None)
