"""The verification build is the deployable engine plus observers only (rtl.engine.top, Build).

Both builds are emitted (``generate_engine``) and read by yosys, flattened
and their memories mapped; in the verification build the observer ports
(the counters, ``op_done``, ``op_index``) stop being ports and
``opt_clean -purge`` removes the logic that drove only them.  What is left
must be the deployable netlist: the same cell counts (``stat``) and a formal
equivalence proof (``equiv_make``/``equiv_simple``/``equiv_induct``, every
``$equiv`` proven).  The same check of a verification build with a wrong
address generator fails, so the proof can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hwsim.config import EngineConfig
from rtl.engine.generate import generate_engine
from rtl.engine.top import COUNTERS, Build

CFG = EngineConfig(rows=2, cols=2, bits=4, max_k=32, act_words=(4, 4), weight_words=2, mult_rows=1,
                   requant=("fixed", "threshold"))
OBSERVERS = (*COUNTERS, "op_done", "op_index")


def _flat(verilog, top: str, as_name: str, drop=()) -> str:
    ports = " ".join(f"{top}/{p}" for p in drop)
    return "\n".join([
        f"read_verilog {verilog}", f"hierarchy -top {top}", "proc; flatten; memory; opt_clean",
        *([f"delete -port {ports}", "opt_clean -purge"] if drop else []),
        f"rename {top} {as_name}", f"design -stash {as_name}",
    ])


def _deploy_plus_observers(tmp_path, *, mutation=None) -> tuple[int, str, dict]:
    """yosys's verdict (exit status, ``equiv_status`` text, ``stat``'s cell table per module)."""
    from rtl.design import write_design
    from rtl.engine.generate import engine_design
    from rtl.engine.top import Engine

    yosys = shutil.which("yosys")
    assert yosys, "yosys (a Debian package make test's set-up installs) is missing"
    gold = generate_engine(tmp_path / "deploy", config=CFG, max_ops=2, name="gold_top")
    eng = Engine(config=CFG, max_ops=2, build=Build.VERIFY, mutation=mutation)
    gate = write_design(engine_design(eng, name="gate_top"), eng, tmp_path / "verify")
    script = tmp_path / "proof.ys"
    script.write_text("\n".join([
        _flat(gold.verilog, "gold_top", "gold"),
        _flat(gate.verilog, "gate_top", "gate", drop=OBSERVERS),
        "design -copy-from gold -as gold gold", "design -copy-from gate -as gate gate",
        f"tee -o {tmp_path / 'stat.txt'} stat",
        "equiv_make gold gate equiv", "hierarchy -top equiv", "equiv_simple -seq 2", "equiv_induct",
        f"tee -o {tmp_path / 'equiv.txt'} equiv_status -assert", "",
    ]))
    run = subprocess.run([yosys, "-q", "-s", str(script)], capture_output=True, text=True)
    stat = (tmp_path / "stat.txt").read_text()
    tables = dict(re.findall(r"=== (\w+) ===.*?(Number of cells:.*?)(?=\n\n)", stat, re.S))  # cells per module
    equiv = (tmp_path / "equiv.txt").read_text() if (tmp_path / "equiv.txt").is_file() else run.stderr
    return run.returncode, equiv, tables


@pytest.mark.synth
def test_verify_build_is_deploy_plus_observers(tmp_path):
    rc, equiv, tables = _deploy_plus_observers(tmp_path)
    assert rc == 0, equiv
    assert "Equivalence successfully proven!" in equiv and " 0 are unproven" in equiv
    assert tables["gold"] == tables["gate"] and "$dff" in tables["gold"], tables


@pytest.mark.synth
def test_the_proof_fails_on_a_different_core(tmp_path):
    """A verification build whose core differs (the address generator's pad_edge mutation) is refused."""
    rc, equiv, _ = _deploy_plus_observers(tmp_path, mutation="pad_edge")
    assert rc != 0 and "Equivalence successfully proven!" not in equiv
