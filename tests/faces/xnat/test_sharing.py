"""Sharing subjects and experiments into other projects through the real clients: the shared project lists
and finds them (by ID and by their label there), the primary project and accession IDs stay, unsharing, and
refusals (a project that does not exist, a taken label, the object's own project) change nothing."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError

_pair_numbers = itertools.count(1)


@pytest.fixture
def objects(connection):
    """Two projects of the test's own (source, target) and a subject, session and scan in source: the shares one
    test makes or removes, and the subject test_refusals_change_nothing makes in target, never reach another test,
    whatever order they run in."""
    number = next(_pair_numbers)
    ids = SimpleNamespace(source=f"SHARE_FROM{number}", target=f"SHARE_TO{number}")
    primary = connection.classes.ProjectData(parent=connection, id=ids.source, name="From")
    connection.classes.ProjectData(parent=connection, id=ids.target, name="To")
    subject = connection.classes.SubjectData(parent=primary, label="shared_subject")
    session = connection.classes.MrSessionData(parent=subject, label="shared_session")
    connection.classes.MrScanData(parent=session, id="1", type="t1")
    connection.clearcache()  # xnatpy's listings read by an earlier test would miss the new projects
    return subject, session, ids


def _share(subject, session, ids) -> None:
    subject.share(ids.target, label="alias_subject")
    session.share(ids.target)


def test_share_a_subject_and_an_experiment(connection, objects, xnat_server):
    subject, session, ids = objects
    _share(subject, session, ids)
    connection.clearcache()
    target = connection.projects[ids.target]
    assert list(target.subjects.keys()) == [subject.id]
    shared = target.subjects["alias_subject"]  # by the label it has there
    assert (shared.id, shared.label) == (subject.id, "alias_subject")
    primary = connection.get_json(f"/data/subjects/{subject.id}")["items"][0]["data_fields"]["project"]
    assert primary == ids.source  # the primary project is kept
    assert target.subjects[subject.id].id == subject.id  # and by ID
    assert [e.label for e in target.experiments.values()] == ["shared_session"]
    assert target.experiments["shared_session"].scans["1"].type == "t1"
    rows = connection.get_json(subject.fulluri + "/projects")["ResultSet"]["Result"]
    assert [(r["ID"], r["label"], r["primary"]) for r in rows] == [
        (ids.source, "shared_subject", "true"), (ids.target, "alias_subject", "false")]
    data = connection.get_json(f"/data/subjects/{subject.id}")
    shares = next(c for c in data["items"][0]["children"] if c["field"] == "sharing/share")
    assert [i["data_fields"] for i in shares["items"]] == [{"label": "alias_subject", "project": ids.target}]
    # nothing moved on disk: the session's folder stays under its primary project
    assert (xnat_server.data_dir / f"archive/{ids.source}/arc001/shared_session").is_dir()
    assert not (xnat_server.data_dir / f"archive/{ids.target}/arc001/shared_session").exists()


def test_pyxnat_sees_the_shares(xnat_server, objects):
    subject, session, ids = objects
    _share(subject, session, ids)
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    try:
        assert ids.target in interface.select.project(ids.source).subject("shared_subject").shares().get()
        assert subject.id in interface.select.project(ids.target).subjects().get()
    finally:
        interface.disconnect()


def test_refusals_change_nothing(connection, objects, http, xnat_server):
    subject, _session, ids = objects
    before = connection.get_json(subject.fulluri + "/projects")
    with pytest.raises(XNATResponseError, match="404"):
        subject.share("NO_SUCH_PROJECT")
    with pytest.raises(XNATResponseError, match="400"):
        subject.share(ids.source)  # its own project
    other = connection.classes.SubjectData(parent=connection.projects[ids.target], label="native")
    with pytest.raises(XNATResponseError, match="409"):
        subject.share(ids.target, label="native")  # a label taken there
    response = http.put(f"{xnat_server.url}/data/subjects/{subject.id}/projects/{ids.target}",
                        params={"primary": "true"})
    assert response.status_code == 501
    assert connection.get_json(subject.fulluri + "/projects") == before
    assert other.id != subject.id


def test_unshare(connection, objects):
    subject, session, ids = objects
    _share(subject, session, ids)
    connection.delete(f"{session.fulluri}/projects/{ids.target}")
    connection.delete(f"{subject.fulluri}/projects/{ids.target}")
    connection.clearcache()
    assert subject.id not in connection.projects[ids.target].subjects
    assert connection.projects[ids.target].experiments.listing == []
    with pytest.raises(XNATResponseError, match="404"):
        connection.delete(f"{subject.fulluri}/projects/{ids.target}")
    with pytest.raises(XNATResponseError, match="400"):
        connection.delete(f"{subject.fulluri}/projects/{ids.source}")
