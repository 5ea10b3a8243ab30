"""The drop-in's ``xnat4tests`` console command: start, add-data, restart, stop with a ``--config`` file, its
errors in one line, and its files under ``$PACSBOX_HOME`` when ``XNAT4TESTS_HOME`` is not set (issue 22)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import requests

from pacsbox.xnat4tests.config import xnat4tests_home
from tests.lifecycle.conftest import is_gone
from tests.support.orthanc_ref import free_port


def xnat4tests(env: dict[str, str], *arguments: str, check: int = 0) -> subprocess.CompletedProcess:
    # the drop-in's own name: the real xnat4tests (in the test extra) may own the plain `xnat4tests` script
    command = shutil.which("pacsbox-xnat4tests", path=str(Path(os.sys.executable).parent)) or "pacsbox-xnat4tests"
    result = subprocess.run([command, *arguments], capture_output=True, text=True, timeout=180,
                            env={**os.environ, **env})
    assert result.returncode == check, result.stdout + result.stderr
    return result


def test_start_add_data_restart_stop_with_a_config_file(homes: Path) -> None:
    port = free_port()
    root = homes / "xnat-root"
    config = homes / "xnat4tests-config.yaml"
    config.write_text(f"xnat_port: {port}\ndocker_container: cli-xnat\nxnat_root_dir: {root}\n")
    env = {"XNAT4TESTS_HOME": str(homes / "xnat4tests-home"), "PACSBOX_HOME": str(homes / "pacsbox-home")}

    started = xnat4tests(env, "--config", str(config), "start").stdout
    assert started.startswith("started test XNAT 'cli-xnat' (pacsbox, pid ") and f"http://localhost:{port}" in started
    pid = int(started.split("pid ")[1].split(")")[0])
    added = xnat4tests(env, "--config", str(config), "add-data", "dummydicom").stdout
    assert added.startswith("dummydicom via xnat-import: 28 files")
    projects = requests.get(f"http://127.0.0.1:{port}/data/projects?format=json", auth=("admin", "admin"),
                            timeout=30).json()["ResultSet"]["Result"]
    assert [row["ID"] for row in projects] == ["dummydicomproject"]
    assert (root / "archive" / "dummydicomproject").is_dir()

    restarted = xnat4tests(env, "--config", str(config), "restart").stdout
    assert restarted.startswith("restarted test XNAT 'cli-xnat'") and is_gone(pid)
    assert xnat4tests(env, "--config", str(config), "stop").stdout == "stopped test XNAT 'cli-xnat'\n"
    assert xnat4tests(env, "--config", str(config), "stop").stdout == "test XNAT 'cli-xnat' was not running\n"
    missing = xnat4tests(env, "--config", str(config), "restart", check=1)
    assert missing.stderr == ("Error: Test XNAT was not running at cli-xnat: start it with `xnat4tests start`\n")


def test_errors_are_one_line(homes: Path) -> None:
    env = {"XNAT4TESTS_HOME": str(homes / "xnat4tests-home"), "PACSBOX_HOME": str(homes / "pacsbox-home")}
    absent = xnat4tests(env, "--config", str(homes / "nowhere.yaml"), "start", check=1)
    assert absent.stderr == f"Error: Did not find configuration file at explicit path '{homes / 'nowhere.yaml'}'\n"
    unknown = xnat4tests(env, "add-data", "dumydicom", check=2)
    assert "'dumydicom' is not one of 'dummydicom'" in unknown.stderr


def test_files_go_under_pacsbox_home_unless_xnat4tests_home_is_set(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XNAT4TESTS_HOME", raising=False)
    monkeypatch.setenv("PACSBOX_HOME", str(tmp_path / "box"))
    assert xnat4tests_home() == tmp_path / "box" / "xnat4tests"
    monkeypatch.setenv("XNAT4TESTS_HOME", str(tmp_path / "own"))
    assert xnat4tests_home() == tmp_path / "own"
    monkeypatch.delenv("XNAT4TESTS_HOME")
    monkeypatch.delenv("PACSBOX_HOME")
    assert xnat4tests_home() == Path.home() / ".xnat4tests"
