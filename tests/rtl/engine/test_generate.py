"""rtl.engine.generate: engine Verilog + metadata (deterministic, atomic, read back by rtl.design),
sizing to a model, ``adderhw generate`` and ``synth --compare`` of an engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.config import EngineConfig
from rtl.design import Block, read_design
from hwsim.sizing import size_engine
from rtl.engine.generate import generate_engine
from hwsim.samples import small_model
from rtl.engine.top import COUNTERS, Build, desc_layout

SMALL = EngineConfig(rows=2, cols=2, bits=4, max_k=32, act_words=(16, 16), weight_words=8)


@pytest.fixture(scope="module")
def small_design(tmp_path_factory):
    return generate_engine(tmp_path_factory.mktemp("eng") / "a", config=SMALL, max_ops=2, build=Build.VERIFY)


def test_explicit_sizes_deterministic_and_read_back(tmp_path, small_design):
    a = small_design
    b = generate_engine(tmp_path / "b", config=SMALL, max_ops=2, build=Build.VERIFY)
    assert a.verilog.name == b.verilog.name and a.verilog.name.startswith("eng_adder_r2c2_b4_")
    assert a.verilog.read_bytes() == b.verilog.read_bytes()
    assert a.path.read_bytes() == b.path.read_bytes()
    assert not [p for p in a.verilog.parent.iterdir() if p.suffix not in (".v", ".json")]  # no temp left
    meta = read_design(a.path)
    assert meta.block == Block.ENGINE and meta.config == SMALL and meta.max_ops == 2 and meta.model is None
    assert meta.latency == {"step": SMALL.step_latency, "vector": 1, "requant": 6, "tree_stages": 1, "addrgen": 1}
    layout = desc_layout(SMALL)
    assert meta.port("prog__payload").width == meta.payloads["prog"].width == layout.size
    assert sum(f.width for f in meta.payloads["prog"].fields) == layout.size
    assert meta.port("w__payload").width == SMALL.weight_word_bits
    assert meta.port("o__payload").width == SMALL.out_bits + 1 and meta.payloads["o"].fields[0].signed
    assert meta.counters == tuple(COUNTERS) and all(meta.port(c).width == 32 for c in COUNTERS)
    assert meta.memory_map["R1"] == {"words": 16, "word_bits": 8, "bytes": 16}
    assert f"module {a.verilog.stem}" in a.verilog.read_text()


def test_the_deployable_build_has_the_streams_only(tmp_path, small_design):
    """The default build: no counters, no op_done/op_index; its own name; the same stream ports."""
    d = generate_engine(tmp_path / "d", config=SMALL, max_ops=2)
    meta, verify = read_design(d.path), read_design(small_design.path)
    assert meta.counters is None and d.name != small_design.name
    assert {p.name for p in meta.ports} == {p.name for p in verify.ports} - {*COUNTERS, "op_done", "op_index"}
    assert all(p.name.split("__")[0] in ("prog", "w", "x", "o", "clk", "rst") for p in meta.ports)
    with pytest.raises(ValueError, match="^build must be one of deploy, verify, not 'fast'$"):
        generate_engine(tmp_path / "e", config=SMALL, max_ops=2, build="fast")


def test_sized_engine_is_written_without_compiling_again(tmp_path, monkeypatch):
    """An engine sized (and the model compiled) before is written with the same bytes as sizing it here."""
    import rtl.engine.generate as gen

    model = small_model(np.random.default_rng(5), c0=1, h=4, w=4, c1=2, bits=4)
    a = generate_engine(tmp_path / "a", model=model, rows=2, cols=2)
    cfg, cm = size_engine(model, rows=2, cols=2)
    monkeypatch.setattr(gen, "size_engine", None)  # sizing (and so compiling) here would fail
    b = generate_engine(tmp_path / "b", model=model, config=cfg, compiled=cm)
    assert a.verilog.read_bytes() == b.verilog.read_bytes() and a.path.read_bytes() == b.path.read_bytes()
    with pytest.raises(ValueError, match="an engine already sized to the model takes config with compiled"):
        generate_engine(tmp_path / "c", model=model, config=cfg)


def test_needs_config_or_model(tmp_path):
    with pytest.raises(ValueError, match="give either config .explicit sizes. or model"):
        generate_engine(tmp_path)


def test_synth_compare_engine_makes_both_pe_kinds(tmp_path, monkeypatch):
    """compare() of an engine design synthesizes the adder engine and the all-multiplier engine of
    the same sizes (the synthesis itself is stubbed: the real run is the README's command)."""
    import rtl.synth as synth

    seen = []

    def fake(verilog, out_dir, **kw):
        meta = read_design(verilog.with_suffix(".json"))
        seen.append((verilog.stem, meta.config, meta.max_ops, kw["target"], kw["dsp"]))
        return {"design": verilog.stem, "config": meta.config.to_dict(), "block": "engine"}

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


@pytest.mark.synth
@pytest.mark.parametrize("tp", [1, 8])
def test_threshold_engine_has_no_multiplier(tmp_path, tp):
    """DESIGN §4b: an adder engine with threshold requant only (no multiplier unit) contains no multiplier, also
    with pixel tiles (the issue gate's entry count is shift-and-add); with the fixed-point form its requant unit
    has them."""
    names = {}
    for rq in (("threshold",), ("fixed",)):
        cfg = EngineConfig(rows=2, cols=2, bits=4, requant=rq, out_bits=4, act_words=(16, 16), weight_words=16,
                           max_k=32, pixel_tile=tp)
        d = generate_engine(tmp_path / rq[0], config=cfg, max_ops=4)
        names[rq[0]] = _multipliers(d.verilog, d.name)
    assert names["threshold"] == []
    assert names["fixed"] and all("rq." in n for n in names["fixed"]), names["fixed"]  # the requant unit's
