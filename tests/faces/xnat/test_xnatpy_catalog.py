"""Catalog refresh (``services.refresh_catalog``) and the files of projects and subjects (``subject.files``)
through the real xnatpy."""

from __future__ import annotations

import pytest
from xnat.exceptions import XNATResponseError

from .helpers import md5


@pytest.fixture(scope="module")
def subject(connection):
    project = connection.classes.ProjectData(parent=connection, id="CATALOG", name="Catalog")
    return connection.classes.SubjectData(parent=project, label="c_subject")


def test_subject_and_project_files(connection, subject):
    subject.create_resource("NOTES").upload_data(b"subject notes", "notes.txt")
    subject.create_resource("MORE").upload_data(b"more", "deep/more.txt")
    project = connection.projects["CATALOG"]
    project.create_resource("DOCS").upload_data(b"project doc", "doc.txt")
    subject.clearcache()
    assert sorted(subject.files.keys()) == ["deep/more.txt", "notes.txt"]
    assert int(subject.files["notes.txt"].size) == len(b"subject notes")
    project.clearcache()
    assert sorted(project.files.keys()) == ["doc.txt"]


def test_refresh_appends_deletes_and_checksums(connection, subject, xnat_server):
    session = connection.classes.MrSessionData(parent=subject, label="c_session")
    resource = session.create_resource("RAW")
    resource.upload_data(b"kept", "kept.txt")
    resource.upload_data(b"to be removed", "removed.txt")
    folder = xnat_server.data_dir / "archive/CATALOG/arc001/c_session/RESOURCES/RAW"
    (folder / "removed.txt").unlink()
    (folder / "sub").mkdir()
    (folder / "sub" / "by_hand.txt").write_bytes(b"placed by hand")
    (folder / "kept.txt").write_bytes(b"changed on disk")

    connection.services.refresh_catalog(resource)  # no options: nothing changes
    resource.clearcache()
    assert sorted(f.path for f in resource.files.values()) == ["kept.txt", "removed.txt"]

    connection.services.refresh_catalog(resource, checksum=True, delete=True, append=True)
    resource.clearcache()
    listing = {row["Name"]: row for row in connection.get_json(resource.uri + "/files")["ResultSet"]["Result"]}
    assert sorted(listing) == ["by_hand.txt", "kept.txt"]
    assert listing["kept.txt"]["digest"] == md5(b"changed on disk")
    assert listing["by_hand.txt"]["digest"] == md5(b"placed by hand")
    assert connection.get(listing["by_hand.txt"]["URI"]).content == b"placed by hand"
    # an object's URI refreshes all of its resources
    (folder / "second.txt").write_bytes(b"2")
    connection.services.refresh_catalog(session, append=True)
    assert "second.txt" in {r["Name"] for r in connection.get_json(resource.uri + "/files")["ResultSet"]["Result"]}


def test_refresh_refusals(connection, subject, http, xnat_server):
    url = xnat_server.url + "/data/services/refresh/catalog"
    assert http.post(url).status_code == 400
    assert http.post(url, params={"resource": "/archive/projects/NOPE/resources/X"}).status_code == 404
    assert http.post(url, params={"resource": "/etc/passwd"}).status_code == 400
    response = http.post(url, params={"resource": "/archive/projects/CATALOG", "options": "format"})
    assert response.status_code == 400 and "option" in response.text
    with pytest.raises(XNATResponseError, match="404"):
        connection.services.refresh_catalog("/archive/projects/CATALOG/resources/MISSING")
