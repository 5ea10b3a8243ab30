"""Reset and snapshot/restore give each test a known archive: every face sees exactly the saved state."""

from __future__ import annotations

import hashlib

import pytest
import requests

from pacsbox import Server
from pacsbox.datasets import ct_study


def _get(server, path: str):
    answer = requests.get(server.url + path, auth=server.auth, timeout=30)
    answer.raise_for_status()
    return answer.json()


def _state(server) -> dict:
    """Everything a test could observe: IDs, bytes, change log, XNAT objects, files on disk."""
    instances = sorted(_get(server, "/instances"))
    digests = {i: hashlib.md5(requests.get(f"{server.url}/instances/{i}/file", auth=server.auth,
                                            timeout=30).content).hexdigest() for i in instances}
    store = server.archive.store_area
    return {
        "instances": digests,
        "changes": _get(server, "/changes?limit=1000"),
        "projects": sorted(row["ID"] for row in _get(server, "/data/projects?format=json")["ResultSet"]["Result"]),
        "files": sorted(store.all_uuids()),
        "xnat_folders": sorted(p.relative_to(store.root).as_posix() for p in (store.root / "archive").rglob("*")),
    }


@pytest.fixture
def server():
    with Server() as running:
        yield running


def _populate(server) -> None:
    for _, data in ct_study(slices=3, size=16):
        requests.post(server.url + "/instances", data=data, auth=server.auth, timeout=30).raise_for_status()
    requests.put(server.url + "/data/projects/SNAP", auth=server.auth, timeout=30).raise_for_status()
    requests.put(server.url + "/data/projects/SNAP/resources/NOTES/files/readme.txt", data=b"kept",
                 auth=server.auth, timeout=30).raise_for_status()


def test_restore_brings_back_exactly_the_saved_state(server):
    _populate(server)
    saved = _state(server)
    assert len(saved["instances"]) == 3 and saved["projects"] == ["SNAP"] and len(saved["files"]) == 3
    server.snapshot("base")
    # a test changes everything it can
    first = sorted(saved["instances"])[0]
    requests.delete(f"{server.url}/instances/{first}", auth=server.auth, timeout=30).raise_for_status()
    for _, data in ct_study(seed=7, slices=2, size=16):
        requests.post(server.url + "/instances", data=data, auth=server.auth, timeout=30).raise_for_status()
    requests.put(server.url + "/data/projects/OTHER", auth=server.auth, timeout=30).raise_for_status()
    requests.delete(server.url + "/data/projects/SNAP/resources/NOTES/files/readme.txt", auth=server.auth,
                    timeout=30).raise_for_status()
    assert _state(server) != saved
    server.restore("base")
    assert _state(server) == saved
    readme = requests.get(server.url + "/data/projects/SNAP/resources/NOTES/files/readme.txt", auth=server.auth,
                          timeout=30)
    assert readme.content == b"kept"
    # the archive keeps working after a restore: new data gets new change numbers after the saved ones
    last = saved["changes"]["Last"]
    for _, data in ct_study(seed=9, slices=1, size=16):
        requests.post(server.url + "/instances", data=data, auth=server.auth, timeout=30).raise_for_status()
    assert _get(server, "/changes")["Last"] > last
    server.restore("base")  # and the same snapshot can be restored again and again
    assert _state(server) == saved


def test_reset_empties_every_face_and_the_disk(server):
    _populate(server)
    server.reset()
    state = _state(server)
    assert state["instances"] == {} and state["projects"] == [] and state["files"] == []
    assert state["changes"]["Changes"] == [] and state["xnat_folders"] == []
    assert _get(server, "/statistics")["CountInstances"] == 0
    _populate(server)  # and fills again as usual
    assert len(_state(server)["instances"]) == 3


def test_snapshot_routes_need_credentials_and_valid_names(server):
    assert requests.post(server.url + "/pacsbox/reset", timeout=30).status_code == 401
    assert requests.put(server.url + "/pacsbox/snapshots/x", timeout=30).status_code == 401
    bad = requests.put(server.url + "/pacsbox/snapshots/..hidden", auth=server.auth, timeout=30)
    assert bad.status_code == 400 and "snapshot name" in bad.json()["Details"]
    missing = requests.post(server.url + "/pacsbox/snapshots/never/restore", auth=server.auth, timeout=30)
    assert missing.status_code == 404 and missing.json()["HttpError"] == "Not Found"
    server.snapshot("one")
    assert [s["Name"] for s in _get(server, "/pacsbox/snapshots")] == ["one"]
    assert requests.delete(server.url + "/pacsbox/snapshots/one", auth=server.auth, timeout=30).status_code == 200
    assert _get(server, "/pacsbox/snapshots") == []


def test_in_process_server_serves_dicom_too(server):
    from pynetdicom import AE

    ae = AE(ae_title="TESTER")
    ae.add_requested_context("1.2.840.10008.1.1")
    association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert association.is_established
    assert association.send_c_echo().Status == 0
    association.release()
