"""Ctrl-C during a run: pytest ends, and the server is either kept (registered, reused next time) or stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin.helpers import FAST, assert_no_orphan, gone, lines, only_instance, run, wait_for

WAIT_FOR_CTRL_C = """
import time
from pathlib import Path

def test_waits(pacsbox_server):
    Path(__file__).with_name("started.txt").write_text(str(pacsbox_server.pid))
    time.sleep(120)
"""

RECORD_PID = """
from pathlib import Path

def test_record(pacsbox_server):
    Path(__file__).with_name("pid.txt").write_text(str(pacsbox_server.pid))
"""


def _interrupt(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run the waiting test in a ``python -m pytest`` of its own, Ctrl-C it once the server is up; returns the
    server's PID and pytest's output."""
    pytester.makepyfile(test_wait=WAIT_FOR_CTRL_C)
    output = tmp_path / "output.txt"
    with open(output, "w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, "test_wait.py", *args], cwd=pytester.path,
                                   stdout=sink, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            pid = int(wait_for(pytester.path / "started.txt", process))
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == pytest.ExitCode.INTERRUPTED
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return pid, output.read_text()


def test_interrupted_run_keeps_the_server_for_the_next_run(pytester: pytest.Pytester, pacsbox_home: Path,
                                                            tmp_path: Path) -> None:
    pid, output = _interrupt(pytester, tmp_path)
    assert "KeyboardInterrupt" in output
    _, instance, status = only_instance(pacsbox_home)
    assert status == "running" and instance.pid == pid and instance.answers()
    assert_no_orphan(pacsbox_home)

    pytester.makepyfile(test_next=RECORD_PID)
    run(pytester, "test_next.py").assert_outcomes(passed=1)
    assert lines(pytester.path / "pid.txt") == [str(pid)]


def test_interrupted_run_with_stop_leaves_no_process(pytester: pytest.Pytester, pacsbox_home: Path,
                                                     tmp_path: Path) -> None:
    pid, _ = _interrupt(pytester, tmp_path, "--pacsbox-stop")
    assert gone(pid)
    assert only_instance(pacsbox_home)[2] == "stopped"
    assert_no_orphan(pacsbox_home)
