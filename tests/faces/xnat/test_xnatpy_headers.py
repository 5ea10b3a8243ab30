"""DICOM headers through the real clients: ``pullDataFromHeaders`` fills scan and session fields from files
uploaded into a scan resource (xnatpy's put, pyxnat's pull_data_from_headers), and the DICOM dump service
(``scan.dicom_dump()``, ``services.dicom_dump``) shows a file's header."""

from __future__ import annotations

import io
import itertools

import pydicom
import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError

from .helpers import mr_session

EXTRA = {"SeriesDescription": "t1_mprage", "StationName": "SKYRA1", "Manufacturer": "SIEMENS",
         "ManufacturerModelName": "Skyra", "RepetitionTime": "2300", "EchoTime": "2.98", "FlipAngle": "9",
         "MagneticFieldStrength": "3", "StudyDate": "20240102", "StudyTime": "101112"}
_project_numbers = itertools.count(1)


@pytest.fixture
def project_id():
    """A project of the test's own: the scan fields one test pulls from the headers are never there yet for
    test_scan_fields_stay_empty_until_pulled, whatever order the tests run in."""
    return f"HEADERS{next(_project_numbers)}"


@pytest.fixture
def uploaded(connection, project_id):
    """A session whose scan resource holds three DICOM files of one series, a GIF and a text file."""
    project = connection.classes.ProjectData(parent=connection, id=project_id, name=f"Headers {project_id}")
    subject = connection.classes.SubjectData(parent=project, label="h_subject")
    session = connection.classes.MrSessionData(parent=subject, label="h_session")
    # a scan without a type (xnatpy's classes insist on one, so a plain PUT as XNAT's REST API allows)
    connection.put(session.fulluri + "/scans/1", query={"xsiType": "xnat:mrScanData"})
    connection.clearcache()  # xnatpy's listings read by an earlier test would miss the new session and scan
    scan = connection.experiments[session.id].scans["1"]
    resource = scan.create_resource("DICOM", format="DICOM")
    files = mr_session("headers", series=1, per_series=3, extra=EXTRA)
    for name, data in files:
        resource.upload_data(data, name.rsplit("/", 1)[-1])
    resource.upload_data(b"GIF89a\x01\x00\x01\x00 not DICOM", "snapshot.gif")
    resource.upload_data(b"notes", "notes.txt")
    return session, files


def test_scan_fields_stay_empty_until_pulled(connection, uploaded):
    session, _ = uploaded
    connection.clearcache()
    assert connection.experiments[session.id].scans["1"].uid is None


def test_pull_data_from_headers_fills_scan_and_session(connection, uploaded):
    session, files = uploaded
    connection.put(session.fulluri, query={"pullDataFromHeaders": "true"})
    connection.clearcache()
    fresh = connection.experiments[session.id]
    scan = fresh.scans["1"]
    first = pydicom.dcmread(io.BytesIO(files[0][1]))
    assert scan.uid == first.SeriesInstanceUID
    assert scan.frames == 3
    assert scan.modality == "MR"
    assert scan.series_description == "t1_mprage"
    assert scan.type == "t1_mprage"  # a scan without a type takes its series description
    assert scan.scanner.manufacturer == "SIEMENS" and scan.scanner.model == "Skyra"
    assert scan.parameters.tr == pytest.approx(2300) and scan.parameters.flip == pytest.approx(9)
    assert scan.field_strength == "3"
    assert fresh.uid == first.StudyInstanceUID
    assert str(fresh.date) == "2024-01-02"
    assert fresh.dcm_patient_id == first.PatientID


def test_pyxnat_pull_data_from_headers(xnat_server, uploaded, connection, project_id):
    _session, _ = uploaded
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    try:
        experiment = interface.select.project(project_id).subject("h_subject").experiment("h_session")
        experiment.pull_data_from_headers()
        assert experiment.scan("1").attrs.get("xnat:mrScanData/frames") == "3"
    finally:
        interface.disconnect()


def test_dicom_dump_of_a_scan_and_a_session(connection, uploaded, project_id):
    session, _files = uploaded
    scan = connection.experiments[session.id].scans["1"]
    rows = scan.dicom_dump()
    by_tag = {row["tag1"]: row for row in rows if not row["tag2"]}
    assert by_tag["(0008,103E)"]["value"] == "t1_mprage"
    assert by_tag["(0008,103E)"]["desc"] == "Series Description"
    assert by_tag["(0008,0060)"]["vr"] == "CS"
    chosen = connection.services.dicom_dump(f"/archive/projects/{project_id}/experiments/{session.id}",
                                            fields=["StationName", "00080070"])
    assert [(row["tag1"], row["value"]) for row in chosen] == [("(0008,0070)", "SIEMENS"), ("(0008,1010)", "SKYRA1")]


def test_dicom_dump_refusals(connection, uploaded, project_id):
    session, _ = uploaded
    with pytest.raises(XNATResponseError, match="404"):
        connection.services.dicom_dump(f"/archive/projects/{project_id}/experiments/{session.id}/scans/99")
    with pytest.raises(XNATResponseError, match="400"):
        connection.services.dicom_dump("/archive/nothing/here")
    with pytest.raises(XNATResponseError, match="400"):
        connection.services.dicom_dump(f"/archive/experiments/{session.id}", fields=["NotAKeyword"])
    empty = connection.classes.MrScanData(parent=connection.experiments[session.id], id="2", type="empty")
    with pytest.raises(XNATResponseError, match="404"):
        empty.dicom_dump()
