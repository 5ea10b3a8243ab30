"""Sharing subjects and experiments into other projects through the real clients: the shared project lists
and finds them (by ID and by their label there), the primary project and accession IDs stay, unsharing, and
refusals (a project that does not exist, a taken label, the object's own project) change nothing."""

from __future__ import annotations

import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError


@pytest.fixture(scope="module")
def objects(connection):
    primary = connection.classes.ProjectData(parent=connection, id="SHARE_FROM", name="From")
    connection.classes.ProjectData(parent=connection, id="SHARE_TO", name="To")
    subject = connection.classes.SubjectData(parent=primary, label="shared_subject")
    session = connection.classes.MrSessionData(parent=subject, label="shared_session")
    connection.classes.MrScanData(parent=session, id="1", type="t1")
    return subject, session


def test_share_a_subject_and_an_experiment(connection, objects, xnat_server):
    subject, session = objects
    subject.share("SHARE_TO", label="alias_subject")
    session.share("SHARE_TO")
    connection.clearcache()
    target = connection.projects["SHARE_TO"]
    assert list(target.subjects.keys()) == [subject.id]
    shared = target.subjects["alias_subject"]  # by the label it has there
    assert (shared.id, shared.label) == (subject.id, "alias_subject")
    primary = connection.get_json(f"/data/subjects/{subject.id}")["items"][0]["data_fields"]["project"]
    assert primary == "SHARE_FROM"  # the primary project is kept
    assert target.subjects[subject.id].id == subject.id  # and by ID
    assert [e.label for e in target.experiments.values()] == ["shared_session"]
    assert target.experiments["shared_session"].scans["1"].type == "t1"
    rows = connection.get_json(subject.fulluri + "/projects")["ResultSet"]["Result"]
    assert [(r["ID"], r["label"], r["primary"]) for r in rows] == [
        ("SHARE_FROM", "shared_subject", "true"), ("SHARE_TO", "alias_subject", "false")]
    data = connection.get_json(f"/data/subjects/{subject.id}")
    shares = next(c for c in data["items"][0]["children"] if c["field"] == "sharing/share")
    assert [i["data_fields"] for i in shares["items"]] == [{"label": "alias_subject", "project": "SHARE_TO"}]
    # nothing moved on disk: the session's folder stays under its primary project
    assert (xnat_server.data_dir / "archive/SHARE_FROM/arc001/shared_session").is_dir()
    assert not (xnat_server.data_dir / "archive/SHARE_TO/arc001/shared_session").exists()


def test_pyxnat_sees_the_shares(xnat_server, objects):
    subject, _ = objects
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    try:
        assert "SHARE_TO" in interface.select.project("SHARE_FROM").subject("shared_subject").shares().get()
        assert subject.id in interface.select.project("SHARE_TO").subjects().get()
    finally:
        interface.disconnect()


def test_refusals_change_nothing(connection, objects, http, xnat_server):
    subject, _session = objects
    before = connection.get_json(subject.fulluri + "/projects")
    with pytest.raises(XNATResponseError, match="404"):
        subject.share("NO_SUCH_PROJECT")
    with pytest.raises(XNATResponseError, match="400"):
        subject.share("SHARE_FROM")  # its own project
    other = connection.classes.SubjectData(parent=connection.projects["SHARE_TO"], label="native")
    with pytest.raises(XNATResponseError, match="409"):
        subject.share("SHARE_TO", label="native")  # a label taken there
    response = http.put(f"{xnat_server.url}/data/subjects/{subject.id}/projects/SHARE_TO",
                        params={"primary": "true"})
    assert response.status_code == 501
    assert connection.get_json(subject.fulluri + "/projects") == before
    assert other.id != subject.id


def test_unshare(connection, objects):
    subject, session = objects
    connection.delete(f"{session.fulluri}/projects/SHARE_TO")
    connection.delete(f"{subject.fulluri}/projects/SHARE_TO")
    connection.clearcache()
    assert subject.id not in connection.projects["SHARE_TO"].subjects
    assert connection.projects["SHARE_TO"].experiments.listing == []
    with pytest.raises(XNATResponseError, match="404"):
        connection.delete(f"{subject.fulluri}/projects/SHARE_TO")
    with pytest.raises(XNATResponseError, match="400"):
        connection.delete(f"{subject.fulluri}/projects/SHARE_FROM")
