"""scripts/bench_hwsim.py: its JSON file holds the tables it prints, and collects into a results page."""

from __future__ import annotations

import json

from scripts import bench_hwsim, results


def test_bench_hwsim_writes_its_tables_and_they_collect(tmp_path, capsys):
    path = tmp_path / "hwsim.json"
    assert bench_hwsim.main(["--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["bench"] == "hwsim" and rec["command"] == f"python scripts/bench_hwsim.py --json {path}"
    speed, sweep = rec["tables"]
    assert f"{speed['rows'][0]['time_ms']:8.1f} ms" in printed and speed["rows"][0]["target_met"] is True
    assert all(r["counters_equal"] for r in speed["rows"][1:])
    assert len(sweep["rows"]) == 18 and sum(r["lowest_energy_adder"] for r in sweep["rows"]) == 1
    best = next(r for r in sweep["rows"] if r["lowest_energy_adder"])
    assert f"{best['total_cycles']:,} cycles" in printed
    out = tmp_path / "bench_hwsim.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    res = results.load_results("bench_hwsim", tmp_path)
    assert results.render(res, "sweep").count("\n") == 19
