"""AdderConv2d / AdderLinear against a straightforward broadcast implementation."""

import contextlib
import math
import os
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from quant.net import layers
from quant.net import native
from quant.net.layers import AdderConv2d, AdderLinear

BACKENDS = ["native", "torch"]


@contextlib.contextmanager
def use_backend(name):
    """Select the adder backend (a context manager, so it also works inside hypothesis tests)."""
    old = os.environ.get("ADDERHW_ADDER_BACKEND")
    os.environ["ADDERHW_ADDER_BACKEND"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["ADDERHW_ADDER_BACKEND"]
        else:
            os.environ["ADDERHW_ADDER_BACKEND"] = old


def naive_adder(cols, w, g, eta):
    """Reference maths on broadcast tensors: cols [N, K, L], w [O, K], g [N, O, L]."""
    diff = cols.unsqueeze(1) - w[None, :, :, None]  # [N, O, K, L] = X - W
    y = -diff.abs().sum(2)  # [N, O, L]
    gw = (diff * g.unsqueeze(2)).sum((0, 3))  # sum_p (X - W) * G
    if eta is not None:
        gw = gw * (eta * math.sqrt(gw.numel()) / gw.norm(p=2).clamp(min=1e-12))
    gcols = ((-diff).clamp(-1, 1) * g.unsqueeze(2)).sum(1)  # sum_o HardTanh(W - X) * G
    return y, gw, gcols


conv_cases = st.fixed_dictionaries({
    "n": st.integers(1, 3),
    "c": st.integers(1, 4),
    "o": st.integers(1, 5),
    "kh": st.integers(1, 3),
    "kw": st.integers(1, 3),
    "sh": st.integers(1, 3),
    "sw": st.integers(1, 3),
    "ph": st.integers(0, 2),
    "pw": st.integers(0, 2),
    "h": st.integers(3, 8),
    "w": st.integers(3, 8),
    "eta": st.sampled_from([None, 0.2, 1.0]),
    "seed": st.integers(0, 2**31 - 1),
})


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(case=conv_cases)
def test_conv_matches_broadcast(backend, case):
    torch.manual_seed(case["seed"])
    c = case
    m = AdderConv2d(c["c"], c["o"], (c["kh"], c["kw"]), stride=(c["sh"], c["sw"]),
                    padding=(c["ph"], c["pw"]), eta=c["eta"]).double()
    x = (torch.randn(c["n"], c["c"], c["h"], c["w"], dtype=torch.float64) * 1.5).requires_grad_()
    with use_backend(backend):
        y = m(x)
        g = torch.randn_like(y)
        y.backward(g)

    cols = F.unfold(x.detach(), (c["kh"], c["kw"]), padding=(c["ph"], c["pw"]), stride=(c["sh"], c["sw"]))
    w = m.adder.detach().reshape(c["o"], -1)
    y_ref, gw_ref, gcols_ref = naive_adder(cols, w, g.reshape(c["n"], c["o"], -1), c["eta"])
    gx_ref = F.fold(gcols_ref, (c["h"], c["w"]), (c["kh"], c["kw"]),
                    padding=(c["ph"], c["pw"]), stride=(c["sh"], c["sw"]))
    assert y.shape == (c["n"], c["o"], *y.shape[2:])
    torch.testing.assert_close(y.detach(), y_ref.reshape(y.shape), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(m.adder.grad, gw_ref.reshape(m.adder.shape), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x.grad, gx_ref, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), fin=st.integers(1, 20), fout=st.integers(1, 9),
       eta=st.sampled_from([None, 0.2]), seed=st.integers(0, 2**31 - 1))
def test_linear_matches_broadcast(backend, n, fin, fout, eta, seed):
    torch.manual_seed(seed)
    m = AdderLinear(fin, fout, eta=eta).double()
    x = torch.randn(n, fin, dtype=torch.float64, requires_grad=True)
    with use_backend(backend):
        y = m(x)
        g = torch.randn_like(y)
        y.backward(g)
    y_ref, gw_ref, gcols_ref = naive_adder(x.detach().unsqueeze(2), m.adder.detach(), g.unsqueeze(2), eta)
    torch.testing.assert_close(y.detach(), y_ref[:, :, 0], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(m.adder.grad, gw_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x.grad, gcols_ref[:, :, 0], rtol=1e-12, atol=1e-10)


def test_adaptive_lr_norm():
    """With eta, the weight gradient's L2 norm is eta * sqrt(numel(W))."""
    torch.manual_seed(1)
    m = AdderConv2d(3, 4, 3, padding=1, eta=0.2)
    m(torch.randn(2, 3, 6, 6)).sum().backward()
    assert m.adder.grad.norm().item() == pytest.approx(0.2 * math.sqrt(m.adder.numel()), rel=1e-5)


def test_input_grad_chunking(monkeypatch):
    """Tiny chunks (one row each) give the same input gradient as one big chunk."""
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "torch")
    torch.manual_seed(2)
    m = AdderConv2d(2, 3, 3, stride=1, padding=1).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    m(x).backward(g)
    full = x.grad.clone()
    x.grad = None
    monkeypatch.setattr(layers, "CHUNK_ELEMENTS", 1)
    m(x).backward(g)
    torch.testing.assert_close(x.grad, full, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_close_to_broadcast(backend, monkeypatch):
    """float32 forward and both gradients within 1e-6 (relative to the largest value) of float64 maths."""
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", backend)
    torch.manual_seed(3)
    m = AdderConv2d(16, 13, 3, padding=1)
    x = torch.randn(4, 16, 9, 9, requires_grad=True)
    y = m(x)
    g = torch.randn_like(y)
    y.backward(g)
    cols = F.unfold(x.detach(), 3, padding=1)
    y_ref, gw_ref, gcols_ref = naive_adder(cols.double(), m.adder.detach().reshape(13, -1).double(),
                                           g.reshape(4, 13, -1).double(), 0.2)
    gx_ref = F.fold(gcols_ref, (9, 9), 3, padding=1)
    for got, ref in ((y.detach(), y_ref), (m.adder.grad, gw_ref), (x.grad, gx_ref)):
        ref = ref.reshape(got.shape)
        assert got.dtype == torch.float32
        assert ((got.double() - ref).abs().max() / ref.abs().max()) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_kernels_tiles_and_edges(dtype):
    """Shapes that cover full register tiles and every kind of edge (L, O and K not multiples)."""
    gen = torch.Generator().manual_seed(5)
    for p, k, l, o in [(2, 8, 64, 8), (3, 9, 70, 6), (1, 3, 5, 1), (2, 25, 33, 5), (1, 4, 32, 4)]:
        x = torch.randn(p, k, l, generator=gen, dtype=torch.float64) * 1.5
        w = torch.randn(o, k, generator=gen, dtype=torch.float64)
        g = torch.randn(p, o, l, generator=gen, dtype=torch.float64)
        y_ref, _, gx_ref = naive_adder(x, w, g, None)
        y = native.forward(x.to(dtype), w.to(dtype))
        gx = native.input_grad(x.to(dtype), w.to(dtype), g.to(dtype))
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        for got, ref in ((y, y_ref), (gx, gx_ref)):
            assert got.dtype == dtype and got.shape == ref.shape
            assert ((got.double() - ref).abs().max() / ref.abs().max().clamp(min=1)) < tol


def test_native_result_independent_of_threads():
    """Each output is summed by one thread in a fixed order: 1 and 3 threads give identical bits.

    The shape has edges in every dimension and enough work (>= 3 x 2^21 terms) for 3 threads.
    """
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(8, 75, 300, generator=gen)
    w = torch.randn(38, 75, generator=gen)
    g = torch.randn(8, 38, 300, generator=gen)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = (native.forward(x, w), native.input_grad(x, w, g))
        torch.set_num_threads(3)
        three = (native.forward(x, w), native.input_grad(x, w, g))
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(a, b) for a, b in zip(one, three))


def test_native_build_is_cached(tmp_path, monkeypatch):
    """A second build with the same compiler and sources reuses the library file."""
    monkeypatch.setenv("ADDERHW_CACHE_DIR", str(tmp_path))
    first = native._build(native._compiler())
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "native" and first.suffix == ".so"
    assert native._build(native._compiler()) == first and first.stat().st_mtime_ns == stamp
    assert [f.name for f in (tmp_path / "native").iterdir()] == [first.name]  # no temporary left


def test_native_missing_compiler(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(native.NativeUnavailable, match="no C compiler: /nonexistent/cc not found"):
        native._compiler()


def test_native_compile_error_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ADDERHW_CACHE_DIR", str(tmp_path))
    with pytest.raises(native.NativeUnavailable, match="compiling .*adder.c failed: .*missing.h"):
        native._build(["cc", "-include", str(tmp_path / "missing.h")])
    assert list((tmp_path / "native").iterdir()) == []


def test_backend_selection(monkeypatch):
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "torch")
    assert native.backend() == "torch"
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "native")
    assert native.backend() == "native"
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "cuda")
    with pytest.raises(ValueError, match="ADDERHW_ADDER_BACKEND must be one of auto, native, torch, not 'cuda'"):
        native.backend()


