"""pytest-xprocess-style suites run through ``pacsbox.xprocess`` (inner runs through pytester)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pacsbox.lifecycle import Instance, InstancePaths, list_instances
from tests.plugin.helpers import FAST, assert_no_orphan, gone, lines, run

# The managed process: prints its arguments, sleeps DELAY seconds, prints the ready line, waits.
STARTER = """
import os, sys, time
from pathlib import Path

import pytest
from pacsbox.xprocess import ProcessStarter

SCRIPT = ("import sys, time; print('args', sys.argv[1:], flush=True); time.sleep(float(sys.argv[1])); "
          "print('server is up', flush=True); time.sleep(300)")


class Starter(ProcessStarter):
    pattern = "server is up"
    args = [sys.executable, "-c", SCRIPT, os.environ.get("DELAY", "0"), os.environ.get("FLAVOUR", "plain")]
    timeout = 20

    def startup_check(self):
        # counts its calls, and answers only at the second: the start waits for it
        with open(Path(self.process.config.rootpath, "checks.txt"), "a") as record:
            record.write("check\\n")
        return len(Path(self.process.config.rootpath, "checks.txt").read_text().split()) % 2 == 0


@pytest.fixture
def server(xprocess):
    return xprocess.ensure("server", Starter)
"""

USE_SERVER = """
from pathlib import Path

def test_server(server, xprocess):
    pid, logpath = server
    info = xprocess.getinfo("server")
    assert info.isrunning() and info.pid == pid and info.logpath == logpath
    assert "server is up" in logpath.read_text()
    with open(Path(__file__).with_name("pids.txt"), "a") as record:
        record.write(f"{pid}\\n")
"""


def _recorded_pid(home: Path, name: str) -> int:
    instance = Instance.load(InstancePaths.of(name, home))
    assert instance is not None
    return instance.pid


def test_pattern_check_reuse_across_runs_restart_on_a_changed_argument_and_terminate(
        pytester: pytest.Pytester, pacsbox_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(STARTER)
    pytester.makepyfile(test_use=USE_SERVER)
    run(pytester).assert_outcomes(passed=1)
    assert lines(pytester.path / "checks.txt") == ["check", "check"]  # polled until true
    run(pytester).assert_outcomes(passed=1)  # the next run reuses it, without starting or checking again
    first, second = (int(pid) for pid in lines(pytester.path / "pids.txt"))
    assert first == second and len(lines(pytester.path / "checks.txt")) == 2
    log = InstancePaths.of("server", pacsbox_home).log_file.read_text()
    assert log.count("--- pacsbox lifecycle: starting command") == 1

    monkeypatch.setenv("FLAVOUR", "spicy")  # a changed argument: the process is restarted
    run(pytester).assert_outcomes(passed=1)
    third = int(lines(pytester.path / "pids.txt")[-1])
    assert third != first and gone(first)
    assert "args ['0', 'spicy']" in InstancePaths.of("server", pacsbox_home).log_file.read_text()

    pytester.makepyfile(test_use="""
def test_terminate(xprocess):
    info = xprocess.getinfo("server")
    assert info.isrunning()
    assert info.terminate() == 1
    assert not xprocess.getinfo("server").isrunning()
    assert info.terminate() == 0
    assert xprocess.getinfo("never-started").terminate() == 0
""")
    run(pytester).assert_outcomes(passed=1)
    assert gone(third)


def test_restart_true_and_the_old_callable_starter(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makepyfile(test_forms="""
import sys

WAITS = "import time; print('ready', flush=True); time.sleep(300)"

def test_forms(xprocess):
    first, _ = xprocess.ensure("old", lambda cwd: ("ready", [sys.executable, "-c", WAITS]))
    assert xprocess.ensure("old", lambda cwd: ("ready", [sys.executable, "-c", WAITS]))[0] == first
    again, _ = xprocess.ensure("old", lambda cwd: ("ready", [sys.executable, "-c", WAITS]), restart=True)
    assert again != first and xprocess.getinfo("old").terminate() == 1
""")
    run(pytester).assert_outcomes(passed=1)
    assert_no_orphan(pacsbox_home)


def test_start_failures_are_clear_and_fast_and_leave_nothing_running(pytester: pytest.Pytester,
                                                                     pacsbox_home: Path) -> None:
    pytester.makepyfile(test_failures="""
import sys, time
import pytest
from pacsbox.xprocess import ProcessStarter

