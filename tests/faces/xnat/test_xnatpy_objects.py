"""The real xnatpy against a real pacsbox: connect, create, look up, set fields, relabel and delete objects."""

from __future__ import annotations

import pytest
import requests
import xnat
from xnat.exceptions import XNATLoginFailedError

from tests.support.pacsbox_proc import RunningPacsbox

from .conftest import SITE_ID


def test_connect_reports_version_user_and_classes(connection):
    assert connection.logged_in_user == "admin"
    assert connection.xnat_version.startswith("1.8")
    for name in ("ProjectData", "SubjectData", "MrSessionData", "CtSessionData", "PetSessionData", "MrScanData",
                 "ResourceCatalog"):
        assert hasattr(connection.classes, name), name


def test_disconnect_ends_the_session(xnat_server):
    session = xnat.connect(xnat_server.url, user="admin", password="admin", loglevel="ERROR")
    token = session.jsession
    assert requests.get(xnat_server.url + "/data/auth", cookies={"JSESSIONID": token}).status_code == 200
    session.disconnect()
    response = requests.get(xnat_server.url + "/data/auth", cookies={"JSESSIONID": token})
    assert response.status_code == 401
    assert not response.text.startswith(("<!DOCTYPE", "<html>"))


def test_wrong_password_raises_login_failed(xnat_server):
    with pytest.raises(XNATLoginFailedError):
        xnat.connect(xnat_server.url, user="admin", password="not-the-password", loglevel="CRITICAL")
    with pytest.raises(XNATLoginFailedError):
        xnat.connect(xnat_server.url, user="nobody", password="admin", loglevel="CRITICAL")


def test_create_through_classes_and_look_up_by_id_and_label(connection):
    project = connection.classes.ProjectData(parent=connection, id="CLS", name="Classes project")
    assert project.id == "CLS"
    connection.projects.clearcache()
    assert connection.projects["CLS"].name == "Classes project"

    subject = connection.classes.SubjectData(parent=project, label="cls_subject")
    assert subject.id.startswith(f"{SITE_ID}_S")
    session = connection.classes.MrSessionData(parent=subject, label="cls_session")
    assert session.id.startswith(f"{SITE_ID}_E")
    scan = connection.classes.MrScanData(parent=session, id="7", type="T1w", series_description="t1 mprage")
    assert scan.id == "7"
    resource = connection.classes.ResourceCatalog(parent=scan, label="NIFTI", format="NIFTI")
    assert resource.label == "NIFTI"

    project = connection.projects["CLS"]
    project.clearcache()
    # the session-wide listings may have been read (and cached by xnatpy) by another test before these objects
    connection.subjects.clearcache()
    connection.experiments.clearcache()
    assert project.subjects["cls_subject"].id == subject.id  # by label
    assert project.subjects[subject.id].label == "cls_subject"  # by ID
    assert connection.subjects[subject.id].label == "cls_subject"  # /data/subjects/{ID}
    assert project.experiments["cls_session"].id == session.id
    assert connection.experiments[session.id].label == "cls_session"  # /data/experiments/{ID}
    found = connection.experiments[session.id]
    assert found.__xsi_type__ == "xnat:mrSessionData"
    assert found.scans["7"].type == "T1w"  # by ID
    assert found.scans["T1w"].id == "7"  # by type
    assert found.scans["7"].series_description == "t1 mprage"
    assert found.scans["7"].resources["NIFTI"].format == "NIFTI"
    assert list(found.scans["7"].resources["NIFTI"].files) == []


