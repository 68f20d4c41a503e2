"""hwsim.synthfile: the synth.json writer and its strict reader."""

from __future__ import annotations

import json

import pytest

from hwsim.synthfile import RESOURCE_KEYS, SYNTH_KEYS, SynthResult, read_synth_json, write_synth_json


def _record(design="acc_adder", lc=100):
    rec = dict.fromkeys(SYNTH_KEYS)
    rec.update({"target": "ice40-up5k", "design": design, "block": "array", "dsp": False,
                "config": {"rows": 4, "cols": 4, "pe": "adder", "bits": 8}, "tools": {"yosys": "0.23"},
                "freq_target_mhz": 100.0, "resources": dict.fromkeys(RESOURCE_KEYS, 0) | {"lc": lc},
                "fmax_mhz": 80.0, "fits": True, "cells": {}, "lc_method": "test", "seconds": {}})
    return rec


def test_round_trip_of_one_object_and_a_list(tmp_path):
    one, two = _record(), _record("acc_mult", 300)
    write_synth_json(tmp_path / "synth.json", one)
    text = (tmp_path / "synth.json").read_text()
    assert text == json.dumps(one, indent=1, sort_keys=True) + "\n"
    (got,) = read_synth_json(tmp_path / "synth.json")
    assert isinstance(got, SynthResult) and got.source == "synth.json:acc_adder" and got.resources["lc"] == 100
    write_synth_json(tmp_path / "compare.json", [one, two])
    assert [r.design for r in read_synth_json(tmp_path / "compare.json")] == ["acc_adder", "acc_mult"]


@pytest.mark.parametrize("content, msg", [
    ({"resources": {}}, r"not an adderhw synth JSON \(missing target, design"),
    ([dict(_record(), extra=1)], r"entry 0: not an adderhw synth JSON \(unknown extra\)"),
    ([dict(_record(), resources={"lc": 1})], "resources must have exactly lc, lut, ff"),
    ([3], "entry 0: not a synthesis result object"),
])
def test_the_reader_is_strict(tmp_path, content, msg):
    p = tmp_path / "synth.json"
    write_synth_json(p, content)
    with pytest.raises(ValueError, match=msg):
        read_synth_json(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a synthesis JSON file"):
        read_synth_json(p)


def test_critical_path_is_read_and_files_without_it_still_read(tmp_path):
    from hwsim.synthfile import PATH_KEYS

    new = _record() | {"critical_path": {"from": "dut.a_FF", "to": "dut.b_FF", "delay_ns": 9.5, "logic_ns": 4.0,
                                         "routing_ns": 5.5, "clock": "posedge clk -> posedge clk"}}
    write_synth_json(tmp_path / "new.json", new)
    (got,) = read_synth_json(tmp_path / "new.json")
    assert got.critical_path["from"] == "dut.a_FF" and got.critical_path["delay_ns"] == 9.5
    old = _record()
    del old["critical_path"]  # written before the key existed
    write_synth_json(tmp_path / "old.json", old)
    (got,) = read_synth_json(tmp_path / "old.json")
    assert got.critical_path is None and got.resources["lc"] == 100
    bad = _record() | {"critical_path": {"from": "x"}}
    write_synth_json(tmp_path / "bad.json", bad)
    with pytest.raises(ValueError, match="critical_path must be null or have exactly " + ", ".join(PATH_KEYS)):
        read_synth_json(tmp_path / "bad.json")
