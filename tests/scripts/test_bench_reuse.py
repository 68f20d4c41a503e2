"""scripts/bench_reuse.py (hwsim part; synthesis is the benchmark's own run): its JSON holds the tables it prints,
Tp = 1 is the engine as it was, and the weight-buffer reads fall with the pixel tile."""

from __future__ import annotations

import json

import pytest

from hwsim.engine import EngineModel
from hwsim.sizing import size_engine
from scripts import bench_reuse


def test_bench_reuse_without_synthesis(tmp_path, capsys):
    from quant.quantizer.workflow import placeholder_model

    path = tmp_path / "reuse.json"
    assert bench_reuse.main(["--tp", "1,8", "--no-synth", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["bench"] == "reuse" and rec["command"] == f"python scripts/bench_reuse.py --tp 1,8 --no-synth --json {path}"
    figures, ratios = rec["tables"]
    one, eight = figures["rows"]
    cfg, _ = size_engine(placeholder_model(bench_reuse.MODEL), rows=4, cols=4)
    for row, tp in ((one, 1), (eight, 8)):
        est = EngineModel(cfg.replace(pixel_tile=tp)).estimate(placeholder_model(bench_reuse.MODEL))
        assert (row["cycles"], row["wbuf_reads"]) == (est.total_cycles, est.totals()["wbuf_reads"])
        assert f"| {tp} | {row['cycles']:,} | {row['wbuf_reads']:,} |" in printed
    assert eight["wbuf_reads"] < one["wbuf_reads"] / 4 and eight["on_chip_energy_uj"] < one["on_chip_energy_uj"]
    assert ratios["rows"][1]["wbuf_reads_over_tp1"] == round(eight["wbuf_reads"] / one["wbuf_reads"], 4)


@pytest.mark.parametrize("tp", ["8", "1,x", "1,65"])
def test_bench_reuse_refuses_bad_pixel_tiles(tp, capsys):
    with pytest.raises(SystemExit) as e:
        bench_reuse.main(["--tp", tp, "--no-synth"])
    assert e.value.code == 2 and "--tp must" in capsys.readouterr().err
