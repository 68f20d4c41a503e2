"""scripts/bench_energy.py: its JSON file holds the energy and fit tables it prints, the baseline is today's
engine measured in the same run, and it collects into a results page; bad arguments are refused in one line."""

from __future__ import annotations

import json

import pytest

from scripts import bench_energy, results


def test_bench_energy_writes_its_tables_and_they_collect(tmp_path, capsys):
    path = tmp_path / "energy.json"
    assert bench_energy.main(["--sizes", "4x4", "--pixel-tiles", "1", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["bench"] == "energy" and [t["name"] for t in rec["tables"]] == ["summary", "energy", "fit"]
    summary, energy, fit = (t["rows"] for t in rec["tables"])
    assert [(r["model"], r["weights"]) for r in summary] == [(r["model"], r["weights"]) for r in energy]
    assert [(r["model"], r["weights"]) for r in energy] == [
        ("LeNet-5-BN", "streamed"), ("LeNet-5-BN", "resident"), ("ResNet-20", "streamed"), ("ResNet-20", "resident")]
    for streamed, resident in (energy[:2], energy[2:]):
        assert streamed["adder_vs_baseline"] == 1.0 and streamed["load_energy_uj"] is None
        assert resident["load_energy_uj"] > 0 and resident["cycles_per_image"] < streamed["cycles_per_image"]
        assert resident["adder_vs_baseline"] == round(resident["adder_energy_uj"] / streamed["adder_energy_uj"], 3)
    # LeNet-5-BN resident on the ECP5-25K and ResNet-20 on the ECP5-85K (issue 24's parts)
    assert [(r["model"], r["part"], r["fits"]) for r in fit] == [("LeNet-5-BN", "ecp5-25k", True),
                                                                 ("ResNet-20", "ecp5-85k", True)]
    assert all(r["bram_blocks"] <= r["part_bram_blocks"] for r in fit)
    assert "target adder/mult <= 0.6" in printed
    out = tmp_path / "bench_energy.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert results.render(results.load_results("bench_energy", tmp_path), "energy").count("\n") == 5


@pytest.mark.parametrize("argv, msg", [(["--sizes", "4by4"], "--sizes items must be ROWSxCOLS"),
                                       (["--pixel-tiles", "0"], "--pixel-tiles must be positive integers")])
def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, argv, msg):
    path = tmp_path / "energy.json"
    with pytest.raises(SystemExit) as exc:
        bench_energy.main([*argv, "--json", str(path)])
    assert exc.value.code == 2 and msg in capsys.readouterr().err and not path.exists()
