"""Window address generation of the engine (numpy reference of the address generator).

im2col in the engine is pure address generation (DESIGN §4b): for output
pixel ``p = oy*OW + ox`` and kernel position ``(i, j)`` the input pixel is
``(iy, ix) = (oy*stride - padding + i, ox*stride - padding + j)``; inside the
input it is the word ``(iy*W + ix)*G + g`` of channel group ``g``, outside
(a padded position) there is no read and the datapath takes the pad word
(the zero point in the tensor's lanes, 0 beyond them).

The issue order of a conv's steps for one pixel is ``(i, j, g)`` with ``g``
fastest (K order ``(i, j, c)``); a pool issues ``(i, j)`` for one item
``(p, g)``.
"""

from __future__ import annotations

import numpy as np

from quant.intops import conv_out_size

__all__ = ["PAD", "window_addresses"]

#: Address of a padded position (no memory read).
PAD = -1


def window_addresses(height: int, width: int, groups: int, kernel, stride: int, padding: int) -> np.ndarray:
    """Word addresses ``[P, kh, kw, G]`` (int64, :data:`PAD` where padded) of every window.

    ``P = OH * OW`` with ``OH = conv_out_size(height, kh, stride, padding)``.
    """
    kh, kw = kernel
    oh = conv_out_size(height, kh, stride, padding)
    ow = conv_out_size(width, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the padded input {height}x{width}")
    iy = (np.arange(oh) * stride - padding)[:, None] + np.arange(kh)[None, :]  # [OH, kh]
    ix = (np.arange(ow) * stride - padding)[:, None] + np.arange(kw)[None, :]  # [OW, kw]
    vy = (iy >= 0) & (iy < height)
    vx = (ix >= 0) & (ix < width)
    pix = iy[:, None, :, None] * width + ix[None, :, None, :]  # [OH, OW, kh, kw]
    valid = vy[:, None, :, None] & vx[None, :, None, :]
    addr = pix[..., None] * groups + np.arange(groups)  # [OH, OW, kh, kw, G]
    addr = np.where(valid[..., None], addr, PAD)
    return addr.reshape(oh * ow, kh, kw, groups)

