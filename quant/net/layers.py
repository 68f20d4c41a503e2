"""Float AdderNet layers (Chen et al., CVPR 2020) with fast CPU kernels.

An adder layer replaces the dot product of a convolution or linear layer by a
negative L1 distance.  With the input unfolded into rows ``X[m, k]`` (one row
per output pixel, im2col order ``k = c*kh*kw + i*kw + j``) and the weight
flattened to ``W[o, k]``::

    Y[m, o] = -sum_k |X[m, k] - W[o, k]|

Backward follows the AdderNet paper and its reference code:

* weight gradient, full precision (not the sign of the difference)::

      dW[o, k] = sum_m (X[m, k] - W[o, k]) * G[m, o]
               = (G^T @ X)[o, k] - W[o, k] * sum_m G[m, o]

  then the adaptive learning rate rescales it, per layer, to
  ``eta * sqrt(numel(W)) * dW / ||dW||_2`` (``.grad`` holds the scaled value,
  as in the reference code; ``eta=None`` disables the scaling);
* input gradient, HardTanh of the difference::

      dX[m, k] = sum_o HardTanh(W[o, k] - X[m, k]) * G[m, o]

No ``[M, O, K]`` tensor is ever materialised.  Two backends compute the
same maths (``ADDERHW_ADDER_BACKEND``, see :mod:`quant.net.native`):

* ``native`` (default where a C compiler exists): the C kernels of
  :mod:`quant.net.native` unfold the input (im2col) into ``[N, K, L]``, so the
  forward writes ``[N, O, L]`` (already NCHW) and the input gradient
  ``[N, K, L]``, which col2im folds back, with no transposes; they are
  register-blocked, vectorised and threaded over ``torch.get_num_threads()``;
  the weight gradient is one batched matrix product.  float32 and float64
  on the CPU.
* ``torch``: the forward is :func:`torch.cdist` with ``p=1``, the weight
  gradient one matrix product, and the input gradient is computed over row
  chunks whose temporary holds at most :data:`CHUNK_ELEMENTS` floats
  (``O*K`` per row, at least one row).  Used for other dtypes and devices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from quant.net import native
from quant.base.intops import conv_out_size

__all__ = [
    "CHUNK_ELEMENTS",
    "AdderConv2d",
    "AdderLinear",
    "adder_matrix",
    "adder_conv2d",
    "adder_linear",
]

#: Upper bound on the elements of the temporary ``[rows, O, K]`` block used by
#: the input-gradient kernel (1 MiB of float32; the fastest of 2^14..2^22 on 2 cores).
CHUNK_ELEMENTS = 1 << 18


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or min(value) < minimum
    ):
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer or a pair of them, not {value!r}")
    return (int(value[0]), int(value[1]))


def _positive(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _check_eta(eta) -> float | None:
    if eta is None:
        return None
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a positive finite number or None, not {eta!r}")
    return float(eta)


def _input_grad(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``dX[m, k] = sum_o clamp(W[o, k] - X[m, k], -1, 1) * G[m, o]`` in chunks.

    Uses ``clamp(w - x, -1, 1) = clamp(w, x - 1, x + 1) - x``, so each chunk
    needs one elementwise pass (a clamp with tensor bounds) and one batched
    matrix product::

        dX[m, k] = sum_o G[m, o] * clamp(W[o, k], X[m, k] - 1, X[m, k] + 1) - X[m, k] * sum_o G[m, o]
    """
    m, k = x.shape
    o = w.shape[0]
    out = torch.empty_like(x)
    rows = max(1, CHUNK_ELEMENTS // max(1, o * k))
    w3 = w.unsqueeze(0)  # [1, O, K]
    for s in range(0, m, rows):
        e = min(m, s + rows)
        xc = x[s:e].unsqueeze(1)  # [c, 1, K]
        d = torch.clamp(w3, min=xc - 1.0, max=xc + 1.0)  # [c, O, K]
        torch.bmm(g[s:e].unsqueeze(1), d, out=out[s:e].unsqueeze(1))
    out.sub_(x * g.sum(1, keepdim=True))
    return out


class _AdderMatrix(torch.autograd.Function):
    """Autograd function of ``Y = -cdist(X, W, p=1)`` with AdderNet gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, eta: float | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.eta = eta
        y = torch.cdist(x, w, p=1.0)
        return y.neg_()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        g = g.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _input_grad(x, w, g)
        if ctx.needs_input_grad[1]:
            gw = torch.mm(g.t(), x)
            gw.sub_(w * g.sum(0).unsqueeze(1))
            if ctx.eta is not None:
                scale = ctx.eta * math.sqrt(w.numel()) / gw.norm(p=2).clamp(min=1e-12)
                gw.mul_(scale)
        return gx, gw, None


class _AdderCols(torch.autograd.Function):
    """``Y[p, o, l] = -sum_k |X[p, k, l] - W[o, k]|`` on the C kernels (column layout)."""

    @staticmethod
    def forward(ctx, cols: torch.Tensor, w: torch.Tensor, eta: float | None) -> torch.Tensor:
        cols, w = cols.contiguous(), w.contiguous()
        ctx.save_for_backward(cols, w)
        ctx.eta = eta
        return native.forward(cols, w)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        cols, w = ctx.saved_tensors
        g = g.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = native.input_grad(cols, w, g)
        if ctx.needs_input_grad[1]:
            gw = _weight_grad(cols, w, g, ctx.eta)
        return gx, gw, None


class _AdderConvNative(torch.autograd.Function):
    """Adder convolution on the C kernels: im2col, forward, and in backward
    input gradient + col2im and the weight gradient (one batched product)."""

    @staticmethod
    def forward(ctx, x, w, stride, padding, eta):
        o = w.shape[0]
        cols = native.im2col(x, w.shape[2:], stride, padding)  # [N, K, L]
        w2 = w.reshape(o, -1).contiguous()
        ctx.save_for_backward(cols, w2)
        ctx.geometry = (x.shape[2:], tuple(w.shape[2:]), stride, padding, w.shape)
        ctx.eta = eta
        return native.forward(cols, w2)  # [N, O, L]

    @staticmethod
    def backward(ctx, g):
        cols, w2 = ctx.saved_tensors
        size, kernel, stride, padding, wshape = ctx.geometry
        g = g.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = native.col2im(native.input_grad(cols, w2, g), size, kernel, stride, padding)
        if ctx.needs_input_grad[1]:
            gw = _weight_grad(cols, w2, g, ctx.eta).reshape(wshape)
        return gx, gw, None, None, None


def _weight_grad(cols: torch.Tensor, w: torch.Tensor, g: torch.Tensor, eta: float | None) -> torch.Tensor:
    """``sum_p G_p @ X_p^T - W * sum G`` (one batched product), then the adaptive-LR scaling."""
    gw = torch.bmm(g, cols.transpose(1, 2)).sum(0)
    gw.sub_(w * g.sum((0, 2)).unsqueeze(1))
    if eta is not None:
        gw.mul_(eta * math.sqrt(w.numel()) / gw.norm(p=2).clamp(min=1e-12))
    return gw


def _use_native(*tensors: torch.Tensor) -> bool:
    return native.supports(*tensors) and native.backend() == native.AdderBackend.NATIVE


def adder_matrix(x: torch.Tensor, w: torch.Tensor, eta: float | None = 0.2) -> torch.Tensor:
    """``Y[m, o] = -sum_k |x[m, k] - w[o, k]|`` with the AdderNet backward.

    Parameters
    ----------
    x : torch.Tensor
        Float tensor ``[M, K]`` (unfolded input, one row per output pixel).
    w : torch.Tensor
        Float tensor ``[O, K]``.
    eta : float or None
        Adaptive learning-rate factor applied to the weight gradient in
        backward; ``None`` keeps the raw full-precision gradient.

    Returns
    -------
    torch.Tensor
        ``[M, O]``.
    """
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"adder_matrix needs x [M, K] and w [O, K], got {tuple(x.shape)} and {tuple(w.shape)}")
    if _use_native(x, w):
        return _AdderCols.apply(x.t().unsqueeze(0), w, eta)[0].t()
    return _AdderMatrix.apply(x.contiguous(), w.contiguous(), eta)


def adder_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    eta: float | None = 0.2,
) -> torch.Tensor:
    """Adder convolution of ``x [N, C, H, W]`` with ``weight [O, C, kh, kw]``.

    Zero padding (as the reference ``F.unfold`` does).  Output
    ``[N, O, OH, OW]`` with ``OH = (H + 2*ph - kh) // sh + 1``.
    """
    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"adder_conv2d needs x [N, C, H, W] and weight [O, C, kh, kw] with the same C, "
            f"got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    n, _, h, wd = x.shape
    o, c, kh, kw = weight.shape
    oh = conv_out_size(h, kh, stride[0], padding[0])
    ow = conv_out_size(wd, kw, stride[1], padding[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"adder_conv2d: kernel {kh}x{kw} does not fit input {h}x{wd} with padding {padding}")
    if _use_native(x, weight):
        return _AdderConvNative.apply(x, weight, tuple(stride), tuple(padding), eta).reshape(n, o, oh, ow)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # [N, K, L]
    rows = cols.transpose(1, 2).reshape(n * oh * ow, c * kh * kw)
    y = _AdderMatrix.apply(rows, weight.reshape(o, c * kh * kw), eta)  # [N*L, O]
    return y.reshape(n, oh * ow, o).transpose(1, 2).reshape(n, o, oh, ow)


def adder_linear(x: torch.Tensor, weight: torch.Tensor, eta: float | None = 0.2) -> torch.Tensor:
    """Adder fully connected layer: ``Y[n, o] = -sum_k |x[n, k] - weight[o, k]|``."""
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"adder_linear needs x [N, in] and weight [out, in], got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    return adder_matrix(x, weight, eta)


class AdderConv2d(nn.Module):
    """2-D adder convolution, ``Y = -sum |X - W|`` over each receptive field.

    The weight parameter is called ``adder`` (shape ``[O, C, kh, kw]``) so that
    reference AdderNet state dicts (keys ``*.adder``) load unchanged; an
    optional bias is called ``bias``.  Initialised like the reference code,
    ``adder ~ N(0, 1)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int or (int, int)
    stride : int or (int, int)
    padding : int or (int, int)
        Zero padding on each side.
    bias : bool
        Add a learnable per-channel bias (reference AdderNets use none).
    eta : float or None
        Adaptive learning-rate factor (0.2 in the paper); ``None`` disables it.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False, eta=0.2):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels")
        self.out_channels = _positive(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.eta = _check_eta(eta)
        self.adder = nn.Parameter(torch.randn(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = adder_conv2d(x, self.adder, self.stride, self.padding, self.eta)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, eta={self.eta}"
        )


class AdderLinear(nn.Module):
    """Adder fully connected layer, ``Y[n, o] = -sum_k |x[n, k] - W[o, k]|``.

    The weight parameter is called ``adder`` (shape ``[out, in]``).  For code
    that treats every layer alike, ``kernel_size``, ``stride`` and ``padding``
    are ``(1, 1)``, ``(1, 1)`` and ``(0, 0)`` (a 1x1 layer over one pixel).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    eta : float or None
        Adaptive learning-rate factor; ``None`` disables it.
    """

    def __init__(self, in_features, out_features, bias=False, eta=0.2):
        super().__init__()
        self.in_features = _positive(in_features, "in_features")
        self.out_features = _positive(out_features, "out_features")
        self.kernel_size = (1, 1)
        self.stride = (1, 1)
        self.padding = (0, 0)
        self.eta = _check_eta(eta)
        self.adder = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = adder_linear(x, self.adder, self.eta)
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, eta={self.eta}"
        )
