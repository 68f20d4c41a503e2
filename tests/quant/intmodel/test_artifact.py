"""Tests of quant.intmodel.artifact: round trip and refusal of corrupt/truncated/mismatched artifacts."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from quant.intmodel import golden
from quant.intmodel.artifact import FORMAT_VERSION, IntLayer, load_int_model, save_int_model, seal_manifest

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
            if f in ("requant", "scale_groups") and va is not None:
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
    (path / "manifest.json").write_text(json.dumps(seal_manifest(m)))


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
    with pytest.raises(ValueError, match="weight codes outside the 4-bit range 0..15"):
        replace(layer, weight=layer.weight + 16)
    with pytest.raises(ValueError, match="unknown kind 'dense'"):
        replace(layer, kind="dense")
    with pytest.raises(ValueError, match="out_shape \\(2, 5, 5\\) does not match"):
        replace(layer, out_shape=(2, 5, 5))


def test_save_is_atomic_on_error(tmp_path, monkeypatch, tiny_int_model):
    model = tiny_int_model(np.random.default_rng(SEED))
    save_int_model(model, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("quant.base.files.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_int_model(tiny_int_model(np.random.default_rng(SEED + 5)), tmp_path / "m")
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    assert after == before  # old files intact, no temp files left


# --- a corpus of corrupt artifacts: every refusal of the loader, one line each ----------------

import hashlib  # noqa: E402
import io  # noqa: E402

from quant.intmodel.artifact import MAX_KERNEL  # noqa: E402


def _rewrite(path, manifest_fn=None, arrays_fn=None):
    """Edit ``manifest.json`` and/or the arrays of ``weights.npz``, then redo the weights hash."""
    m = json.loads((path / "manifest.json").read_text())
    with np.load(path / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    if arrays_fn is not None:
        arrays_fn(arrays, m)
    if manifest_fn is not None:
        manifest_fn(m)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (path / "weights.npz").write_bytes(buf.getvalue())
    m["weights_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(seal_manifest(m)))


def _layer(m, name):
    return next(ly for ly in m["layers"] if ly["name"] == name)


def _set(layer_name, /, **kw):
    """Manifest edit: update fields of layer ``layer_name`` (``requant__x`` edits the requant's ``x``)."""
    def fn(m):
        ly = _layer(m, layer_name)
        for k, v in kw.items():
            if k.startswith("requant__") and v is _DROP:
                ly["requant"].pop(k[len("requant__"):])
            elif k.startswith("requant__"):
                ly["requant"][k[len("requant__"):]] = v
            elif v is _DROP:
                ly.pop(k)
            else:
                ly[k] = v
    return fn


_DROP = object()


def _arr(key, fn, dtype=None):
    """Array edit: replace ``weights.npz[key]`` by ``fn(old)`` and fix the manifest's reference."""
    def edit(arrays, m):
        new = np.asarray(fn(arrays[key]))
        if dtype is not None:
            new = new.astype(dtype)
        arrays[key] = new
        for ly in m["layers"]:
            for holder in (ly, ly.get("requant", {})):
                for v in holder.values():
                    if isinstance(v, dict) and v.get("array") == key:
                        v["shape"], v["dtype"] = list(new.shape), str(new.dtype)
    return edit


def _top(**kw):
    def fn(m):
        for k, v in kw.items():
            if v is _DROP:
                m.pop(k)
            else:
                m[k] = v
    return fn


def _inp(**kw):
    def fn(m):
        m["input"].update(kw)
    return fn


# (id, base model, manifest edit, array edit, message regex)
CORRUPT = [
    ("format", "every", _top(format="onnx"), None, "not an adderhw-int-model manifest"),
    ("manifest-list", "every", lambda m: (m.clear(), None), None, "not an adderhw-int-model manifest"),
    ("layers-not-list", "every", _top(layers={"a": 1}), None, "manifest layers must be a list"),
    ("no-layers", "every", _top(layers=[]), None, "needs at least one layer"),
    ("layer-not-object", "every", _top(layers=[5]), None, "manifest layer 0 needs a name and a kind"),
    ("no-input", "every", _top(input=_DROP), None, "missing the field 'input'"),
    ("input-not-object", "every", _top(input=[1]), None, "manifest input must be an object"),
    ("source-not-object", "every", _top(source="x"), None, "manifest source must be an object"),
    ("class-names-string", "every", _top(class_names="abcde"), None, "class_names must be a list"),
    ("class-names-ints", "every", _top(class_names=[1, 2, 3, 4, 5]), None, "class_names must be strings"),
    ("class-names-count", "every", _top(class_names=["a"]), None, "1 class names for 5 logits"),
    ("name-empty", "every", _top(name=""), None, "model name must be a non-empty string, not ''"),
    ("name-number", "every", _top(name=7), None, "model name must be a non-empty string, not 7"),
    ("input-mean-number", "every", _inp(mean=0.5), None, "malformed manifest"),
    ("input-mean-count", "every", _inp(mean=[0.5], std=[0.2]), None, "one entry per input channel"),
    ("input-std-count", "every", _inp(std=[0.2]), None, "input mean and std need one entry per channel, not 2 and 1"),
    ("input-std-zero", "every", _inp(std=[0.2, 0.0]), None, "input std must be positive"),
    ("input-scale", "every", _inp(scale=-1.0), None, "input scale must be a positive finite number, not -1.0"),
    ("input-bits", "every", _inp(bits=20), None, "input bits must be an integer in 2..16, not 20"),
    ("input-zero-point", "every", _inp(zero_point=64), None, "input zero_point must be an integer in 0..63, not 64"),
    ("input-signed-string", "every", _inp(signed="false"), None, "input signed must be true or false, not 'false'"),
    ("input-shape", "every", _inp(shape=[2, 0, 6]), None, r"input shape must be \[C, H, W\] or \[F\]"),
    ("mult-bits-string", "every", _top(quantization={"mult_bits": "16"}), None,
     "quantization mult_bits must be an integer in 2..32, not '16'"),
    ("unknown-layer-field", "every", _set("c1", colour="red"), None, "layer 'c1': unknown fields colour"),
    ("unknown-kind", "every", _set("mp", kind="minpool"), None, "layer mp: unknown kind 'minpool'"),
    ("duplicate-name", "every", _set("c2", name="c1"), None, "duplicate layer name 'c1'"),
    ("input-not-earlier", "every", _set("c1", inputs=["fc"]), None, "layer c1: input 'fc' is not an earlier layer"),
    ("inputs-not-names", "every", _set("c1", inputs=[["input"]]), None, "layer c1: inputs must be layer names"),
    ("inputs-not-list", "every", _set("c1", inputs="input"), None, r"layer 'c1'.inputs must be a list"),
    ("add-one-input", "every", _set("sum", inputs=["c1"]), None, "layer sum: add needs 2 input.s., not 1"),
    ("in-shape-producer", "every", _set("mp", in_shape=[3, 6, 7], out_shape=[3, 4, 4]), None,
     r"layer mp: in_shape \(3, 6, 7\) but 'sum' produces \(3, 6, 6\)"),
    ("in-shape-zero", "every", _set("c1", in_shape=[2, 0, 6]), None, r"layer c1: in_shape must be \[C, H, W\] or \[F\]"),
    ("in-shape-string", "every", _set("c1", in_shape=["2", 6, 6]), None, r"layer c1: in_shape must be"),
    ("out-shape-2d", "every", _set("f", out_shape=[3, 27]), None, r"layer f: out_shape must be"),
    ("kernel-not-list", "every", _set("c1", kernel=3), None, r"layer 'c1'.kernel must be a list"),
    ("kernel-strings", "every", _set("c1", kernel=["3", "3"]), None, "layer c1: kernel must be a list of integers"),
    ("kernel-zero", "every", _set("c1", kernel=[0, 3]), None, rf"layer c1: kernel must be an integer in 1..{MAX_KERNEL}, not 0"),
    ("kernel-one-side", "every", _set("c1", kernel=[3]), None, r"layer c1: kernel must be a list \[kh, kw\], not \(3,\)"),
    ("kernel-huge", "every", _set("c1", kernel=[10**9, 3]), None, rf"kernel must be an integer in 1..{MAX_KERNEL}, not 1000000000"),
    ("kernel-too-large", "every", _set("c1", kernel=[9, 9]), None, "layer c1: kernel 9x9 is larger than the padded input height 8"),
    ("conv-stride-zero", "every", _set("c1", stride=0), None, rf"layer c1: stride must be an integer in 1..{MAX_KERNEL}, not 0"),
    ("conv-stride-string", "every", _set("c1", stride="1"), None, "layer c1: stride must be an integer, not '1'"),
    ("conv-stride-missing", "every", _set("c1", stride=_DROP), None, "layer 'c1': adder_conv layers need stride"),
    ("conv-padding-negative", "every", _set("c1", padding=-1), None, "layer c1: padding must be an integer in 0..64, not -1"),
    ("maxpool-stride-zero", "every", _set("mp", stride=0), None, "layer mp: stride must be an integer in 1..64, not 0"),
    ("avgpool-stride-zero", "every", _set("ap", stride=0), None, "layer ap: stride must be an integer in 1..64, not 0"),
    ("pool-padding-half", "every", _set("mp", padding=2), None,
     r"layer mp: padding 2 is more than half the kernel 2x2 \(a window could see only padding\)"),
    ("pool-no-kernel", "every", _set("mp", kernel=_DROP), None, "layer 'mp': maxpool layers need kernel"),
    ("pool-flat-input", "every", _set("mp", in_shape=[108]), None, r"layer mp: a maxpool takes \[C, H, W\] inputs"),
    ("pool-out-shape", "every", _set("mp", out_shape=[3, 3, 3]), None, r"layer mp: out_shape \(3, 3, 3\) does not match the pool"),
    ("maxpool-requant", "every", lambda m: _layer(m, "mp").update(requant=_layer(m, "ap")["requant"]), None,
     r"layer 'mp': unknown fields requant \(maxpool layers have name, kind, inputs, in_shape, out_shape, kernel, "
     r"stride, padding\)"),
    ("flatten-shape", "every", _set("f", out_shape=[7]), None, r"layer f: flatten of \(3, \d, \d\) cannot give \(7,\)"),
    ("add-shape", "every", _set("sum", out_shape=[3, 6, 5]), None, r"layer sum: add changes the shape"),
    ("linear-stride", "every", _set("fc", stride=2), None, "layer fc: a linear layer takes"),
    ("conv-flat-input", "every", _set("c1", in_shape=[72]), None, r"layer c1: a conv layer takes \[C, H, W\] inputs"),
    ("K-wrong", "every", _set("c1", K=17), None, r"layer c1: K=17 and weight \[3, 18\] do not match"),
    ("conv-out-shape", "every", _set("c1", out_shape=[3, 5, 5]), None, r"layer c1: out_shape \(3, 5, 5\) does not match"),
    ("bits-one", "every", _set("c1", bits=1), None, "layer c1: bits must be in 2..16, not 1"),
    ("bits-string", "every", _set("c1", bits="6"), None, "layer c1: bits must be an integer, not '6'"),
    ("weight-bits", "every", _set("c1", weight_bits=7), None, "layer c1: weight_bits must be in 2..bits, not 7"),
    ("in-zero-point", "every", _set("c1", in_zero_point=64), None, "layer c1: in_zero_point 64 outside 0..63"),
    ("in-scale", "every", _set("c1", in_scale=0), None, "layer c1: in_scale must be a positive finite number, not 0"),
    ("no-weight", "every", _set("c1", weight=_DROP), None, "layer 'c1': adder_conv layers need weight"),
    ("weight-float", "every", None, _arr("c1.weight", lambda a: a, np.float64),
     r"layer c1: weight must be int64 \[O, K\], not float64"),
    ("weight-codes", "every", None, _arr("c1.weight", lambda a: a + 64), "layer c1: weight codes outside the 6-bit range 0..63"),
    ("compensation-shape", "every", None, _arr("c1.compensation", lambda a: a[:2]), r"layer c1: compensation must be \[3\] finite"),
    ("compensation-nan", "every", None, _arr("c1.compensation", lambda a: a + np.nan), r"layer c1: compensation must be \[3\] finite"),
    ("array-ref-number", "every", _set("c1", weight=5), None, "layer 'c1'.weight: expected an array reference, not 5"),
    ("array-ref-missing", "every", lambda m: _layer(m, "c1")["weight"].update(array="nope"), None,
     r"layer 'c1'.weight: array 'nope' is missing from weights.npz"),
    ("array-ref-dtype", "every", lambda m: _layer(m, "c1")["weight"].update(dtype="int32"), None,
     r"array 'c1.weight' is int64 \[3, 18\] in weights.npz but the manifest says int32"),
    ("requant-not-object", "every", _set("c1", requant=3), None, "layer 'c1': requant must be an object"),
    ("requant-unknown", "every", _set("c1", requant__colour=1), None, r"layer 'c1'.requant: unknown fields colour"),
    ("requant-missing-field", "every", _set("c1", requant__mode=_DROP), None, r"layer 'c1'.requant: .*missing 1 required"),
    ("requant-mode", "every", _set("c1", requant__mode="float"), None, "requant mode must be fixed or threshold, not 'float'"),
    ("requant-scale", "every", _set("c1", requant__out_scale=0), None, "requant out_scale must be positive and finite, not 0"),
    ("requant-out-bits", "every", _set("c1", requant__out_bits=40), None, "requant out_bits must be an integer in 1..32, not 40"),
    ("requant-shift", "every", _set("c1", requant__shift=63), None, "fixed requant shift must be in 0..62, not 63"),
    ("requant-shift-float", "every", _set("c1", requant__shift=3.0), None, "fixed requant shift must be an integer, not 3.0"),
    ("requant-lo-hi", "every", _set("c1", requant__lo=9, requant__hi=8), None, "fixed requant lo=9 exceeds hi=8"),
    ("requant-clamp-range", "every", _set("c1", requant__hi=64), None, "fixed requant clamp 0..64 exceeds the 6-bit unsigned range"),
    ("requant-zero-point", "every", _set("c1", requant__out_zero_point=-1), None, "requant out_zero_point -1 outside 0..63"),
    ("requant-zero-point-float", "every", _set("c1", requant__out_zero_point=0.5), None,
     "requant out_zero_point must be an integer, not 0.5"),
    ("requant-signed-string", "every", _set("c1", requant__out_signed="no"), None, "requant out_signed must be true or false, not 'no'"),
    ("requant-no-m", "every", _set("c1", requant__m=_DROP), None, "fixed requant needs m"),
    ("requant-m-float", "every", None, _arr("c1.requant.m", lambda a: a, np.float64), "requant m must be an integer array, not float64"),
    ("requant-m-shape", "every", None, _arr("c1.requant.m", lambda a: a[:2]), r"layer c1: fixed requant m and n must be \[3\]"),
    ("requant-n-bits-zero", "every", _set("c1", requant__n_bits=0), None, "fixed requant n_bits must be an integer in 1..62, not 0"),
    ("requant-n-bits", "every", _set("c1", requant__n_bits=2), None, r"requant n value -?\d+ does not fit its declared signed 2 bits"),
    # issue 17 defect 8: m = 2**40 with 16-bit mult_bits
    ("m-2**40-mult-bits", "every", _top(quantization={"mult_bits": 16}), _arr("c1.requant.m", lambda a: a * 0 + 2**40),
     r"layer c1: requant m value 1099511627776 does not fit its declared signed 16 bits \(-32768..32767\)"),
    ("m-2**40-sum-bits", "every", _set("c1", requant__sum_bits=33), _arr("c1.requant.m", lambda a: a * 0 + 2**40),
     r"layer c1: requant sums m\*acc \+ n reach \d+ and need \d+ bits, more than its sum_bits=33"),
    ("m-2**58-int64", "every", None, _arr("c1.requant.m", lambda a: a * 0 + 2**58),
     r"layer c1: requant sums m\*acc \+ n reach \d+, beyond the int64 range"),
    ("avgpool-sum-bits", "every", _set("ap", requant__sum_bits=2), None, "layer ap: requant sums m.acc . n reach"),
    ("add-sum-bits", "every", _set("sum", requant__sum_bits=2), None, "layer sum: requant sums m.acc . n reach"),
    ("avgpool-m-two", "every", None, _arr("ap.requant.m", lambda a: np.r_[a, a]), "layer ap: avgpool needs a fixed requant with scalar m, n"),
    ("avgpool-n-three", "every", None, _arr("ap.requant.n", lambda a: np.r_[a, a, a]), "layer ap: avgpool needs a fixed requant with scalar m, n"),
    ("add-m-three", "every", None, _arr("sum.requant.m", lambda a: np.r_[a, a[:1]]), r"layer sum: add needs a fixed requant with m \[2\]"),
    ("thr-signed", "threshold", _set("c2", requant__out_signed=True), None, "threshold requant produces unsigned codes"),
    ("thr-missing", "threshold", _set("c2", requant__thr=_DROP), None, "threshold requant needs thr and neg"),
    ("thr-width", "threshold", None, _arr("c2.requant.thr", lambda a: a[:, 1:]), r"threshold thr must be \[O, 63\], not \[3, 62\]"),
    ("thr-rows", "threshold", None, _arr("c2.requant.thr", lambda a: a[:2]), "layer c2: threshold thr must have 3 rows|threshold neg must be"),
    ("thr-decreasing", "threshold", None, _arr("c2.requant.thr", lambda a: a[:, ::-1] + np.arange(63)),
     "threshold thr must be non-negative and non-decreasing along t"),
    ("thr-negative", "threshold", None, _arr("c2.requant.thr", lambda a: a - a.max() - 1),
     "threshold thr must be non-negative and non-decreasing along t"),
    ("thr-above-max-acc", "threshold", None, _arr("c2.requant.thr", lambda a: a + 10**6),
     r"layer c2: threshold \d+ is above the largest accumulator 1701 \+ 1 \(K=27 at 6 bits\)"),
    ("thr-neg-two", "threshold", None, _arr("c2.requant.neg", lambda a: a + 2), r"threshold neg must be \[O\] of 0/1"),
    ("thr-float", "threshold", None, _arr("c2.requant.thr", lambda a: a, np.float64), "threshold thr must be an integer array, not float64"),
    ("thr-with-m", "threshold", lambda m: _layer(m, "c2")["requant"].update(shift=3), None,
     "threshold requant has fixed-point fields shift"),
    ("last-layer-not-logits", "every", lambda m: m.update(layers=m["layers"][:5]), None,
     r"the last layer must produce logits \[classes\], not \[3, \d, \d\]"),
    ("logits-without-requant", "every",
     lambda m: m.update(class_names=[], layers=m["layers"][:4] + [dict(name="f", kind="flatten", inputs=["mp"],
                                                                         in_shape=_layer(m, "mp")["out_shape"],
                                                                         out_shape=[3 * 16])]), None,
     "the logits come from layer 'mp', which has no requant"),
    ("mult-zero-point", "mult", _set("conv", in_zero_point=3), None, "layer conv: multiply layers need in_zero_point 0"),
    ("mult-no-weight-scale", "mult", _set("conv", weight_scale=_DROP), None, "layer 'conv': conv layers need weight_scale"),
    ("mult-weight-scale-zero", "mult", None, _arr("conv.weight_scale", lambda a: a * 0), r"multiply layers need weight_scale \[4\] of positive"),
    ("adder-weight-scale", "every", lambda m: _layer(m, "c1").update(weight_scale=_layer(m, "c1")["compensation"]), None,
     "layer 'c1': unknown fields weight_scale"),
]


@pytest.fixture
def bases(tmp_path, every_kind_model, mult_model):
    def make(which):
        rng = np.random.default_rng(SEED)
        model = {"every": lambda: every_kind_model(rng, pool_padding=1),
                 "threshold": lambda: every_kind_model(rng, mode="threshold", pool_padding=1),
                 "mult": lambda: mult_model(rng)}[which]()
        save_int_model(model, tmp_path / which)
        return tmp_path / which
    return make


@pytest.mark.parametrize("case", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_artifact_is_refused_with_one_line(case, bases):
    _, base, mfn, afn, msg = case
    path = bases(base)
    load_int_model(path)  # the base is valid
    before = sorted(p.name for p in path.iterdir())
    _rewrite(path, mfn, afn)
    with pytest.raises(ValueError, match=msg) as info:
        load_int_model(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path / "manifest.json") + ": ")
    assert sorted(p.name for p in path.iterdir()) == before  # loading writes nothing


def test_file_level_refusals(bases, tmp_path):
    path = bases("every")
    with pytest.raises(ValueError, match="weights.npz: not an integer model directory"):
        load_int_model(path / "weights.npz")
    (path / "manifest.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="corrupt manifest"):
        load_int_model(path)
    path = bases("mult")
    (path / "weights.npz").unlink()
    with pytest.raises(FileNotFoundError, match="weights.npz: no such file"):
        load_int_model(path)
    path = bases("threshold")
    blob = b"not a zip file at all"
    (path / "weights.npz").write_bytes(blob)
    _edit_manifest(path, lambda m: m.update(weights_sha256=hashlib.sha256(blob).hexdigest()))
    with pytest.raises(ValueError, match=r"weights.npz: corrupt weights file"):
        load_int_model(path)


def test_pickled_arrays_are_refused(bases):
    path = bases("every")
    buf = io.BytesIO()
    np.savez(buf, evil=np.array([object()], dtype=object))
    _edit_manifest(path, lambda m: m.update(weights_sha256=hashlib.sha256(buf.getvalue()).hexdigest()))
    (path / "weights.npz").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="corrupt weights file"):
        load_int_model(path)


def test_stride_zero_fails_no_subcommand_with_a_traceback(bases, capsys):
    """Issue 17 defect 6: ``"stride": 0`` gave ZeroDivisionError in predict, estimate and verify."""
    from scripts.cli import main

    path = bases("every")
    _rewrite(path, _set("c1", stride=0))
    np.save(path.parent / "x.npy", np.zeros((1, 2, 6, 6), dtype=np.float32))
    for argv in (["predict", str(path), str(path.parent / "x.npy"), "-o", str(path.parent / "logits.npy")],
                 ["estimate", str(path), "-o", str(path.parent / "est")],
                 ["verify", str(path), "-o", str(path.parent / "ver")]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 1, argv
        assert err.strip().endswith("layer c1: stride must be an integer in 1..64, not 0"), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any((path.parent / p).exists() for p in ("est", "ver", "logits.npy"))


# --- property: any mutation of a valid artifact is accepted or refused with one line ----------

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_SPECIAL = st.sampled_from([0, -1, 1, 2, 63, 64, 2**31, 2**40, 2**63, -2**63, 0.5, float("inf"), "", "../x",
                            [], [0], [1, 1], [2, 0, 6], [10**9, 3], None, True, {"array": "nope"}])


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree (dict keys and list indices)."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate(manifest, path, action, value):
    if not path:
        return value if action == "replace" else manifest
    parent = manifest
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if action == "delete":
        parent.pop(last) if isinstance(parent, dict) else parent.pop(last)
    elif action == "replace":
        parent[last] = value
    elif isinstance(parent, dict):
        parent[str(value)[:6]] = value  # an extra key
    else:
        parent.insert(last, value)
    return manifest


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_manifest_is_accepted_or_refused_in_one_line(data, tmp_path, every_kind_model, mult_model):
    rng = np.random.default_rng(SEED)
    which = data.draw(st.sampled_from(["every", "threshold", "mult"]))
    folder = tmp_path / which
    if not folder.exists():
        model = {"every": lambda: every_kind_model(rng, pool_padding=1),
                 "threshold": lambda: every_kind_model(rng, mode="threshold", pool_padding=1),
                 "mult": lambda: mult_model(rng)}[which]()
        save_int_model(model, folder / "orig")
    orig = json.loads((folder / "orig" / "manifest.json").read_text())
    spots = [p for p, _ in _paths(orig) if "weights_sha256" not in p and "manifest_sha256" not in p]
    path = data.draw(st.sampled_from(spots))
    action = data.draw(st.sampled_from(["replace", "replace", "delete", "insert"]))
    value = data.draw(_SPECIAL | _JSON)
    try:
        mutated = _mutate(json.loads(json.dumps(orig)), path, action, value)
    except (IndexError, KeyError, AttributeError, TypeError):
        mutated = None  # the mutation itself does not apply (e.g. delete from the root)
    assume(mutated is not None)
    case = folder / "case"
    case.mkdir(exist_ok=True)
    (case / "weights.npz").write_bytes((folder / "orig" / "weights.npz").read_bytes())
    (case / "manifest.json").write_text(json.dumps(seal_manifest(mutated) if isinstance(mutated, dict) else mutated))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        model = load_int_model(case)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(case / "manifest.json")), str(exc)
    else:
        # accepted: it is a valid model that the golden model can run
        imgs = np.random.default_rng(1).random((1,) + model.input_shape)
        golden.run(model, imgs)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_constructor_refusals(every_kind_model):
    """The refusals only a program (not a manifest) can reach."""
    from quant.intmodel.artifact import IntModel, Requant

    model = every_kind_model(np.random.default_rng(SEED), mode="threshold")
    c2 = model.layer("c2")
    with pytest.raises(ValueError, match="^requant m holds values beyond int64$"):
        Requant(mode="fixed", m=np.array([2**63], dtype=np.uint64), n=np.zeros(1, np.int64), shift=0, lo=0, hi=1,
                out_scale=1.0, out_zero_point=0, out_bits=4)
    with pytest.raises(ValueError, match="^layer c2: requant must be a Requant, not 5$"):
        replace(c2, requant=5)
    rq = c2.requant
    two_rows = Requant(mode="threshold", thr=rq.thr[:2], neg=rq.neg[:2], out_scale=1.0, out_zero_point=0,
                       out_bits=rq.out_bits)
    with pytest.raises(ValueError, match="^layer c2: threshold thr must have 3 rows$"):
        replace(c2, requant=two_rows)
    base = {f: getattr(model, f) for f in model.__dataclass_fields__}
    with pytest.raises(ValueError, match="^model dataset must be a string, not 5$"):
        IntModel(**{**base, "dataset": 5})
    with pytest.raises(ValueError, match="^an integer model's layers must be IntLayer objects$"):
        IntModel(**{**base, "layers": [5]})
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        model.layer("nope")


def test_an_edited_manifest_is_refused_as_corrupt(saved):
    """Issue 17 defect 1: the digest covers the manifest, so a hand-edited name is refused."""
    _, path = saved
    m = json.loads((path / "manifest.json").read_text())
    m["name"] = "../../../../x"
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"manifest\.json: the manifest's SHA-256 does not match its "
                                         r"manifest_sha256 \(edited or corrupt; quantize the checkpoint again\)$"):
        load_int_model(path)


