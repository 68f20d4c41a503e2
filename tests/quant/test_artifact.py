"""Tests of quant.artifact: round trip and refusal of corrupt/truncated/mismatched artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quant import golden
from quant.artifact import FORMAT_VERSION, IntLayer, load_int_model, save_int_model

SEED = 77


@pytest.fixture
def saved(tmp_path, tiny_int_model):
    model = tiny_int_model(np.random.default_rng(SEED), mode="threshold")
    save_int_model(model, tmp_path / "m")
    return model, tmp_path / "m"


def _same(a, b):
    assert a.name == b.name and a.input == b.input and a.input_shape == b.input_shape
    assert a.class_names == b.class_names
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in la.__dataclass_fields__:
            va, vb = getattr(la, f), getattr(lb, f)
            if f == "requant" and va is not None:
                for g in va.__dataclass_fields__:
                    x, y = getattr(va, g), getattr(vb, g)
                    assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), (la.name, g)
            elif isinstance(va, np.ndarray):
                assert np.array_equal(va, vb) and va.dtype == vb.dtype, (la.name, f)
            else:
                assert va == vb, (la.name, f)


def test_round_trip_is_exact(saved):
    model, path = saved
    back = load_int_model(path)
    _same(model, back)
    back2 = load_int_model(path / "manifest.json")
    imgs = np.random.default_rng(SEED).random((5, 1, 6, 6)).astype(np.float32)
    assert np.array_equal(golden.run(model, imgs), golden.run(back2, imgs))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert [l["kind"] for l in manifest["layers"]] == ["adder_conv", "maxpool", "flatten", "adder_linear"]


def test_missing_folder_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json: no such file"):
        load_int_model(tmp_path)


def test_corrupt_manifest(saved):
    _, path = saved
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt manifest"):
        load_int_model(path)


def test_truncated_weights(saved):
    _, path = saved
    blob = (path / "weights.npz").read_bytes()
    (path / "weights.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="does not match the manifest"):
        load_int_model(path)


def test_weights_of_another_model_are_refused(saved, tmp_path, tiny_int_model):
    _, path = saved
    other = tiny_int_model(np.random.default_rng(SEED + 1))
    save_int_model(other, tmp_path / "other")
    (path / "weights.npz").write_bytes((tmp_path / "other" / "weights.npz").read_bytes())
    with pytest.raises(ValueError, match="SHA-256 .* does not match"):
        load_int_model(path)


def _edit_manifest(path, fn):
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_wrong_version(saved):
    _, path = saved
    _edit_manifest(path, lambda m: m.update(format_version=99))
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        load_int_model(path)


def test_accumulator_width_must_be_the_needed_one(saved):
    _, path = saved
    _edit_manifest(path, lambda m: m["layers"][0].update(acc_bits=m["layers"][0]["acc_bits"] - 1))
    with pytest.raises(ValueError, match=r"layer c1: acc_bits=\d+ but K=9 at 6 bits needs \d+"):
        load_int_model(path)


def test_manifest_array_shape_mismatch(saved):
    _, path = saved

    def bad(m):
        m["layers"][0]["weight"]["shape"] = [3, 10]

    _edit_manifest(path, bad)
    with pytest.raises(ValueError, match="'c1.weight' is int64 \\[3, 9\\] in weights.npz but the manifest says"):
        load_int_model(path)


def test_inconsistent_layer_graph(saved):
    _, path = saved
    _edit_manifest(path, lambda m: m["layers"][1].update(inputs=["nope"]))
    with pytest.raises(ValueError, match="input 'nope' is not an earlier layer"):
        load_int_model(path)


def test_missing_field(saved):
    _, path = saved
    _edit_manifest(path, lambda m: m.pop("input"))
    with pytest.raises(ValueError, match="missing the field 'input'"):
        load_int_model(path)


def test_layer_validation_messages():
    rng = np.random.default_rng(SEED)
    layer = golden.random_layer(rng, kind="adder_conv", in_shape=(2, 4, 4), out_channels=2, bits=4)
    fields = {f: getattr(layer, f) for f in layer.__dataclass_fields__}
    with pytest.raises(ValueError, match="weight codes outside the 4-bit range 0..15"):
        IntLayer(**{**fields, "weight": fields["weight"] + 16})
    with pytest.raises(ValueError, match="unknown kind 'dense'"):
        IntLayer(**{**fields, "kind": "dense"})
    with pytest.raises(ValueError, match="out_shape \\(2, 5, 5\\) does not match"):
        IntLayer(**{**fields, "out_shape": (2, 5, 5)})


def test_save_is_atomic_on_error(tmp_path, monkeypatch, tiny_int_model):
    model = tiny_int_model(np.random.default_rng(SEED))
    save_int_model(model, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("quant.files.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_int_model(tiny_int_model(np.random.default_rng(SEED + 5)), tmp_path / "m")
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    assert after == before  # old files intact, no temp files left
