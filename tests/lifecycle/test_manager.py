"""The lifecycle manager with real detached servers: reuse, restart on change, start-up crashes, stale records,
tree kills, and the file lock that makes concurrent callers share one server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from pacsbox.datasets import ct_study
from pacsbox.lifecycle import (
    Instance,
    InstanceError,
    InstanceNotRunning,
    InstancePaths,
    StartupFailed,
    ensure,
    get_instance,
    list_instances,
    stop,
)
from pacsbox.lifecycle.process import kill_tree, spawn_detached
from tests.lifecycle.conftest import is_gone
from tests.support.orthanc_ref import free_port


def _upload_sample(instance: Instance) -> int:
    for _, data in ct_study(slices=2, size=16):
        requests.post(instance.url + "/instances", data=data, auth=instance.auth, timeout=30).raise_for_status()
    return requests.get(instance.url + "/statistics", auth=instance.auth, timeout=30).json()["CountInstances"]


def test_ensure_starts_a_detached_server_then_reuses_it(home):
    first = ensure("reuse", home=home)
    assert first.answers()
    process = psutil.Process(first.pid)
    assert process.ppid() != os.getpid() or os.getsid(first.pid) != os.getsid(0)  # its own session
    assert os.getsid(first.pid) == first.pid
    second = ensure("reuse", home=home)
    assert (second.pid, second.http_port, second.dicom_port) == (first.pid, first.http_port, first.dicom_port)
    assert get_instance("reuse", home=home).pid == first.pid
    log = first.log_file.read_text()
    assert log.count("--- pacsbox lifecycle: starting") == 1


def test_a_changed_configuration_restarts_the_server_and_keeps_its_data(home):
    first = ensure("change", {"DicomAet": "FIRST"}, home=home)
    assert _upload_sample(first) == 2
    second = ensure("change", {"DicomAet": "SECOND"}, home=home)
    assert second.pid != first.pid and not first.is_alive()
    assert second.aet == "SECOND"
    system = requests.get(second.url + "/system", auth=second.auth, timeout=10).json()
    assert system["DicomAet"] == "SECOND"
    assert requests.get(second.url + "/statistics", auth=second.auth, timeout=10).json()["CountInstances"] == 2
    fresh = ensure("change", {"DicomAet": "SECOND"}, fresh=True, home=home)
    assert fresh.pid != second.pid
    assert requests.get(fresh.url + "/statistics", auth=fresh.auth, timeout=10).json()["CountInstances"] == 0


def test_a_server_that_dies_at_start_up_is_reported_at_once_with_its_log(home, tmp_path):
    script = tmp_path / "broken.lua"
    script.write_text("function (")  # valid configuration, but the child fails loading it
    started = time.monotonic()
    with pytest.raises(StartupFailed) as failure:
        ensure("crash", {"LuaScripts": [str(script)]}, startup_timeout=120, home=home)
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert "exited during start-up with status 1" in message
    assert "broken.lua" in message and "expected near" in message  # the tail of the child's own output
    assert elapsed < 60, "the failure must not wait for the start-up timeout"
    assert not InstancePaths.of("crash", home).state_file.exists()
    assert [status for name, _, status in list_instances(home) if name == "crash"] == ["stopped"]


def test_a_busy_port_is_named_before_anything_starts(home):
    busy = free_port()
    with __import__("socket").socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        with pytest.raises(InstanceError) as failure:
            ensure("busy", http_port=busy, startup_timeout=120, home=home)
    assert str(failure.value) == (f"the HTTP port {busy} (--http-port / HttpPort) is in use by another program: "
                                  "choose another port, or leave it out for a free one")
    assert not InstancePaths.of("busy", home).state_file.exists()


def test_a_broken_configuration_is_refused_before_anything_starts(home):
    with pytest.raises(ValueError, match=r"UserMetadata\.Bad: expected an integer from 1024 to 65535, got 5"):
        ensure("badconfig", {"UserMetadata": {"Bad": 5}}, startup_timeout=120, home=home)
    assert not InstancePaths.of("badconfig", home).state_file.exists()


def test_a_stale_record_naming_a_dead_process_is_cleaned(home):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(home, "stale", pid=dead.pid, created=time.time())
    assert [status for name, _, status in list_instances(home) if name == "stale"] == ["stale"]
    with pytest.raises(InstanceNotRunning, match="pacsbox start --name stale"):
        get_instance("stale", home=home)
    assert stop("stale", home=home) is False
    assert not InstancePaths.of("stale", home).state_file.exists()


def test_a_record_naming_a_reused_pid_never_touches_that_process(home):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # same PID, another start time: the PID was reused by an unrelated process
        _write_record(home, "reused", pid=bystander.pid, created=psutil.Process(bystander.pid).create_time() - 50)
        instance = ensure("reused", home=home)
        assert instance.pid != bystander.pid and instance.answers()
        assert stop("reused", home=home) is True
        assert bystander.poll() is None, "the unrelated process must survive"
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_kills_the_whole_tree_even_when_the_root_ignores_sigterm(tmp_path):
    script = "trap '' TERM; sleep 300 & sleep 300 & wait"
    pid = spawn_detached(["sh", "-c", script], tmp_path / "log", dict(os.environ))
    time.sleep(0.3)
    root = psutil.Process(pid)
    family = [root, *root.children(recursive=True)]
    assert len(family) == 3
    assert kill_tree(pid, root.create_time(), grace=0.5) is True
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []


def test_stop_leaves_no_process_and_no_record(home):
    instance = ensure("stopme", home=home)
    assert stop("stopme", home=home) is True
    assert not instance.is_alive()
    assert is_gone(instance.pid)
    assert stop("stopme", home=home) is False


def test_concurrent_callers_share_exactly_one_server(home):
    script = ("import json, sys; from pacsbox.lifecycle import ensure; "
              "i = ensure('shared', home=__import__('pathlib').Path(sys.argv[1])); print(json.dumps([i.pid, i.url]))")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
    answers = {tuple(json.loads(p.communicate(timeout=180)[0])) for p in processes}
    assert len(answers) == 1
    log = InstancePaths.of("shared", home).log_file.read_text()
    assert log.count("--- pacsbox lifecycle: starting") == 1


def test_in_thread_callers_share_too(home):
    with ThreadPoolExecutor(4) as pool:
        pids = set(pool.map(lambda _: ensure("threads", home=home).pid, range(4)))
    assert len(pids) == 1


def test_a_caller_interrupted_during_start_up_leaves_no_server(home):
    code = ("import sys, pathlib; from pacsbox.lifecycle import ensure; "
            "ensure('interrupted', home=pathlib.Path(sys.argv[1]))")
    caller = subprocess.Popen([sys.executable, "-c", code, str(home)], stderr=subprocess.PIPE, text=True)
    paths = InstancePaths.of("interrupted", home)
    deadline = time.monotonic() + 60
    while not paths.state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    record = json.loads(paths.state_file.read_text())
    caller.send_signal(2)  # Ctrl-C while the server is still starting
    caller.wait(60)
    if record["status"] == "starting":
        assert is_gone(record["pid"])
        assert not paths.state_file.exists()
    else:  # it became ready first: then it is recorded and reusable
        assert get_instance("interrupted", home=home).pid == record["pid"]


def _write_record(home, name: str, *, pid: int, created: float) -> None:
    paths = InstancePaths.of(name, home)
    paths.root.mkdir(parents=True)
    Instance(name=name, engine="builtin", pid=pid, created=created, host="127.0.0.1", http_port=1, dicom_port=1,
             aet="PACSBOX", users={"admin": "admin"}, authentication=True, data_dir=str(paths.default_data_dir),
             state_dir=str(paths.root), fingerprint="old", started_at=created).save()
