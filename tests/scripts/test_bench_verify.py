"""scripts/bench_verify.py: its JSON file holds the rows it printed (the simulations faked, and once for real)."""

from __future__ import annotations

import json

import pytest

from scripts import bench_verify, results


def _fake_engine(model_dir, *, rows, cols, sims, images, root, label):
    per = {"icarus": 4.0, "verilator": 0.5}
    return ({s: per[s] for s in sims},
            [dict(engine=label, array=f"{rows}x{cols}", simulator=s, passed=True, cycles_per_image=1000) for s in sims])


def test_rows_and_ratios_in_the_json_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_verify, "_artifact", lambda out, *a, **k: out)
    monkeypatch.setattr(bench_verify, "bench_engine", _fake_engine)
    path = tmp_path / "verify.json"
    assert bench_verify.main(["--resnet20-sims", "both", "--json", str(path)]) == 0
    assert "engine verilator/icarus speed ratio per LeNet image: 8.0x" in capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["command"] == f"python scripts/bench_verify.py --resnet20-sims both --json {path}"
    assert {"icarus", "verilator"} <= set(rec["tools"])
    runs, ratio = rec["tables"]
    assert [(r["engine"], r["simulator"]) for r in runs["rows"]] == [
        ("lenet5_bn", "icarus"), ("lenet5_bn", "verilator"), ("resnet20_inhouse", "icarus"),
        ("resnet20_inhouse", "verilator")]
    assert [r["verilator_over_icarus_speed_x"] for r in ratio["rows"]] == [8.0, 8.0]
    out = tmp_path / "bench_verify.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert "| lenet5_bn | 4x4 | icarus | yes | 1,000 |" in results.render(results.load_results("bench_verify", tmp_path),
                                                                        "runs")


@pytest.mark.slow
@pytest.mark.sim
def test_lenet_engine_on_both_simulators(tmp_path, capsys):
    path = tmp_path / "verify.json"
    assert bench_verify.main(["--engine-images", "1", "--resnet20", "none", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    runs, ratio = json.loads(path.read_text())["tables"]
    assert [r["simulator"] for r in runs["rows"]] == ["icarus", "verilator"] and all(r["passed"] for r in runs["rows"])
    assert f"cycles_per_image={runs['rows'][0]['cycles_per_image']}" in printed
    assert f"per LeNet image: {ratio['rows'][0]['verilator_over_icarus_speed_x']:.1f}x" in printed


def test_jobs_table(tmp_path, monkeypatch):
    """--jobs N adds the verify --jobs vs serial row (the runs faked here; for real: the bench's own check)."""
    monkeypatch.setattr(bench_verify, "_artifact", lambda out, *a, **k: out)
    monkeypatch.setattr(bench_verify, "bench_engine", _fake_engine)
    row = dict(simulator="verilator", images=8, jobs=2, serial_wall_s=10.0, jobs_wall_s=8.0, jobs_over_serial_wall_x=0.8)
    seen = []
    monkeypatch.setattr(bench_verify, "bench_jobs", lambda model_dir, **kw: seen.append(kw) or row)
    path = tmp_path / "verify.json"
    assert bench_verify.main(["--resnet20", "none", "--jobs", "2", "--json", str(path)]) == 0
    assert seen[0]["jobs"] == 2 and seen[0]["sim"] == "verilator" and seen[0]["images"] == 8
    assert json.loads(path.read_text())["tables"][-1]["rows"] == [row]
    assert bench_verify.main(["--resnet20", "none", "--json", str(path)]) == 0
    assert [t["name"] for t in json.loads(path.read_text())["tables"]] == ["runs", "ratio"]
