"""Results from JSON (scripts/results.py): collect a run's outputs, render tables, keep the README in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import results
from scripts.results import (FLOW_LAYOUT, BenchTable, MissingStep, Table, collect, load_results, page_tables, render,
                             update_readme, write_bench)

ROOT = Path(__file__).resolve().parents[2]


def test_readme_results_table_is_the_rendering_of_the_json():
    text = (ROOT / "README.md").read_text()
    assert "<!-- results:demo -->" in text and "<!-- /results:demo -->" in text
    assert update_readme(text) == text, "README.md is out of date: run python -m scripts.results readme"


def test_readme_check_command(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:demo -->\nstale\n<!-- /results:demo -->\nend\n")
    assert results.main(["readme", "--check", "--readme", str(readme)]) == 1
    assert results.main(["readme", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:demo -->\n|") and text.endswith("\n<!-- /results:demo -->\nend\n")
    assert "stale" not in text
    assert results.main(["readme", "--check", "--readme", str(readme)]) == 0


@pytest.mark.parametrize("path", sorted((ROOT / "docs" / "results").glob("*.json")), ids=lambda p: p.name)
def test_committed_results_name_their_commands_and_commit(path):
    res = load_results(path.stem)
    assert res["commit"] and res["steps"]
    steps = [t["name"] for t in res["tables"]] if "bench" in res else FLOW_LAYOUT
    for step, prov in res["steps"].items():
        assert step in steps and prov["command"] and prov["commit"], step
    for table, _ in page_tables(res):
        try:
            assert render(res, table).startswith("| ")
        except MissingStep:
            assert table == Table.SYNTHESIS and "synth" not in res


def _flow_outputs(out: Path) -> None:
    """The JSON files of an ``adderhw flow`` run, with only the keys the collector reads."""
    def write(rel, obj):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(json.dumps(obj))

    write(FLOW_LAYOUT["quantize"], {"model": "m", "dataset": "d", "source": {"path": "c.pt"}})
    write(FLOW_LAYOUT["sweep"], {"rows": [
        {"bits": b, "act_bits": b, "requant": "fixed", "float_accuracy": 90.0, "int_accuracy": 90.0 - (8 - b) / 10,
         "accuracy_drop_points": (8 - b) / 10, "int_float_top1_agreement_pct": 99.0, "eval_images": 100}
        for b in (4, 8)]})
    breakdown = {k: 1e6 for k, _ in results.ENERGY_COMPONENTS}
    write(FLOW_LAYOUT["estimate"], {
        "config": {"rows": 4, "cols": 4}, "table": {"name": "45nm", "title": "t"},
        "designs": {d: {"total_cycles": 1000, "energy_pj": 7e6 + i, "on_chip_energy_pj": 6e6,
                        "energy_breakdown_pj": breakdown} for i, d in enumerate(("adder", "mult"))}})
    write(FLOW_LAYOUT["synth"], [
        {"config": {"pe": pe}, "dsp": False, "target": "ecp5-25k", "fmax_mhz": 40.0, "fits": True,
         "resources": {"lut": lut, "ff": 10, "bram": 2, "dsp": 0}, "tools": {"yosys": "0.70", "nextpnr": "0.11"}}
        for pe, lut in (("adder", 700), ("mult", 1000))])
    write(FLOW_LAYOUT["verify"], {"design": {"name": "eng"}, "tests": [
        {"name": "m/images", "simulator": "verilator", "passed": True, "images": [
            {"image": 0, "logits_ok": True, "cycles_measured": 1000, "cycles_predicted": 1000, "counters_ok": True}]}]})


def test_collect_from_a_flow_folder_and_render_every_table(tmp_path, capsys):
    demo = tmp_path / "demo"
    _flow_outputs(demo)
    out = tmp_path / "res" / "demo.json"
    assert results.main(["collect", "--demo", str(demo), "--commit", "abc1234", "-o", str(out)]) == 0
    res = load_results("demo", out.parent)
    assert set(res["steps"]) == set(FLOW_LAYOUT) and res["commit"] == "abc1234"
    assert [r["bits"] for r in res["accuracy"]] == [8, 4]  # widest first
    summary = render(res, Table.SUMMARY)
    assert "| top-1 accuracy, float / int8 / int4 (%) | 90.0 / 90.0 / 89.6 | — |" in summary
    assert "| engine on ecp5-25k (LUT-only): LUT, BRAM, Fmax (MHz) | 700, 2, 40.0 | 1,000, 2, 40.0 |" in summary
    assert "bit-exact, equal" in summary
    synth = render(res, Table.SYNTHESIS)
    assert synth.count("\n") == 3 and "yosys 0.70, nextpnr 0.11" in synth
    energy = render(res, Table.ENERGY).splitlines()
    assert energy[2].startswith("| adder engine | 7.000 | 6.000 | 1.000 |")


def test_a_missing_step_leaves_its_tables_out(tmp_path):
    demo = tmp_path / "demo"
    _flow_outputs(demo)
    (demo / FLOW_LAYOUT["synth"]).unlink()
    out = tmp_path / "demo.json"
    assert results.main(["collect", "--demo", str(demo), "--commit", "x", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert "synth" not in res and "synth" not in res["steps"]
    with pytest.raises(MissingStep):
        render(res, Table.SYNTHESIS)
    assert "LUT" not in render(res, Table.SUMMARY)


def test_update_merges_a_synthesis_benchmark_into_a_results_file(tmp_path):
    demo = tmp_path / "demo"
    _flow_outputs(demo)
    synth = json.loads((demo / FLOW_LAYOUT["synth"]).read_text())
    (demo / FLOW_LAYOUT["synth"]).unlink()
    out = tmp_path / "demo.json"
    assert results.main(["collect", "--demo", str(demo), "--commit", "aaa", "-o", str(out)]) == 0
    bench = tmp_path / "bench_synth.json"
    pe = dict(synth[0], block="pe", config={"pe": "adder"})
    bench.write_text(json.dumps({"results": [*synth, pe], "ratios": {}}))
    assert results.main(["collect", "--synth", str(bench), "--synth-command", "python scripts/bench_synth.py",
                         "--commit", "bbb", "--update", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["steps"]) == set(FLOW_LAYOUT) and res["accuracy"] and len(res["synth"]) == 3
    assert res["steps"]["synth"] == {"command": "python scripts/bench_synth.py", "commit": "bbb"}
    assert res["steps"]["sweep"]["commit"] == "aaa" and results.commits(res) == "aaa, bbb"
    assert "| adder pe (PE study) | LUT |" in render(res, Table.SYNTHESIS)
    assert "700, 2, 40.0" in render(res, Table.SUMMARY)  # the engines' row, not the PE's


def _bench(path: Path, tables, command="python scripts/bench_x.py") -> dict:
    return write_bench(path, bench="x", title="Benchmark: x", tables=tables, command=command, tools={"torch": "2.5"})


def test_a_benchmark_file_becomes_a_results_page_of_its_own_tables(tmp_path):
    tables = [BenchTable("speed", "Speed", ({"model": "m", "time_ms": 1.5, "images": 1000, "ok": True, "note": None},)),
              BenchTable("accuracy", "Accuracy", ({"bits": 8, "int_accuracy_pct": 90.1},))]
    rec = _bench(tmp_path / "b" / "x.json", tables)
    assert rec["format"] == results.BENCH_FORMAT and rec["tools"]["torch"] == "2.5" and "python" in rec["tools"]
    out = tmp_path / "res" / "bench_x.json"
    assert results.main(["collect", "--bench", str(tmp_path / "b" / "x.json"), "-o", str(out)]) == 0
    res = load_results("bench_x", out.parent)
    assert res["name"] == "bench_x" and res["title"] == "Benchmark: x" and list(res["steps"]) == ["speed", "accuracy"]
    assert [t for t, _ in page_tables(res)] == ["speed", "accuracy", Table.PROVENANCE]
    assert render(res, "speed").splitlines() == ["| model | time_ms | images | ok | note |", "|---|---|---|---|---|",
                                                 "| m | 1.5 | 1,000 | yes | — |"]
    assert render(res, "accuracy").startswith("| bits | int_accuracy_pct |")  # its own, not the flow's table
    prov = render(res, Table.PROVENANCE)
    assert f"| speed | `python scripts/bench_x.py` | `{rec['commit']}` | python " in prov and "torch 2.5" in prov
    assert "**Speed**" in render(res, Table.BENCHMARK)
    with pytest.raises(MissingStep):
        render(res, Table.SUMMARY)


def test_readme_block_of_one_benchmark_table(tmp_path):
    """``<!-- results:NAME:TABLE -->`` blocks render that table of a benchmark's results file and name its command."""
    _bench(tmp_path / "b.json", [BenchTable("speed", "Speed", ({"time_ms": 1.5},)),
                                 BenchTable("accuracy", "Accuracy", ({"pct": 90.0},))], command="python scripts/bench_x.py --y")
    assert results.main(["collect", "--bench", str(tmp_path / "b.json"), "-o", str(tmp_path / "bench_x.json")]) == 0
    text = "a\n<!-- results:bench_x:accuracy -->\nstale\n<!-- /results:bench_x:accuracy -->\nb\n"
    new = update_readme(text, tmp_path).splitlines()
    assert new[:4] == ["a", "<!-- results:bench_x:accuracy -->", "| pct |", "|---|"] and new[4] == "| 90.0 |"
    assert "`python scripts/bench_x.py --y`" in new[6] and "time_ms" not in "\n".join(new)
    assert new[-2:] == ["<!-- /results:bench_x:accuracy -->", "b"]
    with pytest.raises(MissingStep, match="no benchmark table 'time'"):
        update_readme("<!-- results:bench_x:time -->\n\n<!-- /results:bench_x:time -->\n", tmp_path)


