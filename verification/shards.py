"""``verify --jobs N``: a verify job split into shards, each shard run on its own, the pieces merged exactly.

A serial ``verify`` runs, per simulator, one simulator process with the
``images`` test (every image back to back) and, with ``--back-pressure``,
the ``back_pressure`` test (the first two images).  :func:`split_shards`
cuts that work into :class:`Shard`\\ s: per simulator the ``images`` test
over contiguous runs of images (at most ``jobs`` of them, as even as
possible) and the ``back_pressure`` test whole (its images are the job's
first two, as in the serial run, with the same seeded gaps).  Each shard is
one call of :func:`run_shard` (a :class:`ShardTask`: everything the run
needs, by value or by absolute path), which runs the engine testbench on
that simulator (:func:`verification.engine_host.run_engine_tests`) into its
own folder.  The simulator build is shared: the build cache of
:mod:`verification.runner` is keyed by the Verilog's digest and serialised
by a file lock with a ``.built`` marker written last, so shards that start
together build once and the others wait for it, and a finished build is
never redone.

:func:`merge_runs` puts a simulator's pieces back into one
:class:`verification.runner.RunResult` whose cases are what the serial run's
would be.  Each shard starts from reset, so its cycle numbers count from its
own first image: image ``k`` of the job at position ``j`` of its shard has its
operations' ``start``/``end`` (measured and predicted) shifted by
``(k - j)`` images of hwsim's cycles per image, the one translation between
the two runs (hwsim predicts every image on the same schedule, and the exact
comparison of measured with predicted cycles holds in the shard and after
the shift alike).  What a shard cannot test is the hand-over between the
last image of one shard and the first of the next: it is tested between the
images inside each shard.

What differs between the merged report and the serial one is the run's cost,
never the hardware's figures: :data:`RUN_COST_FIELDS` (wall times and the
testbench's Python wake-ups, which count per simulator process) and, for a
failed test only, its one-line ``message`` and the text of
``mismatch_lines`` (they name the failing shard's own counts and cycles).
:func:`comparable` is a report without them.
"""

from __future__ import annotations

import copy
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from verification.runner import CaseResult, RunResult

__all__ = ["SHARD_TESTS", "RUN_COST_FIELDS", "Shard", "ShardTask", "split_shards", "run_shard", "run_in_process",
           "merge_runs", "comparable"]

#: The engine tests ``verify`` runs, in the order of a serial run.
SHARD_TESTS = ("images", "back_pressure")

#: Fields of ``verify.json`` that say what a run cost, not what the hardware did: per test ``wall_s``,
#: ``wall_s_per_image`` and ``python_wakeups`` (counted per simulator process), per image ``wall_s``.
RUN_COST_FIELDS = {"test": ("wall_s", "wall_s_per_image", "python_wakeups"), "image": ("wall_s",)}


@dataclass(frozen=True)
class Shard:
    """One simulator process's share of a verify job: ``test`` on images ``first .. first + count - 1``
    (positions in the job's image list) on ``sim``."""

    sim: str
    test: str
    first: int
    count: int

    def __post_init__(self) -> None:
        if self.test not in SHARD_TESTS:
            raise ValueError(f"a shard runs one of {', '.join(SHARD_TESTS)}, not {self.test!r}")
        if self.first < 0 or self.count < 1:
            raise ValueError(f"a shard needs first >= 0 and count >= 1, not {self.first}, {self.count}")

    @property
    def positions(self) -> range:
        return range(self.first, self.first + self.count)

    @property
    def folder(self) -> str:
        """Its run folder's name (under the simulator's): ``images-0-3`` is images 0..3 of the job."""
        return f"{self.test}-{self.first}-{self.first + self.count - 1}"


def split_shards(sims, n_images: int, *, back_pressure: bool, jobs: int) -> tuple[Shard, ...]:
    """The shards of a verify job of ``n_images`` images on ``sims``: per simulator, the ``images`` test on
    ``min(jobs, n_images)`` contiguous runs of images (sizes differing by at most one, larger first) and,
    with ``back_pressure``, the ``back_pressure`` test on the first ``min(2, n_images)`` images."""
    if jobs < 1:
        raise ValueError(f"split_shards: jobs must be at least 1, not {jobs}")
    if n_images < 1:
        raise ValueError(f"a verify job needs at least one image, not {n_images}")
    parts = min(jobs, n_images)
    size, extra = divmod(n_images, parts)
    out = []
    for sim in sims:
        first = 0
        for p in range(parts):
            count = size + (p < extra)
            out.append(Shard(sim, "images", first, count))
            first += count
        if back_pressure:
            out.append(Shard(sim, "back_pressure", 0, min(2, n_images)))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """What :func:`run_shard` needs, by value (the compiled program, the shard's input codes) or by
    absolute path (the design's metadata and Verilog, the integer model, the run folder, the build cache:
    on a cluster they must be on a filesystem every node sees at the same path)."""

    shard: Shard
    design: object  # rtl.design.Design
    compiled: object  # hwsim.compiler.CompiledModel
    model_dir: Path
    codes: tuple = field(repr=False)
    out_dir: Path
    build_root: Path
    seed: int
    back_pressure: dict | None
    waves: bool

    def __post_init__(self) -> None:
        if len(self.codes) != self.shard.count:
            raise ValueError(f"shard {self.shard.folder} has {self.shard.count} images, got {len(self.codes)} codes")
        for name in ("model_dir", "out_dir", "build_root"):
            if not Path(getattr(self, name)).is_absolute():
                raise ValueError(f"ShardTask.{name} must be an absolute path, not {getattr(self, name)}")


