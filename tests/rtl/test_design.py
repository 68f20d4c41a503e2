"""rtl.design: the one design-metadata type, its writer and its strict reader."""

from __future__ import annotations

import copy
import json

import pytest

from hwsim.config import EngineConfig
from rtl.array import BlockConfig
from rtl.design import FORMAT_VERSION, METADATA_KEYS, Block, Port, read_design
from rtl.engine.generate import generate_engine
from rtl.study import generate_block

SMALL = EngineConfig(rows=2, cols=2, bits=4, max_k=32, act_words=(16, 16), weight_words=8)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return generate_engine(tmp_path_factory.mktemp("eng"), config=SMALL, max_ops=2)


def test_reader_reads_what_the_writer_wrote(tmp_path, engine):
    raw = json.loads(engine.path.read_text())
    assert tuple(sorted(raw)) == tuple(sorted(METADATA_KEYS))
    back = read_design(engine.path)
    assert back.to_json() == engine.to_json() == raw
    assert (back.name, back.block, back.verilog, back.path) == (engine.name, Block.ENGINE, engine.verilog, engine.path)
    assert back.ports[:2] == (Port("clk", "input", 1), Port("rst", "input", 1))
    assert sorted(back.payloads) == ["o", "prog", "w", "x"]
    study = generate_block(BlockConfig(rows=2, cols=2, bits=4, max_k=8), tmp_path)
    assert read_design(study.path).to_json() == json.loads(study.path.read_text()) == study.to_json()
    with pytest.raises(KeyError, match="has no port 'nope'"):
        back.port("nope")


def _rewrite(tmp_path, raw, edit):
    raw = copy.deepcopy(raw)
    edit(raw)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(extra=1), r"unknown metadata keys: extra$"),
    (lambda r: r.pop("tools"), r"missing metadata keys: tools$"),
    (lambda r: r.update(format_version=FORMAT_VERSION + 1), r"format_version 2 is not supported"),
    (lambda r: r.update(format="adderhw-int-model"), r"not a design metadata file of adderhw generate"),
    (lambda r: r.pop("format"), r"format None, expected 'adderhw-engine-design'"),
    (lambda r: r.update(block="accelerator"), r"block must be one of engine, array, pe, not 'accelerator'$"),
    (lambda r: r["latency"].update(fill=3), r"unknown latency keys: fill$"),
    (lambda r: r["model"] is None and r.update(model={"name": "m"}), r"missing model keys: path"),
    (lambda r: r["payloads"].pop("o"), r"missing payloads keys: o$"),
    (lambda r: r["streams"]["w"].update(last="w__last"), r"unknown streams.w keys: last$"),
    (lambda r: r["ports"][0].update(signed=False), r"unknown port keys: signed$"),
    (lambda r: r["streams"]["x"].update(valid="x_valid"), r"stream x's valid port 'x_valid' is not among the ports$"),
    (lambda r: r["payloads"]["o"][0].update(offset=1), r"o payload field o \(offset 1, 1 x 17 bits\) does not fit the 17-bit payload$"),
    (lambda r: r["payloads"]["prog"][0].pop("stride"), r"lacks keys: stride$"),
    (lambda r: r["config"].update(lanes=1), r"unknown engine config keys: lanes"),
])
def test_reader_is_strict(tmp_path, engine, edit, message):
    with pytest.raises(ValueError, match=message):
        read_design(_rewrite(tmp_path, json.loads(engine.path.read_text()), edit))


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not JSON"):
        read_design(bad)
    with pytest.raises(FileNotFoundError, match="design metadata not found"):
        read_design(tmp_path / "nope.json")
