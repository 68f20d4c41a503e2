"""Verilog emission: deterministic bytes, metadata that matches the Verilog, lint; the strict metadata reader."""

import copy
import json
import re
import shutil
import subprocess

import pytest

from hwsim.config import ArrayConfig
from rtl.generate import BLOCKS, FORMAT_VERSION, STREAMS, design_name, generate, read_metadata
from rtl.layout import Payload, cfg_layout
from scripts.cli import main

CFG = ArrayConfig(rows=2, cols=3, pe="adder", bits=4, max_k=16)


def _verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    """name -> (direction, width) from the top module's port declarations."""
    body = text.split(f"module {top}(", 1)[1].split("endmodule", 1)[0]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return ports


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("pe,requant", [("adder", "fixed"), ("mult", "threshold")])
def test_metadata_matches_verilog(tmp_path, block, pe, requant):
    cfg = CFG.replace(pe=pe, requant=requant)
    v, j = generate(cfg, tmp_path, block=block)
    meta = json.loads(j.read_text())
    assert v.name == f"{meta['name']}.v" and meta["top"] == meta["name"]
    assert meta["format_version"] == FORMAT_VERSION and meta["block"] == block
    assert ArrayConfig.from_dict(meta["config"]) == cfg
    assert meta["acc_bits"] == cfg.acc_bits and meta["latency"]["requant"] == cfg.requant_latency
    text = v.read_text()
    assert "timescale" not in text
    ports = _verilog_ports(text, meta["top"])
    assert ports == {p["name"]: (p["direction"], p["width"]) for p in meta["ports"]}
    if block == "accelerator":
        for s, spec in meta["streams"].items():
            width = ports[spec["payload"]][1]
            for f in meta["payloads"][s]:
                n = 1
                for d in f["shape"]:
                    n *= d
                assert f["offset"] + (n - 1) * f["stride"] + f["width"] <= width
            last = max(meta["payloads"][s], key=lambda f: f["offset"])
            n = 1
            for d in last["shape"]:
                n *= d
            assert last["offset"] + n * last["stride"] == width  # no gaps at the end
        assert ports["o__valid"] == ("output", 1) and ports["cfg__ready"] == ("output", 1)


def test_output_is_deterministic(tmp_path):
    a = generate(CFG, tmp_path / "a")
    b = generate(CFG, tmp_path / "b")
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_names():
    assert design_name(ArrayConfig(rows=4, cols=4, bits=8)) == "acc_adder_r4c4_b8_k4096_fixed"
    cfg = ArrayConfig(rows=2, cols=8, pe="mult", bits=6, max_k=100, out_bits=9, mult_bits=12)
    assert design_name(cfg) == "acc_mult_r2c8_b6_k100_fixed_o9_m12"
    assert design_name(cfg, block="pe") == "pe_mult_b6_k100"
    assert design_name(CFG, block="array", form="mux") == "array_adder_r2c3_b4_k16_mux"
    assert design_name(CFG, mutation="acc_minus_one") == "acc_adder_r2c3_b4_k16_fixed_mut_acc_minus_one"
    with pytest.raises(ValueError, match="^block must be one of accelerator, array, pe, not 'top'$"):
        design_name(CFG, block="top")


def test_mutation_changes_only_the_hardware(tmp_path):
    v0, j0 = generate(CFG, tmp_path)
    v1, j1 = generate(CFG, tmp_path, mutation="acc_minus_one")
    m0, m1 = json.loads(j0.read_text()), json.loads(j1.read_text())
    assert m1["mutation"] == "acc_minus_one" and m1["acc_bits"] == m0["acc_bits"]
    assert m1["payloads"] == m0["payloads"]
    assert v1.read_text() != v0.read_text().replace(m0["name"], m1["name"])
    with pytest.raises(ValueError, match="^mutation must be one of"):
        generate(CFG, tmp_path, mutation="flip")
    with pytest.raises(ValueError, match="^mutations apply to the accelerator block only$"):
        generate(CFG, tmp_path, block="pe", mutation="acc_minus_one")


