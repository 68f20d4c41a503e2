"""The network engine's configuration, shared by hwsim and rtl.

:class:`EngineConfig` is the network engine (DESIGN §4b; its cycle contract
is the docstring of :mod:`hwsim.engine`).  This module imports only the ground floor (:mod:`quant.base.intops`,
numpy) so that the RTL never pulls in torch; the widths, PE kinds and
:func:`acc_bits_for` it re-exports live there.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

from quant.base.intops import MAX_BITS, MIN_BITS, PE_KINDS, PeKind, RequantMode, check_int, acc_bits_for

__all__ = [
    "PE_KINDS",
    "REQUANT_MODES",
    "acc_bits_for",
    "MIN_BITS",
    "MAX_BITS",
    "EngineConfig",
    "ENGINE_COUNTERS",
    "MAX_ARRAY_DIM",
    "MAX_REGIONS",
    "MAX_REGION_WORDS",
    "MAX_WEIGHT_WORDS",
    "MAX_ENGINE_K",
    "VECTOR_LATENCY",
    "MAX_PIXEL_TILE",
    "check_pixel_tile",
    "WeightMode",
]

#: The requant forms, in the order a config lists them (:class:`quant.base.intops.RequantMode`).
REQUANT_MODES = tuple(RequantMode)


def _set_acc_bits(cfg, need: int) -> None:
    """Derive ``cfg.acc_bits`` (None: ``need``) or refuse one narrower than ``need``."""
    if cfg.acc_bits is None:
        object.__setattr__(cfg, "acc_bits", need)
        return
    check_int("acc_bits", cfg.acc_bits, 1, 64)
    if cfg.acc_bits < need:
        raise ValueError(
            f"acc_bits={cfg.acc_bits} is narrower than the {need} bits "
            f"a reduction of max_k={cfg.max_k} at {cfg.bits} bits needs"
        )


def check_pixel_tile(pixel_tile, weight_buffers: int = 1, *, flags: bool = True) -> None:
    """Refuse a ``pixel_tile`` outside 1..:data:`MAX_PIXEL_TILE`, or above 1 with two weight buffers (the
    two have not been joined in the cycle contract yet).  ``flags``: name them as the commands' flags
    (``--pixel-tile``, ``--weight-buffers``; checked before any long work), else as the config's fields."""
    pt, wb = ("--pixel-tile", "--weight-buffers") if flags else ("pixel_tile", "weight_buffers")
    check_int(pt, pixel_tile, 1, MAX_PIXEL_TILE)
    if weight_buffers == 2 and pixel_tile > 1:
        raise ValueError(f"{wb} 2 is built for {pt} 1 only (the two have not been joined in the cycle "
                         f"contract), not {pt} {pixel_tile}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: Largest ``rows``, ``cols`` (and ``mult_rows``).
MAX_ARRAY_DIM = 64
#: Activation regions: at least 2 (ping-pong), at most this many.
MAX_REGIONS = 8
#: Largest depth of one activation region, in words.
MAX_REGION_WORDS = 1 << 20
#: Largest depth of the weight buffer, in words of ``rows x cols`` weights.
MAX_WEIGHT_WORDS = 1 << 16
#: Largest reduction length the accumulators can be sized for.
MAX_ENGINE_K = 1 << 20
#: Largest ``pixel_tile`` (output pixels that share one weight-word read).
MAX_PIXEL_TILE = 64
#: ``D_v``: a vector (pool / add) step issued (its memory read) in cycle ``l``
#: has its lane result loaded into the shadow register at the edge ending
#: cycle ``l + D_v`` (the lane operation's register).
VECTOR_LATENCY = 1


class WeightMode(enum.StrEnum):
    """Where the engine's weights live (:mod:`hwsim.engine` rules 2 and 7).

    ``STREAMED``: every conv tile's weight words and parameter beats cross
    ``w`` once per image into a weight buffer as deep as the largest tile.
    ``RESIDENT``: the weight buffer is the weight store, as deep as the whole
    ``w`` stream; a load phase fills it once, then each image runs with only
    ``prog``, ``x`` and ``o``.
    """

    STREAMED = "streamed"
    RESIDENT = "resident"


#: The engine's per-operation counters, in the order the RTL exposes them: the
#: one list hwsim's model (:mod:`hwsim.engine`), the numpy engine reference and
#: the testbenches count.
ENGINE_COUNTERS = (
    "cycles",
    "busy_cycles",
    "act_reads",
    "act_writes",
    "wbuf_reads",
    "wbuf_writes",
    "w_beats",
    "o_beats",
    "requant_ops",
)


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """The network engine: array shape, PE kind, widths, memories.

    Parameters
    ----------
    rows, cols : int
        Tm output channels x Tn input channels (1..64 each).
    pe : PeKind
        PE of the main array (a string is converted).  ``PeKind.MULT`` is the all-multiplier baseline.
    mult_rows : int
        Rows of the small multiplier unit beside an adder array (0..rows,
        ``cols`` columns), which runs the multiply layers of an adder design
        (ResNet stem and classifier).  Must be 0 when ``pe`` is ``PeKind.MULT``.
    bits : int
        PE operand width (2..16): adder operands unsigned ``bits``, multiplier
        weights signed ``bits``, multiplier activations signed ``bits + 1``
        (so both signed and unsigned ``bits``-bit codes are exact).
    act_bits : int or None
        Lane width of the activation memories (``bits`` when None, at most 32);
        wider lanes hold e.g. 16-bit residual branches.
    max_k : int
        Longest reduction the accumulators are sized for (1..2**20).
    acc_bits : int or None
        Main-array accumulator width, ``acc_bits_for(bits, max_k, pe)`` when
        None; refused narrower than that.
    mult_acc_bits : int or None
        The multiplier unit's accumulator (``acc_bits_for(bits + 1, max_k,
        PeKind.MULT)`` when None and ``mult_rows > 0``; 0 when there is none).
    requant : tuple of RequantMode
        Forms the shared requant unit implements (one or both; strings are converted, kept in
        :class:`RequantMode` order).
    mult_bits : int
        Width of the signed requant multiplier ``m`` (2..32).
    n_bits : int
        Width of the signed requant bias ``n`` (2..64).
    out_bits : int
        Width of a requant output (``bits``..32): the logits' width.
    act_words : tuple of int
        Depth of each activation region in words (2..8 regions, each
        1..2**20 words).
    weight_words : int
        Depth of the weight buffer in words (1..2**16): with resident
        weights, the weight store (every tile's weight words and parameter
        beats, :mod:`hwsim.engine` rule 7).
    weights : WeightMode
        Weights streamed on ``w`` every image, or resident (loaded once);
        a string is converted.
    clock_mhz : float
        Clock for latency in seconds.
    trace : bool
        After every operation but the last, send its output tensor on ``o``
        (every word, all ``cols`` lanes, raw lane bits; :mod:`hwsim.engine`
        rule 6), so a testbench sees every layer.  Needs
        ``out_bits + 1 >= act_bits``.
    pixel_tile : int
        ``Tp`` (1..64): a conv tile's output pixels run in pixel tiles of this
        many; each weight word is read once per pixel tile and held while the
        tile's pixels stream past, each row keeping ``pixel_tile`` accumulators
        (:mod:`hwsim.engine` rules 3 and 4).  1 is the engine without reuse.
    weight_buffers : int
        Tiles the weight buffer holds, 1 or 2 (streamed weights only).  1:
        a conv tile loads its weight words and parameter beats, then issues
        its steps, and the next tile's load waits for its last step.  2: the
        buffer has two halves of ``weight_words // 2`` words and tile
        ``t + 1`` loads into the other half (and the other parameter bank)
        while tile ``t`` issues (:mod:`hwsim.engine` rule 2).  Refused with
        resident weights, whose tiles load no weights from ``w``, and (not
        joined yet) with ``pixel_tile`` > 1.
    """

    rows: int
    cols: int
    pe: PeKind = PeKind.ADDER
    mult_rows: int = 0
    bits: int = 8
    act_bits: int | None = None
    max_k: int = 4608
    acc_bits: int | None = None
    mult_acc_bits: int | None = None
    requant: tuple = (RequantMode.FIXED,)
    mult_bits: int = 16
    n_bits: int = 40
    out_bits: int = 16
    act_words: tuple = (4096, 4096, 4096)
    weight_words: int = 1024
    weights: WeightMode = WeightMode.STREAMED
    clock_mhz: float = 100.0
    trace: bool = False
    pixel_tile: int = 1
    weight_buffers: int = 1

    def __post_init__(self) -> None:
        check_int("rows", self.rows, 1, MAX_ARRAY_DIM)
        check_int("cols", self.cols, 1, MAX_ARRAY_DIM)
        if self.pe not in PE_KINDS:
            raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {self.pe!r}")
        object.__setattr__(self, "pe", PeKind(self.pe))
        check_int("mult_rows", self.mult_rows, 0, self.rows)
        if self.pe == PeKind.MULT and self.mult_rows:
            raise ValueError(
                f"an all-multiplier engine has no separate multiplier unit: "
                f"mult_rows must be 0, not {self.mult_rows}")
        check_int("bits", self.bits, MIN_BITS, MAX_BITS)
        if self.act_bits is None:
            object.__setattr__(self, "act_bits", self.bits)
        else:
            check_int("act_bits", self.act_bits, self.bits, 32)
        check_int("max_k", self.max_k, 1, MAX_ENGINE_K)
        need = acc_bits_for(self.bits, self.max_k, self.pe) + (1 if self.pe == PeKind.MULT else 0)
        _set_acc_bits(self, need)
        mneed = acc_bits_for(self.bits, self.max_k, PeKind.MULT) + 1 if self.mult_rows else 0
        if self.mult_acc_bits is None:
            object.__setattr__(self, "mult_acc_bits", mneed)
        elif not self.mult_rows:
            if self.mult_acc_bits != 0:
                raise ValueError(
                    f"mult_acc_bits must be 0 without a multiplier unit, not {self.mult_acc_bits}")
        else:
            check_int("mult_acc_bits", self.mult_acc_bits, 1, 64)
            if self.mult_acc_bits < mneed:
                raise ValueError(
                    f"mult_acc_bits={self.mult_acc_bits} is narrower than the {mneed} bits "
                    f"a reduction of max_k={self.max_k} at {self.bits} bits needs")
        rq = self.requant
        if isinstance(rq, str):
            rq = (rq,)
        if (not isinstance(rq, (tuple, list)) or not rq
                or any(r not in REQUANT_MODES for r in rq) or len(set(rq)) != len(rq)):
            raise ValueError(
                f"requant must be a non-empty tuple of distinct {', '.join(REQUANT_MODES)}, "
                f"not {self.requant!r}")
        object.__setattr__(self, "requant", tuple(m for m in REQUANT_MODES if m in rq))
        if RequantMode.THRESHOLD in self.requant and self.bits > 8:
            raise ValueError(
                f"threshold requant needs 2**bits - 1 comparators per output: bits must be "
                f"at most 8 with it, not {self.bits}")
        check_int("mult_bits", self.mult_bits, 2, 32)
        check_int("n_bits", self.n_bits, 2, 64)
        check_int("out_bits", self.out_bits, self.bits, 32)
        aw = self.act_words
        if not isinstance(aw, (tuple, list)) or not 2 <= len(aw) <= MAX_REGIONS:
            raise ValueError(
                f"act_words must be a tuple of 2..{MAX_REGIONS} region depths, not {aw!r}")
        for i, d in enumerate(aw):
            check_int(f"act_words[{i}]", d, 1, MAX_REGION_WORDS)
        object.__setattr__(self, "act_words", tuple(aw))
        check_int("weight_words", self.weight_words, 1, MAX_WEIGHT_WORDS)
        if self.weights not in tuple(WeightMode):
            raise ValueError(f"weights must be one of {', '.join(WeightMode)}, not {self.weights!r}")
        object.__setattr__(self, "weights", WeightMode(self.weights))
        if (isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float))
                or not self.clock_mhz > 0 or not math.isfinite(self.clock_mhz)):
            raise ValueError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")
        if not isinstance(self.trace, bool):
            raise ValueError(f"trace must be True or False, not {self.trace!r}")
        if self.trace and self.out_bits + 1 < self.act_bits:
            raise ValueError(
                f"trace sends {self.act_bits}-bit activation lanes on the {self.out_bits + 1}-bit o stream: "
                f"out_bits must be at least {self.act_bits - 1} with it, not {self.out_bits}")
        check_int("weight_buffers", self.weight_buffers, 1, 2)
        check_pixel_tile(self.pixel_tile, self.weight_buffers, flags=False)
        if self.weight_buffers == 2 and self.resident:
            raise ValueError("weight_buffers must be 1 with resident weights (their tiles load no weights "
                             "from w to overlap), not 2")
        if self.weight_buffers == 2 and self.weight_words < 2:
            raise ValueError(f"weight_words must be at least 2 with two weight buffers, not {self.weight_words}")

    # --- derived widths --------------------------------------------------------------
    @property
    def regions(self) -> int:
        """Number of activation regions."""
        return len(self.act_words)

    @property
    def act_word_bits(self) -> int:
        """Bits of one activation word: ``cols * act_bits``."""
        return self.cols * self.act_bits

    @property
    def weight_word_bits(self) -> int:
        """Bits of one weight word and of one ``w`` stream beat: ``rows * cols * bits``."""
        return self.rows * self.cols * self.bits

    @property
    def thr_bits(self) -> int:
        """Width of one threshold: ``acc_bits + 1`` unsigned (a threshold may be ``max_acc + 1``)."""
        return self.acc_bits + 1

    @property
    def threshold_count(self) -> int:
        """Thresholds per output in threshold mode: ``2**bits - 1``."""
        return (1 << self.bits) - 1

    def param_row_bits(self, mode: RequantMode) -> int:
        """Bits of one output channel's requant parameters on the ``w`` stream.

        Fixed point: ``m`` (``mult_bits``) and ``n`` (``n_bits``); thresholds:
        ``2**bits - 1`` thresholds of :attr:`thr_bits` and the ``neg`` bit.
        """
        if mode == RequantMode.FIXED:
            return self.mult_bits + self.n_bits
        if mode == RequantMode.THRESHOLD:
            return self.threshold_count * self.thr_bits + 1
        raise ValueError(f"mode must be one of {', '.join(REQUANT_MODES)}, not {mode!r}")

    def param_beats(self, mode: RequantMode, rows: int) -> int:
        """``w`` beats carrying the requant parameters of one tile of ``rows`` channels.

        The rows' parameter fields are concatenated (row 0 in the low bits) and
        cut into beats of :attr:`weight_word_bits`.
        """
        return -(-rows * self.param_row_bits(mode) // self.weight_word_bits)

    # --- latencies of the cycle contract (hwsim/engine.py) -----------------------------
    @property
    def tree_stages(self) -> int:
        """Pipeline registers in each row's adder tree: one per 3 adder levels."""
        levels = math.ceil(math.log2(self.cols)) if self.cols > 1 else 0
        return max(1, -(-levels // 3))

    @property
    def step_latency(self) -> int:
        """``D``: a step issued (its memory reads) in cycle ``l`` lands in the shadow
        register at the edge ending cycle ``l + D``: the PE term register (1) and
        the tree's stages, the last of which accumulates (``1 + tree_stages``)."""
        return 1 + self.tree_stages

    @property
    def vector_latency(self) -> int:
        """``D_v``: a pool/add step issued in cycle ``l`` lands in the shadow at the edge ending ``l + D_v``."""
        return VECTOR_LATENCY

    @property
    def requant_latency(self) -> int:
        """``L_q``: cycles from a shadow entry's read to its requantised output, one
        register stage each (:mod:`rtl.engine.requant`): 6 with the fixed-point
        form (entry register, the split multiply's partial products, two sums of
        two, the total, the shift, the clamp into the output register), 4 with
        thresholds only (entry register, compares, count, output register)."""
        return 6 if RequantMode.FIXED in self.requant else 4

    def replace(self, **changes) -> "EngineConfig":
        """A copy with some fields changed (validated again; derived widths re-derived; made resident, one
        weight buffer unless ``weight_buffers`` is among the changes)."""
        if changes.get("weights") == WeightMode.RESIDENT and "weight_buffers" not in changes:
            changes["weight_buffers"] = 1
        for derived, deps in (("acc_bits", ("bits", "max_k", "pe")),
                              ("mult_acc_bits", ("bits", "max_k", "mult_rows")),
                              ("act_bits", ("bits",))):
            if derived not in changes and any(d in changes for d in deps):
                changes[derived] = None
        return dataclasses.replace(self, **changes)

    @property
    def resident(self) -> bool:
        """The weights are resident (:attr:`WeightMode.RESIDENT`)."""
        return self.weights == WeightMode.RESIDENT

    @property
    def half_words(self) -> int:
        """Words of one tile's part of the weight buffer: ``weight_words`` with one buffer, half of it
        (rounded down) with two (:mod:`hwsim.engine` rule 2)."""
        return self.weight_words // self.weight_buffers

    def to_dict(self) -> dict:
        """The fields as plain values; ``weights`` only when resident and ``weight_buffers`` only when 2, so
        a streamed single-buffer engine's dict (and the names and metadata digested from it) is what it was
        before the fields existed."""
        d = dataclasses.asdict(self)
        d["requant"] = list(self.requant)
        d["act_words"] = list(self.act_words)
        if self.resident:
            d["weights"] = str(self.weights)
        else:
            del d["weights"]
        if self.weight_buffers == 1:
            del d["weight_buffers"]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "EngineConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown engine config keys: {', '.join(unknown)}")
        d = dict(data)
        for key in ("requant", "act_words"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)