def test_reformatting_the_manifest_keeps_it_valid(saved):
    _, path = saved
    m = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps(m, indent=4, sort_keys=True))
    load_int_model(path)


@pytest.mark.parametrize("old", [1, 2])
def test_old_versions_are_refused_naming_both_versions(saved, old):
    """Version 1 (no manifest digest) and 2 (before group-shared scales) are refused, not read."""
    _, path = saved
    _edit_manifest(path, lambda m: (m.update(format_version=old), m.pop("manifest_sha256", None) if old == 1 else 0))
    with pytest.raises(ValueError, match=f"format version {old} is not supported \\(this adderhw reads version 3 "
                                         "only; quantize the checkpoint again\\)"):
        load_int_model(path)


def _grouped_saved(tmp_path, every_kind_model, groups=3):
    model = every_kind_model(np.random.default_rng(5), groups=groups)
    save_int_model(model, tmp_path / "g")
    return model, tmp_path / "g"


def test_group_scales_round_trip(tmp_path, every_kind_model):
    model, path = _grouped_saved(tmp_path, every_kind_model)
    back = load_int_model(path)
    for a, b in zip(model.layers, back.layers, strict=True):
        assert type(a) is type(b)
        if getattr(a, "scale_groups", None) is not None:
            assert a.groups == b.groups
            for f in ("channel_group", "m", "n", "scale", "zero_point"):
                assert np.array_equal(getattr(a.scale_groups, f), getattr(b.scale_groups, f)), f
            assert (a.scale_groups.shift, a.scale_groups.in_bits) == (b.scale_groups.shift, b.scale_groups.in_bits)
    m = json.loads((path / "manifest.json").read_text())
    assert "scale_groups" not in m["layers"][0] and m["layers"][-1]["scale_groups"]["count"] == 3


