"""``pacsbox start NAME --engine command ... -- CMD ARGS``: the command engine from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from pacsbox.lifecycle import Instance, InstancePaths
from tests.lifecycle.conftest import is_gone
from tests.lifecycle.test_cli import pacsbox

WAITS = "import sys, time; print('args', sys.argv[1:]); print('listening'); time.sleep(120)"


def processes_in(home: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is under ``home``."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        places = [*(process.info["cmdline"] or []), process.info["cwd"] or ""]
        if any(place.startswith(str(home)) for place in places):
            found.append(process)
    return found


def test_start_reuse_restart_on_a_changed_argument_status_and_stop(home: Path) -> None:
    started = json.loads(pacsbox(home, "start", "app", "--engine", "command", "--ready-pattern", "^listening",
                                 "--env", "MODE=test", "--json", "--", sys.executable, "-c", WAITS, "one").stdout)
    assert started["how"] == "started" and started["engine"] == "command"
    log = Path(started["log_file"]).read_text()
    assert "args ['one']" in log and "listening" in log
    again = pacsbox(home, "start", "app", "--engine", "command", "--ready-pattern", "^listening",
                    "--env", "MODE=test", "--", sys.executable, "-c", WAITS, "one").stdout
    assert again.startswith("pacsbox instance 'app' reused in ") and f"pid {started['pid']}" in again
    assert "ready on pattern '^listening'" in again

    changed = json.loads(pacsbox(home, "start", "app", "--engine", "command", "--ready-pattern", "^listening",
                                 "--env", "MODE=test", "--json", "--", sys.executable, "-c", WAITS, "two").stdout)
    assert changed["how"] == "started" and changed["pid"] != started["pid"] and is_gone(started["pid"])

    listed = json.loads(pacsbox(home, "ls", "--json").stdout)
    assert [(row["name"], row["engine"], row["status"]) for row in listed] == [("app", "command", "running")]
    assert "stopped 'app'" in pacsbox(home, "stop", "app").stdout
    assert is_gone(changed["pid"]) and processes_in(home) == []


def test_a_crash_at_start_fails_at_once_with_the_log(home: Path) -> None:
    started = time.perf_counter()
    result = pacsbox(home, "start", "crash", "--engine", "command", "--ready-pattern", "never", "--",
                     sys.executable, "-c", "import sys; sys.exit('cannot open database')", check=1)
    assert time.perf_counter() - started < 10
    assert "command instance 'crash' exited during start-up with status 1" in result.stderr
    assert result.stderr.rstrip().endswith("cannot open database")
    assert processes_in(home) == []


def test_bad_input_gives_one_clear_error_and_leaves_nothing_running(home: Path, tmp_path: Path) -> None:
    missing = pacsbox(home, "start", "bad", "--engine", "command", "--ready-pattern", "x", "--",
                      "no-such-program", "--flag", check=1)
    assert "Error: the command 'no-such-program' was not found on PATH" in missing.stderr

    never = pacsbox(home, "start", "bad", "--engine", "command", "--ready-pattern", "never-printed",
                    "--startup-timeout", "1", "--", sys.executable, "-c", WAITS, check=1)
    assert "command instance 'bad' was not ready within 1 s: the ready pattern (pattern 'never-printed')" \
           in never.stderr
    assert f"; log {home / 'instances' / 'bad' / 'server.log'}:" in never.stderr  # and its tail

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = pacsbox(blocker / "home", "start", "bad", "--engine", "command", "--ready-pattern", "x", "--",
                         sys.executable, "-c", WAITS, check=1)
    assert "set PACSBOX_HOME to a writable folder" in unwritable.stderr

    usage = pacsbox(home, "start", "bad", "--engine", "command", check=2)
    assert "--engine command needs the program after `--`" in usage.stderr
    assert "--ready-port: only with --engine command" in pacsbox(home, "start", "x", "--ready-port", "80",
                                                                 check=2).stderr
    assert processes_in(home) == []


def test_ctrl_c_during_start_leaves_no_process(home: Path) -> None:
    command = [sys.executable, "-m", "pacsbox", "start", "slow", "--engine", "command", "--ready-pattern", "never",
               "--", sys.executable, "-c", WAITS]
    starter = subprocess.Popen(command, env={**os.environ, "PACSBOX_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    paths = InstancePaths.of("slow", home)
    try:
        deadline = time.monotonic() + 30
        # the script's own "listening" line (the log's header quotes the command, "listening" included)
        while (recorded := Instance.load(paths)) is None or "\nlistening\n" not in paths.log_file.read_text():
            assert starter.poll() is None and time.monotonic() < deadline, starter.communicate()
            time.sleep(0.02)
        family = [recorded.pid, *(child.pid for child in psutil.Process(recorded.pid).children(recursive=True))]
        assert len(family) == 2  # the supervisor and the script
        starter.send_signal(signal.SIGINT)
        _, errors = starter.communicate(timeout=30)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.communicate()
    assert starter.returncode == 1 and "Aborted" in errors
    assert all(is_gone(pid) for pid in family) and processes_in(home) == []
    assert Instance.load(paths) is None
