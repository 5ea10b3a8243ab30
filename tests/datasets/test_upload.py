"""``add_data`` through each face of a real pacsbox, checked through the other faces: XNAT labels and scan types
where XNAT puts them, the Orthanc hierarchy, and the prearchive for C-STORE as XNAT's DICOM receiver routes it."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from pydicom import dcmread

from pacsbox import datasets
from pacsbox.datasets import UploadError, add_data
from tests.support.orthanc_ref import free_port
from tests.support.pacsbox_proc import RunningPacsbox

DUMMY = "/data/projects/dummydicomproject/subjects/dummydicomsubject/experiments/dummydicomsession"
DUMMY_SCANS = [("13", "R-L MRtrix 60 directions interleaved B0 ep2d_diff_p2"), ("2", "t1_mprage_sag_p2_iso_1"),
               ("6", "gre_field_mapping 3mm")]
DUMMY_SERIES = {"2": 8, "6": 8, "13": 12}  # instances per series number at the default size


@pytest.fixture
def server():
    with RunningPacsbox() as running:
        yield running


@pytest.fixture(scope="module")
def shared_server():
    with RunningPacsbox() as running:
        yield running


def _call(server, method, path, **params):
    """One request with the server's credentials; the connection is closed after (open ones slow shutdown)."""
    with server.session() as http:
        return http.request(method, server.url + path, params=params, timeout=30)


def _get(server, path, **params):
    response = _call(server, "GET", path, **params)
    response.raise_for_status()
    return response.json()


def _rows(server, path):
    return _get(server, path, format="json")["ResultSet"]["Result"]


def _orthanc_series(server) -> dict[str, int]:
    """Instances per series number, as the Orthanc face shows them."""
    return {s["MainDicomTags"]["SeriesNumber"]: len(s["Instances"]) for s in _get(server, "/series", expand="")}


def _expected_scans(name: str) -> dict[str, dict[str, str]]:
    """Session label -> {scan ID: scan type}, read from the generated files (SeriesNumber, SeriesDescription)."""
    scans: dict[str, dict[str, str]] = {}
    for session in datasets.sessions(name):
        for item in session.files:
            ds = dcmread(io.BytesIO(item.data), stop_before_pixels=True)
            scans.setdefault(session.label, {})[str(ds.SeriesNumber)] = ds.SeriesDescription
    return scans


def test_xnat_import_archives_dummydicom_with_xnat4tests_labels(server):
    ticks = []
    summary = add_data("dummydicom", server, progress=lambda done, total: ticks.append((done, total)))
    assert summary.files == 28 and ticks[-1] == (28, 28)
    assert len(summary.created) == 1 and summary.created[0].startswith("/data/archive/projects/dummydicomproject/")
    assert str(summary).startswith("dummydicom via xnat-import: 28 files, ")
    scans = _rows(server, DUMMY + "/scans")
    assert sorted((row["ID"], row["type"]) for row in scans) == DUMMY_SCANS
    assert {row["xsiType"] for row in scans} == {"xnat:mrScanData"}
    experiment = _get(server, DUMMY, format="json")["items"][0]
    assert experiment["meta"]["xsi:type"] == "xnat:mrSessionData"
    # the Orthanc face serves the same instances
    assert len(_get(server, "/patients")) == 1 and len(_get(server, "/studies")) == 1
    assert _orthanc_series(server) == DUMMY_SERIES
    # as xnat4tests, a session that exists is left alone
    again = add_data("dummydicom", server)
    assert (again.created, again.skipped) == ([], ["dummydicomproject/dummydicomsubject/dummydicomsession"])


def test_xnat_prearchive_files_the_session_then_it_archives(server):
    summary = add_data("dummydicom", server, method="xnat-prearchive")
    (path,) = summary.created
    assert path.startswith("/data/prearchive/projects/dummydicomproject/") and path.endswith("/dummydicomsession")
    rows = _rows(server, "/data/prearchive/projects/dummydicomproject")
    assert [(row["subject"], row["name"]) for row in rows] == [("dummydicomsubject", "dummydicomsession")]
    assert _rows(server, "/data/projects/dummydicomproject/experiments") == []
    assert _orthanc_series(server) == DUMMY_SERIES
    archived = _call(server, "POST", "/data/services/archive", src=path)
    assert archived.status_code == 200, archived.text
    assert sorted((row["ID"], row["type"]) for row in _rows(server, DUMMY + "/scans")) == DUMMY_SCANS


def test_orthanc_rest_builds_orthancs_hierarchy_outside_xnat_projects(server):
    summary = add_data("dummydicom", server, method="orthanc-rest")
    assert summary.created == [study["ID"] for study in _get(server, "/studies", expand="")]
    study = _get(server, f"/studies/{summary.created[0]}")
    assert study["PatientMainDicomTags"]["PatientID"] == "dummydicomsubject" and len(study["Series"]) == 3
    assert _orthanc_series(server) == DUMMY_SERIES
    assert _call(server, "GET", "/data/projects/dummydicomproject").status_code == 404
    # many, with its own options, adds its patients x studies x series x instances
    summary = add_data("many", server, method="orthanc-rest", patients=3, studies=2, series=2, instances=2)
    assert summary.files == 24 and len(summary.created) == 6
    statistics = _get(server, "/statistics")
    assert (statistics["CountPatients"], statistics["CountStudies"], statistics["CountSeries"],
            statistics["CountInstances"]) == (1 + 3, 1 + 6, 3 + 12, 28 + 24)