def test_readme_block_of_some_columns(tmp_path):
    """``<!-- results:NAME:TABLE:COL,COL -->`` shows only those columns, in that order; an unknown one is refused."""
    _bench(tmp_path / "b.json", [BenchTable("scale", "Scale", ({"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}))],
           command="python scripts/bench_x.py")
    assert results.main(["collect", "--bench", str(tmp_path / "b.json"), "-o", str(tmp_path / "bench_x.json")]) == 0
    text = "<!-- results:bench_x:scale:c,a -->\nstale\n<!-- /results:bench_x:scale -->\n"
    new = update_readme(text, tmp_path).splitlines()
    assert new[1:5] == ["| c | a |", "|---|---|", "| 3 | 1 |", "| 6 | 4 |"] and new[-1] == "<!-- /results:bench_x:scale -->"
    assert update_readme("\n".join(new) + "\n", tmp_path) == "\n".join(new) + "\n"
    with pytest.raises(MissingStep, match="no column 'd'"):
        update_readme("<!-- results:bench_x:scale:a,d -->\n\n<!-- /results:bench_x:scale -->\n", tmp_path)


def test_update_replaces_only_the_tables_a_benchmark_run_made(tmp_path):
    out = tmp_path / "bench_x.json"
    _bench(tmp_path / "a.json", [BenchTable("speed", "Speed", ({"time_ms": 1.0},)),
                                 BenchTable("accuracy", "Accuracy", ({"pct": 90.0},))], command="python a")
    _bench(tmp_path / "b.json", [BenchTable("accuracy", "Accuracy", ({"pct": 91.0},)),
                                 BenchTable("time", "Time", ({"s": 2.0},))], command="python b")
    assert results.main(["collect", "--bench", str(tmp_path / "a.json"), "-o", str(out)]) == 0
    assert results.main(["collect", "--bench", str(tmp_path / "b.json"), "--update", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [t["name"] for t in res["tables"]] == ["speed", "accuracy", "time"]
    assert res["tables"][1]["rows"] == [{"pct": 91.0}]
    assert {k: v["command"] for k, v in res["steps"].items()} == {"speed": "python a", "accuracy": "python b",
                                                                  "time": "python b"}


def test_a_benchmark_does_not_merge_into_a_flow_results_file(tmp_path):
    demo = tmp_path / "demo"
    _flow_outputs(demo)
    out = tmp_path / "demo.json"
    assert results.main(["collect", "--demo", str(demo), "--commit", "x", "-o", str(out)]) == 0
    _bench(tmp_path / "b.json", [BenchTable("speed", "Speed", ({"time_ms": 1.0},))])
    with pytest.raises(ValueError):
        results.main(["collect", "--bench", str(tmp_path / "b.json"), "--update", "-o", str(out)])
    with pytest.raises(ValueError):
        _bench(tmp_path / "c.json", [BenchTable("provenance", "P", ())])


def test_several_benchmark_files_each_to_its_own_results_file(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "res")
    for bench in ("a", "b"):
        write_bench(tmp_path / f"{bench}.json", bench=bench, title=bench, command="python x",
                    tables=[BenchTable("t", "T", ({"n": 1},))])
    assert results.main(["collect", "--update", "--bench", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["bench_a.json", "bench_b.json"]
    assert load_results("bench_b", tmp_path / "res")["bench"] == "b"
    with pytest.raises(SystemExit):  # one -o for two files
        results.main(["collect", "--bench", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", "x.json"])


def test_the_resource_model_table_is_read_from_the_calibration_data_files():
    """`<!-- results:resource_model:heldout -->` renders the held-out rows of each family's data file, no copy."""
    from hwsim.resources import CALIBRATION_PART, load_model

    res = results.load_results(results.RESOURCE_MODEL)
    rows = res["tables"][0]["rows"]
    want = [(p, r["design"], r["predicted"], r["synthesized"], r["error_pct"]) for p in CALIBRATION_PART.values()
            for r in load_model(p).held_out if r["resource"] == "lut"]
    assert [(r["part"], r["design"], r["lut_predicted"], r["lut_synthesized"], r["lut_error_pct"]) for r in rows] == want
    block = results.render_block(res, "heldout", ("design", "part", "lut_error_pct"))
    assert block.startswith("| design | part | lut_error_pct |") and "hwsim/data/resources_{ecp5-25k,ice40-hx8k}.json" in block
