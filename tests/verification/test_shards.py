"""verification.shards without a simulator: the split, the merge of records, what a sharded report shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from verification.engine_verify import report_entries
from verification.runner import CaseResult, RunResult
from verification.shards import Shard, comparable, merge_runs, split_shards

#: hwsim's cycles per image of the records below; operation ``a`` is cycles 1..39, ``b`` 40..99 of each image.
PER_IMAGE = 100


def test_split_shards():
    assert split_shards(("verilator",), 5, back_pressure=True, jobs=2) == (
        Shard("verilator", "images", 0, 3), Shard("verilator", "images", 3, 2),
        Shard("verilator", "back_pressure", 0, 2))
    # more jobs than images: one image per shard; every simulator split alike
    assert split_shards(("icarus", "verilator"), 2, back_pressure=False, jobs=8) == (
        Shard("icarus", "images", 0, 1), Shard("icarus", "images", 1, 1),
        Shard("verilator", "images", 0, 1), Shard("verilator", "images", 1, 1))
    assert split_shards(("icarus",), 1, back_pressure=True, jobs=3) == (
        Shard("icarus", "images", 0, 1), Shard("icarus", "back_pressure", 0, 1))
    for jobs in (0, -1):
        with pytest.raises(ValueError, match=f"^split_shards: jobs must be at least 1, not {jobs}$"):
            split_shards(("icarus",), 3, back_pressure=False, jobs=jobs)
    with pytest.raises(ValueError, match="^a shard runs one of images, back_pressure, not 'reset_mid_network'$"):
        Shard("icarus", "reset_mid_network", 0, 1)


def _image(k: int, logits, *, counters=3, late=0) -> dict:
    """The testbench's record of image ``k`` of its run (cycle numbers count from that run's reset);
    ``late`` delays its operation ``b`` (a cycle difference)."""
    s = k * PER_IMAGE
    ops = [{"name": "a", "start": s + 1, "end": s + 39, "start_predicted": s + 1, "end_predicted": s + 39,
            "cycles": 39, "cycles_predicted": 39, "counters": {"w_beats": counters}, "counters_predicted": {"w_beats": 3}},
           {"name": "b", "start": s + 40, "end": s + 99 + late, "start_predicted": s + 40, "end_predicted": s + 99,
            "cycles": 60 + late, "cycles_predicted": 60, "counters": {"w_beats": 5}, "counters_predicted": {"w_beats": 5}}]
    return {"image": k, "logits": logits, "golden": logits, "ref": logits, "ops": ops,
            "cycles_measured": PER_IMAGE + late, "cycles_predicted": PER_IMAGE, "traced_layers": [], "traces_ok": [],
            "mismatches": [f"b: cycles {s + 40}..{s + 99 + late}"] if late else []}


def _case(test: str, images: list[dict], wall: float, wakeups: int) -> CaseResult:
    rec = {"name": test, "images": images, "exact_cycles": test == "images", "wall_s": wall,
           "wall_s_per_image": [wall / len(images)] * len(images),
           "cycles_measured": sum(i["cycles_measured"] for i in images),
           "cycles_predicted": PER_IMAGE * len(images), "mismatches": sum(len(i["mismatches"]) for i in images),
           "python_wakeups": wakeups, "seed": 1}
    bad = sum(len(i["mismatches"]) for i in images)
    return CaseResult(test, "verilator", not bad, f"{test}: {bad} mismatches:\nb: ..." if bad else "", record=rec)


def _run(*cases: CaseResult, log="sim.log") -> RunResult:
    return RunResult("verilator", cases, Path(log), Path("results.xml"), None)


LOGITS = [[1, 2], [3, 4], [5, 6]]


def test_merge_is_the_serial_run():
    """Two shards of three images (cycle numbers from each shard's reset) and a back_pressure shard merge to
    the serial run's records, entries equal but for the run's cost."""
    serial = _run(_case("images", [_image(k, LOGITS[k]) for k in range(3)], 3.0, 300),
                  _case("back_pressure", [_image(k, LOGITS[k]) for k in range(2)], 2.0, 200))
    pieces = [(Shard("verilator", "images", 2, 1), _run(_case("images", [_image(0, LOGITS[2])], 1.5, 110))),
              (Shard("verilator", "back_pressure", 0, 2),
               _run(_case("back_pressure", [_image(k, LOGITS[k]) for k in range(2)], 2.5, 200))),
              (Shard("verilator", "images", 0, 2),
               _run(_case("images", [_image(k, LOGITS[k]) for k in range(2)], 2.0, 205), log="first.log"))]
    merged = merge_runs("verilator", pieces)
    assert merged.log == Path("first.log")
    got = report_entries(merged, model_name="m", design="e", images=[7, 8, 9])
    want = report_entries(serial, model_name="m", design="e", images=[7, 8, 9])
    assert [e["passed"] for e in got] == [True, True]
    assert comparable({"tests": got}) == comparable({"tests": want})
    assert got[0]["images"][2]["ops"][1]["start"] == 240 and got[0]["cycles_measured"] == 300
    assert got[0]["wall_s"] == 3.5 and got[0]["python_wakeups"] == 315  # the cost: summed, not the serial one's
    assert got != want


def test_merge_keeps_failures():
    """A difference in one shard fails the merged test at the serial run's image, with its message."""
    pieces = [(Shard("verilator", "images", 0, 1), _run(_case("images", [_image(0, LOGITS[0])], 1.0, 100))),
              (Shard("verilator", "images", 1, 2),
               _run(_case("images", [_image(0, LOGITS[1]), _image(1, LOGITS[2], counters=4, late=2)], 1.0, 100)))]
    (case,) = merge_runs("verilator", pieces).cases
    assert not case.passed and case.message.startswith("images: 1 mismatches:")
    (entry,) = report_entries(_run(case), model_name="m", design="e", images=[0, 1, 2])
    assert not entry["passed"] and entry["mismatches"] == 1  # the testbench's line (the re-check adds none then)
    assert entry["mismatch_lines"][0].startswith("image 2: b: cycles")
    last = entry["images"][2]
    assert not last["counters_ok"] and not last["cycles_ok"] and last["ops"][1]["end"] == 301
    assert [e["logits_ok"] for e in entry["images"]] == [True, True, True]


def test_merge_refuses_what_does_not_fit():
    one = _run(_case("images", [_image(0, LOGITS[0])], 1.0, 100))
    with pytest.raises(ValueError, match="^the images shards of verilator do not cover the images in order: "
                                         "images-2-2 after image 0$"):
        merge_runs("verilator", [(Shard("verilator", "images", 0, 1), one), (Shard("verilator", "images", 2, 1), one)])
    with pytest.raises(ValueError, match="^shard images-0-0 ran on verilator, not icarus$"):
        merge_runs("icarus", [(Shard("icarus", "images", 0, 1), one)])
