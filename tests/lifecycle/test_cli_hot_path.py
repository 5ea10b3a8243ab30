"""The CLI's hot path (issue 24): `pacsbox start NAME` on a running server, `status` and `ls` load only what they
use. What they import is checked, not how long they take (a loaded machine would make a time limit flaky);
the benchmark (benchmarks/bench/starts.py) times them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from pacsbox.lifecycle.process import creation_time, probe_status
from tests.lifecycle.test_cli import pacsbox

# What none of these commands needs: the server's stack, the data sets, psutil (a /proc read does), filelock (a
# reuse takes no lock), rich (a piped table is plain text), and http.client with ssl (the probe is HTTP/1.0).
NOT_LOADED = ("pydicom", "numpy", "pynetdicom", "lupa", "PIL", "uvicorn", "starlette", "requests", "psutil",
              "filelock", "rich", "http.client", "ssl", "pacsbox.datasets", "pacsbox.core.archive")

_RUN_AND_LIST = """
import json, sys
from pacsbox.cli import main
sys.argv = ["pacsbox", *{arguments!r}]
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({{"code": code, "loaded": [name for name in {names!r} if name in sys.modules]}}))
"""


def loaded_by(home, *arguments: str) -> tuple[str, dict]:
    """Run the CLI in a fresh interpreter; its output and which of ``NOT_LOADED`` it had imported at the end."""
    code = _RUN_AND_LIST.format(arguments=list(arguments), names=NOT_LOADED)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PACSBOX_HOME": str(home)})
    *output, last = result.stdout.rstrip("\n").split("\n")
    return "\n".join(output), json.loads(last)


def test_reusing_a_running_server_and_listing_it_load_none_of_the_heavy_modules(home):
    started = json.loads(pacsbox(home, "start", "hot", "--json").stdout)
    output, report = loaded_by(home, "start", "hot")
    assert report == {"code": 0, "loaded": []}
    assert output.startswith("pacsbox instance 'hot' reused in ") and f"pid {started['pid']}" in output
    for command in (["status"], ["ls"], ["ls", "--json"], ["status", "hot", "--json"]):
        output, report = loaded_by(home, *command)
        assert report == {"code": 0, "loaded": []}, command
        assert "hot" in output and "running" in output and started["url"] in output, command
    table = pacsbox(home, "status").stdout.splitlines()  # rich's layout, without rich: header, one row
    assert table[0].split() == ["NAME", "ENGINE", "STATUS", "PID", "HTTP", "DICOM", "UPTIME", "DATA"]
    assert table[1].split()[:5] == ["hot", "builtin", "running", str(started["pid"]), started["url"]]
    assert table[0].startswith(" NAME  ENGINE   STATUS   PID")


def test_a_stopped_server_is_started_again_through_the_full_path(home):
    first = json.loads(pacsbox(home, "start", "again", "--json").stdout)
    pacsbox(home, "stop", "again")
    second = json.loads(pacsbox(home, "start", "again", "--json").stdout)
    assert second["how"] == "started" and second["pid"] != first["pid"]


def test_the_proc_reading_gives_psutils_creation_time_and_sees_the_dead(home):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert creation_time(child.pid) == pytest.approx(psutil.Process(child.pid).create_time(), abs=0.01)
        assert creation_time(os.getpid()) == pytest.approx(psutil.Process().create_time(), abs=0.01)
    finally:
        child.kill()
        child.wait()
    assert creation_time(child.pid) is None
    assert creation_time(2**22 + 7) is None  # above pid_max: no such process


def test_the_plain_probe_reads_the_status_line(home):
    started = json.loads(pacsbox(home, "start", "probed", "--json").stdout)
    host, port = "127.0.0.1", started["http_port"]
    assert probe_status(host, port, "/pacsbox/health", ("admin", "admin")) == 200
    assert probe_status(host, port, "/system", ("admin", "wrong")) == 401
    assert probe_status(host, port, "/system", ("admin", "admin")) == 200
    assert probe_status(host, started["dicom_port"], "/system", timeout=2) == 0  # not HTTP: no status line
