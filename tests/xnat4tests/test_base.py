"""start_xnat / stop_xnat / restart_xnat / connect / add_data on real pacsbox servers with the real xnatpy."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from pacsbox import lifecycle, xnat4tests
from pacsbox.xnat4tests import Config, add_data, connect, restart_xnat, start_xnat, stop_xnat
from tests.support.orthanc_ref import free_port


@pytest.fixture
def config(homes) -> Config:
    """A configuration file of its own (another container name, a free port, a root in tmp)."""
    path = homes / "pbx.yaml"
    path.write_text(f"xnat_root_dir: {homes / 'root'}\nxnat_port: {free_port()}\ndocker_container: pbx-x4t\n"
                    "docker_image: unused\nbuild_args:\n  xnat_version: 1.8.5\n")
    return Config.load(path)


def test_start_reuse_restart_relaunch(config):
    instance = start_xnat(config.loaded_from)  # by path, as `xnat4tests --config FILE start` does
    assert isinstance(instance, lifecycle.Instance) and instance.http_port == int(config.xnat_port)
    assert all((config.xnat_root_dir / folder).is_dir() for folder in config.xnat_mnt_dirs)
    with connect(config) as login:
        login.put("/data/archive/projects/KEEP")
        subject = login.classes.SubjectData(label="S1", parent=login.projects["KEEP"])
        session = login.classes.MrSessionData(label="E1", parent=subject)
        assert (subject.id, session.id) == ("Xnat4Tests_S00001", "Xnat4Tests_E00001")

    # a second start_xnat reuses the running server and its data, as xnat4tests reuses its container
    assert start_xnat(config).pid == instance.pid

    restarted = restart_xnat(config)
    assert restarted.pid != instance.pid and restarted.http_port == instance.http_port
    with connect(config) as login:
        assert list(login.projects["KEEP"].subjects["S1"].experiments.keys()) == ["Xnat4Tests_E00001"]

    stop_xnat(config)
    stop_xnat(config)  # not running: only logged, as in xnat4tests
    with pytest.raises(RuntimeError, match="Test XNAT was not running at pbx-x4t"):
        restart_xnat(config)
    with pytest.raises(requests.ConnectionError):
        requests.get(config.xnat_uri, timeout=5)

    # keep_mounts keeps xnat_root_dir (pacsbox's index lives there too, so the data come back whole)
    start_xnat(config, keep_mounts=True)
    with connect(config) as login:
        assert list(login.projects.keys()) == ["KEEP"]
    # relaunch stops the running server and wipes xnat_root_dir unless keep_mounts
    start_xnat(config, relaunch=True)
    assert list((config.xnat_root_dir / "archive").iterdir()) == []
    with connect(config) as login:
        assert list(login.projects.keys()) == []
    stop_xnat(config)


def test_add_data_methods_and_errors(config):
    with pytest.raises(RuntimeError, match=r"XNAT instance not running at http://localhost:\d+\. run `pacsbox"):
        add_data("dummydicom", config)
    start_xnat(config)
    with pytest.raises(RuntimeError, match=r"Unrecognised dataset 'nosuch', can be one of \['dummydicom'"):
        add_data("nosuch", config)
    with pytest.raises(NotImplementedError, match="not available offline"):
        add_data("openneuro-t1w", config)

    add_data("dummydicom", config, upload_method="prearchive")
    add_data("simple-dir", config, upload_method="prearchive")  # no DICOM: uploaded directly, as in xnat4tests
    with connect(config) as login:
        rows = login.get_json("/data/prearchive/projects/dummydicomproject")["ResultSet"]["Result"]
        assert [row["name"] for row in rows] == ["dummydicomsession"]
        labels = sorted(experiment.label for experiment in login.projects["SIMPLE_DIR"].experiments.values())
        assert labels == ["subject01_1", "subject02_1"]
    files = sorted((config.xnat_root_dir / "archive" / "SIMPLE_DIR" / "arc001" / "subject01_1").rglob("*.txt"))
    assert [path.name for path in files] == ["file1.txt", "file2.txt", "file3.txt"]

    # the default configuration names no running server: the one start_xnat started is used (the README fixture)
    add_data("dummydicom")
    assert (config.xnat_root_dir / "archive" / "dummydicomproject" / "arc001" / "dummydicomsession").is_dir()
    stop_xnat(config)


def test_registry(homes):
    with pytest.raises(NotImplementedError, match="no XNAT container service"):
        xnat4tests.start_registry()
    assert xnat4tests.stop_registry() is None


def test_concurrent_starts_share_one_server(config):
    # two processes (xdist workers, say) starting the same configuration at once: one server, neither wiped
    code = "import sys; from pacsbox.xnat4tests import start_xnat; print(start_xnat(sys.argv[1]).pid)"
    children = [subprocess.Popen([sys.executable, "-c", code, str(config.loaded_from)], stdout=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    pids = {child.communicate(timeout=120)[0].strip() for child in children}
    assert len(pids) == 1 and all(child.returncode == 0 for child in children)
    assert str(lifecycle.get_instance(config.docker_container).pid) in pids
    stop_xnat(config)