def test_create_through_raw_put_under_every_alias(http, xnat_server, connection):
    url = xnat_server.url
    assert http.put(url + "/data/archive/projects/RAW").status_code == 201
    assert http.put(url + "/data/archive/projects/RAW").status_code == 200  # already there
    created = http.put(url + "/REST/projects/RAW/subjects/raw_subject",
                       params={"xsiType": "xnat:subjectData", "req_format": "qs"})
    assert created.status_code == 201
    subject_id = created.text
    assert subject_id.startswith(f"{SITE_ID}_S")
    again = http.put(url + "/data/projects/RAW/subjects/raw_subject")
    assert (again.status_code, again.text) == (200, subject_id)
    experiment = http.put(url + f"/data/projects/RAW/subjects/{subject_id}/experiments/raw_ct",
                          params={"xsiType": "xnat:ctSessionData", "xnat:ctSessionData/date": "2024-05-06"})
    assert experiment.status_code == 201
    experiment_id = experiment.text
    scan = http.put(url + f"/data/experiments/{experiment_id}/scans/2",
                    params={"xsiType": "xnat:ctScanData", "xnat:ctScanData/type": "AXIAL"})
    assert scan.status_code == 201

    # the same experiment under every URL form, by ID and by label
    for path in (f"/data/experiments/{experiment_id}", "/data/projects/RAW/experiments/raw_ct",
                 "/data/archive/projects/RAW/subjects/raw_subject/experiments/raw_ct",
                 f"/REST/projects/RAW/subjects/{subject_id}/experiments/{experiment_id}",
                 f"/data/subjects/{subject_id}/experiments/raw_ct"):
        item = http.get(url + path, params={"format": "json"}).json()["items"][0]
        assert item["meta"]["xsi:type"] == "xnat:ctSessionData", path
        assert item["data_fields"]["ID"] == experiment_id
        assert item["data_fields"]["label"] == "raw_ct"
        assert item["data_fields"]["date"] == "2024-05-06"

    connection.projects.clearcache()
    session = connection.projects["RAW"].subjects["raw_subject"].experiments["raw_ct"]
    assert session.__xsi_type__ == "xnat:ctSessionData"
    assert session.scans["2"].type == "AXIAL"


