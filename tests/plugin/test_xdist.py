"""``pytest -n 4``: the workers share one server, which only the controller refreshes and stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbox.lifecycle import InstancePaths
from tests.plugin.helpers import gone, lines, only_instance, run

EIGHT_TESTS = """
import time
from pathlib import Path

import pytest

@pytest.mark.parametrize("number", range(8))
def test_record(pacsbox_server, number):
    with open(Path(__file__).with_name("servers.txt"), "a") as record:
        record.write(f"{pacsbox_server.pid} {pacsbox_server.started_at}\\n")
    time.sleep(0.2)  # keep every worker busy, so that all four ask for the server
"""


def test_four_workers_start_exactly_one_server(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytest.importorskip("xdist", reason="needs pytest-xdist: pip install -e '.[test]'")
    pytester.makepyfile(test_inner=EIGHT_TESTS)
    # --pacsbox-fresh too: applied once by the controller, it must not make each worker start its own
    result = run(pytester, "-n", "4", "--pacsbox-fresh", "--pacsbox-stop", xdist=True)
    result.assert_outcomes(passed=8)
    records = set(lines(pytester.path / "servers.txt"))
    assert len(lines(pytester.path / "servers.txt")) == 8
    assert len(records) == 1, records  # one PID, one start time
    pid = int(next(iter(records)).split()[0])

    name, _, status = only_instance(pacsbox_home)
    log = InstancePaths.of(name, pacsbox_home).log_file.read_text()
    assert log.count("--- pacsbox lifecycle: starting") == 1
    # the controller learnt from its workers that the server was used, and stopped it after all of them
    result.stdout.fnmatch_lines([f"pacsbox: instance 'pytest-*' (pid {pid}) is stopped at the end of the run"])
    assert status == "stopped" and gone(pid)