def run_shard(task: ShardTask) -> RunResult:
    """Run one shard (a simulator process) and return its result.

    Raises
    ------
    FileNotFoundError
        The design or the model is not where the task says (on a cluster: a
        node that does not share the driver's filesystem), naming the host.
    verification.runner.SimulatorError
        The build or the simulation failed outside the tests.
    """
    from verification.engine_host import run_engine_tests

    for what, path in (("design", task.design.path), ("Verilog", task.design.verilog), ("model", task.model_dir)):
        if not Path(path).exists():
            raise FileNotFoundError(f"the {what} {path} is not on {socket.gethostname()}: verify --jobs needs "
                                    "OUT, MODEL_DIR, --design and --build-dir on a filesystem every worker sees")
    return run_engine_tests(task.design, task.shard.sim, model_dir=task.model_dir, images=list(task.codes),
                            compiled=task.compiled, out_dir=task.out_dir, build_root=task.build_root,
                            testcases=[task.shard.test], seed=task.seed, back_pressure=task.back_pressure,
                            waves=task.waves)


def run_in_process(tasks):
    """Run ``tasks`` here, one after another: yields ``(index, RunResult)`` as each finishes (the order
    :func:`merge_runs` is indifferent to)."""
    for i, task in enumerate(tasks):
        yield i, run_shard(task)


def _rebased(im: dict, position: int, local: int) -> dict:
    """Image record ``im`` (position ``local`` in its shard) as the serial run records it at ``position``."""
    im = copy.deepcopy(im)
    shift = (position - local) * int(im["cycles_predicted"])
    im["image"] = position
    for op in im["ops"]:
        for key in ("start", "end", "start_predicted", "end_predicted"):
            op[key] += shift
    return im


def _sum(values):
    vals = [v for v in values if v is not None]
    return sum(vals) if len(vals) == len(values) and vals else None


def _merge_case(test: str, sim: str, pieces: list[tuple[Shard, CaseResult]]) -> CaseResult:
    recs = [c.record for _, c in pieces]
    failing = next((c for _, c in pieces if not c.passed), None)
    if failing is None and not all(recs):
        shard = next(s for s, c in pieces if not c.record)
        failing = replace(pieces[0][1], passed=False, message=f"shard {shard.folder} wrote no record")
    record: dict = {}
    if all(recs):
        record = dict(recs[0])
        record["images"] = [_rebased(im, s.first + j, j) for (s, _), r in zip(pieces, recs)
                            for j, im in enumerate(r.get("images") or [])]
        record["wall_s_per_image"] = [w for r in recs for w in r.get("wall_s_per_image") or []]
        for key in ("wall_s", "cycles_measured", "cycles_predicted", "mismatches", "python_wakeups"):
            if key in record:
                record[key] = _sum([r.get(key) for r in recs])
        if record.get("wall_s") is not None:
            record["wall_s"] = round(record["wall_s"], 3)
    cases = [c for _, c in pieces]
    return CaseResult(name=test, simulator=sim, passed=failing is None, message="" if failing is None
                      else failing.message, sim_time_ns=_sum([c.sim_time_ns for c in cases]),
                      wall_s=_sum([c.wall_s for c in cases]), record=record)


def merge_runs(sim: str, pieces) -> RunResult:
    """The shards of one simulator (``[(Shard, RunResult), ...]``, any order) as one run: per test in
    :data:`SHARD_TESTS` order the shards' records in image order, images renumbered and their cycle numbers
    shifted to the serial run's (module docstring), sums of the per-test totals.  A test passes when every
    shard's did; a failed one keeps the first failing shard's message.  ``log``/``results_xml``/``waves``
    are the first shard's (every shard's are in its own folder).

    Raises
    ------
    ValueError
        A shard of another simulator, a test missing from a shard's run, or shards of a test that do not
        cover its images once, in order.
    """
    pieces = sorted(pieces, key=lambda p: (SHARD_TESTS.index(p[0].test), p[0].first))
    if not pieces:
        raise ValueError(f"no shards to merge for {sim}")
    cases = []
    for test in SHARD_TESTS:
        mine = [(s, r) for s, r in pieces if s.test == test]
        if not mine:
            continue
        nxt = 0
        for s, r in mine:
            if s.sim != sim or r.simulator != sim:
                raise ValueError(f"shard {s.folder} ran on {r.simulator}, not {sim}")
            if s.first != nxt:
                raise ValueError(f"the {test} shards of {sim} do not cover the images in order: "
                                 f"{s.folder} after image {nxt - 1}")
            nxt = s.first + s.count
        cases.append(_merge_case(test, sim, [(s, r.case(test)) for s, r in mine]))
    first = pieces[0][1]
    return RunResult(simulator=sim, cases=tuple(cases), log=first.log, results_xml=first.results_xml,
                     waves=first.waves)


def comparable(report: dict) -> dict:
    """``verify.json`` (its object) without :data:`RUN_COST_FIELDS`; for a failed test also without its
    ``message`` and the text of ``mismatch_lines`` (their number stays): what a sharded run's report
    shares exactly with the serial run's."""
    out = copy.deepcopy(report)
    for t in out.get("tests", []):
        for key in RUN_COST_FIELDS["test"]:
            t.pop(key, None)
        for im in t.get("images", []):
            for key in RUN_COST_FIELDS["image"]:
                im.pop(key, None)
        if not t.get("passed"):
            t.pop("message", None)
            t["mismatch_lines"] = len(t.get("mismatch_lines", []))
    return out


def shard_codes(codes, shard: Shard) -> tuple[np.ndarray, ...]:
    """The input codes of ``shard``'s images (``codes``: the job's, in order)."""
    return tuple(np.asarray(codes[i]) for i in shard.positions)
