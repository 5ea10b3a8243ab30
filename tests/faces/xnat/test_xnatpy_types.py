"""The XNAT 1.8 types downstream suites create (``ScScanData``, PET/MR and other sessions, QC assessments,
reconstructions) exist in the served schemas and through xnatpy's classes; unknown or abstract types are refused
with 400 and create nothing."""

from __future__ import annotations

import pytest
from xnat.exceptions import XNATResponseError

from pacsbox.faces.xnat.schemas import DATA_TYPES

NEW_TYPES = {
    "scan": ("ScScanData", "RfScanData", "SegScanData", "MrsScanData", "EcgScanData", "Xa3DScanData",
             "OtherQcScanData", "VoiceAudioScanData"),
    "session": ("PetmrSessionData", "RfSessionData", "EcgSessionData", "OptSessionData", "SmSessionData",
                "RtImageSessionData", "EegSessionData"),
    "assessor": ("QcAssessmentData", "QcManualAssessorData"),
}


@pytest.fixture(scope="module")
def session(connection):
    project = connection.classes.ProjectData(parent=connection, id="TYPES", name="Types")
    subject = connection.classes.SubjectData(parent=project, label="t_subject")
    return connection.classes.MrSessionData(parent=subject, label="t_session")


def test_classes_exist(connection):
    for names in NEW_TYPES.values():
        for name in names:
            assert hasattr(connection.classes, name), name
    assert hasattr(connection.classes, "ReconstructedImageData")
    assert DATA_TYPES["xnat:qcAssessmentData"].kind == "assessor"
    assert DATA_TYPES["xnat:reconstructedImageData"].kind == "reconstruction"
    assert DATA_TYPES["xnat:petmrSessionData"].is_a("xnat:petSessionData")


def test_secondary_capture_scan(connection, session):
    scan = connection.classes.ScScanData(parent=session, id="99", type="snapshot", series_description="screen")
    connection.clearcache()
    fresh = connection.experiments[session.id].scans["99"]
    assert type(fresh).__name__ == "ScScanData"
    assert (fresh.type, fresh.series_description) == ("snapshot", "screen")
    assert scan.__xsi_type__ == "xnat:scScanData"
    rows = connection.get_json(session.fulluri + "/scans")["ResultSet"]["Result"]
    assert {row["ID"]: row["xsiType"] for row in rows}["99"] == "xnat:scScanData"


def test_new_session_types(connection, session):
    subject = connection.projects["TYPES"].subjects["t_subject"]
    created = connection.classes.PetmrSessionData(parent=subject, label="petmr")
    connection.clearcache()
    assert type(connection.experiments[created.id]).__name__ == "PetmrSessionData"
    rf = connection.classes.RfScanData(parent=connection.experiments[created.id], id="1", type="fluoro")
    assert rf.__xsi_type__ == "xnat:rfScanData"


@pytest.mark.parametrize("xsi_type", ["xnat:noSuchScanData", "xnat:imageScanData", "xnat:mrSessionData"])
def test_unknown_or_wrong_scan_types_are_refused(connection, session, http, xnat_server, xsi_type):
    url = f"{xnat_server.url}/data/experiments/{session.id}/scans/77"
    response = http.put(url, params={"xsiType": xsi_type})
    assert response.status_code == 400, response.text
    assert "type" in response.text and not response.text.startswith("<")
    with pytest.raises(XNATResponseError, match="404"):
        connection.get(f"/data/experiments/{session.id}/scans/77")


@pytest.mark.parametrize("xsi_type", ["xnat:noSuchSessionData", "xnat:imageSessionData", "xnat:mrScanData"])
def test_unknown_experiment_types_are_refused(http, xnat_server, session, xsi_type):
    url = f"{xnat_server.url}/data/projects/TYPES/subjects/t_subject/experiments/bad_type"
    response = http.put(url, params={"xsiType": xsi_type})
    assert response.status_code == 400, response.text
    assert http.get(url, params={"format": "json"}).status_code == 404