def test_c_store_lands_in_the_prearchive_as_xnats_dicom_receiver_routes_it(server):
    summary = add_data("dummydicom", server, method="c-store")
    assert summary.files == 28 and len(summary.created) == 1  # the Study Instance UID
    assert _orthanc_series(server) == DUMMY_SERIES
    rows = _rows(server, "/data/prearchive/projects")
    assert [(row["project"], row["subject"], row["name"]) for row in rows] == [
        ("Unassigned", "dummydicomsubject", "dummydicomsession")]  # no such project yet: XNAT's Unassigned
    _call(server, "PUT", "/data/archive/projects/dummydicomproject").raise_for_status()
    add_data("dummydicom", server, method="c-store", seed=1)
    rows = _rows(server, "/data/prearchive/projects/dummydicomproject")
    assert [(row["subject"], row["name"]) for row in rows] == [("dummydicomsubject", "dummydicomsession")]
    # compressed transfer syntaxes are proposed as they are, and stored as received
    add_data("compressed", server, method="c-store")
    (patient,) = [p["ID"] for p in _get(server, "/patients", expand="") if p["MainDicomTags"]["PatientID"] == "CMP0001"]
    found = Counter()
    for instance in _get(server, f"/patients/{patient}/instances"):
        response = _call(server, "GET", f"/instances/{instance['ID']}/metadata/TransferSyntax")
        found[response.text] += 1
    assert found == {"1.2.840.10008.1.2.4.50": 3, "1.2.840.10008.1.2.5": 3, "1.2.840.10008.1.2.4.80": 3,
                     "1.2.840.10008.1.2.4.90": 3, "1.2.840.10008.1.2.1.99": 3}


def test_simple_dir_files_download_identical(shared_server):
    summary = add_data("simple-dir", shared_server)
    assert len(summary.created) == 2
    for session in datasets.sessions("simple-dir"):
        base = f"/data/projects/SIMPLE_DIR/subjects/{session.subject}/experiments/{session.label}"
        assert [(row["ID"], row["type"]) for row in _rows(shared_server, base + "/scans")] == [("1", "a-directory")]
        files = _rows(shared_server, base + "/scans/1/resources/DIRECTORY/files")
        assert sorted(row["Name"] for row in files) == ["file1.txt", "file2.txt", "file3.txt"]
        expected = {session.resource_path(item): item.data for item in session.files}
        for row in files:
            downloaded = _call(shared_server, "GET", row["URI"])
            assert downloaded.status_code == 200
            assert downloaded.content == expected["a-dir/" + row["Name"]]


@pytest.mark.parametrize("method", ["xnat-prearchive", "orthanc-rest", "c-store"])
def test_simple_dir_goes_through_xnat_only(method):
    with pytest.raises(ValueError, match="holds no DICOM: only XNAT can take it"):
        add_data("simple-dir", object(), method=method)


def test_user_training_makes_four_subjects_and_eight_sessions(shared_server):
    summary = add_data("user-training", shared_server)
    assert len(summary.created) == 8
    subjects = _rows(shared_server, "/data/projects/TRAINING/subjects")
    assert sorted(row["label"] for row in subjects) == ["CONT01", "CONT02", "TEST01", "TEST02"]
    experiments = _rows(shared_server, "/data/projects/TRAINING/experiments")
    assert sorted(row["label"] for row in experiments) == sorted(
        f"{s}_MR0{n}" for s in ("CONT01", "CONT02", "TEST01", "TEST02") for n in (1, 2))
    scans = _rows(shared_server, "/data/projects/TRAINING/subjects/TEST02/experiments/TEST02_MR02/scans")
    assert sorted((row["ID"], row["type"]) for row in scans) == [("2", "t1_mprage_sag_p2_iso_1"),
                                                                  ("6", "gre_field_mapping 3mm")]


@pytest.mark.parametrize("name", ["ct-study", "pet-ct", "multiframe", "sr-seg", "compressed"])
def test_import_service_reads_the_labels_of_other_data_sets_from_the_dicom(shared_server, name):
    """These data sets pass no labels: XNAT's import rules find them in Patient Comments."""
    summary = add_data(name, shared_server)
    assert len(summary.created) == 1
    (session,) = datasets.sessions(name)
    base = f"/data/projects/{session.project}/subjects/{session.subject}/experiments/{session.label}"
    scans = {row["ID"]: row["type"] for row in _rows(shared_server, base + "/scans")}
    assert scans == _expected_scans(name)[session.label]


def test_refusals_say_what_went_wrong(shared_server):
    server = shared_server

    class Wrong:
        url, auth, aet, dicom_port = server.url, ("admin", "wrong"), server.aet, server.dicom_port

    with pytest.raises(UploadError, match="answered 401"):
        add_data("multiframe", Wrong(), method="orthanc-rest")
    Wrong.dicom_port = free_port()
    with pytest.raises(UploadError, match=r"No DICOM association with PACSBOX at 127\.0\.0\.1"):
        add_data("multiframe", Wrong(), method="c-store")
    with pytest.raises(ValueError, match="method must be one of xnat-import, xnat-prearchive"):
        add_data("multiframe", server, method="ftp")


def test_generation_is_reported_before_the_upload(shared_server):
    events = []
    add_data("user-training", shared_server, method="orthanc-rest",
             generated=lambda files, _: events.append(("generated", files)),
             progress=lambda done, total: events.append(("sent", done, total)))
    generated = [event for event in events if event[0] == "generated"]
    assert [files for _, files in generated] == [16 * (number + 1) for number in range(8)]  # one per session
    first_sent = events.index(next(event for event in events if event[0] == "sent"))
    assert first_sent == len(generated) and events[-1] == ("sent", 128, 128)