def test_auto_backend_falls_back_with_one_warning(monkeypatch):
    """Without a working compiler, auto uses the PyTorch kernels and says why once; native refuses."""
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_error", "no C compiler: cc not found (install gcc, or set CC)")
    monkeypatch.setattr(native, "_warned", False)
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "auto")
    with pytest.warns(RuntimeWarning, match="slower PyTorch kernels: no C compiler"):
        assert native.backend() == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.backend() == "torch"  # no second warning
        y = AdderLinear(3, 2)(torch.ones(2, 3))
    assert y.shape == (2, 2)
    monkeypatch.setenv("ADDERHW_ADDER_BACKEND", "native")
    with pytest.raises(native.NativeUnavailable, match="no C compiler"):
        native.backend()


def test_attributes_and_param_names():
    conv = AdderConv2d(3, 8, 3, stride=2, padding=1)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
    assert [n for n, _ in conv.named_parameters()] == ["adder"]
    assert conv.adder.shape == (8, 3, 3, 3)
    lin = AdderLinear(10, 4, bias=True)
    assert lin.adder.shape == (4, 10)
    assert sorted(n for n, _ in lin.named_parameters()) == ["adder", "bias"]
    assert lin.kernel_size == (1, 1) and lin.stride == (1, 1) and lin.padding == (0, 0)


