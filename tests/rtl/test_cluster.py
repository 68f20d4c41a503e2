"""rtl.cluster on a real local Ray (num_cpus=2, no dashboard): results equal the serial path's, a
worker killed by its PID is retried, Ctrl-C ends the run with the session shut down, and a
``--address`` that does not answer is one line within its timeout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtl.cluster import ClusterSpec, check_address, parse_address, run_tasks

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))  # cluster_tasks, by name, for Ray's workers too
import cluster_tasks  # noqa: E402

ray = pytest.importorskip("ray")


@pytest.mark.parametrize("bad", ["", "host", "host:", ":6379", "host:port", "host:0", "host:70000"])
def test_parse_address_refuses_malformed(bad):
    with pytest.raises(ValueError, match="--address must be HOST:PORT"):
        parse_address(bad)


def test_spec_validates():
    with pytest.raises(ValueError, match="--jobs"):
        ClusterSpec(jobs=0)
    with pytest.raises(ValueError, match="--address"):
        ClusterSpec(jobs=2, address="nowhere")
    assert ClusterSpec().serial and not ClusterSpec(jobs=2).serial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_that_refuses_is_one_line():
    with pytest.raises(ValueError, match=r"--address 127\.0\.0\.1:\d+: no Ray cluster answers within 2 s"):
        check_address(f"127.0.0.1:{_free_port()}", 2.0)


def test_silent_address_times_out():
    """Something accepts the connection and says nothing: refused after the stated timeout, not Ray's minutes."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        t0 = time.monotonic()
        with pytest.raises(ValueError, match="no Ray cluster answers within 1 s"):
            list(run_tasks(cluster_tasks.square, [(1,)],
                           ClusterSpec(jobs=2, address=f"127.0.0.1:{srv.getsockname()[1]}", connect_timeout_s=1.0)))
        assert time.monotonic() - t0 < 3


def test_address_that_does_not_answer_times_out():
    # a non-routable address: the connection neither succeeds nor is refused
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="--address 10.255.255.1:6379: (no Ray cluster answers within 1 s|answers, but no Ray cluster)"):
        list(run_tasks(cluster_tasks.square, [(1,)], ClusterSpec(jobs=2, address="10.255.255.1:6379",
                                                                connect_timeout_s=1.0)))
    assert time.monotonic() - t0 < 5


def test_serial_path_in_order():
    assert list(run_tasks(cluster_tasks.square, [(i,) for i in range(4)], ClusterSpec())) == \
        [(i, i * i) for i in range(4)]


@pytest.mark.slow
def test_local_ray_equals_serial_and_retries_a_killed_worker(tmp_path):
    args = [(i, str(tmp_path), 3.0 if i == 0 else 0.2) for i in range(4)]
    serial = dict(run_tasks(cluster_tasks.square, [(i,) for i in range(4)], ClusterSpec()))
    got = {}
    killed = None
    for i, result in run_tasks(cluster_tasks.slow_square, args, ClusterSpec(jobs=2, max_retries=2),
                               progress=False):
        got[i] = result
        if killed is None:  # task 0 sleeps 3 s: kill its worker while it does
            pid_file = tmp_path / "0.pid"
            deadline = time.monotonic() + 60
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            killed = int(pid_file.read_text())
            if not (tmp_path / "0.attempts").exists() or got.get(0) is not None:
                pytest.fail("task 0 ended before it could be killed")
            os.kill(killed, signal.SIGKILL)
    assert got == serial
    assert killed is not None and killed != os.getpid()
    assert int((tmp_path / "0.attempts").read_text()) == 2  # killed once, retried once


@pytest.mark.slow
def test_task_error_propagates():
    with pytest.raises(ValueError, match="task 1 refuses"):
        list(run_tasks(cluster_tasks.fail, [(1,)], ClusterSpec(jobs=2), progress=False))
    assert not ray.is_initialized()


@pytest.mark.slow
def test_ctrl_c_cancels_and_shuts_down(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import cluster_tasks
from rtl.cluster import ClusterSpec, run_tasks
import ray
try:
    for i, r in run_tasks(cluster_tasks.slow_square, [(i, {str(tmp_path)!r}, 60.0) for i in range(2)],
                          ClusterSpec(jobs=2), progress=False):
        print("done", i)
except KeyboardInterrupt:
    print("interrupted", ray.is_initialized(), flush=True)
    sys.exit(130)
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not ((tmp_path / "0.pid").exists() and (tmp_path / "1.pid").exists()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    workers = [int((tmp_path / f"{i}.pid").read_text()) for i in range(2)]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted False" in out and "done" not in out
    time.sleep(2)
    for pid in workers:  # the cancelled tasks' workers are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
