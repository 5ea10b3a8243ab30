"""Every interface of fault injection and the event log besides REST: the ``pacsbox faults`` and ``pacsbox events``
commands on a managed instance, ``Instance.faults``/``.events``, ``Server.faults``/``.events`` in-process, the
``PacsboxFaults`` and ``PacsboxEventLogSize`` configuration keys, and the pytest fixtures through pytester."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pacsbox.core.config import config_from_mapping
from pacsbox.faults.client import FaultsApiError
from pacsbox.server import Server
from tests.plugin.helpers import run
from tests.support.dicomgen import make_dataset, to_bytes, uid


def _pacsbox(home: Path, *arguments: str, check: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pacsbox", *arguments], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PACSBOX_HOME": str(home)})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "pacsbox-home"
    monkeypatch.setenv("PACSBOX_HOME", str(folder))
    yield folder
    from pacsbox.lifecycle import list_instances, stop

    for name, _, _ in list_instances(folder):
        stop(name, grace=5, home=folder)


def test_the_commands_and_the_instance_api(home):
    started = json.loads(_pacsbox(home, "start", "--name", "chaos", "--json").stdout)
    rule = '{"face": "orthanc", "method": "GET", "path": "/system", "first": 1, "action": {"http_status": 503}}'
    assert _pacsbox(home, "faults", "add", rule, "--name", "chaos").stdout.strip() == "added rule 1"
    assert requests.get(started["url"] + "/system", auth=("admin", "admin"), timeout=30).status_code == 503
    listed = _pacsbox(home, "faults", "ls", "chaos").stdout  # NAME, or --name as every command takes it
    assert "face=orthanc method=GET path=/system first=1" in listed and "fired 1/1" in listed
    assert json.loads(_pacsbox(home, "faults", "ls", "--name", "chaos", "--json").stdout)[0]["fired"] == 1
    bad = _pacsbox(home, "faults", "add", '{"face": "orthanc", "action": {"http_status": 42}}', "--name", "chaos",
                   check=1)
    assert "400" in bad.stderr and "between 200 and 599" in bad.stderr
    assert _pacsbox(home, "faults", "rm", "1", "--name", "chaos").stdout.strip() == "removed rule 1"
    assert "No fault rule '1'" in _pacsbox(home, "faults", "rm", "1", "--name", "chaos", check=1).stderr

    lines = _pacsbox(home, "events", "--name", "chaos", "--json", "--kind", "http").stdout.splitlines()
    recorded = [json.loads(line) for line in lines]
    assert [(e["path"], e["status"], e.get("fault")) for e in recorded] == [("/system", 503, "1")]
    text = _pacsbox(home, "events", "--name", "chaos").stdout
    assert "orthanc  http" in text and "path=/system" in text and "status=503" in text

    follower = subprocess.Popen([sys.executable, "-m", "pacsbox", "events", "-f", "--name", "chaos", "--json",
                                 "--since", str(recorded[-1]["seq"])], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PACSBOX_HOME": str(home)})
    try:
        time.sleep(1.0)  # the follower is waiting in its long poll
        requests.get(started["url"] + "/statistics", auth=("admin", "admin"), timeout=30)
        followed = json.loads(follower.stdout.readline())
        assert followed["path"] == "/statistics"
    finally:
        follower.terminate()
        follower.wait(10)

    from pacsbox.lifecycle import get_instance

    instance = get_instance("chaos")
    added = instance.faults.add(face="dimse", operation="C-ECHO", action={"dimse_status": 0x0110})
    assert [r["id"] for r in instance.faults.list()] == [added["id"]]
    with pytest.raises(FaultsApiError, match="unknown key 'colour'"):
        instance.faults.add(face="orthanc", colour="red", action={"http_status": 500})
    assert _pacsbox(home, "faults", "clear", "--name", "chaos").returncode == 0
    assert instance.faults.list() == []
    assert _pacsbox(home, "events", "--clear", "--name", "chaos").stdout.strip() == "event log cleared"
    assert instance.events.list() == []


def test_the_in_process_server_api_and_configuration():
    rules = [{"face": "orthanc", "method": "POST", "path": "/instances", "first": 1, "action": {"http_status": 507}}]
    with Server({"PacsboxFaults": rules, "PacsboxEventLogSize": 5}) as server:
        assert [r["fired"] for r in server.faults.list()] == [0]
        data = to_bytes(make_dataset(patient_id="INPROC", patient_name="In^Process", study_uid=uid("ip", 1),
                                     series_uid=uid("ip", 2), sop_uid=uid("ip", 3), rows=4, cols=4))
        statuses = [requests.post(server.url + "/instances", data=data, auth=server.auth, timeout=30).status_code
                    for _ in range(2)]
        assert statuses == [507, 200]
        events = server.events
        stored = events.wait_for(kind="stored", sop_instance_uid=uid("ip", 3), timeout=5)
        assert stored["origin"] == "RestApi"
        for _ in range(10):
            requests.get(server.url + "/system", auth=server.auth, timeout=30)
        assert len(events.list()) == 5  # PacsboxEventLogSize
        events.mark()
        with pytest.raises(TimeoutError, match="no event with kind='dimse'"):
            events.wait_for(kind="dimse", timeout=0.5)


@pytest.mark.parametrize(("values", "reason"), [
    ({"PacsboxFaults": [{"face": "pacs", "action": {"http_status": 503}}]}, r"PacsboxFaults\[0\]: face must be"),
    # (types and ranges are checked by pacsbox.core.config_check, from Config's annotations)
    ({"PacsboxFaults": {"face": "orthanc"}}, r"PacsboxFaults: expected a list, got \{"),
    ({"PacsboxEventLogSize": -1}, "PacsboxEventLogSize: expected a whole number, at least 0, got -1"),
])
def test_bad_configuration_is_refused_at_load(values, reason):
    with pytest.raises(ValueError, match=reason):
        config_from_mapping(values)


FIXTURE_TESTS = """
import requests


