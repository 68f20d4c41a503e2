"""scripts/bench_adder.py on one layer: its JSON file holds the rows it printed, and collects."""

from __future__ import annotations

import json

import pytest

from scripts import bench_adder, results


@pytest.mark.slow  # two subprocesses that import torch: about 15 s
def test_one_layer_in_the_json_file(tmp_path, capsys):
    path = tmp_path / "adder.json"
    assert bench_adder.main(["--only", "lenet5.fc2", "--repeat", "1", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["command"] == f"python scripts/bench_adder.py --only lenet5.fc2 --repeat 1 --json {path}"
    assert "torch" in rec["tools"]
    layers, summary = rec["tables"]
    (r,) = layers["rows"]
    assert (f"| lenet5.fc2 | 128 | 120→84 | 1/1/0 | linear | {r['naive_time_ms']:.1f} | {r['ours_time_ms']:.1f} | "
            f"{r['speedup_x']:.1f}x |") in printed
    assert summary["rows"][0]["layers"] == 1 and summary["rows"][0]["max_rel_diff"] <= 1e-5
    out = tmp_path / "bench_adder.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert "| lenet5.fc2 | 128 | 120 | 84 |" in results.render(results.load_results("bench_adder", tmp_path), "layers")
