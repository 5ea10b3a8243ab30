"""xdist isolation made explicit (issue 22): one shared server, where ``pacsbox_clean`` refuses to empty what
other workers use, or ``--pacsbox-per-worker``, one server per worker, kept or stopped together; and what a
failing test shows: the server's log lines of that test only, and install hints instead of silent skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin.helpers import gone, lines, run

CLEANING_TESTS = """
import time
from pathlib import Path

import pytest
from pacsbox.datasets import ct_study

@pytest.mark.parametrize("number", range(8))
def test_clean_then_count(pacsbox_clean, orthanc_client, number):
    with open(Path(__file__).with_name("servers.txt"), "a") as record:
        record.write(f"{pacsbox_clean.name} {pacsbox_clean.pid}\\n")
    for _, data in ct_study(slices=number % 3 + 1, size=8):
        orthanc_client.post("/instances", data=data).raise_for_status()
    time.sleep(0.2)  # another worker's reset would land here if the server were shared
    assert orthanc_client.get("/statistics").json()["CountInstances"] == number % 3 + 1
"""


def _xdist() -> None:
    pytest.importorskip("xdist", reason="needs pytest-xdist: pip install -e '.[test]'")


def test_shared_server_refuses_pacsbox_clean_under_four_workers(pytester: pytest.Pytester,
                                                               pacsbox_home: Path) -> None:
    _xdist()
    pytester.makepyfile(test_inner=CLEANING_TESTS)
    result = run(pytester, "-n", "4", "--pacsbox-stop", xdist=True)
    result.assert_outcomes(errors=8)
    result.stdout.fnmatch_lines(["*pacsbox_clean would empty the server 'pytest-*' that 4 xdist workers share, "
                                 "under the tests of the others: run with --pacsbox-per-worker (ini: "
                                 "pacsbox_per_worker = true) for one server per worker, or without -n*"])
    assert not (pytester.path / "servers.txt").exists()  # no test body ran on a server emptied under it


def test_one_server_per_worker_under_four_workers_kept_and_killed_together(pytester: pytest.Pytester,
                                                                            pacsbox_home: Path) -> None:
    _xdist()
    from pacsbox.lifecycle import list_instances

    pytester.makepyfile(test_inner=CLEANING_TESTS)
    pytester.makeini("[pytest]\npacsbox_per_worker = true\n")
    result = run(pytester, "-n", "4", xdist=True)
    result.assert_outcomes(passed=8)
    records = {tuple(line.split()) for line in lines(pytester.path / "servers.txt")}
    names = {name for name, _ in records}
    assert {name.rsplit("-", 1)[1] for name in names} <= {"gw0", "gw1", "gw2", "gw3"} and len(names) >= 2
    assert len({pid for _, pid in records}) == len(names)  # one server (one PID) per worker
    running = {name: instance.pid for name, instance, status in list_instances(pacsbox_home) if status == "running"}
    assert set(running) == names  # kept for the next run, all of them
    result.stdout.fnmatch_lines(["pacsbox: instance 'pytest-*-gw*' (pid *) keeps running for the next run*"])

    killed = run(pytester, "--pacsbox-kill")
    assert killed.ret == 0
    for name in names:
        killed.stdout.fnmatch_lines([f"pacsbox: stopped instance '{name}'"])
    assert all(gone(pid) for pid in running.values())


def test_per_worker_stop_stops_every_workers_server(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    _xdist()
    from pacsbox.lifecycle import list_instances

    pytester.makepyfile(test_inner=CLEANING_TESTS)
    # a configuration naming fixed ports: each worker's server still gets free ones
    (pytester.path / "orthanc.json").write_text('{"HttpPort": 8042, "DicomPort": 4242, "DicomAet": "WORKERS"}')
    result = run(pytester, "-n", "4", "--pacsbox-per-worker", "--pacsbox-stop", "--pacsbox-config", "orthanc.json",
                 xdist=True)
    result.assert_outcomes(passed=8)
    pids = {int(pid) for _, pid in (line.split() for line in lines(pytester.path / "servers.txt"))}
    assert all(gone(pid) for pid in pids)
    assert all(status == "stopped" for _, _, status in list_instances(pacsbox_home))


LOG_TESTS = """
def test_1_uses_the_server(orthanc_client):
    orthanc_client.get("/route-of-an-earlier-test")

def test_2_fails(orthanc_client):
    orthanc_client.get("/route-of-the-failing-test")
    assert False, "fails on purpose"
"""


def test_the_failure_section_shows_only_that_tests_log_lines(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makepyfile(test_inner=LOG_TESTS)
    result = run(pytester, "--pacsbox-stop")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    section = output[output.index("- pacsbox server log -"):]
    assert "lines written during this test" in section and "/route-of-the-failing-test" in section
    assert "/route-of-an-earlier-test" not in section and "starting builtin instance" not in section


MISSING_CLIENT = """
import sys
sys.modules["xnat"] = None  # as if xnatpy were not installed

def test_needs_xnat(xnat_session):
    pass
"""


def test_a_missing_client_fails_with_the_install_line_instead_of_skipping(pytester: pytest.Pytester,
                                                                         pacsbox_home: Path) -> None:
    pytester.makepyfile(test_inner=MISSING_CLIENT)
    result = run(pytester, "--pacsbox-stop")
    result.assert_outcomes(errors=1)
    assert ("\nthe xnat_session fixture needs xnatpy: pip install 'pacsbox[pytest]' (the fixtures' clients: "
            "requests, xnat, dicomweb-client)\n") in result.stdout.str()
    assert "During handling" not in result.stdout.str()
