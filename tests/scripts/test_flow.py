"""``adderhw flow`` end to end on the shipped checkpoint (small evaluation, two bit widths)."""

from __future__ import annotations

import pytest
import json
from pathlib import Path


from scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]
CKPT = ROOT / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def test_a_step_prints_the_final_paths_not_the_staging_folder(tmp_path, capsys, tiny_model_dir):
    """What a step's subcommand prints names the step's folder, not its staging folder (issue 27, polish)."""
    from scripts.flow import _runner

    model = tiny_model_dir(tmp_path)
    staging, final = tmp_path / ".estimate.tmp.1.x", tmp_path / "estimate"
    staging.mkdir()
    _runner("estimate", final)([["estimate", str(model), "-o", str(staging / "e")]], staging)
    out = capsys.readouterr().out
    assert str(staging) not in out
    assert f"$ adderhw estimate {model} -o {final}/e" in out and f"wrote {final}/e/" in out


def test_missing_checkpoint_is_one_line_error(tmp_path, capsys):
    rc = main(["flow", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip() == f"adderhw flow: error: checkpoint not found: {tmp_path / 'nope.pt'}"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_dataflow_os_is_refused_and_cp_deprecated(tmp_path, capsys):
    rc = main(["flow", str(CKPT), "-o", str(tmp_path / "out"), "--dataflow", "os"])
    assert rc == 1 and capsys.readouterr().err.strip() == (
        "adderhw flow: error: --dataflow os: the v1 output-stationary core is retired; the network engine is "
        "the only design (drop --dataflow)")
    assert not (tmp_path / "out").exists()
    rc = main(["flow", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "out"), "--dataflow", "cp"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1 and err[0] == "flow: --dataflow cp is deprecated: the network engine is the only design"


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.synth
def test_engine_flow_report_equals_subcommand_outputs_and_rerun_reuses(tmp_path, capsys, monkeypatch):
    """The flow: the engine sized to LeNet, both engines on ECP5-25K, the whole
    network on Verilator; every number in the report is the one its subcommand wrote."""
    # the verify step caches its simulator builds under OUT_DIR/sim_build: run from an empty working
    # directory (every path below is absolute) and check that neither it nor the source tree got anything
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.name for p in (ROOT / "build").iterdir()) if (ROOT / "build").exists() else []
    out = tmp_path / "flow"
    argv = ["flow", str(CKPT), "-o", str(out), "--eval", "200", "--sweep", "8,4"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    report = (out / "report.md").read_text()
    for section in ("## 1. Quantization", "## 2. Cycles and counted energy", "## 3. The engine",
                    "## 4. Synthesis", "## 5. The whole network on the engine"):
        assert section in report
    est = json.loads((out / "estimate" / "summary.json").read_text())
    assert est["dataflow"] == "cp"
    adder = est["designs"]["adder"]
    assert f"| adder | {adder['total_cycles']:,} |" in report
    synth = json.loads((out / "synth" / "engine" / "compare.json").read_text())
    assert [v["config"]["pe"] for v in synth] == ["adder", "mult"] and not any(v["dsp"] for v in synth)
    assert all(v["fits"] and v["target"] == "ecp5-25k" for v in synth)
    luts = {v["config"]["pe"]: v["resources"]["lut"] for v in synth}
    assert luts["adder"] < luts["mult"]
    assert f"| engine adder | {synth[0]['resources']['lc']} | {luts['adder']} |" in report
    ver = json.loads((out / "verify" / "verify.json").read_text())
    assert ver["dataflow"] == "cp" and ver["tests"] and all(t["passed"] for t in ver["tests"])
    im = ver["tests"][0]["images"][0]
    assert im["cycles_measured"] == im["cycles_predicted"] == adder["total_cycles"]
    assert im["counters_ok"] and im["logits_ok"]
    assert f"| {im['cycles_measured']:,} | {im['cycles_predicted']:,} | 0 |" in report
    assert "done in" in first
    assert main(argv) == 0
    assert capsys.readouterr().out.count("inputs unchanged, reused") == 7
    assert (out / "report.md").read_text() == report
    assert (out / "sim_build").is_dir() and not any(work.iterdir())
    assert (sorted(p.name for p in (ROOT / "build").iterdir()) if (ROOT / "build").exists() else []) == before


def test_estimate_and_generate_keep_the_weights_in_the_same_place(tmp_path):
    """flow --weights W: the estimate step sizes the engine generate builds (same --weights and --part)."""
    from scripts.flow import FlowOptions, build_steps

    for weights, want in (("streamed", []), ("auto", ["--weights", "auto", "--part", "ecp5-25k"])):
        steps = {s.name: s for s in build_steps(FlowOptions(checkpoint=CKPT, out=tmp_path, weights=weights))}
        (est,) = steps["estimate"].commands()
        assert est[est.index("--cols") + 2:est.index("-o")] == want
        for gen in steps["generate"].commands():  # the deployable and the verification build
            assert gen[gen.index("--cols") + 2:gen.index("-o")][:len(want)] == want


def test_weight_buffers_go_to_estimate_and_generate(tmp_path):
    """flow --weight-buffers 2: estimate sizes the engine generate builds (the same flag on both)."""
    from scripts.flow import FlowOptions, build_steps

    steps = {s.name: s for s in build_steps(FlowOptions(checkpoint=CKPT, out=tmp_path, weight_buffers=2))}
    (est,) = steps["estimate"].commands()
    assert est[est.index("--cols") + 2:est.index("-o")] == ["--weight-buffers", "2"]
    for gen in steps["generate"].commands():
        assert gen[gen.index("--cols") + 2:gen.index("-o")][:2] == ["--weight-buffers", "2"]
    with pytest.raises(ValueError, match="--weight-buffers must be 1 or 2, not 3"):
        FlowOptions(checkpoint=CKPT, out=tmp_path, weight_buffers=3)


def test_pixel_tile_goes_to_estimate_and_generate(tmp_path, capsys):
    """flow --pixel-tile 8: the same flag on estimate and on both generate builds (the engine estimate sizes is
    the one generate builds); bad values and Tp > 1 with two weight buffers: one line before any step."""
    from scripts.flow import FlowOptions, build_steps

    steps = {s.name: s for s in build_steps(FlowOptions(checkpoint=CKPT, out=tmp_path, pixel_tile=8))}
    (est,) = steps["estimate"].commands()
    assert est[est.index("--cols") + 2:est.index("-o")] == ["--pixel-tile", "8"]
    for gen in steps["generate"].commands():
        assert gen[gen.index("--cols") + 2:gen.index("-o")][:2] == ["--pixel-tile", "8"]
    for flags, msg in ((["--pixel-tile", "65"], "--pixel-tile must be an integer in 1..64, not 65"),
                       (["--pixel-tile", "2", "--weight-buffers", "2"],
                        "--weight-buffers 2 is built for --pixel-tile 1 only (the two have not been joined in "
                        "the cycle contract), not --pixel-tile 2")):
        assert main(["flow", str(CKPT), *flags, "-o", str(tmp_path / "out")]) == 1
        assert capsys.readouterr().err == f"adderhw flow: error: {msg}\n"
        assert not (tmp_path / "out").exists()