@pytest.mark.parametrize("edit, message", [
    (lambda g, a: g.update(count=1), "scale_groups count must be an integer in 2..65536, not 1"),
    (lambda g, a: g.update(extra=1), "scale_groups: unknown fields extra"),
    (lambda g, a: g.pop("shift"), "scale_groups: missing fields shift"),
    (lambda g, a: g.update(shift=63), "scale_groups shift must be an integer in 0..62, not 63"),
    (lambda g, a: g.update(in_bits=1), "scale_groups in_bits must be an integer in 2..16, not 1"),
])
def test_group_scales_refusals(tmp_path, every_kind_model, edit, message):
    _, path = _grouped_saved(tmp_path, every_kind_model)
    _edit_manifest(path, lambda m: edit(m["layers"][-1]["scale_groups"], m))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_int_model(path)


def test_group_scales_array_refusals(every_kind_model):
    """Groups that are not all used, channel_group of the wrong length, scale_groups on other layers."""
    import dataclasses

    from quant.intmodel.artifact import GroupScales

    model = every_kind_model(np.random.default_rng(5), groups=3)
    fc = model.layer("fc")
    sg = fc.scale_groups
    with pytest.raises(ValueError, match="every one of the 3 groups needs a channel"):
        dataclasses.replace(sg, channel_group=np.zeros_like(sg.channel_group))
    short = dataclasses.replace(sg, channel_group=np.arange(4) % 3)
    with pytest.raises(ValueError, match=r"layer fc: scale_groups channel_group must be \[5\]"):
        dataclasses.replace(fc, scale_groups=short)
    with pytest.raises(ValueError, match="re-scale sums m\\*x \\+ n reach beyond the int64 range"):
        GroupScales(count=2, channel_group=[0, 1], in_bits=16, m=[1 << 50, 1], n=[0, 0], shift=0, scale=[1.0, 1.0],
                    zero_point=[0, 0])
    for other in ("mp", "sum"):  # scale_groups are fields of adder layers only
        with pytest.raises(TypeError, match="unexpected keyword argument 'scale_groups'"):
            dataclasses.replace(model.layer(other), scale_groups=sg)


