"""Every lifecycle command of the ``pacsbox`` CLI as a user runs it, text and ``--json``, with its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import requests

from pacsbox.datasets import ct_study
from tests.lifecycle.conftest import is_gone


def pacsbox(home, *arguments: str, check: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pacsbox", *arguments], capture_output=True, text=True,
                            timeout=180, env={**os.environ, "PACSBOX_HOME": str(home)})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def test_every_lifecycle_command_in_text_and_json(home, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('// comments are fine\n{"DicomAet": "CLITEST"}')
    started = json.loads(pacsbox(home, "start", "--name", "cli", "--config", str(config), "--json").stdout)
    assert started["how"] == "started" and started["aet"] == "CLITEST" and psutil.pid_exists(started["pid"])
    url, auth = started["url"], ("admin", "admin")
    again = pacsbox(home, "start", "--name", "cli", "--config", str(config)).stdout
    assert again.startswith("pacsbox instance 'cli' reused in ") and f"pid {started['pid']}" in again
    assert f"Orthanc REST API at {url} (admin/admin); XNAT REST API at {url}/data; DICOM AET CLITEST" in again

    listed = json.loads(pacsbox(home, "ls", "--json").stdout)
    assert [(row["name"], row["status"], row["pid"]) for row in listed] == [("cli", "running", started["pid"])]
    table = pacsbox(home, "status").stdout
    assert "cli" in table and "running" in table and url in table
    assert json.loads(pacsbox(home, "status", "cli", "--json").stdout)[0]["status"] == "running"

    for _, data in ct_study(slices=2, size=16):
        requests.post(url + "/instances", data=data, auth=auth, timeout=30).raise_for_status()
    saved = json.loads(pacsbox(home, "snapshot", "two", "--name", "cli", "--json").stdout)
    assert saved["Instances"] == 2
    assert "emptied 'cli'" in pacsbox(home, "reset", "cli").stdout
    assert requests.get(url + "/statistics", auth=auth, timeout=30).json()["CountInstances"] == 0
    assert json.loads(pacsbox(home, "reset", "cli", "--json").stdout)["Seconds"] >= 0
    restored = pacsbox(home, "restore", "two", "--name", "cli").stdout
    assert "restored snapshot 'two' into 'cli'" in restored
    assert requests.get(url + "/statistics", auth=auth, timeout=30).json()["CountInstances"] == 2
    assert json.loads(pacsbox(home, "restore", "two", "--name", "cli", "--json").stdout)["Name"] == "two"

    log = pacsbox(home, "logs", "cli", "-n", "200").stdout
    assert "--- pacsbox lifecycle: starting builtin instance 'cli'" in log and "POST /pacsbox/reset" in log
    tail = json.loads(pacsbox(home, "logs", "cli", "-n", "3", "--json").stdout)
    assert tail["log_file"].endswith("instances/cli/server.log") and len(tail["lines"]) == 3

    restarted = json.loads(pacsbox(home, "restart", "cli", "--json").stdout)
    assert restarted["pid"] != started["pid"] and restarted["aet"] == "CLITEST"
    assert requests.get(restarted["url"] + "/statistics", auth=auth, timeout=30).json()["CountInstances"] == 2

    stopped = json.loads(pacsbox(home, "stop", "cli", "--json").stdout)
    assert stopped == [{"name": "cli", "stopped": True}]
    assert is_gone(restarted["pid"])
    assert "'cli' was not running" in pacsbox(home, "stop", "cli").stdout
    assert pacsbox(home, "status", "cli", check=3).returncode == 3


def test_stop_all_and_the_errors_a_user_meets(home):
    first = json.loads(pacsbox(home, "start", "--name", "one", "--with-data", "dummydicom", "--json").stdout)
    assert first["datasets"][0].startswith("dummydicom via xnat-import: 28 files")
    stats = requests.get(first["url"] + "/statistics", auth=("admin", "admin"), timeout=30).json()
    assert (stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 3, 28)
    second = json.loads(pacsbox(home, "start", "--name", "two", "--json").stdout)
    assert first["url"] != second["url"] and first["dicom_port"] != second["dicom_port"]
    assert json.loads(pacsbox(home, "stop", "--all", "--json").stdout) == [
        {"name": "one", "stopped": True}, {"name": "two", "stopped": True}]
    assert is_gone(first["pid"]) and is_gone(second["pid"])

    missing = pacsbox(home, "reset", "nowhere", check=1)
    assert missing.stderr == ("Error: no instance named 'nowhere' (known: one, two; start one with "
                              "`pacsbox start nowhere`)\n")
    assert "invalid instance name '../x'" in pacsbox(home, "start", "--name", "../x", check=1).stderr
    assert "no instances" in pacsbox(home, "ls").stdout or "stopped" in pacsbox(home, "ls").stdout
    assert "no instance named 'never'" in pacsbox(home, "logs", "never", check=1).stderr
    assert "give instance names or --all" in pacsbox(home, "stop", "one", "--all", check=2).stderr
