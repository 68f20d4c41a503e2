"""rtl.engine.generate: engine Verilog + metadata (deterministic, atomic), the strict reader,
sizing to a model, ``adderhw generate --engine`` and ``synth --compare`` of an engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.config import EngineConfig
from rtl.engine.generate import FORMAT_VERSION, METADATA_KEYS, generate_engine, read_engine_metadata
from hwsim.samples import small_model
from rtl.engine.top import COUNTERS, Engine
from scripts.cli import main

SMALL = EngineConfig(rows=2, cols=2, bits=4, max_k=32, act_words=(16, 16), weight_words=8)


@pytest.fixture(scope="module")
def small_design(tmp_path_factory):
    return generate_engine(tmp_path_factory.mktemp("eng") / "a", config=SMALL, max_ops=2)


def test_explicit_sizes_deterministic_and_read_back(tmp_path, small_design):
    a = small_design
    b = generate_engine(tmp_path / "b", config=SMALL, max_ops=2)
    assert a.verilog.name == b.verilog.name and a.verilog.name.startswith("eng_adder_r2c2_b4_")
    assert a.verilog.read_bytes() == b.verilog.read_bytes()
    assert a.metadata.read_bytes() == b.metadata.read_bytes()
    assert not [p for p in a.verilog.parent.iterdir() if p.suffix not in (".v", ".json")]  # no temp left
    meta = read_engine_metadata(a.metadata)
    assert tuple(sorted(meta)) == tuple(sorted(METADATA_KEYS))
    assert meta["config"] == SMALL and meta["max_ops"] == 2 and meta["model"] is None
    assert meta["latency"] == {"step": SMALL.step_latency, "vector": 1, "requant": 3, "tree_stages": 1,
                               "addrgen": 1}
    ports = {p["name"]: p for p in meta["ports"]}
    eng = Engine(config=SMALL, max_ops=2)
    eng._MustUse__silence = True
    assert ports["prog__payload"]["width"] == eng.desc_layout.size
    assert sum(f["width"] for f in meta["payloads"]["prog"]) == eng.desc_layout.size
    assert ports["w__payload"]["width"] == SMALL.weight_word_bits
    assert ports["o__payload"]["width"] == SMALL.out_bits + 1
    assert meta["counters"]["names"] == list(COUNTERS) and all(ports[c]["width"] == 32 for c in COUNTERS)
    assert meta["memory_map"]["R1"] == {"words": 16, "word_bits": 8, "bytes": 16}
    assert f"module {a.verilog.stem}" in a.verilog.read_text()



@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(extra=1), "unknown metadata keys: extra"),
    (lambda d: d.pop("tools"), "missing metadata keys: tools"),
    (lambda d: d.update(format_version=FORMAT_VERSION + 1),
     f"format_version {FORMAT_VERSION + 1} is not supported"),
    (lambda d: d.update(format="adderhw-int-model"), "not an engine design metadata file"),
    (lambda d: d["latency"].update(fill=1), "unknown latency keys: fill"),
    (lambda d: d["config"].update(lanes=1), "unknown engine config keys: lanes"),
])
def test_reader_is_strict(tmp_path, small_design, edit, message):
    obj = json.loads(small_design.metadata.read_text())
    edit(obj)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=message):
        read_engine_metadata(bad)


def test_needs_config_or_model(tmp_path):
    with pytest.raises(ValueError, match="give either config .explicit sizes. or model"):
        generate_engine(tmp_path)


def test_cli_generate_engine_for_a_model(tmp_path, capsys):
    from quant.artifact import save_int_model

    model = small_model(np.random.default_rng(7), c0=1, h=4, w=4, c1=2, bits=4)
    save_int_model(model, tmp_path / "small")
    argv = ["generate", "--engine", "--model", str(tmp_path / "small"), "--rows", "2", "--cols", "2"]
    assert main(argv + ["-o", str(tmp_path / "g1")]) == 0
    assert main(argv + ["-o", str(tmp_path / "g2")]) == 0
    capsys.readouterr()
    (v1,) = (tmp_path / "g1").glob("*.v")
    assert v1.read_bytes() == (tmp_path / "g2" / v1.name).read_bytes()
    meta = read_engine_metadata(v1.with_suffix(".json"))
    assert meta["model"]["name"] == "small" and meta["max_ops"] == meta["model"]["ops"] == 5
    assert main(argv + ["--bits", "8", "-o", str(tmp_path / "g3")]) == 1
    assert "--bits: an engine sized to --model takes its widths" in capsys.readouterr().err
    assert main(["generate", "--engine", "--rows", "2", "--cols", "2", "--bits", "4", "--block", "pe",
                 "-o", str(tmp_path / "g4")]) == 1
    assert "--block is for the v1 core, not --engine" in capsys.readouterr().err
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--pe", "adder", "--max-ops", "3",
                 "-o", str(tmp_path / "g5")]) == 1
    assert "--max-ops: for --engine only" in capsys.readouterr().err
    assert main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--pe", "adder", "--trace",
                 "-o", str(tmp_path / "g6")]) == 1
    assert "--trace: for --engine only" in capsys.readouterr().err
    # --trace: the same engine with traces (another name: the config differs in trace only)
    assert main(argv + ["--trace", "-o", str(tmp_path / "g7")]) == 0
    capsys.readouterr()
    (v7,) = (tmp_path / "g7").glob("*.v")
    traced = read_engine_metadata(v7.with_suffix(".json"))["config"]
    assert v7.name != v1.name and traced.trace and traced == meta["config"].replace(trace=True)
    assert main(["generate", "--engine", "--rows", "2", "--cols", "2", "--bits", "4", "--trace",
                 "-o", str(tmp_path / "g8")]) == 0
    (v8,) = (tmp_path / "g8").glob("*.json")
    assert read_engine_metadata(v8)["config"].trace


def test_synth_compare_engine_makes_both_pe_kinds(tmp_path, monkeypatch):
    """compare() of an engine design synthesizes the adder engine and the all-multiplier engine of
    the same sizes (the synthesis itself is stubbed: the real run is the README's command)."""
    import rtl.synth as synth

    seen = []

    def fake(verilog, out_dir, **kw):
        meta = read_engine_metadata(verilog.with_suffix(".json"))
        seen.append((verilog.stem, meta["config"], meta["max_ops"], kw["target"], kw["dsp"]))
        return {"design": verilog.stem, "config": meta["config"].to_dict(), "block": "engine"}

    monkeypatch.setattr(synth, "synthesize", fake)
    cfg = EngineConfig(rows=1, cols=2, bits=2, max_k=8, mult_rows=1, act_words=(4, 4), weight_words=2,
                       n_bits=12, mult_bits=4, out_bits=4)
    d = generate_engine(tmp_path / "gen", config=cfg, max_ops=1)
    res = synth.compare(d.verilog, tmp_path / "s", target="ice40-hx8k")
    assert [r["config"]["pe"] for r in res] == ["adder", "mult"]
    (a, m) = seen
    assert a[0] == d.verilog.stem and a[1] == cfg and a[2:] == (1, "ice40-hx8k", False)
    assert m[1] == cfg.replace(pe="mult", mult_rows=0, mult_acc_bits=None) and m[2] == 1
    assert json.loads((tmp_path / "s" / "compare.json").read_text()) == res


def _multipliers(verilog: Path, top: str) -> list[str]:
    """The ``$mul``/``$macc`` cells yosys keeps in the flattened design after ``opt`` (constant products fold)."""
    import shutil
    import subprocess

    yosys = shutil.which("yosys")
    assert yosys, "yosys (a Debian package make test's set-up installs) is missing"
    out = verilog.with_suffix(".mul.txt")
    subprocess.run([yosys, "-q", "-p", f"read_verilog {verilog}; hierarchy -top {top}; proc; flatten; opt; "
                    f"tee -q -o {out} select -list t:$mul t:$macc"], check=True, capture_output=True)
    return [ln for ln in out.read_text().splitlines() if ln.strip()]


def test_threshold_engine_has_no_multiplier(tmp_path):
    """DESIGN §4b: an adder engine with threshold requant only (no multiplier unit) contains no multiplier;
    with the fixed-point form its requant unit has them."""
    names = {}
    for rq in (("threshold",), ("fixed",)):
        cfg = EngineConfig(rows=2, cols=2, bits=4, requant=rq, out_bits=4, act_words=(16, 16), weight_words=16,
                           max_k=32)
        d = generate_engine(tmp_path / rq[0], config=cfg, max_ops=4)
        names[rq[0]] = _multipliers(d.verilog, read_engine_metadata(d.metadata)["top"])
    assert names["threshold"] == []
    assert names["fixed"] and all("rq." in n for n in names["fixed"]), names["fixed"]  # the requant unit's
