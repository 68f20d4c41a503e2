"""Synthesis sweeps on the cluster (DESIGN §8): cached engine synthesis, ``explore --synth`` and
``explore --calibrate``.

:func:`synth_config` generates one engine config's Verilog (:func:`rtl.engine.generate.generate_engine`)
and synthesises it (:func:`rtl.synth.synthesize`) unless the cache holds the result.  The cache key
is the SHA-256 of the Verilog text, the part, the tools' versions (:func:`rtl.synth.tool_versions`) and
the yosys script (:func:`rtl.synth.yosys_script`), so an engine change, a tool upgrade or a flow change
misses and anything else hits; an entry is
``CACHE/<key>.json``, written atomically when the synthesis ends, so a rerun, a worker killed
mid-run (Ray retries it: :mod:`rtl.cluster`) or Ctrl-C loses nothing already finished.  While it
runs, ``CACHE/<key>.running`` holds the worker's PID.  A run without place and route
(``place=False``: :func:`calibrate`) has its own key (``<key>-unplaced``); a placed entry answers it too.

:func:`synth_many` runs a list of configs through :func:`rtl.cluster.run_tasks` (serial with
``jobs=1``); :func:`calibrate` synthesises a design set for a part and refits the resource model
(:func:`hwsim.resources.fit`), keeping some designs out of the fit for the error table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from hwsim.config import EngineConfig
from hwsim.resources import check_calibration_part, fit, save_model
from quant.base.files import atomic_write_text
from rtl.cluster import ClusterSpec, run_tasks
from rtl.engine.build import Build

__all__ = ["synth_config", "synth_many", "calibration_set", "calibrate", "cache_key", "design_name",
           "CALIBRATION_FIT", "CALIBRATION_HELD_OUT", "CALIBRATION_BASE", "ENGINE_BUILD"]

#: The engine build every sweep synthesises: the deployable engine, what a user builds.
ENGINE_BUILD = Build.DEPLOY


def cache_key(verilog: str, target: str, tools: dict, *, place: bool = True) -> str:
    from rtl.synth import yosys_script

    h = hashlib.sha256()
    h.update(verilog.encode())
    # the yosys script too (its block name left out: the Verilog holds it): a flow change misses
    h.update(json.dumps({"target": target, "tools": tools, "script": yosys_script(target, "")},
                        sort_keys=True).encode())
    return h.hexdigest()[:32] + ("" if place else "-unplaced")


def synth_config(config: dict, target: str, cache_dir: str, place: bool = True) -> dict:
    """Synthesis of the engine ``EngineConfig.from_dict(config)`` on ``target`` (cached; module docstring).

    ``place=False`` skips place and route (:func:`rtl.synth.synthesize`): the same cell counts, no Fmax;
    a placed cache entry answers it too.  Returns ``{"key", "cached", "lut", "ff", "carry", "bram",
    "dsp", "fmax_mhz", "fits", "tools", "seconds"}`` (``seconds``: the synthesis' own ``{"yosys", "nextpnr"}``
    wall times, as when it ran, also for a cached answer).
    """
    from rtl.engine.generate import generate_engine
    from rtl.synth import TARGETS, synthesize, tool_versions

    cfg = EngineConfig.from_dict(config)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    tools = tool_versions(TARGETS[target])
    work = Path(tempfile.mkdtemp(prefix="adderhw-sweep-", dir=cache))
    running = None
    try:
        d = generate_engine(work / "v", config=cfg, build=ENGINE_BUILD)
        verilog = Path(d.verilog).read_text()
        placed = cache_key(verilog, target, tools)
        key = cache_key(verilog, target, tools, place=place)
        for k in dict.fromkeys((placed, key)):
            if (cache / f"{k}.json").is_file():
                return {**json.loads((cache / f"{k}.json").read_text()), "cached": True}
        entry, running = cache / f"{key}.json", cache / f"{key}.running"
        atomic_write_text(running, str(os.getpid()))
        s = synthesize(d.verilog, work / "s", target=target, place=place)
        r = s["resources"]
        out = {"key": key, "target": target, "config": config, "tools": tools, "lut": r.get("lut"),
               "ff": r.get("ff"), "carry": r.get("carry"), "bram": r.get("bram"), "dsp": r.get("dsp"),
               "lc": r.get("lc"), "fmax_mhz": s.get("fmax_mhz"), "fits": s.get("fits"), "seconds": s["seconds"]}
        atomic_write_text(entry, json.dumps(out, indent=1) + "\n")
        return {**out, "cached": False}
    finally:
        if running is not None:  # a failed synthesis leaves no marker (a killed worker does: it holds its PID)
            running.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _synth_or_failure(config: dict, target: str, cache_dir: str, place: bool) -> dict:
    """:func:`synth_config`, or ``{"failed": message}`` when a tool fails on the design (not cached)."""
    try:
        return synth_config(config, target, cache_dir, place)
    except OSError as exc:
        return {"failed": str(exc)}


def synth_many(configs: list[EngineConfig], target: str, cache_dir, spec: ClusterSpec, *, progress=None,
               place: bool = True, keep_failures: bool = False) -> list[dict]:
    """:func:`synth_config` of every config, on ``spec`` (results in the order of ``configs``).

    ``keep_failures``: a design a tool fails on gives ``{"failed": message}`` instead of ending the run."""
    out: list[dict | None] = [None] * len(configs)
    args = [(c.to_dict(), target, os.fspath(cache_dir), place) for c in configs]
    fn = _synth_or_failure if keep_failures else synth_config
    for i, r in run_tasks(fn, args, spec, what=f"synthesis on {target}", progress=progress):
        out[i] = r
    return out  # type: ignore[return-value]


#: The calibration design set: (pe, rows, cols, mult_rows).  Both PE kinds, 2..8 rows and cols, the
#: multiplier unit from none to every row (so its feature is not tied to the rows) and from 1x2 to
#: 4x8 multipliers (``adder-4x8-m4``: without a large unit in the fit, its coefficient rested on three
#: small ones and ECP5 missed ``adder-8x4-m2``'s LUTs by 17 %); twelve designs for the six features of
#: :func:`hwsim.resources.features`.  The held-out designs have shapes none of the fitted ones has;
#: they only fill the error table.
CALIBRATION_FIT = (("adder", 2, 2, 1), ("adder", 2, 8, 2), ("adder", 8, 2, 0), ("adder", 4, 4, 4),
                   ("adder", 4, 8, 4), ("adder", 8, 6, 1), ("adder", 4, 8, 0), ("mult", 2, 2, 0), ("mult", 2, 8, 0),
                   ("mult", 8, 2, 0), ("mult", 4, 4, 0), ("mult", 4, 8, 0))
CALIBRATION_HELD_OUT = (("adder", 6, 6, 3), ("adder", 8, 4, 2), ("mult", 6, 6, 0), ("mult", 2, 6, 0),
                        ("mult", 6, 2, 0))
#: The calibration engines' other fields: 8-bit, small memories (BRAM is priced exactly, not fitted).
CALIBRATION_BASE = dict(act_words=(256, 256), weight_words=64, bits=8, max_k=576)


def design_name(cfg: EngineConfig) -> str:
    """A calibration design's name in the data file: ``adder-4x8-m2``."""
    return f"{cfg.pe}-{cfg.rows}x{cfg.cols}-m{cfg.mult_rows}"


