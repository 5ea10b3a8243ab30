"""Reconstructions through the real clients: created with pyxnat (xnatpy 0.8 cannot create them), listed and
read with xnatpy, attributes, resources and files (also under /out/resources) in the session's PROCESSED
folder, deletion; an unknown type is a 400 that creates nothing."""

from __future__ import annotations

import itertools

import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError

_project_numbers = itertools.count(1)


@pytest.fixture
def project_id():
    """A project of the test's own: each test makes the reconstruction it reads or deletes, and never finds one
    another test made or deleted, whatever order the tests run in."""
    return f"RECON{next(_project_numbers)}"


@pytest.fixture
def session(connection, project_id):
    project = connection.classes.ProjectData(parent=connection, id=project_id, name=f"Recon {project_id}")
    subject = connection.classes.SubjectData(parent=project, label="r_subject")
    return connection.classes.MrSessionData(parent=subject, label="r_session")


@pytest.fixture
def pyxnat_session(xnat_server, session, project_id):
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    yield interface.select.project(project_id).subject("r_subject").experiment("r_session")
    interface.disconnect()


def _create_rec1(pyxnat_session) -> None:
    pyxnat_session.reconstruction("rec1").create(reconstructions="xnat:reconstructedImageData")


def test_create_list_and_read(connection, session, pyxnat_session):
    _create_rec1(pyxnat_session)
    pyxnat_session.reconstruction("rec1").attrs.set("type", "T1_MNI")
    assert pyxnat_session.reconstructions().get() == ["rec1"]
    assert pyxnat_session.reconstruction("rec1").attrs.get("type") == "T1_MNI"
    connection.clearcache()
    found = connection.experiments[session.id].reconstructions["rec1"]
    assert type(found).__name__ == "ReconstructedImageData"
    assert (found.id, found.type) == ("rec1", "T1_MNI")


def test_resources_and_files(connection, session, pyxnat_session, xnat_server, project_id):
    _create_rec1(pyxnat_session)
    pyxnat_session.reconstruction("rec1").out_resource("NIFTI").file("t1.nii").insert(b"nifti bytes")
    base = f"/data/experiments/{session.id}/reconstructions/rec1"
    connection.put(base + "/resources/QC/files/qc.txt", data=b"qc")
    rows = connection.get_json(base + "/resources")["ResultSet"]["Result"]
    assert sorted(row["label"] for row in rows) == ["NIFTI", "QC"]
    files = connection.get_json(base + "/out/resources/NIFTI/files")["ResultSet"]["Result"]
    assert [row["Name"] for row in files] == ["t1.nii"]
    assert connection.get(files[0]["URI"]).content == b"nifti bytes"
    folder = xnat_server.data_dir / f"archive/{project_id}/arc001/r_session/PROCESSED/rec1"
    assert (folder / "NIFTI/t1.nii").read_bytes() == b"nifti bytes"


def test_unknown_type_and_delete(connection, session, http, xnat_server, pyxnat_session, project_id):
    _create_rec1(pyxnat_session)
    pyxnat_session.reconstruction("rec1").out_resource("NIFTI").file("t1.nii").insert(b"nifti bytes")
    folder = xnat_server.data_dir / f"archive/{project_id}/arc001/r_session/PROCESSED/rec1"
    assert (folder / "NIFTI/t1.nii").exists()  # so that its absence after the delete means something
    url = f"{xnat_server.url}/data/experiments/{session.id}/reconstructions/bad"
    assert http.put(url, params={"xsiType": "xnat:mrScanData"}).status_code == 400
    assert http.get(url, params={"format": "json"}).status_code == 404
    connection.delete(f"/data/experiments/{session.id}/reconstructions/rec1")
    assert pyxnat_session.reconstructions().get() == []
    assert not folder.exists()
    with pytest.raises(XNATResponseError, match="404"):
        connection.get(f"/data/experiments/{session.id}/reconstructions/rec1/resources")
