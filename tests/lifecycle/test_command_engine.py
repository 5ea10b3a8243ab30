"""The ``command`` engine through ``pacsbox.lifecycle.ensure``: a tiny Python script as the managed process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from pacsbox.lifecycle import (
    InstanceError,
    InstancePaths,
    PatternNotFound,
    StartupFailed,
    StartupTimeout,
    ensure,
    list_instances,
    stop,
)
from pacsbox.lifecycle.engines import free_port
from tests.lifecycle.conftest import is_gone

# prints its arguments, then "ready", then waits; a second argument "child" also starts a grandchild
SCRIPT = """
import os, subprocess, sys, time
print("starting with", sys.argv[1:], "in", os.getcwd(), "FLAVOUR=" + os.environ.get("FLAVOUR", ""))
if "child" in sys.argv[1:]:
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("grandchild", grandchild.pid)
print("ready")
time.sleep(120)
"""


def script(*arguments: str) -> list[str]:
    return [sys.executable, "-c", SCRIPT, *arguments]


def only_live(home: Path) -> list[str]:
    return [name for name, instance, status in list_instances(home) if status != "stopped"]


def test_pattern_start_reuse_and_restart_on_a_changed_argument(home: Path) -> None:
    started = time.perf_counter()
    first = ensure("app", command=script("one"), ready="^ready$")
    assert time.perf_counter() - started < 10
    assert first.engine == "command" and first.status == "running" and first.is_alive()
    log = first.log_file.read_text()
    assert "starting with ['one']" in log and log.count("--- pacsbox lifecycle: starting command") == 1

    again = ensure("app", command=script("one"), ready="^ready$")
    assert (again.pid, again.created) == (first.pid, first.created)  # reused, not restarted

    changed = ensure("app", command=script("two"), ready="^ready$")
    assert changed.pid != first.pid and is_gone(first.pid)
    assert "starting with ['two']" in changed.log_file.read_text()

    flavoured = ensure("app", command=script("two"), ready="^ready$", env={"FLAVOUR": "mint"})
    assert flavoured.pid != changed.pid and "FLAVOUR=mint" in flavoured.log_file.read_text()
    fresh = ensure("app", command=script("two"), ready="^ready$", env={"FLAVOUR": "mint"}, fresh=True)
    assert fresh.pid != flavoured.pid
    assert stop("app") and is_gone(fresh.pid) and only_live(home) == []


def test_the_pattern_is_looked_for_in_the_new_process_output_only(home: Path) -> None:
    ensure("app", command=script("one"), ready="ready")
    stop("app")
    # the old run's "ready" is in the log, and the pattern is on the command line (and so in the log's header)
    with pytest.raises(StartupTimeout) as failure:
        ensure("app", command=[sys.executable, "-c", "import time; time.sleep(60)  # ready"], ready="ready",
               startup_timeout=1.5)
    assert isinstance(failure.value, TimeoutError)
    assert "was not ready within 1.5 s: the ready pattern (pattern 'ready') never came" in str(failure.value)
    assert only_live(home) == []


def test_working_directory_port_url_and_a_check(home: Path, tmp_path: Path) -> None:
    port = free_port()
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hi")
    checks = []

    def check() -> bool:
        checks.append(time.monotonic())
        return len(checks) >= 3

    web = ensure("web", command=[sys.executable, "-u", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                 cwd=served, ready={"pattern": "Serving HTTP", "port": port,
                                    "url": f"http://127.0.0.1:{port}/hello.txt", "check": check})
    assert len(checks) == 3 and web.answers() and web.data_dir == str(served)
    assert ensure("web", command=[sys.executable, "-u", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                  cwd=served, ready={"pattern": "Serving HTTP", "port": port,
                                     "url": f"http://127.0.0.1:{port}/hello.txt"}).pid == web.pid


def test_a_command_dying_at_start_is_reported_at_once_with_its_log(home: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(StartupFailed) as failure:
        ensure("dies", command=[sys.executable, "-c", "import sys; print('no config file'); sys.exit(3)"],
               ready="never", startup_timeout=60)
    assert time.perf_counter() - started < 5
    message = str(failure.value)
    assert "command instance 'dies' exited during start-up with status 3" in message
    assert message.rstrip().endswith("no config file")
    assert only_live(home) == []


def test_a_pattern_missing_from_the_first_lines_fails_before_the_timeout(home: Path) -> None:
    noisy = "import time\nfor n in range(10): print('line', n, flush=True)\ntime.sleep(60)"
    started = time.perf_counter()
    with pytest.raises(PatternNotFound, match=r"'never' was not found within the first 5 lines of output"):
        ensure("noisy", command=[sys.executable, "-c", noisy], ready={"pattern": "never", "max_read_lines": 5})
    assert time.perf_counter() - started < 10
    assert only_live(home) == []


def test_bad_input_fails_with_one_clear_message_and_leaves_nothing_running(home: Path, tmp_path: Path,
                                                                           monkeypatch) -> None:
    with pytest.raises(InstanceError, match=r"the command 'no-such-program' was not found on PATH"):
        ensure("bad", command=["no-such-program", "--flag"], ready="x")
    with pytest.raises(InstanceError, match=r"the command './missing.sh' does not exist or is not executable"):
        ensure("bad", command=["./missing.sh"], ready="x")
    with pytest.raises(ValueError, match=r"the ready pattern 'a\(' is not a valid regular expression"):
        ensure("bad", command=script(), ready="a(")
    with pytest.raises(InstanceError, match=r"the working directory .*nowhere of instance 'bad' does not exist"):
        ensure("bad", command=script(), ready="ready", cwd=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"config, data_dir, http_port and dicom_port are pacsbox"):
        ensure("bad", command=script(), http_port=8042)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PACSBOX_HOME", str(blocker / "home"))  # root ignores permissions: a file as folder
    with pytest.raises(InstanceError, match=r"cannot write the state folder and log of instance 'bad' in "
                                            r".*a-file/home/instances/bad: .*; set PACSBOX_HOME to a writable"):
        ensure("bad", command=script(), ready="ready")
    assert only_live(home) == []


def test_tree_kill_and_stale_pid(home: Path) -> None:
    app = ensure("tree", command=script("child"), ready="^ready$")
    grandchild = int(next(line.split()[1] for line in app.log_file.read_text().splitlines()
                          if line.startswith("grandchild")))
    family = [app.pid, *(child.pid for child in psutil.Process(app.pid).children(recursive=True))]
    assert grandchild in family and len(family) == 3  # supervisor, script, grandchild
    assert stop("tree") and all(is_gone(pid) for pid in family)

    # a record whose process is gone (a reboot, a kill -9) is stale: ensure starts anew
    again = ensure("tree", command=script(), ready="^ready$")
    psutil.Process(again.pid).kill()
    psutil.Process(again.pid).wait(5)
    assert [status for _, _, status in list_instances(home)] == ["stale"]
    third = ensure("tree", command=script(), ready="^ready$")
    assert third.pid != again.pid and third.is_alive()


def test_the_log_is_capped_and_rotated_while_the_command_runs(home: Path) -> None:
    from pacsbox.lifecycle.command import ensure_command

    # ready first, then 300 kB in 1 kB lines: three times the cap of 100 kB
    chatty = ("import time\nprint('ready', flush=True)\ntime.sleep(0.5)\n"
              "for n in range(300): print('x' * 1023, flush=True)\ntime.sleep(60)")
    app = ensure_command("chatty", [sys.executable, "-c", chatty], ready="ready", max_log_bytes=100_000,
                         startup_timeout=10)
    log = InstancePaths.of("chatty", home).log_file
    deadline = time.monotonic() + 20
    while not log.with_name("server.log.2").exists():
        assert time.monotonic() < deadline, "the log was not rotated twice"
        time.sleep(0.05)
    assert app.is_alive()
    assert all(path.stat().st_size <= 100_000 + 65_536 for path in log.parent.glob("server.log*"))
    assert not log.with_name("server.log.3").exists()


def test_a_pattern_written_after_a_rotation_is_still_seen(home: Path) -> None:
    from pacsbox.lifecycle.command import ensure_command

    late = "import time\nfor n in range(150): print('x' * 1023, flush=True)\nprint('ready', flush=True)\ntime.sleep(60)"
    app = ensure_command("late", [sys.executable, "-c", late], ready="^ready", max_log_bytes=100_000,
                         startup_timeout=10)
    assert app.is_alive() and InstancePaths.of("late", home).log_file.with_name("server.log.1").exists()


def test_archive_actions_say_a_command_has_no_archive(home: Path) -> None:
    app = ensure("app", command=script(), ready="^ready$")
    for action, arguments in (("reset", ()), ("snapshot", ("one",)), ("restore", ("one",))):
        with pytest.raises(InstanceError, match=f"instance 'app' runs a command, which has no archive: {action}"):
            getattr(app, action)(*arguments)
    assert app.is_alive()