# ---- one class per layer kind ---------------------------------------------------------------


def _every_class(every_kind_model, mult_model):
    """Models holding every layer class between them: every_kind (adder, pools, add, flatten) and mult."""
    return [every_kind_model(np.random.default_rng(SEED), groups=2), mult_model(np.random.default_rng(SEED))]


def test_each_kind_round_trips_as_its_class(tmp_path, every_kind_model, mult_model):
    from quant.intmodel.artifact import LAYER_CLASSES
    from quant.base.intops import LayerKind, RequantMode

    seen = set()
    for i, model in enumerate(_every_class(every_kind_model, mult_model)):
        save_int_model(model, tmp_path / str(i))
        back = load_int_model(tmp_path / str(i))
        _same(model, back)
        for a, b in zip(model.layers, back.layers, strict=True):
            assert type(b) is type(a) is LAYER_CLASSES[b.kind] and isinstance(b.kind, LayerKind)
            assert getattr(b, "requant", None) is None or isinstance(b.requant.mode, RequantMode)
            seen.add(type(b))
        manifest = json.loads((tmp_path / str(i) / "manifest.json").read_text())
        assert [l["kind"] for l in manifest["layers"]] == [str(l.kind) for l in model.layers]
    assert seen == set(LAYER_CLASSES.values())


