"""hwsim.dataflows: one class per dataflow with the same methods; ``estimate --dataflow cp``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim.config import ArrayConfig, EngineConfig
from hwsim.dataflows import (CP_LAYER_COLUMNS, DATAFLOWS, ChannelParallel, OutputStationary, engine_config_for,
                             get_dataflow, mult_engine)
from hwsim.engine import EngineModel
from hwsim.estimate import estimate
from hwsim.layers import shapes_from_int_model
from hwsim.report import LAYER_COLUMNS
from hwsim.tables import load_table
from scripts.cli import main


def test_registry_and_shared_methods():
    assert DATAFLOWS == {"os": OutputStationary, "cp": ChannelParallel}
    assert get_dataflow("cp") is ChannelParallel
    with pytest.raises(ValueError, match="dataflow must be one of os, cp, not 'ws'"):
        get_dataflow("ws")
    for cls in DATAFLOWS.values():
        for meth in ("estimate", "layer_rows", "total_cycles"):
            assert callable(getattr(cls, meth))
        assert cls.name in DATAFLOWS and cls.layer_columns


def test_os_is_todays_estimate(lenet_model):
    layers = shapes_from_int_model(lenet_model)
    cfg = ArrayConfig(rows=4, cols=4, max_k=400)
    tab = load_table("45nm")
    flow = OutputStationary(cfg, tab)
    got = flow.estimate(layers)
    want = estimate(layers, cfg, tab)
    for d in ("adder", "mult"):
        assert flow.total_cycles(got, d) == want.designs[d].total_cycles
    rows = flow.layer_rows(got)
    assert list(rows[0]) == list(LAYER_COLUMNS) and len(rows) == 2 * len(layers)


def test_cp_is_the_engine_model_on_both_engines(int_models):
    seed = 5
    print("seed", seed)
    model = int_models.resnet20(np.random.default_rng(seed))
    cfg = engine_config_for(model, rows=8, cols=8)
    assert (cfg.mult_rows, cfg.bits, cfg.max_k, cfg.requant, cfg.out_bits) == (4, 8, 576, ("fixed",), 16)
    flow = ChannelParallel(cfg)
    res = flow.estimate(model)
    assert res.designs["adder"].total_cycles == EngineModel(cfg).estimate(model).total_cycles
    mcfg = mult_engine(cfg)
    assert (mcfg.pe, mcfg.mult_rows) == ("mult", 0)
    assert flow.total_cycles(res, "mult") == EngineModel(mcfg).estimate(model).total_cycles
    # the stem and the classifier run on 8 rows instead of 4 in the multiplier engine
    assert flow.total_cycles(res, "mult") < flow.total_cycles(res, "adder")
    rows = flow.layer_rows(res)
    assert list(rows[0]) == list(CP_LAYER_COLUMNS)
    units = {(r["design"], r["layer"]): r["unit"] for r in rows}
    assert units["adder", "conv1"] == "mult" and units["adder", "layer1.0.conv1"] == "adder"
    assert units["mult", "layer1.0.conv1"] == "mult" and units["mult", "avgpool"] == "vector"


@pytest.mark.parametrize("kwargs, msg", [
    (dict(config=ArrayConfig(rows=1, cols=1)), "config must be an EngineConfig, not ArrayConfig"),
    (dict(config=EngineConfig(rows=1, cols=1, pe="mult")),
     "config must be the adder engine (pe='adder'), not pe='mult'"),
    (dict(config=EngineConfig(rows=1, cols=1), table=load_table("45nm")),
     "prog_beat_bits must be a positive integer with a table, not None"),
    (dict(config=EngineConfig(rows=1, cols=1), table="45nm"), "table must be an EnergyTable, not str"),
])
def test_cp_refusals(kwargs, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        ChannelParallel(**kwargs)


def test_cp_needs_an_int_model():
    with pytest.raises(ValueError, match="dataflow cp estimates an IntModel, not tuple"):
        ChannelParallel(EngineConfig(rows=1, cols=1)).estimate(())


def test_estimate_cli_cp(tmp_path, capsys, int_models):
    from quant.artifact import save_int_model

    model = int_models.lenet(np.random.default_rng(21), "fixed")
    save_int_model(model, tmp_path / "lenet")
    rc = main(["estimate", str(tmp_path / "lenet"), "--dataflow", "cp", "--rows", "4", "--cols", "4",
               "-o", str(tmp_path / "est")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    want = EngineModel(engine_config_for(model, rows=4, cols=4, clock_mhz=200.0)).estimate(model)
    assert f"adder: {want.total_cycles:,} cycles" in out
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["dataflow"] == "cp" and s["designs"]["adder"]["total_cycles"] == want.total_cycles
    assert s["designs"]["adder"]["w_beats"] == want.totals()["w_beats"]
    csv = (tmp_path / "est" / "layers.csv").read_text().splitlines()
    assert csv[0] == ",".join(CP_LAYER_COLUMNS) and len(csv) == 1 + 2 * len(want.layers)
    assert (tmp_path / "est" / "report.md").read_text().startswith("# Network engine estimate")
    # energy: charged from the counts, per component, per op and per image, with the ratios
    assert "energy_note" not in s and s["table"]["name"] == "45nm" and "sqrt" in s["table"]["sram_size_source"]
    for d in ("adder", "mult"):
        r = s["designs"][d]
        per_op = sum(e["energy_pj"] for e in r["energy_per_op_pj"]) + r["energy_host_streams_pj"]["energy_pj"]
        assert r["energy_pj"] == pytest.approx(sum(r["energy_breakdown_pj"].values()))
        assert r["energy_pj"] == pytest.approx(per_op)
        assert r["on_chip_energy_pj"] == pytest.approx(r["energy_pj"] - r["energy_breakdown_pj"]["dram_pj"])
    rt = s["ratios_adder_over_mult"]
    assert rt["pe_pj"] < 1 and rt["energy_pj"] < 1 and rt["dram_pj"] == 1
    assert f"adder/mult: cycles {rt['total_cycles']:.3f}, energy {rt['energy_pj']:.3f}" in out
    # the engine is sized as generate --engine --model sizes it
    from hwsim.sizing import size_engine

    sized, _ = size_engine(model, rows=4, cols=4)
    assert s["config"]["act_words"] == list(sized.act_words)
    assert s["memories"]["weights"]["words"] == sized.weight_words
    head = csv[0].split(",")
    adder_rows = [dict(zip(head, line.split(","))) for line in csv[1:1 + len(want.layers)]]
    assert sum(float(r["energy_pj"]) for r in adder_rows) == pytest.approx(
        s["designs"]["adder"]["energy_pj"] - s["designs"]["adder"]["energy_host_streams_pj"]["energy_pj"], rel=1e-5)
    assert (tmp_path / "est" / "energy_breakdown.png").read_bytes()[:4] == b"\x89PNG"


def test_estimate_cli_cp_refusals(tmp_path, capsys, topologies):
    rc = main(["estimate", str(topologies / "resnet20.csv"), "--dataflow", "cp", "-o", str(tmp_path / "e")])
    assert rc != 0
    assert "dataflow cp needs an integer model folder" in capsys.readouterr().err
    rc = main(["estimate", str(topologies / "resnet20.csv"), "--rows", "4", "-o", str(tmp_path / "e")])
    assert rc != 0
    assert "--rows: for --dataflow cp only" in capsys.readouterr().err
