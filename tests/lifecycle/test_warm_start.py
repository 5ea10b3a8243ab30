"""Warm start: servers forked by the home's template process are real, managed servers; the template is reused,
replaced when dead or stale, stopped by `pacsbox stop --all`, and leaves no orphan."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import psutil
import pydicom
import pytest
import requests
from pynetdicom import AE

from pacsbox.datasets import ct_study
from pacsbox.lifecycle import Instance, ensure, list_instances, restart, stop
from pacsbox.lifecycle.warm import stop_template, template_folder, template_record
from tests.lifecycle.conftest import is_gone
from tests.support.pacsbox_proc import LENT_TEMPLATE_VARIABLE

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm start forks: Linux only")


@pytest.fixture(autouse=True)
def own_template(monkeypatch):
    """These tests are about each home's own template: not the one the suite lends to every home."""
    monkeypatch.delenv(LENT_TEMPLATE_VARIABLE, raising=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One ``$PACSBOX_HOME`` for the tests of this module (a template starts in about a second, several on a busy
    machine); each test names its own servers and copes with finding the template dead or stale."""
    folder = tmp_path_factory.mktemp("warm") / "pacsbox-home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACSBOX_HOME", str(folder))
        patch.delenv(LENT_TEMPLATE_VARIABLE, raising=False)
        yield folder
        for name, _, _ in list_instances(folder):
            stop(name, grace=5, home=folder)
        stop_template(folder)


def _template_pid(home) -> int:
    record = template_record(home)
    assert record is not None, (template_folder(home) / "template.log").read_text()
    return int(record["pid"])


def _processes_under(home) -> list[psutil.Process]:
    """Live processes whose command line points into ``home`` (servers, forked or spawned, and the template)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(
                arg.startswith(str(home)) for arg in process.info["cmdline"] or []):
            found.append(process)
    return found


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _store_and_count(instance: Instance) -> int:
    """One C-STORE over a real association, then the count the REST API reports."""
    _, data = next(iter(ct_study(slices=1, size=16)))
    dataset = pydicom.dcmread(io.BytesIO(data))
    ae = AE(ae_title="WARMTEST")
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    association = ae.associate(instance.dicom_host, instance.dicom_port, ae_title=instance.aet)
    assert association.is_established
    try:
        assert association.send_c_store(dataset).Status == 0
    finally:
        association.release()
    return requests.get(instance.url + "/statistics", auth=instance.auth, timeout=10).json()["CountInstances"]


def test_the_template_is_reused_and_its_servers_are_real(shared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = ensure("first", home=shared)
    template = _template_pid(shared)
    assert psutil.Process(first.pid).ppid() == template
    second = ensure("second", home=shared)
    assert _template_pid(shared) == template and psutil.Process(second.pid).ppid() == template
    # what a spawned server has: its own session and process group, stdin from /dev/null, its log, our cwd
    for server in (first, second):
        assert os.getsid(server.pid) == server.pid and os.getpgid(server.pid) == server.pid
        assert os.readlink(f"/proc/{server.pid}/fd/0") == os.devnull
        assert os.readlink(f"/proc/{server.pid}/fd/1") == str(server.log_file)
        assert psutil.Process(server.pid).cwd() == str(tmp_path)
        assert "pacsbox ready" in server.log_file.read_text()
    assert requests.get(second.url + "/system", auth=second.auth, timeout=10).json()["DicomAet"] == "PACSBOX"
    assert _store_and_count(second) == 1
    assert _store_and_count(first) == 1  # two archives: one each
    assert requests.get(second.url + "/system", auth=("admin", "wrong"), timeout=10).status_code == 401


def test_forked_servers_stop_restart_and_survive_kill_9_consistently(shared):
    server = ensure("victim", home=shared)
    assert psutil.Process(server.pid).ppid() == _template_pid(shared)
    assert _store_and_count(server) == 1
    os.kill(server.pid, signal.SIGKILL)
    assert _wait_gone(server.pid)
    deadline = time.monotonic() + 5
    while psutil.pid_exists(server.pid):  # reaped by the kernel (the template ignores SIGCHLD): no zombie stays
        assert time.monotonic() < deadline, psutil.Process(server.pid).status()
        time.sleep(0.02)
    assert [status for name, _, status in list_instances(shared) if name == "victim"] == ["stale"]
    again = ensure("victim", home=shared)  # the data survive the kill
    assert again.pid != server.pid
    assert requests.get(again.url + "/statistics", auth=again.auth, timeout=10).json()["CountInstances"] == 1
    restarted = restart("victim", home=shared)
    assert restarted.pid != again.pid and _wait_gone(again.pid) and restarted.answers()
    assert stop("victim", home=shared)
    assert _wait_gone(restarted.pid)
    assert [status for name, _, status in list_instances(shared) if name == "victim"] == ["stopped"]


def test_a_dead_template_is_replaced_transparently(shared):
    ensure("dead-one", home=shared)
    old = _template_pid(shared)
    os.kill(old, signal.SIGKILL)
    assert _wait_gone(old)
    two = ensure("dead-two", home=shared)
    new = _template_pid(shared)
    assert new != old and psutil.Process(two.pid).ppid() == new and two.answers()
    assert ensure("dead-one", home=shared).answers()  # the server of the dead template is unaffected


def test_a_stale_template_is_replaced_and_says_why(shared, monkeypatch):
    ensure("stale-one", home=shared)
    old = _template_pid(shared)
    monkeypatch.setenv("PYTHONWARMSTARTTEST", "1")  # read at import time: a template without it is stale
    two = ensure("stale-two", home=shared)
    new = _template_pid(shared)
    assert new != old and psutil.Process(two.pid).ppid() == new
    assert _wait_gone(old)
    assert f"pacsbox template {old} exits: stale" in (template_folder(shared) / "template.log").read_text()


def test_warm_start_can_be_turned_off(home, monkeypatch):
    monkeypatch.setenv("PACSBOX_WARM_START", "0")
    server = ensure("cold", home=home)
    assert template_record(home) is None and server.answers()
    assert psutil.Process(server.pid).cmdline()[1:4] == ["-m", "pacsbox", "serve"]


def test_stop_all_stops_the_template_too_and_leaves_no_orphan(home):
    servers = [ensure(name, home=home) for name in ("all-a", "all-b")]
    template = _template_pid(home)
    result = subprocess.run([sys.executable, "-m", "pacsbox", "stop", "--all"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "stopped the warm-start template" in result.stdout
    for pid in (template, *(server.pid for server in servers)):
        assert _wait_gone(pid)
    assert template_record(home) is None
    assert _processes_under(home) == []


def test_an_idle_template_exits_by_itself(home, monkeypatch):
    monkeypatch.setenv("PACSBOX_TEMPLATE_IDLE", "1")
    server = ensure("idle", home=home)
    template = _template_pid(home)
    assert _wait_gone(template, timeout=15)
    assert "exits: idle" in (template_folder(home) / "template.log").read_text()
    assert server.answers()  # its servers keep running


def test_a_template_whose_record_is_gone_exits(shared):
    ensure("unrecorded", home=shared)
    template = _template_pid(shared)
    (template_folder(shared) / "template.json").unlink()
    assert _wait_gone(template, timeout=15)


def test_a_forked_server_takes_the_requesters_temporary_folder_and_time_zone(tmp_path, monkeypatch):
    """What the template read from its own environment and kept is read again from the requester's: the folder of
    temporary files (fixed by the warm-up's first temporary folder) and the local time zone."""
    import tempfile

    from pacsbox.lifecycle.template import take_environment

    theirs = tmp_path / "their-tmp"
    theirs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "the-templates"))  # as gettempdir() left it
    saved = dict(os.environ)
    try:
        take_environment({**saved, "TMPDIR": str(theirs), "TZ": "PBX-14"})  # (POSIX form: no tzdata needed)
        assert tempfile.gettempdir() == str(theirs)
        assert time.strftime("%z") == "+1400"
    finally:
        take_environment(saved)
        tempfile.tempdir = None


def test_a_home_can_borrow_another_homes_template(tmp_path, monkeypatch):
    """``PACSBOX_TEMPLATE_HOME``: one home's template forks every home's servers (a suite making a home a test
    would otherwise start a template in each); the borrowing home starts none, and stopping its templates leaves
    the lender's alone."""
    lender, borrower = tmp_path / "lender", tmp_path / "borrower"
    monkeypatch.setenv("PACSBOX_HOME", str(borrower))
    monkeypatch.setenv(LENT_TEMPLATE_VARIABLE, str(lender))
    try:
        server = ensure("borrowed", home=borrower)
        assert psutil.Process(server.pid).ppid() == _template_pid(lender)
        assert template_record(borrower) is None and not template_folder(borrower).exists()
        assert server.answers()
        assert stop_template(borrower) is False
        assert template_record(lender) is not None
        stop("borrowed", grace=5, home=borrower)
        assert _wait_gone(server.pid)
    finally:
        for name, _, _ in list_instances(borrower):
            stop(name, grace=5, home=borrower)
        stop_template(lender)
