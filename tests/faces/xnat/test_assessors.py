"""Assessors through the real clients: create (xnatpy classes, pyxnat), list under their session, attributes,
resources and files (also under /out/resources) in XNAT's ASSESSORS folder, deletion with the session; an
unknown type is a 400 that creates nothing."""

from __future__ import annotations

import itertools

import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError

_project_numbers = itertools.count(1)


@pytest.fixture
def project_id():
    """The ID of a project of the test's own: assessors one test adds (or the session test_delete_and_cascade
    deletes) never reach another's exact listings, whatever order the tests run in."""
    return f"ASSESS{next(_project_numbers)}"


@pytest.fixture
def session(connection, project_id):
    project = connection.classes.ProjectData(parent=connection, id=project_id, name=f"Assess {project_id}")
    subject = connection.classes.SubjectData(parent=project, label="a_subject")
    made = connection.classes.MrSessionData(parent=subject, label="a_session")
    connection.clearcache()  # xnatpy's listings (connection.experiments) read before this test would miss it
    return made


def test_create_list_and_read(connection, session, project_id):
    qc = connection.classes.QcAssessmentData(parent=session, label="qc1", type="manual")
    assert qc.id.startswith("Xnat4Tests_E") and qc.id != session.id
    connection.clearcache()
    fresh = connection.experiments[session.id]
    assert list(fresh.assessors.keys()) == [qc.id]
    found = fresh.assessors["qc1"]
    assert type(found).__name__ == "QcAssessmentData"
    assert (found.label, found.type, found.image_session_id) == ("qc1", "manual", session.id)
    found.type = "automatic"  # an attribute set through xnatpy
    connection.clearcache()
    assert connection.experiments[session.id].assessors["qc1"].type == "automatic"
    # assessors are not sessions: project and subject listings leave them out
    assert list(connection.projects[project_id].experiments.keys()) == [session.id]


def test_resources_and_files(connection, session, project_id, xnat_server):
    connection.classes.QcAssessmentData(parent=session, label="qc1", type="manual")
    connection.clearcache()
    qc = connection.experiments[session.id].assessors["qc1"]
    resource = qc.create_resource("REPORT", format="PDF")
    resource.upload_data(b"report body", "report.txt")
    connection.put(f"/data/experiments/{session.id}/assessors/{qc.id}/out/resources/STATS/files/stats.csv",
                   data=b"a,b\n1,2\n")
    qc.clearcache()
    assert sorted(qc.resources.keys()) == sorted([r.id for r in qc.resources.values()])
    assert sorted(r.label for r in qc.resources.values()) == ["REPORT", "STATS"]
    assert qc.resources["REPORT"].files["report.txt"].download_stream is not None
    folder = xnat_server.data_dir / f"archive/{project_id}/arc001/a_session/ASSESSORS/qc1"
    assert (folder / "REPORT/report.txt").read_bytes() == b"report body"
    assert (folder / "STATS/stats.csv").read_bytes() == b"a,b\n1,2\n"
    names = {row["Name"] for row in connection.get_json(f"/data/experiments/{session.id}/assessors/{qc.id}/files")
             ["ResultSet"]["Result"]}
    assert names == {"report.txt", "stats.csv"}


def test_pyxnat_assessors(xnat_server, session, project_id):
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    try:
        experiment = interface.select.project(project_id).subject("a_subject").experiment("a_session")
        experiment.assessor("by_pyxnat").create(assessors="xnat:qcManualAssessorData")
        assert "by_pyxnat" in [a.label() for a in experiment.assessors()]
        assert experiment.assessor("by_pyxnat").datatype() == "xnat:qcManualAssessorData"
    finally:
        interface.disconnect()


@pytest.mark.parametrize("xsi_type", ["xnat:noSuchAssessorData", "xnat:mrSessionData", "xnat:derivedData"])
def test_unknown_assessor_type_is_refused(connection, session, http, xnat_server, xsi_type):
    before = connection.get_json(f"/data/experiments/{session.id}/assessors")
    response = http.put(f"{xnat_server.url}/data/experiments/{session.id}/assessors/bad",
                        params={"xsiType": xsi_type})
    assert response.status_code == 400 and "type" in response.text
    assert connection.get_json(f"/data/experiments/{session.id}/assessors") == before


def test_delete_and_cascade(connection, session, project_id, xnat_server):
    connection.classes.QcAssessmentData(parent=session, label="qc_gone")
    connection.delete(f"/data/experiments/{session.id}/assessors/qc_gone")
    with pytest.raises(XNATResponseError, match="404"):
        connection.get(f"/data/experiments/{session.id}/assessors/qc_gone")
    folder = xnat_server.data_dir / f"archive/{project_id}/arc001/a_session/ASSESSORS"
    assert not (folder / "qc_gone").exists()
    remaining = [row["ID"] for row in connection.get_json(f"/data/experiments/{session.id}/assessors")
                 ["ResultSet"]["Result"]]
    connection.delete(session.fulluri, query={"removeFiles": "true"})
    for assessor in remaining:
        with pytest.raises(XNATResponseError, match="404"):
            connection.get(f"/data/experiments/{assessor}")
