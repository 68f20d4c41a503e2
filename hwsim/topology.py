"""Layer shapes from a SCALE-Sim topology CSV, as engine operations (:class:`hwsim.engine.OpShape`).

A topology CSV lists conv layers only (SCALE-Sim's columns,
:data:`TOPOLOGY_COLUMNS`, plus the optional adderhw columns ``Kind`` and
``Bits``).  What an estimate from it assumes (:func:`topology_ops`):

* every row is one conv operation of the engine, run in file order; each
  reads its own input tensor of the row's IFMAP shape (SCALE-Sim's IFMAP
  sizes include the padding, so the padded border is stored and read:
  padding 0) and writes its output into the next operation's region (the
  last one sends it on ``o``); no pooling, flatten or residual add runs
  (the CSV has none), so nothing connects one row's output to the next
  row's input;
* the requant form is fixed point for every layer;
* ``Kind`` (``adder_conv``, ``adder_linear``, ``conv``, ``linear``;
  default ``adder_conv``) picks the unit (multiply layers on the adder
  engine's multiplier unit); ``Bits`` the operand width (default given).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

from hwsim.engine import OpShape
from quant.base.intops import COMPUTE_KINDS, LayerKind, RequantMode, conv_out_size

__all__ = ["TOPOLOGY_COLUMNS", "TopologyLayer", "read_topology_csv", "topology_ops"]

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


@dataclass(frozen=True, kw_only=True)
class TopologyLayer:
    """One row of a topology CSV: a conv layer of ``kind`` at ``bits``-bit operands."""

    name: str
    kind: LayerKind
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int
    bits: int

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width (the IFMAP includes the padding)."""
        return (conv_out_size(self.ifmap_h, self.filter_h, self.stride, 0),
                conv_out_size(self.ifmap_w, self.filter_w, self.stride, 0))

    @property
    def k(self) -> int:
        """Reduction length ``C * FH * FW``."""
        return self.channels * self.filter_h * self.filter_w


def _int_cell(row: dict, col: str, path: str, line: int) -> int:
    raw = (row.get(col) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{path}:{line}: column {col!r} must be an integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{path}:{line}: column {col!r} must be positive, not {value}")
    return value


def read_topology_csv(path: str | os.PathLike, *, default_kind: LayerKind = LayerKind.ADDER_CONV,
                      default_bits: int = 8) -> list[TopologyLayer]:
    """Read a SCALE-Sim-style topology CSV (module docstring); SCALE-Sim's trailing comma
    (an unnamed empty column) is accepted.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        A column is missing, a cell is not a positive integer, a kind is not
        a conv/linear kind, a filter is larger than its input, a name repeats,
        or there is no layer.
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return _read_topology(fh, path, default_kind, default_bits)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None


def _read_topology(fh, path: str, default_kind: LayerKind, default_bits: int) -> list[TopologyLayer]:
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
        ih, iw, fh_, fw, c, o, s = (_int_cell(row, col, path, line) for col in TOPOLOGY_COLUMNS[1:])
        if fh_ > ih or fw > iw:
            raise ValueError(f"{path}:{line}: layer {name}: filter {fh_}x{fw} is larger than IFMAP {ih}x{iw}")
        kind = (row.get("Kind") or "").strip() or default_kind
        if kind not in COMPUTE_KINDS:
            raise ValueError(f"{path}:{line}: layer {name}: kind must be one of {', '.join(COMPUTE_KINDS)}, "
                             f"not {kind!r}")
        bits_raw = (row.get("Bits") or "").strip()
        bits = _int_cell(row, "Bits", path, line) if bits_raw else default_bits
        layers.append(TopologyLayer(name=name, kind=LayerKind(kind), ifmap_h=ih, ifmap_w=iw, filter_h=fh_, filter_w=fw,
                                    channels=c, filters=o, stride=s, bits=bits))
    if not layers:
        raise ValueError(f"{path}: topology CSV has no layers")
    names = [l.name for l in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate layer name(s) {', '.join(dup)}")
    return layers


def topology_ops(layers) -> tuple[OpShape, ...]:
    """The engine operations of topology rows (module docstring: each a conv on its own input,
    fixed-point requant, padding 0).  A ``*linear`` row is a conv whose kernel is its IFMAP."""
    ops = []
    for l in layers:
        oh, ow = l.out_hw
        if LayerKind(l.kind).linear:
            oh = ow = 1
        ops.append(OpShape(name=l.name, kind=l.kind, src=(l.ifmap_h, l.ifmap_w, l.channels),
                           dst=(oh, ow, l.filters), kernel=(l.filter_h, l.filter_w), stride=l.stride,
                           padding=0, mode=RequantMode.FIXED))
    return tuple(ops)
