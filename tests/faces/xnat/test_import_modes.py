"""The import service as downstream suites call it: the real xnat4tests' ``add_data("dummydicom")``, the legacy
``overwrite=True``, ``quarantine``, imports with no destination (the project's prearchive code decides, as on
XNAT), xnatpy's ``import_dir``, zips with DICOM beside other files, and the DICOM inbox."""

from __future__ import annotations

import urllib.parse

import pytest
import xnat4tests
from xnat.exceptions import XNATResponseError

from tests.support.dicomgen import zip_of

from .helpers import mr_session

# Slices of each medimages4tests series the real add_data uploads here: its own 192 + 4020 + 120 files take
# minutes to import on a shared CI machine; a few of each exercise the same calls.
SMALL_SERIES = {"t1w": 3, "dwi": 4, "fmap": 2}


@pytest.fixture(scope="module")
def projects(connection):
    for project in ("MODES", "CODE0", "CODE5"):
        connection.put(f"/data/archive/projects/{project}")
    connection.put("/data/archive/projects/CODE0/prearchive_code/0")
    connection.put("/data/archive/projects/CODE5/prearchive_code/5")
    connection.projects.clearcache()


def test_xnat4tests_add_data_dummydicom(xnat_server, monkeypatch, tmp_path):
    from medimages4tests.dummy.dicom import base
    from medimages4tests.dummy.dicom.mri.dwi.siemens.skyra import syngo_d13c as dwi
    from medimages4tests.dummy.dicom.mri.fmap.siemens.skyra import syngo_d13c as fmap
    from medimages4tests.dummy.dicom.mri.t1w.siemens.skyra import syngo_d13c as t1w

    monkeypatch.setattr(base, "cache_dir", tmp_path / "medimages4tests")  # never the user's cache of full series
    for module, key in ((t1w, "t1w"), (dwi, "dwi"), (fmap, "fmap")):
        monkeypatch.setattr(module, "num_vols", SMALL_SERIES[key])
    # xnat4tests' own configuration, pointed at pacsbox (it warns about the port: its container service needs 8080)
    with pytest.warns(UserWarning, match="port"):
        config = xnat4tests.Config(docker_host="127.0.0.1",
                                   xnat_port=str(urllib.parse.urlparse(xnat_server.url).port))
    xnat4tests.add_data("dummydicom", config_name=config)

    with xnat4tests.connect(config) as login:
        session = login.projects["dummydicomproject"].experiments["dummydicomsession"]
        assert session.__xsi_type__ == "xnat:mrSessionData"
        assert session.subject.label == "dummydicomsubject"
        counts = sorted((len(scan.resources["DICOM"].files), scan.type) for scan in session.scans.values())
        assert [count for count, _ in counts] == sorted(SMALL_SERIES.values())
        assert any(scan_type.startswith("t1_mprage") for _, scan_type in counts)
    # add_data skips a session already there, and the legacy overwrite=True appends rather than refusing
    xnat4tests.add_data("dummydicom", config_name=config)


def _import(connection, key: str, **options):
    return connection.services.import_(data=zip_of(mr_session(key, series=1, per_series=2)),
                                       content_type="application/zip", **options)


def test_legacy_overwrite_spellings(connection, projects, http, xnat_server):
    params = {"project": "MODES", "subject": "ow", "session": "ow", "dest": "/archive"}
    url = xnat_server.url + "/data/services/import"
    assert http.post(url, params=params, data=zip_of(mr_session("ow1", series=1))).status_code == 200
    refused = http.post(url, params={**params, "overwrite": "false"}, data=zip_of(mr_session("ow1", series=2)))
    assert refused.status_code == 409
    appended = http.post(url, params={**params, "overwrite": "True"}, data=zip_of(mr_session("ow1", series=2)))
    assert appended.status_code == 200, appended.text
    connection.clearcache()
    assert sorted(connection.projects["MODES"].experiments["ow"].scans.keys()) == ["1", "2"]
    bad = http.post(url, params={**params, "overwrite": "sometimes"}, data=zip_of(mr_session("ow1", series=2)))
    assert bad.status_code == 400 and "overwrite" in bad.text


def test_quarantine(connection, projects):
    experiment = _import(connection, "quar", project="MODES", subject="q", experiment="q", destination="/archive",
                         quarantine=True)
    assert connection.get(experiment.fulluri + "/status").text == "quarantine"


def test_no_destination_follows_the_prearchive_code(connection, projects):
    # a project created through REST auto-archives (code 4): an archived session of its modality's class
    experiment = _import(connection, "code4", project="MODES", subject="c4", experiment="c4")
    assert experiment.__xsi_type__ == "xnat:mrSessionData"
    assert type(experiment).__name__ == "MrSessionData"
    assert connection.get("/data/archive/projects/MODES/prearchive_code").text == "4"
    # code 4 with the session already archived: the new upload waits in the prearchive
    waiting = _import(connection, "code4", project="MODES", subject="c4", experiment="c4")
    assert waiting.uri.startswith("/data/prearchive/projects/MODES/")
    # code 0: everything to the prearchive
    pending = _import(connection, "code0", project="CODE0", subject="c0", experiment="c0")
    assert pending.uri.startswith("/data/prearchive/projects/CODE0/")
    # code 5: archived, and a second upload adds to the session
    first = _import(connection, "code5", project="CODE5", subject="c5", experiment="c5")
    second = connection.services.import_(data=zip_of(mr_session("code5", series=2)), project="CODE5", subject="c5",
                                         experiment="c5", content_type="application/zip")
    assert second.id == first.id
    connection.clearcache()
    assert sorted(connection.experiments[first.id].scans.keys()) == ["1", "2"]


def test_import_dir_without_destination_is_archived(connection, projects, tmp_path):
    for name, data in mr_session("dir", series=2, per_series=2):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "dir" / "README.txt").write_text("not DICOM")
    (tmp_path / "dir" / "snapshot.gif").write_bytes(b"GIF89a\x01\x00\x01\x00")
    experiment = connection.services.import_dir(tmp_path, project="MODES", subject="d", experiment="d")
    assert experiment.__xsi_type__ == "xnat:mrSessionData"
    assert sorted(experiment.scans.keys()) == ["1", "2"]
    assert sum(len(scan.files) for scan in experiment.scans.values()) == 4


def test_prearchive_code_refusals(connection, projects, http, xnat_server):
    response = http.put(xnat_server.url + "/data/projects/MODES/prearchive_code/3")
    assert response.status_code == 400 and "prearchive code" in response.text
    assert http.put(xnat_server.url + "/data/projects/NOPE/prearchive_code/0").status_code == 404
    assert connection.get("/data/projects/MODES/prearchive_code").text == "4"


def test_dicom_inbox(connection, projects, xnat_server, tmp_path):
    inbox = xnat_server.data_dir / "inbox" / "visit1"
    for name, data in mr_session("inbox", series=1, per_series=3):
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(data)
    request = connection.services.import_dicom_inbox(inbox, cleanup=True, project="MODES", subject="inb",
                                                     experiment="inb")
    assert request.status == "Completed"
    assert request.cleanup_after_import is True
    assert not inbox.exists()
    connection.clearcache()
    experiment = connection.projects["MODES"].experiments["inb"]
    assert len(experiment.scans["1"].files) == 3

    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(XNATResponseError, match="403"):
        connection.services.import_dicom_inbox(outside, project="MODES")
    with pytest.raises(XNATResponseError, match="403"):
        connection.services.import_dicom_inbox("../../", project="MODES")
    assert outside.exists()
