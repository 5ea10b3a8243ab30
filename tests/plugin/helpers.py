"""Helpers of the plugin tests: inner pytest runs, and the server processes found under a ``$PACSBOX_HOME``."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

# Plugins the inner runs do not need: loading hypothesis alone costs seconds per run on a busy 2-core machine.
# inner runs are scenarios written in order (test_1 uploads, test_2 finds it clean, ...): not shuffled by
# pytest-randomly, which shuffles the outer suite
FAST = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:anyio",
        "-p", "no:randomly")


def run(pytester: pytest.Pytester, *args: str, xdist: bool = False, timeout: float = 120) -> pytest.RunResult:
    """An inner pytest run in a subprocess (the plugin loads through its entry point, as for users); without
    xdist unless asked, which also checks that the plugin does not need it."""
    return pytester.runpytest_subprocess(*FAST, *(() if xdist else ("-p", "no:xdist")), *args, timeout=timeout)


def serve_processes(home: Path) -> list[psutil.Process]:
    """Every live server process (pacsbox or Orthanc) whose command line points into ``home``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(arg.startswith(str(home)) for arg in cmdline):
            found.append(process)
    return found


def recorded_pids(home: Path) -> set[int]:
    """PIDs in the state files under ``home`` (the warm-start template's record included)."""
    from pacsbox.lifecycle import list_instances
    from pacsbox.lifecycle.warm import template_record

    template = template_record(home)
    return {instance.pid for _, instance, _ in list_instances(home) if instance is not None} | (
        {int(template["pid"])} if template else set())


def assert_no_orphan(home: Path) -> None:
    """Every server process running out of ``home`` is one that a state file records."""
    orphans = [process.pid for process in serve_processes(home) if process.pid not in recorded_pids(home)]
    assert not orphans, f"server processes not recorded in any state file: {orphans}"


def only_instance(home: Path):
    """The single instance recorded under ``home``: (name, Instance or None, status)."""
    from pacsbox.lifecycle import list_instances

    rows = list_instances(home)
    assert len(rows) == 1, rows
    return rows[0]


def gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped by its parent counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(path: Path, process, timeout: float = 60) -> str:
    """The content of ``path`` once an inner test has written it; fails if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert process.poll() is None, f"the inner pytest ended early with status {process.returncode}"
        assert time.monotonic() < deadline, f"{path} was not written within {timeout} s"
        time.sleep(0.05)
    return path.read_text()


def lines(path: Path) -> list[str]:
    """Non-empty lines of a file the inner tests appended to."""
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
