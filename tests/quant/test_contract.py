"""The integer contract (docs/interfaces.md §4) implemented from the page alone, against quant.intmodel.golden.

``_Reference`` below reads ``manifest.json`` and ``weights.npz`` itself
(json + numpy, no adderhw import) and runs the model the way the page says,
with plain loops where the page states a loop.  It is compared bit for bit
with :func:`quant.intmodel.golden.run` on random artifacts of every layer kind:
adder and multiply layers, fixed and threshold requant, padded max and
average pooling, signed average pooling, the residual add, flatten, and the
input quantiser (including values exactly half-way between two codes).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from quant.intmodel import golden
from quant.intmodel.artifact import load_int_model, save_int_model


class _Reference:
    """An integer model per docs/interfaces.md §4, from the two files only."""

    def __init__(self, folder):
        self.manifest = json.loads((folder / "manifest.json").read_text())
        with np.load(folder / "weights.npz", allow_pickle=False) as npz:
            self.npz = {k: npz[k] for k in npz.files}
        assert self.manifest["format"] == "adderhw-int-model" and self.manifest["format_version"] == 3
        rest = {k: v for k, v in self.manifest.items() if k != "manifest_sha256"}
        canon = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        assert hashlib.sha256(canon).hexdigest() == self.manifest["manifest_sha256"]
        assert hashlib.sha256((folder / "weights.npz").read_bytes()).hexdigest() == self.manifest["weights_sha256"]

    def array(self, ref):
        arr = self.npz[ref["array"]]
        assert list(arr.shape) == ref["shape"] and str(arr.dtype) == ref["dtype"]
        return arr

    # §4.2
    def input_codes(self, image):
        inp = self.manifest["input"]
        b = inp["bits"]
        lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if inp["signed"] else (0, (1 << b) - 1)
        x = np.asarray(image, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.int64)
        for c in range(x.shape[0]):
            v = np.rint(((x[c] - inp["mean"][c]) / inp["std"][c]) / inp["scale"]) + inp["zero_point"]
            out[c] = np.clip(v, lo, hi).astype(np.int64)
        return out

    # §4.4
    def requant(self, rq, value, o):
        if rq["mode"] == "fixed":
            m = self.array(rq["m"]).reshape(-1)
            n = self.array(rq["n"]).reshape(-1)
            mm = int(m[o] if m.size > 1 else m[0])
            nn = int(n[o] if n.size > 1 else n[0])
            s = (mm * int(value) + nn) // (1 << rq["shift"])  # arithmetic shift = floor
            return min(max(s, rq["lo"]), rq["hi"])
        thr = self.array(rq["thr"])
        neg = self.array(rq["neg"])
        t = (1 << rq["out_bits"]) - 1
        assert thr.shape[1] == t
        cnt = sum(1 for v in thr[o] if int(value) >= int(v))
        return t - cnt if neg[o] else cnt

    # §4.3
    def compute(self, ly, x):
        if len(ly["in_shape"]) == 1:
            x = x.reshape(-1, 1, 1)
        c, h, w = x.shape
        kh, kw = ly["kernel"]
        s, p = ly["stride"], ly["padding"]
        xp = np.full((c, h + 2 * p, w + 2 * p), ly["in_zero_point"], dtype=np.int64)
        xp[:, p : p + h, p : p + w] = x
        oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
        wt = self.array(ly["weight"])
        o_n = wt.shape[0]
        adder = ly["kind"].startswith("adder")
        sg = ly.get("scale_groups")
        if sg is not None:  # §4.3 group-shared scales: channel o reads its group's re-scaled codes
            group = self.array(sg["channel_group"])
            gm, gn = self.array(sg["m"]), self.array(sg["n"])
            top = (1 << ly["bits"]) - 1

            def regroup(col, o):
                g = int(group[o])
                return [min(max((int(gm[g]) * v + int(gn[g])) // (1 << sg["shift"]), 0), top) for v in col]
        out = np.empty((o_n, oh * ow), dtype=np.int64)
        for oy in range(oh):
            for ox in range(ow):
                col = np.empty(c * kh * kw, dtype=object)
                for ci in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            col[ci * kh * kw + i * kw + j] = int(xp[ci, oy * s + i, ox * s + j])
                for o in range(o_n):
                    wo = [int(v) for v in wt[o]]
                    col_o = regroup(col, o) if sg is not None else col
                    acc = sum(abs(a - b) for a, b in zip(col_o, wo)) if adder else sum(a * b for a, b in zip(col, wo))
                    out[o, oy * ow + ox] = self.requant(ly["requant"], acc, o)
        return out.reshape(ly["out_shape"])

    def pool(self, ly, x):
        c, h, w = x.shape
        kh, kw = ly["kernel"]
        s, p = ly["stride"], ly["padding"]
        oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
        out = np.empty((c, oh, ow), dtype=np.int64)
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    vals = []
                    for i in range(kh):
                        for j in range(kw):
                            y, xx = oy * s + i - p, ox * s + j - p
                            inside = 0 <= y < h and 0 <= xx < w
                            if ly["kind"] == "maxpool":
                                if inside:  # padding is minus infinity
                                    vals.append(int(x[ci, y, xx]))
                            else:
                                vals.append(int(x[ci, y, xx]) if inside else 0)  # padding is the integer 0
                    out[ci, oy, ox] = max(vals) if ly["kind"] == "maxpool" else self.requant(ly["requant"], sum(vals), 0)
        return out

    def add(self, ly, a, b):
        rq = ly["requant"]
        m = self.array(rq["m"])
        n = int(self.array(rq["n"]).reshape(-1)[0])
        out = np.empty(a.shape, dtype=np.int64)
        for idx in np.ndindex(a.shape):
            v = (int(m[0]) * int(a[idx]) + int(m[1]) * int(b[idx]) + n) // (1 << rq["shift"])
            out[idx] = min(max(v, rq["lo"]), rq["hi"])
        return out

    def flatten(self, x):
        c, h, w = x.shape
        out = np.empty(c * h * w, dtype=np.int64)
        for ci in range(c):
            for y in range(h):
                for xx in range(w):
                    out[ci * h * w + y * w + xx] = x[ci, y, xx]
        return out

    def run(self, image):
        vals = {"input": self.input_codes(image)}
        for ly in self.manifest["layers"]:
            ins = [vals[s] for s in ly["inputs"]]
            kind = ly["kind"]
            if kind in ("adder_conv", "adder_linear", "conv", "linear"):
                vals[ly["name"]] = self.compute(ly, ins[0])
            elif kind in ("maxpool", "avgpool"):
                vals[ly["name"]] = self.pool(ly, ins[0])
            elif kind == "add":
                vals[ly["name"]] = self.add(ly, ins[0], ins[1])
            elif kind == "flatten":
                vals[ly["name"]] = self.flatten(ins[0])
            else:
                raise AssertionError(f"kind {kind!r} is not on the page")
            assert list(vals[ly["name"]].shape) == ly["out_shape"]
        return vals[self.manifest["layers"][-1]["name"]]

    # §4.5
    def logits_scale(self):
        by_name = {ly["name"]: ly for ly in self.manifest["layers"]}
        ly = self.manifest["layers"][-1]
        while ly["kind"] == "flatten":
            ly = by_name[ly["inputs"][0]]
        return ly["requant"]["out_scale"], ly["requant"]["out_zero_point"]


def _images(rng, model, n):
    """Random images in 0..1, plus values that land exactly half-way between two input codes."""
    imgs = rng.random((n,) + model.input_shape)
    spec = model.input
    for c in range(model.input_shape[0]):
        # x with ((x - mean) / std) / scale == k + 0.5 exactly (when representable), for the first image
        k = rng.integers(-3, 4, size=imgs[0, c].shape)
        imgs[0, c] = (k + 0.5) * spec.scale * spec.std[c] + spec.mean[c]
    return imgs


def _compare(model, folder, rng, n=3):
    ref = _Reference(folder)
    imgs = _images(rng, model, n)
    want = np.stack([ref.run(im) for im in imgs])
    got = golden.run(load_int_model(folder), imgs)
    assert got.dtype == np.int64
    assert np.array_equal(got, want), (got, want)
    rq = model.logits_requant
    assert ref.logits_scale() == (rq.out_scale, rq.out_zero_point)
    return want


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["fixed", "threshold"])
def test_every_layer_kind_matches_golden(seed, mode, every_kind_model, tmp_path):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = every_kind_model(rng, mode=mode, pool_padding=seed % 2, avg_signed=seed >= 2,
                             bits=(6, 4, 8, 5)[seed])
    save_int_model(model, tmp_path / "m")
    want = _compare(model, tmp_path / "m", rng)
    assert len(np.unique(want)) > 1  # the logits are not one constant (the test can see differences)


@pytest.mark.parametrize("seed,bits", [(0, 8), (1, 4), (2, 6)])
def test_multiply_layers_match_golden(seed, bits, mult_model, tmp_path):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = mult_model(rng, bits=bits)
    save_int_model(model, tmp_path / "m")
    _compare(model, tmp_path / "m", rng)


def test_padding_and_order_matter(every_kind_model, tmp_path):
    """The reference notices the details the page pins (so the comparison above is not vacuous)."""
    rng = np.random.default_rng(11)
    model = every_kind_model(rng, pool_padding=1)
    save_int_model(model, tmp_path / "m")
    ref = _Reference(tmp_path / "m")
    img = rng.random(model.input_shape)
    base = ref.run(img)
    # swapping the two inputs of the add changes the logits unless m[0] == m[1]
    add = next(ly for ly in ref.manifest["layers"] if ly["kind"] == "add")
    m = ref.array(add["requant"]["m"])
    if m[0] != m[1]:
        add["inputs"].reverse()
        assert not np.array_equal(ref.run(img), base)
        add["inputs"].reverse()
    # rounding half away from zero instead of half to even changes some input codes
    half = _images(rng, model, 1)[0]
    inp = ref.manifest["input"]
    exact = ((half - np.asarray(inp["mean"])[:, None, None]) / np.asarray(inp["std"])[:, None, None]) / inp["scale"]
    assert np.any(np.rint(exact) != np.floor(exact + 0.5))


@pytest.mark.parametrize("seed,mode", [(0, "fixed"), (1, "threshold"), (2, "fixed")])
def test_hwsim_engine_reference_matches_the_page(seed, mode, every_kind_model, mult_model, tmp_path):
    """hwsim's word-level engine reference reuses golden's requant formulas; hold it against the page instead."""
    from hwsim.reference import run_engine
    from hwsim.sizing import size_engine

    print("seed", seed)
    rng = np.random.default_rng(seed)
    for i, model in enumerate([every_kind_model(rng, mode=mode, pool_padding=1, bits=(6, 4, 8)[seed]),
                               mult_model(rng, bits=(8, 4, 6)[seed])]):
        save_int_model(model, tmp_path / str(i))
        ref = _Reference(tmp_path / str(i))
        imgs = _images(rng, model, 2)
        _, cm = size_engine(load_int_model(tmp_path / str(i)), rows=2, cols=3)
        got = np.stack([run_engine(cm.program, cm.weights, ref.input_codes(im)).logits for im in imgs])
        assert np.array_equal(got.reshape(len(imgs), -1), np.stack([ref.run(im) for im in imgs]).reshape(len(imgs), -1))


@pytest.mark.parametrize("seed,mode", [(0, "fixed"), (1, "threshold"), (3, "fixed")])
def test_fake_quant_matches_the_page(seed, mode, every_kind_model, mult_model, tmp_path):
    """The fake-quant PyTorch model reuses the integer code path it was compared with; hold it against
    the page's reference too (its torch im2col, pools and accumulation are its own)."""
    from quant.quantizer.fakequant import FakeQuantModel

    print("seed", seed)
    rng = np.random.default_rng(seed)
    for i, model in enumerate([every_kind_model(rng, mode=mode, pool_padding=seed % 2, bits=(6, 4, 8, 5)[seed]),
                               mult_model(rng, bits=(8, 4, 6, 5)[seed])]):
        save_int_model(model, tmp_path / str(i))
        ref = _Reference(tmp_path / str(i))
        imgs = _images(rng, model, 3)
        got = FakeQuantModel(load_int_model(tmp_path / str(i))).forward_int(imgs).numpy()
        assert np.array_equal(got, np.stack([ref.run(im) for im in imgs]))


@pytest.mark.parametrize("seed,groups,mode", [(0, 2, "fixed"), (1, 3, "threshold"), (2, 5, "fixed"), (3, 4, "fixed")])
def test_group_shared_scales_match_the_page(seed, groups, mode, every_kind_model, tmp_path):
    """Adder layers with scale_groups: the page's re-scale per group == golden == fake-quant."""
    from quant.quantizer.fakequant import FakeQuantModel

    print("seed", seed)
    rng = np.random.default_rng(seed)
    model = every_kind_model(rng, mode=mode, pool_padding=seed % 2, bits=(6, 4, 8, 5)[seed], groups=groups)
    assert model.layer("fc").groups == groups and model.layer("c2").groups == min(groups, 3)
    save_int_model(model, tmp_path / "m")
    want = _compare(model, tmp_path / "m", rng)
    assert len(np.unique(want)) > 1
    imgs = _images(rng, model, 3)
    got = FakeQuantModel(load_int_model(tmp_path / "m")).forward_int(imgs).numpy()
    assert np.array_equal(got, np.stack([_Reference(tmp_path / "m").run(im) for im in imgs]))
