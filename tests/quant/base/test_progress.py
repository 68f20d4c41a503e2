"""quant.base.progress: the live line of a long step, on a terminal only."""

import io
import time

from quant.base.progress import progress


def test_progress_line_names_the_step_its_time_and_its_log():
    out = io.StringIO()
    with progress("yosys: synthesising x", log="work/yosys.log", stream=out, interval=0.01, force=True):
        time.sleep(0.05)
    text = out.getvalue()
    assert text.startswith("\ryosys: synthesising x: 0 s (log work/yosys.log)") and text.endswith("\n")
    assert text.count("\r") >= 3  # rewritten in place while it runs


def test_progress_writes_nothing_off_a_terminal():
    out = io.StringIO()  # isatty() is False, as for a pipe or the tests' captured stderr
    with progress("eval", stream=out, interval=0.01):
        time.sleep(0.03)
    assert out.getvalue() == ""