def test_base_classes_are_not_layers():
    from quant.intmodel.artifact import ComputeLayer, IntLayer, PoolLayer

    with pytest.raises(TypeError, match="^IntLayer is the base of the layer classes; use one of AdderLayer, "):
        IntLayer(name="f", kind="flatten", inputs=("input",), in_shape=(2, 2, 2), out_shape=(8,))
    with pytest.raises(TypeError, match="^PoolLayer is the base"):
        PoolLayer(name="p", kind="maxpool", inputs=("input",), in_shape=(1, 2, 2), out_shape=(1, 1, 1),
                  kernel=(2, 2), stride=2, padding=0)
    layer = golden.random_layer(np.random.default_rng(SEED), kind="adder_conv", in_shape=(2, 4, 4), out_channels=2,
                                bits=4)
    fields = {f: getattr(layer, f) for f in layer.__dataclass_fields__ if f != "scale_groups"}
    with pytest.raises(TypeError, match="^ComputeLayer is the base"):
        ComputeLayer(**fields)


def test_adder_layer_validation():
    rng = np.random.default_rng(SEED)
    layer = golden.random_layer(rng, kind="adder_conv", in_shape=(2, 4, 4), out_channels=2, bits=4, name="a")
    with pytest.raises(ValueError, match=r"^layer a: kind conv is not one of AdderLayer's \(adder_conv, adder_linear\)$"):
        replace(layer, kind="conv")
    with pytest.raises(ValueError, match=r"^layer a: acc_bits=5 but K=18 at 4 bits needs 9$"):
        replace(layer, acc_bits=5)
    with pytest.raises(ValueError, match=r"^layer a: in_zero_point 16 outside 0..15$"):
        replace(layer, in_zero_point=16)
    with pytest.raises(ValueError, match=r"^layer a: compensation must be \[2\] finite numbers$"):
        replace(layer, compensation=np.zeros(3))
    with pytest.raises(ValueError, match="^layer a: scale_groups must be GroupScales, not 3$"):
        replace(layer, scale_groups=3)
    lin = golden.random_layer(rng, kind="adder_linear", in_shape=(6,), out_channels=2, bits=4, name="l")
    with pytest.raises(ValueError, match="^layer l: a linear layer takes .F. inputs with kernel 1x1, stride 1, padding 0$"):
        replace(lin, stride=2)
    assert lin.pe == "adder" and lin.groups == 1 and lin.acc_range == (0, 6 * 15) == (0, lin.max_acc)


