"""scripts/bench_golden.py: its JSON file holds the tables it printed, and collects into a results page."""

from __future__ import annotations

import json

import pytest

from scripts import bench_golden, results


@pytest.mark.slow  # about 15 s: BN calibration and quantization of the ResNet-20 on 256 images
def test_resnet_part_in_the_json_file(tmp_path, capsys):
    path = tmp_path / "golden.json"
    assert bench_golden.main(["--skip-lenet", "--resnet-images", "64", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["command"] == f"python scripts/bench_golden.py --skip-lenet --resnet-images 64 --json {path}"
    (t,) = rec["tables"]
    (r,) = t["rows"]
    assert t["name"] == "resnet20" and r["golden_equals_fakequant_on_64"] is True
    assert f"int/float top-1 agreement {r['int_float_top1_agreement_pct']:.1f}% on 64 synthetic images" in printed
    out = tmp_path / "bench_golden.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert results.render(results.load_results("bench_golden", tmp_path), "resnet20").startswith("| bits | images |")


@pytest.mark.slow
def test_lenet_part_on_the_whole_test_set(tmp_path, capsys):
    path = tmp_path / "golden.json"
    assert bench_golden.main(["--skip-resnet", "--sweep", "8", "--calib", "64", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    (t,) = json.loads(path.read_text())["tables"]
    fl, *rows = t["rows"]
    assert fl["bits"] == "float" and [r["requant"] for r in rows] == ["fixed", "threshold"]
    assert all(r["golden_equals_fakequant"] and r["images"] == 10000 for r in rows)
    assert f"float accuracy {fl['accuracy_pct']:.2f}% on 10000 test images" in printed
