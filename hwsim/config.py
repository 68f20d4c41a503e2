"""Accelerator configuration shared by hwsim (cycle/energy model) and rtl (generator).

This is the one configuration type both sides read (DESIGN §1: ``rtl`` may
import ``hwsim.config`` and nothing else of hwsim).  It imports only the
ground floor (:mod:`quant.intops`, numpy) so that the RTL never pulls in
torch; the widths, PE kinds and :func:`acc_bits_for` it re-exports live there.

The schedule both sides implement is documented in ``hwsim/schedule.py``; the
two latency properties below are the only numbers the schedule needs from the
hardware.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from quant.intops import MAX_BITS, MIN_BITS, PE_KINDS, check_int, acc_bits_for

__all__ = [
    "ArrayConfig",
    "PE_KINDS",
    "REQUANT_MODES",
    "acc_bits_for",
    "MIN_BITS",
    "MAX_BITS",
    "MAX_SIDE",
    "MAX_PES",
    "MAX_K",
    "MAX_BUFFER_KIB",
    "MAX_CLOCK_MHZ",
    "MAX_DRAM_BYTES_PER_CYCLE",
]

REQUANT_MODES = ("fixed", "threshold")

#: Upper limits of an :class:`ArrayConfig` (refused above, before any work).
#: ``generate`` elaborates every PE: a 32x32 array takes about 25 s and
#: 270 MB, and time and memory grow with the PE count, so an array has at
#: most :data:`MAX_PES` PEs (about 2 minutes and 1 GB) and at most
#: :data:`MAX_SIDE` rows or columns.
MAX_SIDE = 256
MAX_PES = 4096
#: Longest reduction a tile may have (``acc_bits`` then stays below 64).
MAX_K = 1 << 20
#: Largest on-chip buffer, KiB (64 MiB).
MAX_BUFFER_KIB = 1 << 16
#: Fastest clock, MHz; widest off-chip port, bytes per cycle.
MAX_CLOCK_MHZ = 10_000.0
MAX_DRAM_BYTES_PER_CYCLE = 4096.0


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _at_most(name: str, value, hi) -> None:
    if value > hi:
        raise ValueError(f"{name} must be at most {hi}, not {value}")


@dataclass(frozen=True, kw_only=True)
class ArrayConfig:
    """An output-stationary ``rows x cols`` array of adder or multiplier PEs.

    Parameters
    ----------
    rows, cols : int
        Array shape: row ``r`` computes output channel ``o0 + r``, column ``c``
        output pixel ``p0 + c``.  Each at most :data:`MAX_SIDE` (256), and
        ``rows * cols`` at most :data:`MAX_PES` (4096).
    pe : {"adder", "mult"}
        PE arithmetic: ``acc += |x - w|`` on unsigned operands, or
        ``acc += x * w`` on signed operands.
    bits : int
        Operand width (2..16).
    max_k : int
        Largest reduction length a tile may have; fixes the accumulator
        (at most :data:`MAX_K`, 2**20).
    acc_bits : int or None
        Accumulator width; derived from ``bits`` and ``max_k`` when None, and
        refused when given narrower than that.
    requant : {"fixed", "threshold"}
        Requant unit: fixed-point ``clamp((M*acc + N) >> S, lo, hi)`` or
        integer thresholds (comparisons only).
    mult_bits : int
        Width of the signed fixed-point requant multiplier ``M``.
    out_bits : int or None
        Width of each output value (``bits`` when None); wider for logits.
    clock_mhz : float
        Clock for latency in seconds (at most :data:`MAX_CLOCK_MHZ`).
    weight_buffer_kib, act_buffer_kib, out_buffer_kib : int
        On-chip buffer sizes (each at most :data:`MAX_BUFFER_KIB`, 64 MiB).
    dram_bytes_per_cycle : float
        Off-chip bandwidth available to the array (at most
        :data:`MAX_DRAM_BYTES_PER_CYCLE`).
    stream_beats_per_cycle : float
        Fraction of cycles the input streams can supply a beat (1.0: every
        cycle).  Below 1.0 the cycle model inserts stalls.
    """

    rows: int
    cols: int
    pe: str = "adder"
    bits: int = 8
    max_k: int = 4096
    acc_bits: int | None = None
    requant: str = "fixed"
    mult_bits: int = 16
    out_bits: int | None = None
    clock_mhz: float = 100.0
    weight_buffer_kib: int = 64
    act_buffer_kib: int = 64
    out_buffer_kib: int = 16
    dram_bytes_per_cycle: float = 8.0
    stream_beats_per_cycle: float = 1.0

    def __post_init__(self) -> None:
        check_int("rows", self.rows, 1)
        check_int("cols", self.cols, 1)
        _at_most("rows", self.rows, MAX_SIDE)
        _at_most("cols", self.cols, MAX_SIDE)
        if self.rows * self.cols > MAX_PES:
            raise ValueError(
                f"rows x cols must be at most {MAX_PES} PEs, not {self.rows}x{self.cols} = {self.rows * self.cols}"
            )
        if self.pe not in PE_KINDS:
            raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {self.pe!r}")
        check_int("bits", self.bits, MIN_BITS, MAX_BITS)
        check_int("max_k", self.max_k, 1)
        _at_most("max_k", self.max_k, MAX_K)
        need = acc_bits_for(self.bits, self.max_k, self.pe)
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits", need)
        else:
            check_int("acc_bits", self.acc_bits, 1, 64)
            if self.acc_bits < need:
                raise ValueError(
                    f"acc_bits={self.acc_bits} is narrower than the {need} bits "
                    f"a reduction of max_k={self.max_k} at {self.bits} bits needs"
                )
        if self.requant not in REQUANT_MODES:
            raise ValueError(
                f"requant must be one of {', '.join(REQUANT_MODES)}, not {self.requant!r}"
            )
        check_int("mult_bits", self.mult_bits, 2, 32)
        if self.out_bits is None:
            object.__setattr__(self, "out_bits", self.bits)
        else:
            check_int("out_bits", self.out_bits, self.bits, 32)
        if not (_is_number(self.clock_mhz) and self.clock_mhz > 0):
            raise ValueError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")
        _at_most("clock_mhz", self.clock_mhz, MAX_CLOCK_MHZ)
        for name in ("weight_buffer_kib", "act_buffer_kib", "out_buffer_kib"):
            check_int(name, getattr(self, name), 1)
            _at_most(name, getattr(self, name), MAX_BUFFER_KIB)
        if not (_is_number(self.dram_bytes_per_cycle) and self.dram_bytes_per_cycle > 0):
            raise ValueError(
                f"dram_bytes_per_cycle must be positive, not {self.dram_bytes_per_cycle!r}"
            )
        _at_most("dram_bytes_per_cycle", self.dram_bytes_per_cycle, MAX_DRAM_BYTES_PER_CYCLE)
        if not (_is_number(self.stream_beats_per_cycle) and 0 < self.stream_beats_per_cycle <= 1):
            raise ValueError(
                "stream_beats_per_cycle must be in (0, 1], "
                f"not {self.stream_beats_per_cycle!r}"
            )

    # --- latencies of the hardware schedule (see hwsim/schedule.py) -------------
    @property
    def requant_latency(self) -> int:
        """Cycles ``L`` from a shadow-bank column read to its output transfer.

        Column ``c`` of a tile whose last reduction step fires in cycle ``l``
        is transferred on the output stream in cycle ``l + L + c`` (no
        back-pressure).  Fixed point: multiply stage, add/shift/clamp stage,
        output register (3).  Thresholds: compare stage, count/output register (2).
        """
        return 3 if self.requant == "fixed" else 2

    @property
    def drain_cycles(self) -> int:
        """Minimum cycles between the last steps of two consecutive tiles when
        draining is the bottleneck: ``cols + requant_latency - 1``."""
        return self.cols + self.requant_latency - 1

    @property
    def threshold_count(self) -> int:
        """Thresholds per output channel in threshold mode: ``2**bits - 1``."""
        return (1 << self.bits) - 1

    def replace(self, **changes) -> "ArrayConfig":
        """A copy with some fields changed (validated again)."""
        if "acc_bits" not in changes and ("bits" in changes or "max_k" in changes or "pe" in changes):
            changes["acc_bits"] = None
        if "out_bits" not in changes and "bits" in changes:
            changes["out_bits"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ArrayConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown array config keys: {', '.join(unknown)}")
        return cls(**data)
