"""Layer shapes hwsim maps onto the array, and where they come from.

A :class:`LayerShape` is everything the cycle and energy models need from one
array layer (an adder or multiply conv/linear layer): its kind, the number of
output channels ``O``, output pixels ``P``, the reduction length ``K`` and the
operand width.  The shapes come from

* a SCALE-Sim-style topology CSV (:func:`read_topology_csv`),
* an integer model artifact (:func:`shapes_from_int_model`, any object with
  the ``IntModel.layers`` attributes of ``docs/interfaces.md`` §4),
* a float PyTorch model of the zoo (:func:`shapes_from_float_model`, through
  :func:`quant.opcount.float_layer_shapes`, which imports torch when called),

and the array-free layers (pooling, flatten, residual add) are skipped: they do
not run on the PE array.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

from quant.intops import ADDER_KINDS, COMPUTE_KINDS, conv_out_size
from quant.opcount import OpCount, count_group_rescale_ops

__all__ = [
    "LayerShape",
    "ARRAY_KINDS",
    "read_topology_csv",
    "shapes_from_int_model",
    "shapes_from_float_model",
    "TOPOLOGY_COLUMNS",
]

#: The layer kinds that run on the PE array (the integer model's compute kinds).
ARRAY_KINDS = COMPUTE_KINDS

#: The SCALE-Sim topology columns, in order (its ``IFMAP`` sizes include padding).
TOPOLOGY_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class LayerShape:
    """One layer that runs on the PE array.

    Parameters
    ----------
    name : str
        Layer name (unique within a model).
    kind : {"adder_conv", "adder_linear", "conv", "linear"}
        Adder layers run on adder PEs in the adder design; multiply layers
        (``conv``, ``linear``) run on the multiplier path in both designs.
    out_channels : int
        ``O``, output channels (rows of the tile grid).
    out_pixels : int
        ``P``, output pixels per channel (columns of the tile grid); 1 for a
        linear layer.
    k : int
        Reduction length ``K = C * kh * kw`` (in features for a linear layer).
    bits : int
        Operand width of the layer's activations and weights.
    in_elems : int
        Elements of the layer's input feature map (for off-chip traffic).
    groups : int
        Group-shared scales of an adder layer's input (``scale_groups`` of
        the artifact, interfaces §4.3; 1 for none, the only value a
        multiply layer may have): with ``G > 1`` every input value is
        re-scaled once per group, ``clamp((m[g]*x + n[g]) >> shift, 0,
        2**bits - 1)`` (:attr:`rescale_ops`).
    group_in_bits, group_m_bits, group_sum_bits : int
        Widths of that re-scale (``G > 1`` only; 1 otherwise): the unsigned
        input codes ``x``, the multipliers ``m`` and the signed sum
        ``m*x + n``.
    """

    name: str
    kind: str
    out_channels: int
    out_pixels: int
    k: int
    bits: int = 8
    in_elems: int = 1
    groups: int = 1
    group_in_bits: int = 1
    group_m_bits: int = 1
    group_sum_bits: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"layer name must be a non-empty string, not {self.name!r}")
        if self.kind not in ARRAY_KINDS:
            raise ValueError(
                f"layer {self.name}: kind must be one of {', '.join(ARRAY_KINDS)}, not {self.kind!r}"
            )
        for field in ("out_channels", "out_pixels", "k", "bits", "in_elems", "groups", "group_in_bits",
                      "group_m_bits", "group_sum_bits"):
            try:
                _positive(field, getattr(self, field))
            except ValueError as exc:
                raise ValueError(f"layer {self.name}: {exc}") from None
        if self.groups > 1 and self.kind not in ADDER_KINDS:
            raise ValueError(f"layer {self.name}: group-shared scales (groups={self.groups}) are for adder "
                             f"layers only, not {self.kind}")

    @property
    def rescale_ops(self) -> OpCount:
        """The group re-scale of the input (:func:`quant.opcount.count_group_rescale_ops`):
        ``groups * in_elems`` multiplications and additions for ``groups > 1``, else none."""
        return count_group_rescale_ops(self.groups, self.in_elems)

    @property
    def rescales(self) -> int:
        """Input values re-scaled per image (one multiply and one add each): ``groups * in_elems``
        for ``groups > 1``, else 0."""
        return self.rescale_ops.multiplications

    @property
    def is_adder(self) -> bool:
        """True for layers computing ``-sum|x - w|`` (adder PEs)."""
        return self.kind in ADDER_KINDS

    @property
    def macs(self) -> int:
        """Useful PE operations ``O * P * K`` (one ``|x - w|`` or ``x * w`` each)."""
        return self.out_channels * self.out_pixels * self.k

    @property
    def out_elems(self) -> int:
        """Elements of the layer's output feature map: ``O * P``."""
        return self.out_channels * self.out_pixels