def test_bias_added():
    torch.manual_seed(4)
    m = AdderConv2d(1, 2, 1, bias=True)
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, -2.0]))
        m.adder.zero_()
    x = torch.ones(1, 1, 2, 2)
    y = m(x)
    assert torch.equal(y[0, 0], torch.zeros(2, 2)) and torch.equal(y[0, 1], torch.full((2, 2), -3.0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_channels": 0, "out_channels": 1, "kernel_size": 3}, "in_channels must be a positive integer, not 0"),
        ({"in_channels": 1, "out_channels": 1, "kernel_size": 0}, "kernel_size must be a positive integer"),
        ({"in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": -1}, "padding must be a non-negative"),
        ({"in_channels": 1, "out_channels": 1, "kernel_size": 3, "eta": -0.1}, "eta must be a positive finite"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdderConv2d(**kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="does not fit input"):
        AdderConv2d(1, 1, 5)(torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="same C"):
        AdderConv2d(2, 1, 1)(torch.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="adder_linear needs"):
        AdderLinear(4, 2)(torch.zeros(1, 5))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 2), pw=st.integers(0, 2), seed=st.integers(0, 2**31 - 1))
def test_native_im2col_col2im_match_unfold_fold(n, c, h, w, kh, kw, sh, sw, ph, pw, seed):
    """im2col equals F.unfold exactly; col2im equals F.fold (its adjoint)."""
    assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    ref = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))
    cols = native.im2col(x, (kh, kw), (sh, sw), (ph, pw))
    assert torch.equal(cols, ref)
    g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(native.col2im(g, (h, w), (kh, kw), (sh, sw), (ph, pw)),
                               F.fold(g, (h, w), (kh, kw), padding=(ph, pw), stride=(sh, sw)),
                               rtol=1e-13, atol=1e-13)


def test_native_build_falls_back_to_tmp_when_cache_is_read_only(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ADDERHW_CACHE_DIR", str(blocker))  # <file>/native cannot be created
    monkeypatch.setattr(native.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = native._build(native._compiler())
    assert path.parent == tmp_path / "tmp" / f"adderhw-native-{os.getuid()}" and path.is_file()
