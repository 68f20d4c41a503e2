"""quant.base.retired: the deprecated --dataflow flag, one meaning in every command."""

import argparse

import pytest

from quant.base.retired import RetiredDesign, add_dataflow_flag, check_dataflow


def test_flag_is_hidden_and_parses():
    p = argparse.ArgumentParser()
    add_dataflow_flag(p)
    assert "--dataflow" not in p.format_help()
    assert p.parse_args(["--dataflow", "cp"]).dataflow == "cp" and p.parse_args([]).dataflow is None


def test_cp_is_deprecated_os_refused_none_silent(capsys):
    check_dataflow("verify", None)
    assert capsys.readouterr().err == ""
    check_dataflow("verify", "cp")
    assert capsys.readouterr().err == "verify: --dataflow cp is deprecated: the network engine is the only design\n"
    with pytest.raises(RetiredDesign, match=r"^--dataflow os: the v1 output-stationary core is retired"):
        check_dataflow("verify", "os")
