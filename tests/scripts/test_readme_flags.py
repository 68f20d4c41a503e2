"""README flags that no other test invoked at the command line: one cheap CLI run each.

``generate --block --form --out-bits --mult-bits``, ``synth --compare`` and
``--dsp`` (real yosys/nextpnr on one PE of the PE study), ``estimate --table fpga:``,
and the shipped CNN checkpoint through ``predict`` and ``estimate`` (on the engine).  (``verify
--design --images`` is in tests/verification/test_cli.py, beside its build
cache; quantize and train flags are tested with their commands.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "checkpoints" / "lenet5_bn_cnn_fmnist.pt"


def _meta(folder: Path) -> dict:
    (j,) = folder.glob("*.json")
    return json.loads(j.read_text())


def test_generate_out_bits_and_mult_bits(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--max-k", "16",
                 "--out-bits", "10", "--mult-bits", "12", "-o", str(out)]) == 0
    meta = _meta(out)
    assert meta["block"] == "engine" and meta["name"].startswith("eng_adder_r2c2_b4_")
    assert (meta["config"]["out_bits"], meta["config"]["mult_bits"]) == (10, 12)
    ports = {p["name"]: p["width"] for p in meta["ports"]}
    assert ports["o__payload"] == 10 + 1  # the logits leave one signed out_bits+1 code per beat
    assert str(out / f"{meta['name']}.v") in capsys.readouterr().out


@pytest.mark.parametrize("block,form,name,module", [
    ("pe", "mux", "pe_adder_b4_k16_mux", "pe_adder_b4_k16_mux"),
    ("array", "cinv", "array_adder_r2c2_b4_k16", None),
])
def test_generate_block_and_form(tmp_path, block, form, name, module):
    out = tmp_path / "g"
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--pe", "adder", "--max-k", "16",
                 "--block", block, "--form", form, "-o", str(out)]) == 0
    meta = _meta(out)
    assert (meta["block"], meta["pe_form"], meta["name"]) == (block, form, name)
    verilog = (out / f"{name}.v").read_text()
    assert f"module {meta['top']}" in verilog or f"module \\{meta['top']}" in verilog


def test_generate_forms_differ(tmp_path):
    texts = []
    for form in ("cinv", "mux"):
        assert main(["generate", "--rows", "1", "--cols", "1", "--bits", "4", "--pe", "adder", "--max-k", "16",
                     "--block", "pe", "--form", form, "-o", str(tmp_path / form)]) == 0
        (v,) = (tmp_path / form).glob("*.v")
        texts.append(v.read_text())
    assert texts[0] != texts[1]


@pytest.mark.synth
def test_synth_compare_dsp_and_fpga_table(tmp_path, capsys):
    """synth --compare (LUT adder vs mult), synth --dsp (UP5K) and estimate --table fpga:compare.json."""
    # 8-bit: yosys infers SB_MAC16 for an 8-bit multiplier (not for a 4-bit one), and estimate's arrays are 8-bit
    gen = tmp_path / "g"
    assert main(["generate", "--rows", "1", "--cols", "1", "--bits", "8", "--pe", "mult", "--max-k", "16",
                 "--block", "pe", "-o", str(gen)]) == 0
    (v,) = gen.glob("*.v")
    capsys.readouterr()
    assert main(["synth", str(v), "--compare", "-o", str(tmp_path / "cmp")]) == 0
    table = capsys.readouterr().out
    results = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [(r["config"]["pe"], r["dsp"]) for r in results] == [("adder", False), ("mult", False)]
    assert all(r["fits"] and r["resources"]["lc"] > 0 and r["resources"]["dsp"] == 0 for r in results)
    assert "| pe_adder_b8_k16 | ice40-hx8k | no |" in table and "| 100.0 |" in table

    assert main(["synth", str(v), "--target", "ice40-up5k", "--dsp", "-o", str(tmp_path / "dsp")]) == 0
    r = json.loads((tmp_path / "dsp" / "synth.json").read_text())
    assert r["dsp"] is True and r["resources"]["dsp"] == 1 and r["target"] == "ice40-up5k"
    capsys.readouterr()
    assert main(["synth", str(v), "--compare", "--dsp", "-o", str(tmp_path / "bad")]) == 1
    assert capsys.readouterr().err.startswith("adderhw synth: error: --compare already adds the DSP variants")

    est = tmp_path / "est"
    topo = ROOT / "hwsim" / "topologies" / "lenet5_bn.csv"
    assert main(["estimate", str(topo), "--table", f"fpga:{tmp_path / 'cmp' / 'compare.json'}",
                 "-o", str(est)]) == 0
    s = json.loads((est / "summary.json").read_text())
    assert s["table"]["name"] == "fpga" and s["table"]["area_unit"] == "lc"
    assert "compare.json:pe_adder_b8_k16" in s["table"]["source"]
    # the engine's counts are priced with the synthesized PE's energy proxy: both designs, same counts
    assert s["designs"]["adder"]["total_cycles"] == s["designs"]["mult"]["total_cycles"] > 0


def test_shipped_cnn_checkpoint_predicts_and_estimates(tmp_path, capsys):
    from quant.training.datasets import load_dataset

    images, labels = load_dataset("fashion-mnist", "test")
    np.save(tmp_path / "x.npy", np.asarray(images[:200], dtype=np.float32))
    assert main(["predict", str(CNN), str(tmp_path / "x.npy"), "-o", str(tmp_path / "logits.npy")]) == 0
    logits = np.load(tmp_path / "logits.npy")
    assert logits.shape == (200, 10) and logits.dtype == np.float32
    assert (logits.argmax(1) == labels[:200]).mean() > 0.85  # the checkpoint records 91.59 % on the test set
    capsys.readouterr()
    assert main(["estimate", str(CNN), "-o", str(tmp_path / "est")]) == 0
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["model"] == "lenet5-bn"
    # a CNN has no adder layer: on the adder engine every conv and linear runs on the multiplier unit
    assert s["designs"]["adder"]["ops_on_mult"] == 5 and s["designs"]["adder"]["ops_on_adder"] == 0
