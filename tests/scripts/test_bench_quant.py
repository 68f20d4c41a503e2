"""scripts/bench_quant.py on the smallest options: its JSON file holds the tables it printed, and collects."""

from __future__ import annotations

import json

import pytest

from scripts import bench_quant, results

SMALL = ["--models", "lenet", "--eval", "100", "--widths", "8", "--groups", "1", "--rounding", "nearest",
         "--calib", "64"]


def test_accuracy_table_in_the_json_file(tmp_path, capsys):
    path = tmp_path / "quant.json"
    assert bench_quant.main([*SMALL, "--skip-speed", "--skip-quantize", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["command"].startswith("python scripts/bench_quant.py --models lenet --eval 100")
    assert "torch" in rec["tools"] and [t["name"] for t in rec["tables"]] == ["accuracy"]
    fl, w8 = rec["tables"][0]["rows"]
    assert fl["bits"] == "float" and fl["note"] == "float model" and w8["images"] == 100
    assert (f"| LeNet-5-BN | 8 | 1 | nearest | {w8['int_accuracy_pct']:.2f} | {w8['drop_points']:.2f} | "
            f"{w8['int_float_agreement_pct']:.2f} |") in printed
    out = tmp_path / "bench_quant.json"
    assert results.main(["collect", "--bench", str(path), "-o", str(out)]) == 0
    assert "| LeNet-5-BN | 8 | 1 | nearest |" in results.render(results.load_results("bench_quant", tmp_path), "accuracy")


@pytest.mark.slow
def test_speed_and_quantize_time_tables(tmp_path, capsys):
    path = tmp_path / "quant.json"
    assert bench_quant.main(["--skip-accuracy", "--lenet-images", "100", "--resnet-images", "8", "--numpy-images",
                             "2", "--repeats", "1", "--batch", "50", "--calib", "16", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    speed, qtime = json.loads(path.read_text())["tables"]
    assert [r["model"] for r in speed["rows"]] == ["LeNet-5-BN W8", "ResNet-20 ref. layout W8"]
    assert all(r["numpy_equal"] for r in speed["rows"])
    r = speed["rows"][1]
    assert f"| {r['model']} | 8 | 8 | {r['float_img_per_s']:.1f} | {r['golden_img_per_s']:.1f} |" in printed
    (q,) = qtime["rows"]
    assert f"| {q['float_forward_s']:.2f} | {q['quantize_s']:.2f} |" in printed and q["target_s"] == 60