def starter(script, *, pattern="never", timeout=120, max_read_lines=50):
    return type("Starter", (ProcessStarter,), {"pattern": pattern, "timeout": timeout,
                "max_read_lines": max_read_lines, "args": [sys.executable, "-c", script]})

def test_dies_at_start(xprocess):
    started = time.perf_counter()
    with pytest.raises(RuntimeError) as failure:
        xprocess.ensure("dies", starter("import sys; print('cannot bind'); sys.exit(4)"))
    assert time.perf_counter() - started < 10  # not the 120 s timeout
    assert "exited during start-up with status 4" in str(failure.value)
    assert str(failure.value).rstrip().endswith("cannot bind")

def test_pattern_not_in_the_first_lines(xprocess):
    noisy = "import time\\nfor n in range(5): print('line', n, flush=True)\\ntime.sleep(60)"
    with pytest.raises(RuntimeError, match="'never' was not found within the first 3 lines"):
        xprocess.ensure("noisy", starter(noisy, max_read_lines=3))

def test_pattern_never_appears(xprocess):
    with pytest.raises(TimeoutError, match="was not ready within 1 s"):
        xprocess.ensure("quiet", starter("import time; time.sleep(60)", timeout=1))

def test_missing_program(xprocess):
    class Missing(ProcessStarter):
        pattern = "x"
        args = ["no-such-program", "--serve"]
    with pytest.raises(RuntimeError, match="the command 'no-such-program' was not found on PATH"):
        xprocess.ensure("missing", Missing)

def test_unsupported_popen_keyword(xprocess):
    class Odd(ProcessStarter):
        pattern = "x"
        args = [sys.executable, "-c", "pass"]
        popen_kwargs = {"user": "nobody"}
    with pytest.raises(ValueError, match=r"popen_kwargs \\['user'\\] are not supported"):
        xprocess.ensure("odd", Odd)
""")
    run(pytester).assert_outcomes(passed=5)
    assert {status for _, _, status in list_instances(pacsbox_home)} <= {"stopped"}
    assert_no_orphan(pacsbox_home)


def test_four_xdist_workers_share_one_process(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytest.importorskip("xdist", reason="needs pytest-xdist: pip install -e '.[test]'")
    pytester.makeconftest(STARTER.replace("% 2 == 0", "> 0"))
    pytester.makepyfile(test_use="""
import time
from pathlib import Path
import pytest

@pytest.mark.parametrize("number", range(8))
def test_server(server, number):
    with open(Path(__file__).with_name("pids.txt"), "a") as record:
        record.write(f"{server[0]}\\n")
    time.sleep(0.2)  # keep every worker busy, so that all four ask for the process
""")
    run(pytester, "-n", "4", xdist=True).assert_outcomes(passed=8)
    pids = lines(pytester.path / "pids.txt")
    assert len(pids) == 8 and len(set(pids)) == 1
    log = InstancePaths.of("server", pacsbox_home).log_file.read_text()
    # one start, one ready line (the log's header quotes the script, hence the newlines)
    assert log.count("--- pacsbox lifecycle: starting command") == 1 and log.count("\nserver is up\n") == 1


def test_xshow_and_xkill(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makeconftest(STARTER)
    pytester.makepyfile(test_use=USE_SERVER)
    run(pytester).assert_outcomes(passed=1)
    pid = _recorded_pid(pacsbox_home, "server")
    logpath = InstancePaths.of("server", pacsbox_home).log_file
    shown = run(pytester, "--xshow")
    assert shown.ret == 0
    shown.stdout.fnmatch_lines([f"{pid} server LIVE {logpath}"])
    killed = run(pytester, "--xkill")
    assert killed.ret == 0
    killed.stdout.fnmatch_lines([f"{pid} server TERMINATED"])
    assert gone(pid)
    run(pytester, "--xshow").stdout.fnmatch_lines([f"None server DEAD {logpath}"])


def test_a_failing_test_shows_what_the_process_logged(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makeconftest(STARTER.replace("% 2 == 0", "> 0"))
    pytester.makepyfile(test_use="def test_fails(server):\n    assert False\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- server log -*", "*server is up*"])


def test_ctrl_c_during_start_leaves_no_process(pytester: pytest.Pytester, pacsbox_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(STARTER.replace("% 2 == 0", "> 0"))
    pytester.makepyfile(test_use=USE_SERVER)
    monkeypatch.setenv("DELAY", "300")  # the ready line never comes in time
    inner = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, "-p", "no:xdist"], cwd=pytester.path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(), text=True)
    paths = InstancePaths.of("server", pacsbox_home)
    try:
        deadline = time.monotonic() + 60
        while (recorded := Instance.load(paths)) is None or "\nargs ['300'" not in paths.log_file.read_text():
            assert inner.poll() is None and time.monotonic() < deadline, inner.communicate()
            time.sleep(0.02)
        family = [recorded.pid, *(child.pid for child in psutil.Process(recorded.pid).children(recursive=True))]
        inner.send_signal(signal.SIGINT)
        output, _ = inner.communicate(timeout=60)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.communicate()
    assert inner.returncode == pytest.ExitCode.INTERRUPTED, output
    assert len(family) == 2 and all(gone(pid) for pid in family)
    assert Instance.load(paths) is None
    assert_no_orphan(pacsbox_home)


@pytest.fixture(scope="module")
def real_xprocess(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest-xprocess 1.0.2 installed into a folder of its own (put on PYTHONPATH by the tests using it)."""
    target = tmp_path_factory.mktemp("real-xprocess")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                                "pytest-xprocess==1.0.2"], capture_output=True, text=True, timeout=180)
    if installed.returncode != 0:
        pytest.skip(f"pytest-xprocess could not be installed (offline?): {installed.stderr[-500:]}")
    return target


