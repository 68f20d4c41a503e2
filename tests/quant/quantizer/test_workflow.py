"""Tests of quant.quantizer.workflow: image files and their errors (the full runs are in test_cli_quantize)."""

from __future__ import annotations

import numpy as np
import pytest

from quant.quantizer.workflow import Prediction, load_images


def test_load_images_checks_the_file(tmp_path):
    good = np.random.default_rng(1).random((2, 1, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", good)
    assert np.array_equal(load_images(tmp_path / "x.npy", "input"), good)
    with pytest.raises(FileNotFoundError, match="input .*nope.npy: no such file"):
        load_images(tmp_path / "nope.npy", "input")
    np.save(tmp_path / "bad.npy", good * 3)
    with pytest.raises(ValueError, match="--calib-data .*bad.npy: values must be finite and in 0..1"):
        load_images(tmp_path / "bad.npy", "--calib-data")
    np.save(tmp_path / "flat.npy", good.reshape(2, -1))
    with pytest.raises(ValueError, match=r"expected float32 \[N, C, H, W\] images"):
        load_images(tmp_path / "flat.npy", "input")
    np.save(tmp_path / "none.npy", good[:0])
    with pytest.raises(ValueError, match="no images"):
        load_images(tmp_path / "none.npy", "input")


def test_prediction_labels():
    p = Prediction(logits=np.array([[0, 5, 1], [9, 0, 0]]), class_names=("a", "b"))
    assert p.labels() == ["b", "a"]
    assert Prediction(logits=np.array([[0, 0, 3]]), class_names=("a", "b")).labels() == ["2"]