def test_iverilog_parses(tmp_path):
    exe = shutil.which("iverilog")
    assert exe, "iverilog is part of the toolchain (apt-get install iverilog)"
    for block in BLOCKS:
        v, _ = generate(CFG.replace(requant="threshold"), tmp_path, block=block)
        res = subprocess.run([exe, "-g2012", "-o", str(tmp_path / "a.out"), str(v)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("pe,requant", [("adder", "fixed"), ("mult", "threshold")])
def test_verilator_lint_has_no_errors(tmp_path, pe, requant):
    from verification.toolchain import ensure_verilator

    root = ensure_verilator()
    v, _ = generate(CFG.replace(pe=pe, requant=requant), tmp_path)
    res = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wno-fatal", str(v)],
                         capture_output=True, text=True, cwd=tmp_path)
    text = res.stdout + res.stderr
    errors = [ln for ln in text.splitlines() if ln.startswith("%Error")]
    warnings = [ln for ln in text.splitlines() if ln.startswith("%Warning")]
    print(f"verilator lint: {len(errors)} errors, {len(warnings)} warnings")
    assert res.returncode == 0 and not errors, text
    assert len(warnings) < 50


def test_cli_generate(tmp_path, capsys):
    out = tmp_path / "gen"
    rc = main(["generate", "--rows", "2", "--cols", "3", "--bits", "4", "--pe", "adder",
               "--max-k", "16", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "acc_adder_r2c3_b4_k16_fixed.v"),
                       str(out / "acc_adder_r2c3_b4_k16_fixed.json")]
    assert (out / "acc_adder_r2c3_b4_k16_fixed.v").read_bytes() == generate(CFG, tmp_path / "b")[0].read_bytes()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rows", "0"], "rows must be a positive integer, not 0"),
        (["--bits", "17"], "bits must be an integer in 2..16, not 17"),
        (["--requant", "threshold", "--bits", "9"], "bits must be at most 8 in threshold mode"),
        (["--max-k", "0"], "max_k must be a positive integer, not 0"),
        # issue 17 defect 6: --rows 1000 grew memory without bound before failing
        (["--rows", "1000"], "rows must be at most 256, not 1000"),
        (["--rows", "128", "--cols", "64"], "rows x cols must be at most 4096 PEs, not 128x64 = 8192"),
        (["--max-k", str(1 << 30)], "max_k must be at most 1048576"),
    ],
)
def test_cli_generate_errors(tmp_path, capsys, args, message):
    base = {"--rows": "2", "--cols": "2", "--bits": "4"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = ["generate", "--pe", "adder", "-o", str(tmp_path / "g")]
    for k, v in base.items():
        argv += [k, v]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adderhw generate: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "g").exists()


def test_cli_generate_into_a_file_fails(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["generate", "--rows", "1", "--cols", "1", "--bits", "4", "--pe", "adder",
                 "-o", str(f)]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("block", BLOCKS)
def test_reader_reads_what_the_writer_wrote(tmp_path, block):
    cfg = CFG.replace(pe="mult", requant="threshold")
    v, j = generate(cfg, tmp_path, block=block)
    m = read_metadata(j)
    assert (m.config, m.block, m.name, m.verilog, m.path) == (cfg, block, v.stem, v, j)
    assert m.acc_bits == cfg.acc_bits and m.latency["requant"] == cfg.requant_latency
    assert m.ports["clk"] == {"name": "clk", "direction": "input", "width": 1}
    if block != "accelerator":
        assert m.layouts == {}
        return
    assert list(m.layouts) == list(STREAMS)
    assert m.cfg.width == m.ports["cfg__payload"]["width"]
    assert m.cfg.fields == Payload.of(cfg_layout(cfg)).fields
    assert (m.w.elements, m.x.elements, m.o.elements) == (cfg.rows, cfg.cols, cfg.rows)
    fb = m.field_bits()
    assert (fb["k"], fb["thr"], fb["thr_signed"]) == (cfg.max_k.bit_length(), cfg.acc_bits + 1, True)


def _rewrite(tmp_path, raw, edit):
    raw = copy.deepcopy(raw)
    edit(raw)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw))
    return path


def test_reader_is_strict(tmp_path):
    _, j = generate(CFG, tmp_path)
    raw = json.loads(j.read_text())
    cases = [
        (lambda r: r.update(extra=1), r"unknown metadata keys: extra$"),
        (lambda r: r.pop("tools"), r"missing metadata keys: tools$"),
        (lambda r: r.update(format_version=2), r"format_version 2 is not supported \(this adderhw reads version 1\)$"),
        (lambda r: r.pop("format_version"), r"format_version None is not supported"),
        (lambda r: r.update(format="adderhw-engine-design"), r"not a v1 core design \(format 'adderhw-engine-design'\)"),
        (lambda r: r.update(block="top"), r"block must be one of accelerator, array, pe, not 'top'$"),
        (lambda r: r.pop("payloads"), r"missing metadata keys: payloads$"),
        (lambda r: r["latency"].update(fill=3), r"unknown latency keys: fill$"),
        (lambda r: r["payloads"].pop("o"), r"missing payloads keys: o$"),
        (lambda r: r["streams"]["w"].update(last="w__last"), r"unknown streams.w keys: last$"),
        (lambda r: r["ports"][0].update(signed=False), r"unknown port keys: signed$"),
        (lambda r: r["streams"]["x"].update(valid="x_valid"), r"stream x's valid port 'x_valid' is not among the ports$"),
        (lambda r: r["payloads"]["w"][0].update(offset=1), r"w payload field w \(offset 1, 2 x 4 bits\) does not fit the 8-bit payload$"),
        (lambda r: r["payloads"]["cfg"][0].pop("stride"), r"lacks keys: stride$"),
    ]
    for edit, msg in cases:
        with pytest.raises(ValueError, match=msg):
            read_metadata(_rewrite(tmp_path, raw, edit))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not JSON"):
        read_metadata(bad)
    with pytest.raises(FileNotFoundError, match="design metadata not found"):
        read_metadata(tmp_path / "nope.json")
