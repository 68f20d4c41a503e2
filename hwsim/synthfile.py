"""The ``synth.json`` file: its keys, the record read back, the reader and the writer.

``adderhw synth`` (:mod:`rtl.synth`) writes one object per synthesis run
(``synth.json``) or a list of them (``compare.json``) with
:func:`write_synth_json`; ``adderhw estimate --table fpga:SYNTH.json`` reads
them with :func:`read_synth_json` into :class:`SynthResult` records
(:func:`hwsim.tables.fpga_table`).  Reader beside writer, below rtl (DESIGN
§1: hwsim never imports rtl).  What each key means: :mod:`rtl.synth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quant.base.files import atomic_write_text

__all__ = ["SYNTH_KEYS", "OPTIONAL_KEYS", "PATH_KEYS", "RESOURCE_KEYS", "SynthResult", "read_synth_json", "write_synth_json"]

#: The keys of a ``synth.json`` object (module docstring of :mod:`rtl.synth`, which writes it), all always written.
SYNTH_KEYS = ("target", "design", "block", "config", "pe_form", "dsp", "tools", "freq_target_mhz",
              "resources", "lc_total", "fmax_mhz", "fits", "pnr_error", "cells", "device", "wrapper",
              "lc_method", "seconds", "critical_path")
#: Keys files written by older versions lack, with the value they read back as.
OPTIONAL_KEYS = {"critical_path": None}
#: The keys of ``critical_path`` (when not null).
PATH_KEYS = ("from", "to", "delay_ns", "logic_ns", "routing_ns", "clock")
#: The keys of ``resources``.
RESOURCE_KEYS = ("lc", "lut", "ff", "carry", "dsp", "bram")


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    """One ``synth.json`` object as read by :func:`read_synth_json` (fields: :data:`SYNTH_KEYS`).

    ``critical_path`` (:data:`PATH_KEYS`: the cells nextpnr's slowest path starts and
    ends at, its delay in ns) is None for files written before it existed.

    ``source`` names where it was read (``file:design``), for messages and
    table sources.
    """

    source: str
    target: str
    design: str
    block: str | None
    config: dict | None
    pe_form: str | None
    dsp: bool
    tools: dict
    freq_target_mhz: float
    resources: dict
    lc_total: int | None
    fmax_mhz: float | None
    fits: bool | None
    pnr_error: str | None
    cells: dict
    device: dict | None
    wrapper: dict | None
    lc_method: str
    seconds: dict
    critical_path: dict | None = None


def read_synth_json(path) -> list[SynthResult]:
    """Read ``synth.json`` (one object) or ``compare.json`` (a list of them), strictly.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        Not JSON, or an object with missing or unknown keys or ``resources`` fields.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a synthesis JSON file: {exc}") from None
    entries = data if isinstance(data, list) else [data]
    out = []
    for i, e in enumerate(entries):
        where = f"{path}: entry {i}" if isinstance(data, list) else str(path)
        if not isinstance(e, dict):
            raise ValueError(f"{where}: not a synthesis result object (expected an adderhw synth JSON)")
        e = {**OPTIONAL_KEYS, **e}
        missing = [k for k in SYNTH_KEYS if k not in e]
        unknown = sorted(set(e) - set(SYNTH_KEYS))
        if missing or unknown:
            what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                           unknown and f"unknown {', '.join(unknown)}"]))
            raise ValueError(f"{where}: not an adderhw synth JSON ({what})")
        res = e["resources"]
        if not isinstance(res, dict) or sorted(res) != sorted(RESOURCE_KEYS):
            raise ValueError(f"{where}: resources must have exactly {', '.join(RESOURCE_KEYS)}")
        cp = e["critical_path"]
        if cp is not None and (not isinstance(cp, dict) or sorted(cp) != sorted(PATH_KEYS)):
            raise ValueError(f"{where}: critical_path must be null or have exactly {', '.join(PATH_KEYS)}")
        out.append(SynthResult(source=f"{path.name}:{e['design']}", **e))
    return out


def write_synth_json(path, data) -> None:
    """Write one ``synth.json`` object (a dict of :data:`SYNTH_KEYS`) or a list of them
    (``compare.json``) atomically: JSON, indent 1, sorted keys, a final newline."""
    atomic_write_text(Path(path), json.dumps(data, indent=1, sort_keys=True) + "\n")
