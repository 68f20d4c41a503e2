"""The AdderNet paper's CPU latency model: cycles = mults * t_mult + adds * t_add (DESIGN §5).

Chen et al. (CVPR 2020) estimate LeNet-5-BN on a CPU where a multiplication
takes 4 cycles and an addition 2: 435K mult + 435K add = 2.6M cycles as a CNN,
870K add = 1.7M cycles as an AdderNet.

The op counts come from :mod:`quant.base.opcount` (the project's one op
counter; requant not included): the CNN variant counts every compute layer
as a multiply layer (one multiplication and one addition per term), the
AdderNet variant counts adder layers as two additions per term (subtract and
accumulate; the absolute value is free) and keeps its multiply layers; an
adder layer with ``G > 1`` group-shared scales also re-scales its input once
per group, which the CNN does not need.
"""

from __future__ import annotations

from dataclasses import dataclass

from quant.base.intops import COMPUTE_KINDS, PeKind
from quant.base.opcount import OpCount, count_int_layer, count_layer_ops

__all__ = ["CpuLatency", "PAPER_LENET5_BN", "cpu_ops"]


@dataclass(frozen=True, kw_only=True)
class CpuLatency:
    """Cycles per integer operation on the modelled CPU (paper: mult 4, add 2)."""

    mult_cycles: int = 4
    add_cycles: int = 2

    def __post_init__(self) -> None:
        for name in ("mult_cycles", "add_cycles"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")

    def cycles(self, ops: OpCount) -> int:
        """``multiplications * mult_cycles + additions * add_cycles``."""
        return ops.multiplications * self.mult_cycles + ops.additions * self.add_cycles


#: The paper's LeNet-5-BN figures (Chen et al., CVPR 2020).
PAPER_LENET5_BN = {
    "cnn": OpCount(additions=435_000, multiplications=435_000),
    "addernet": OpCount(additions=870_000),
}


def cpu_ops(model) -> dict[str, OpCount]:
    """Op counts of the CNN and the AdderNet variant of an integer model's compute layers.

    Parameters
    ----------
    model : quant.intmodel.artifact.IntModel

    Returns
    -------
    dict
        ``{"cnn": OpCount, "addernet": OpCount}``.
    """
    cnn, add = OpCount(), OpCount()
    for l in model.layers:
        if l.kind not in COMPUTE_KINDS:
            continue
        pixels = 1
        for v in l.out_shape[1:]:
            pixels *= int(v)
        cnn = cnn + count_layer_ops(PeKind.MULT, l.out_shape[0], pixels, l.K)
        add = add + count_int_layer(l, include_requant=False)
    return {"cnn": cnn, "addernet": add}