def test_mult_layer_validation():
    rng = np.random.default_rng(SEED)
    layer = golden.random_layer(rng, kind="conv", in_shape=(2, 4, 4), out_channels=2, bits=4, name="m")
    assert layer.pe == "mult" and layer.groups == 1 and not hasattr(layer, "scale_groups")
    with pytest.raises(ValueError, match="^layer m: kind adder_conv is not one of MultLayer's"):
        replace(layer, kind="adder_conv")
    with pytest.raises(ValueError, match="^layer m: multiply layers need in_zero_point 0$"):
        replace(layer, in_zero_point=1)
    with pytest.raises(ValueError, match=r"^layer m: multiply layers need weight_scale \[2\] of positive finite numbers$"):
        replace(layer, weight_scale=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="^layer m: weight codes outside the 4-bit range -8..7$"):
        replace(layer, weight=layer.weight + 16)


def test_pool_layer_validation(every_kind_model):
    from quant.intmodel.artifact import AvgPoolLayer, MaxPoolLayer, Requant

    model = every_kind_model(np.random.default_rng(SEED))
    mp, ap = model.layer("mp"), model.layer("ap")
    assert isinstance(mp, MaxPoolLayer) and isinstance(ap, AvgPoolLayer) and not hasattr(mp, "requant")
    with pytest.raises(ValueError, match="field kind is declared with init=False"):
        replace(mp, kind="avgpool")  # a one-kind class: its kind is not an argument
    with pytest.raises(ValueError, match=r"^layer mp: padding 2 is more than half the kernel 2x2"):
        replace(mp, padding=2)
    with pytest.raises(ValueError, match=r"^layer mp: out_shape \(3, 9, 9\) does not match the pool"):
        replace(mp, out_shape=(3, 9, 9))
    with pytest.raises(ValueError, match=r"^layer mp: a maxpool takes \[C, H, W\] inputs, not \[108\]$"):
        replace(mp, in_shape=(108,))
    with pytest.raises(ValueError, match="^layer ap: requant must be a Requant, not None$"):
        replace(ap, requant=None)
    two = Requant(mode="fixed", m=np.array([1, 2]), n=np.array([0, 0]), shift=0, lo=0, hi=63, out_scale=1.0,
                  out_zero_point=0, out_bits=6)
    with pytest.raises(ValueError, match="^layer ap: avgpool needs a fixed requant with scalar m, n$"):
        replace(ap, requant=two)