def test_listings_in_json_and_csv_with_columns(http, xnat_server):
    url = xnat_server.url
    http.put(url + "/data/projects/LIST")
    for label in ("b_subject", "a_subject"):
        http.put(url + f"/data/projects/LIST/subjects/{label}")
    listing = http.get(url + "/data/projects/LIST/subjects", params={"format": "json", "columns": "ID,label"})
    result = listing.json()["ResultSet"]
    assert result["totalRecords"] == "2"
    assert {row["label"] for row in result["Result"]} == {"a_subject", "b_subject"}
    assert all(set(row) == {"ID", "label", "URI"} for row in result["Result"])
    csv = http.get(url + "/data/projects/LIST/subjects", params={"format": "csv", "columns": "ID,label"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "ID,label,URI"
    assert len(lines) == 3
    # filters on the listing's columns, with wildcards
    filtered = http.get(url + "/data/projects/LIST/subjects", params={"format": "json", "label": "a_*"}).json()
    assert [row["label"] for row in filtered["ResultSet"]["Result"]] == ["a_subject"]
    # an empty listing still has its header in CSV
    empty = http.get(url + "/data/projects/LIST/experiments", params={"format": "csv"})
    assert empty.text.startswith("ID,project,")


def test_set_fields_through_xnatpy_and_read_them_back(connection, http, xnat_server):
    project = connection.classes.ProjectData(parent=connection, id="FIELDS", name="Fields")
    subject = connection.classes.SubjectData(parent=project, label="f_subject")
    session = connection.classes.MrSessionData(parent=subject, label="f_session")
    scan = connection.classes.MrScanData(parent=session, id="1", type="T2w")

    subject.demographics.gender = "female"
    subject.demographics.yob = 1980
    session.date = "2023-04-05"
    session.note = "a note"
    scan.quality = "questionable"
    project.description = "a description"
    # a custom field, as XNAT's REST API sets them
    http.put(xnat_server.url + f"/data/subjects/{subject.id}",
             params={"xsiType": "xnat:subjectData", "xnat:subjectData/fields/field[name=group]/field": "control"})

    fresh = xnat.connect(xnat_server.url, user="admin", password="admin", loglevel="ERROR")
    try:
        read_subject = fresh.subjects[subject.id]
        assert read_subject.demographics.gender == "female"
        assert read_subject.demographics.yob == 1980
        read_session = fresh.experiments[session.id]
        assert str(read_session.date) == "2023-04-05"
        assert read_session.note == "a note"
        assert read_session.scans["1"].quality == "questionable"
        assert fresh.projects["FIELDS"].description == "a description"
    finally:
        fresh.disconnect()
    row = http.get(xnat_server.url + "/data/projects/FIELDS/subjects", params={"format": "json"}).json()
    assert row["ResultSet"]["Result"][0]["gender"] == "female"
    item = http.get(xnat_server.url + f"/data/subjects/{subject.id}", params={"format": "json"}).json()["items"][0]
    custom = next(child for child in item["children"] if child["field"] == "fields/field")
    assert custom["items"][0]["data_fields"] == {"name": "group", "field": "control"}


def test_relabel_moves_the_session_folder(connection, xnat_server):
    project = connection.classes.ProjectData(parent=connection, id="RELABEL", name="Relabel")
    subject = connection.classes.SubjectData(parent=project, label="r_subject")
    session = connection.classes.MrSessionData(parent=subject, label="before")
    arc = xnat_server.data_dir / "archive" / "RELABEL" / "arc001"
    assert sorted(p.name for p in arc.iterdir()) == ["before"]
    session.label = "after"
    connection.experiments.clearcache()  # (another test may have listed the experiments before this one)
    assert connection.experiments[session.id].label == "after"
    assert sorted(p.name for p in arc.iterdir()) == ["after"]


def test_delete_objects(connection, http, xnat_server):
    project = connection.classes.ProjectData(parent=connection, id="DEL", name="Delete")
    subject = connection.classes.SubjectData(parent=project, label="d_subject")
    session = connection.classes.MrSessionData(parent=subject, label="d_session")
    connection.classes.MrScanData(parent=session, id="1", type="T1w")
    session_id, subject_id = session.id, subject.id
    archive = xnat_server.data_dir / "archive" / "DEL"
    # objects as listings give them (xnatpy can only forget objects it listed itself)
    connection.projects.clearcache()
    project = connection.projects["DEL"]
    subject = project.subjects["d_subject"]
    session = subject.experiments["d_session"]

    session.scans["1"].delete()
    assert http.get(xnat_server.url + f"/data/experiments/{session_id}/scans/1").status_code == 404
    session.delete()
    assert http.get(xnat_server.url + f"/data/experiments/{session_id}").status_code == 404
    assert not (archive / "arc001" / "d_session").exists()
    subject.delete()
    assert http.get(xnat_server.url + f"/data/subjects/{subject_id}").status_code == 404
    project.delete()
    assert http.get(xnat_server.url + "/data/projects/DEL").status_code == 404
    assert not archive.exists()


def test_xnat4tests_readme_example():
    """xnat4tests' README: connect, create a project, a subject and an MR session; then the archive folder
    holds exactly the project, and its arc001 exactly the session label."""
    with RunningPacsbox({"XnatSiteId": SITE_ID}) as server:
        project, subject_label, session_label = "MY_TEST_PROJECT", "MYSUBJECT", "MYSESSION"
        with xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR") as login:
            login.put(f"/data/archive/projects/{project}")
            xsubject = login.classes.SubjectData(label=subject_label, parent=login.projects[project])
            login.classes.MrSessionData(label=session_label, parent=xsubject)
        archive = server.data_dir / "archive"
        assert [p.name for p in archive.iterdir()] == [project]
        assert [p.name for p in (archive / project / "arc001").iterdir()] == [session_label]


def test_authentication_disabled():
    with RunningPacsbox({"AuthenticationEnabled": False}) as server:
        assert requests.put(server.url + "/data/projects/OPEN").status_code == 201
        assert requests.get(server.url + "/data/projects", params={"format": "json"}).json()[
            "ResultSet"]["totalRecords"] == "1"
        with xnat.connect(server.url, user="admin", password="anything", loglevel="ERROR") as session:
            assert list(session.projects.keys()) == ["OPEN"]
