"""Separate runs reuse the server; ``--pacsbox-fresh``, ``--pacsbox-show`` and ``--pacsbox-kill`` (``--pacsbox-stop``
is in the xdist and interrupt tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.plugin.helpers import gone, lines, only_instance, run
from tests.support.dicomgen import standard_corpus

RECORD_PID = """
from pathlib import Path

def test_record(pacsbox_server):
    with open(Path(__file__).with_name("pids.txt"), "a") as record:
        record.write(f"{pacsbox_server.pid}\\n")
"""


def _instances(instance) -> list[str]:
    return requests.get(instance.url + "/instances", auth=instance.auth, timeout=10).json()


def test_runs_reuse_the_server_fresh_restarts_it_show_lists_it_kill_stops_it(pytester: pytest.Pytester,
                                                                            pacsbox_home: Path) -> None:
    pytester.makepyfile(test_inner=RECORD_PID)
    pids = pytester.path / "pids.txt"
    empty = run(pytester, "--pacsbox-show")
    assert empty.ret == 0 and not pids.exists()  # no test ran
    empty.stdout.fnmatch_lines(["pacsbox: no instances", "pacsbox: this project's instance is 'pytest-*'"])

    first = run(pytester)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["pacsbox: instance 'pytest-*' (pid *) keeps running for the next run*"])
    name, instance, status = only_instance(pacsbox_home)
    assert status == "running" and name.startswith("pytest-")
    _, data = standard_corpus()[0]
    assert requests.post(instance.url + "/instances", data=data, auth=instance.auth, timeout=10).ok

    run(pytester).assert_outcomes(passed=1)
    run(pytester, "--pacsbox-fresh").assert_outcomes(passed=1)
    started, reused, fresh = (int(pid) for pid in lines(pids))
    assert reused == started  # the second run attached to the server the first one left running
    assert fresh != started and gone(started)
    _, restarted, _ = only_instance(pacsbox_home)
    assert restarted.pid == fresh and _instances(restarted) == []  # --pacsbox-fresh emptied the data

    shown = run(pytester, "--pacsbox-show")
    assert shown.ret == 0
    shown.stdout.fnmatch_lines([f"*{name}*builtin*running*{fresh}*{restarted.url}*",
                                f"pacsbox: this project's instance is '{name}'"])
    killed = run(pytester, "--pacsbox-kill")
    assert killed.ret == 0
    killed.stdout.fnmatch_lines([f"pacsbox: stopped instance '{name}'"])
    assert gone(fresh) and len(lines(pids)) == 3  # neither --pacsbox-show nor --pacsbox-kill ran the test
