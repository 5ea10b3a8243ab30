"""``pacsbox info``, ``snapshots``, ``rm`` and ``prune`` (issue 22), and ``--engine orthanc`` showing only the faces
the real Orthanc has, with ``add-data`` choosing a method it supports."""

from __future__ import annotations

import json

import pytest
import requests

from pacsbox.lifecycle import InstancePaths
from pacsbox.lifecycle.engines import orthanc_binary
from tests.lifecycle.conftest import is_gone
from tests.lifecycle.test_cli import pacsbox


def test_info_snapshots_rm_and_prune(home, tmp_path):
    started = json.loads(pacsbox(home, "start", "kept", "--with-data", "user-training", "--json").stdout)
    pacsbox(home, "snapshot", "loaded", "kept")
    described = json.loads(pacsbox(home, "info", "kept", "--json").stdout)
    assert described["counts"] == {"Patients": 4, "Studies": 8, "Series": 16, "Instances": 128}
    assert described["xnat_projects"] == ["TRAINING"] and described["snapshots"] == ["loaded"]
    assert described["faces"] == {"Orthanc REST API": started["url"], "XNAT REST API": started["url"] + "/data",
                                  "DICOMweb": started["url"] + "/dicom-web", "DICOM": started["dicom"]}
    assert described["disk_bytes"] > 100_000
    text = pacsbox(home, "info", "--name", "kept").stdout
    assert "holds: 4 patients, 8 studies, 16 series, 128 instances" in text and "XNAT projects: TRAINING" in text

    assert json.loads(pacsbox(home, "snapshots", "--json").stdout) == [
        {"name": "kept", "status": "running", "snapshots": ["loaded"]}]
    missing = pacsbox(home, "snapshots", "kept", "--delete", "nosuch", check=1)
    assert missing.stderr == "Error: instance 'kept' has no snapshot named 'nosuch' (its snapshots: loaded)\n"
    assert pacsbox(home, "snapshots", "kept", "--delete", "loaded").stdout == "deleted loaded of 'kept'\n"
    assert pacsbox(home, "snapshots", "kept").stdout == "kept: no snapshots\n"

    refused = pacsbox(home, "rm", "kept", check=1)
    assert refused.stderr == "Error: instance 'kept' is running: stop it first (`pacsbox stop kept`), or use --force\n"
    assert pacsbox(home, "rm", "nosuch", check=1).stderr.startswith("Error: no instance named 'nosuch' (known: kept")

    outside = tmp_path / "outside-data"
    other = json.loads(pacsbox(home, "start", "other", "--data-dir", str(outside), "--json").stdout)
    pacsbox(home, "stop", "other")
    assert json.loads(pacsbox(home, "prune", "--dry-run", "--json").stdout)[0]["name"] == "other"
    assert InstancePaths.of("other", home).root.is_dir()  # a dry run removes nothing
    pruned = pacsbox(home, "prune").stdout
    assert pruned.startswith("removed 'other' (") and f"its data folder {outside} is kept" in pruned
    assert not InstancePaths.of("other", home).root.exists() and outside.is_dir() and is_gone(other["pid"])

    removed = pacsbox(home, "rm", "kept", "--force").stdout
    assert removed.startswith("removed 'kept' (") and is_gone(started["pid"])
    assert not InstancePaths.of("kept", home).root.exists()
    assert pacsbox(home, "ls").stdout.startswith("no instances")


@pytest.mark.skipif(orthanc_binary() is None, reason="needs the real Orthanc: bash scripts/install-test-deps.sh")
def test_the_real_orthanc_shows_only_its_faces_and_add_data_picks_its_method(home):
    started = pacsbox(home, "start", "real", "--engine", "orthanc")
    assert "XNAT" not in started.stdout and "Orthanc REST API at http://127.0.0.1:" in started.stdout
    record = json.loads(pacsbox(home, "status", "real", "--json").stdout)[0]
    assert record["xnat_url"] is None
    described = json.loads(pacsbox(home, "info", "real", "--json").stdout)
    assert set(described["faces"]) == {"Orthanc REST API", "DICOM"} and "xnat_projects" not in described

    refused = pacsbox(home, "add-data", "dummydicom", "real", "--method", "xnat-import", check=2)
    assert ("instance 'real' is the real Orthanc, which has no XNAT API: use --method orthanc-rest or --method "
            "c-store") in refused.stderr
    url, auth = record["url"], ("admin", "admin")
    assert requests.get(url + "/statistics", auth=auth, timeout=30).json()["CountInstances"] == 0  # nothing sent
    added = pacsbox(home, "add-data", "dummydicom", "real").stdout
    assert added.startswith("dummydicom via orthanc-rest: 28 files")
    assert requests.get(url + "/statistics", auth=auth, timeout=30).json()["CountInstances"] == 28