def _int_cell(row: dict, col: str, path: str, line: int) -> int:
    raw = (row.get(col) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{path}:{line}: column {col!r} must be an integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{path}:{line}: column {col!r} must be positive, not {value}")
    return value


def read_topology_csv(path: str | os.PathLike, *, default_kind: str = "adder_conv",
                      default_bits: int = 8) -> list[LayerShape]:
    """Read a SCALE-Sim-style topology CSV into layer shapes.

    The columns are SCALE-Sim's (:data:`TOPOLOGY_COLUMNS`; the IFMAP sizes
    already include any padding, so ``OH = (IH - FH) // S + 1``), plus two
    optional adderhw columns: ``Kind`` (``adder_conv``, ``adder_linear``,
    ``conv`` or ``linear``; ``default_kind`` when absent or empty) and
    ``Bits`` (operand width; ``default_bits``).  SCALE-Sim's trailing comma
    (an unnamed empty column) is accepted.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        A column is missing or a cell is not a positive integer, or a filter
        is larger than its input.
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return _read_topology(fh, path, default_kind, default_bits)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None


def _read_topology(fh, path: str, default_kind: str, default_bits: int) -> list[LayerShape]:
    reader = csv.DictReader(fh, skipinitialspace=True)
    if reader.fieldnames is None:
        raise ValueError(f"{path}: empty topology file")
    reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
    missing = [c for c in TOPOLOGY_COLUMNS if c not in reader.fieldnames]
    if missing:
        raise ValueError(f"{path}: topology CSV lacks column(s) {', '.join(repr(m) for m in missing)}")
    layers = []
    for line, row in enumerate(reader, start=2):
        name = (row.get("Layer name") or "").strip()
        if not name:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # blank line
            raise ValueError(f"{path}:{line}: empty layer name")
        ih, iw, fh_, fw, c, o, s = (
            _int_cell(row, col, path, line) for col in TOPOLOGY_COLUMNS[1:]
        )
        if fh_ > ih or fw > iw:
            raise ValueError(f"{path}:{line}: layer {name}: filter {fh_}x{fw} is larger than IFMAP {ih}x{iw}")
        oh = conv_out_size(ih, fh_, s, 0)  # SCALE-Sim's IFMAP sizes include the padding
        ow = conv_out_size(iw, fw, s, 0)
        kind = (row.get("Kind") or "").strip() or default_kind
        bits_raw = (row.get("Bits") or "").strip()
        bits = _int_cell(row, "Bits", path, line) if bits_raw else default_bits
        layers.append(
            LayerShape(
                name=name, kind=kind, out_channels=o, out_pixels=oh * ow,
                k=c * fh_ * fw, bits=bits, in_elems=ih * iw * c,
            )
        )
    if not layers:
        raise ValueError(f"{path}: topology CSV has no layers")
    names = [l.name for l in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate layer name(s) {', '.join(dup)}")
    return layers


def _group_fields(sg) -> dict:
    """``groups`` and the re-scale widths of a layer's ``scale_groups`` (None: no fields)."""
    if sg is None:
        return {}
    m_max = max(abs(int(v)) for v in sg.m)
    n_max = max(abs(int(v)) for v in sg.n)
    in_bits = int(sg.in_bits)
    return {
        "groups": int(sg.count),
        "group_in_bits": in_bits,
        "group_m_bits": max(1, m_max.bit_length()),
        "group_sum_bits": (m_max * ((1 << in_bits) - 1) + n_max).bit_length() + 1,
    }


def shapes_from_int_model(model) -> list[LayerShape]:
    """The array layers of an integer model (``IntModel``, interfaces §4), in order.

    Conv layers have ``out_shape = (O, OH, OW)`` and ``P = OH * OW``; linear
    layers ``out_shape = (O,)`` and ``P = 1``.  Pooling, flatten and residual
    adds are not array layers and are skipped.  An adder layer's
    group-shared scales (``scale_groups``) give its ``groups`` and the widths
    of its input re-scale.
    """
    layers = []
    for layer in model.layers:
        if layer.kind not in ARRAY_KINDS:
            continue
        out_shape = tuple(int(v) for v in layer.out_shape)
        in_shape = tuple(int(v) for v in layer.in_shape)
        layers.append(
            LayerShape(
                name=str(layer.name),
                kind=str(layer.kind),
                out_channels=out_shape[0],
                out_pixels=math.prod(out_shape[1:]) if len(out_shape) > 1 else 1,
                k=int(layer.K),
                bits=int(layer.bits),
                in_elems=math.prod(in_shape),
                **_group_fields(getattr(layer, "scale_groups", None)),
            )
        )
    if not layers:
        raise ValueError("the integer model has no adder or multiply layers")
    return layers


def shapes_from_float_model(model, input_shape, *, bits: int = 8) -> list[LayerShape]:
    """The array layers of a float model (``quant.models``) at ``bits``-bit operands.

    The shapes come from :func:`quant.opcount.float_layer_shapes` (one
    forward pass on zeros of ``input_shape``; imports torch when called).
    """
    from quant.opcount import float_layer_shapes

    found = [LayerShape(name=s.name, kind=s.kind, out_channels=s.out_channels, out_pixels=s.out_pixels,
                        k=s.k, bits=bits, in_elems=s.in_elems)
             for s in float_layer_shapes(model, input_shape)]
    if not found:
        raise ValueError("the model has no adder or multiply layers")
    return found