def calibration_set() -> tuple[list[EngineConfig], list[EngineConfig]]:
    """The engines to fit on and the engines held out (:data:`CALIBRATION_FIT`, :data:`CALIBRATION_HELD_OUT`)."""
    def cfgs(shapes):
        return [EngineConfig(rows=r, cols=c, pe=pe, mult_rows=m, **CALIBRATION_BASE) for pe, r, c, m in shapes]

    return cfgs(CALIBRATION_FIT), cfgs(CALIBRATION_HELD_OUT)


def calibrate(target: str, cache_dir, spec: ClusterSpec, *, data_dir=None, progress=None):
    """Synthesise :func:`calibration_set` on ``target`` (yosys only: LUT, FF, carry, BRAM and DSP are its
    cell counts, which place and route does not change, and an ECP5 placement costs minutes per
    design) and refit its resource model; returns the model and the data file's path.  A design yosys
    fails on is recorded in the data file with its error and left out of the fit and the table."""
    check_calibration_part(target)
    fit_cfgs, held_cfgs = calibration_set()
    results = synth_many(fit_cfgs + held_cfgs, target, cache_dir, spec, progress=progress, place=False,
                         keep_failures=True)
    # not placed, so no Fmax band (a placed cache entry's Fmax is dropped: a band needs every design's)
    rows = [(design_name(c), c, {**r, "fmax_mhz": None}) for c, r in zip(fit_cfgs + held_cfgs, results)]
    failed = [(n, c, r["failed"]) for n, c, r in rows if "failed" in r]
    ok = [row for row in rows if "failed" not in row[2]]
    fit_names = {design_name(c) for c in fit_cfgs}
    tools = ok[0][2]["tools"] if ok else {}
    model = fit(target, [r for r in ok if r[0] in fit_names], [r for r in ok if r[0] not in fit_names], tools=tools,
                engine_build=str(ENGINE_BUILD), failed=failed)
    return model, save_model(model, data_dir)