def test_add_and_flatten_validation(every_kind_model):
    from quant.intmodel.artifact import AddLayer, FlattenLayer

    model = every_kind_model(np.random.default_rng(SEED))
    add, flat = model.layer("sum"), model.layer("f")
    assert isinstance(add, AddLayer) and isinstance(flat, FlattenLayer)
    with pytest.raises(ValueError, match=r"^layer sum: add needs 2 input\(s\), not 1$"):
        replace(add, inputs=("c1",))
    with pytest.raises(ValueError, match=r"^layer sum: add needs a fixed requant with m \[2\] and scalar n$"):
        replace(add, requant=model.layer("ap").requant)
    with pytest.raises(ValueError, match=r"^layer sum: add changes the shape \(3, 6, 6\) -> \(3, 3, 3\)$"):
        replace(add, out_shape=(3, 3, 3))
    with pytest.raises(ValueError, match=r"^layer f: flatten needs 1 input\(s\), not 2$"):
        replace(flat, inputs=("ap", "mp"))
    with pytest.raises(ValueError, match=r"^layer f: flatten of \(3, \d, \d\) cannot give \(7,\)$"):
        replace(flat, out_shape=(7,))
    assert flat.pe is None and flat.out_pixels == 1 and flat.out_channels == flat.out_shape[0]