WHICH_PLUGIN = """
def test_which(xprocess, request):
    print("FIXTURE", type(xprocess).__module__)
    print("DROP-IN REGISTERED", request.config.pluginmanager.get_plugin("pacsbox.xprocess") is not None)
"""


def test_no_clash_with_pytest_xprocess_installed(pytester: pytest.Pytester, pacsbox_home: Path,
                                                 real_xprocess: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(real_xprocess),
                                                                   os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_which=WHICH_PLUGIN)
    # pytest-xprocess's own fixture needs the cache; no duplicate --xkill/--xshow: the drop-in stands aside
    slow_plugins = ("-p", "no:hypothesispytest", "-p", "no:xdist")
    theirs = pytester.runpytest_subprocess(*slow_plugins, "-s", timeout=120)
    theirs.assert_outcomes(passed=1)
    theirs.stdout.fnmatch_lines(["*FIXTURE xprocess.xprocess", "DROP-IN REGISTERED False"])
    # disabled with -p no:xprocess, it leaves the place to the drop-in
    ours = pytester.runpytest_subprocess(*slow_plugins, "-s", "-p", "no:xprocess", timeout=120)
    ours.assert_outcomes(passed=1)
    ours.stdout.fnmatch_lines(["*FIXTURE pacsbox.xprocess", "DROP-IN REGISTERED True"])
    assert pytester.runpytest_subprocess(*slow_plugins, "-p", "no:xprocess", "--xshow", timeout=120).ret == 0


def test_explicit_opt_in_without_plugin_autoload(pytester: pytest.Pytester, pacsbox_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_which=WHICH_PLUGIN)
    result = pytester.runpytest_subprocess("-s", "-p", "pacsbox.xprocess", timeout=120)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*FIXTURE pacsbox.xprocess", "DROP-IN REGISTERED True"])


def test_ctrl_c_during_a_test_stops_only_terminate_on_interrupt_processes(
        pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makepyfile(test_wait="""
import sys, time
from pathlib import Path
from pacsbox.xprocess import ProcessStarter

class Kept(ProcessStarter):
    pattern = "up"
    args = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"]

class Stopped(Kept):
    terminate_on_interrupt = True

def test_wait(xprocess):
    kept, _ = xprocess.ensure("kept", Kept)
    stopped, _ = xprocess.ensure("stopped", Stopped)
    Path(__file__).with_name("pids.txt").write_text(f"{kept} {stopped}")
    time.sleep(120)
""")
    inner = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, "-p", "no:xdist"], cwd=pytester.path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(), text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "pids.txt").exists():
            assert inner.poll() is None and time.monotonic() < deadline, inner.communicate()
            time.sleep(0.02)
        kept, stopped = (int(pid) for pid in (pytester.path / "pids.txt").read_text().split())
        inner.send_signal(signal.SIGINT)
        output, _ = inner.communicate(timeout=60)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.communicate()
    assert inner.returncode == pytest.ExitCode.INTERRUPTED, output
    assert gone(stopped) and not gone(kept)
    assert {name: status for name, _, status in list_instances(pacsbox_home)} == {"kept": "running",
                                                                                  "stopped": "stopped"}
