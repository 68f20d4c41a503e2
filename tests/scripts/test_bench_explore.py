"""scripts/bench_explore.py: its JSON file holds the explore table it prints, and collects into a results
page; a bad --target is refused in one line (the Ray-vs-serial synthesis itself: the benchmark)."""

from __future__ import annotations

import json

import pytest

from scripts import bench_explore, results


def test_bench_explore_writes_its_table_and_it_collects(tmp_path, capsys):
    path = tmp_path / "explore.json"
    rc = bench_explore.main(["--json", str(path)])
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["bench"] == "explore" and rec["command"] == f"python scripts/bench_explore.py --json {path}"
    (table,) = rec["tables"]
    (row,) = table["rows"]
    # every rows x cols x mult_rows point, both PE kinds (the multiplier engine has no mult_rows)
    assert (row["space_points"], row["engines"]) == (192, 224)
    assert row["met"] == (row["explore_s"] <= bench_explore.EXPLORE_TARGET_S) and rc == (0 if row["met"] else 1)
    assert f"| {row['engines']} | {row['space_points']} | {row['explore_s']} |" in printed
    out = tmp_path / "bench_explore.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert results.render(results.load_results("bench_explore", tmp_path), "explore").count("\n") == 2


def test_bad_target_is_refused_before_any_work(tmp_path, capsys):
    path = tmp_path / "explore.json"
    with pytest.raises(SystemExit) as exc:
        bench_explore.main(["--target", "ecp5-99k", "--json", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench_explore: --target must be one of ice40-hx8k")
    assert not path.exists()