def test_1_a_rule_and_its_events(pacsbox_server, pacsbox_faults, pacsbox_events):
    rule = pacsbox_faults.add(face="orthanc", method="GET", path="/system", action={"http_status": 503})
    answer = requests.get(pacsbox_server.url + "/system", auth=pacsbox_server.auth, timeout=30)
    assert answer.status_code == 503
    event = pacsbox_events.wait_for(kind="http", path="/system")
    assert event["fault"] == rule["id"] and event["status"] == 503


def test_2_the_rule_is_gone_and_events_start_anew(pacsbox_server, pacsbox_faults, pacsbox_events):
    assert pacsbox_faults.list() == []
    assert requests.get(pacsbox_server.url + "/system", auth=pacsbox_server.auth, timeout=30).status_code == 200
    assert [e["status"] for e in pacsbox_events.list(kind="http", path="/system")] == [200]
"""


def test_the_pytest_fixtures(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "pacsbox-home"
    monkeypatch.setenv("PACSBOX_HOME", str(home))
    pytester.makepyfile(test_faults=FIXTURE_TESTS)
    try:
        result = run(pytester, "-v", "--pacsbox-stop")
        result.assert_outcomes(passed=2)
    finally:
        from pacsbox.lifecycle import list_instances, stop

        for name, _, _ in list_instances(home):
            stop(name, grace=5, home=home)


class _Quick:
    """A job of the jobs engine that succeeds at once."""

    job_type = "PacsboxTest"

    def initial_content(self) -> dict:
        return {}

    def run(self, context) -> dict:
        return {}


def test_jobs_reach_the_event_log_through_the_archive_events():
    with Server() as server:
        job_id = server.archive.jobs.submit(_Quick())
        done = server.archive.faults.log.wait(lambda e: e["kind"] == "job" and e["state"] == "Success", timeout=10)
        assert done is not None and done["id"] == job_id and done["type"] == "PacsboxTest"
        assert [e["state"] for e in server.events.list(kind="job")] == ["Submitted", "Success"]
