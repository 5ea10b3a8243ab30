"""The real pyxnat against a real pacsbox: connect, CSV listings, create, file upload (inbody) and download."""

from __future__ import annotations

import pytest
from pyxnat import Interface

from .helpers import md5


@pytest.fixture(scope="module")
def interface(xnat_server):
    connection = Interface(server=xnat_server.url, user="admin", password="admin")
    yield connection
    connection.disconnect()


def test_connect_and_version(interface):
    assert interface.version() == b"1.8.10"


def test_create_and_list_in_csv(interface, http, xnat_server):
    project = interface.select.project("PYX")
    project.create()
    assert project.exists()
    assert "PYX" in interface.select.projects().get()
    subject = project.subject("pyx_subject")
    subject.create()
    experiment = subject.experiment("pyx_session")
    experiment.create(experiments="xnat:mrSessionData")
    scan = experiment.scan("1")
    scan.create(scans="xnat:mrScanData")
    assert experiment.datatype() == "xnat:mrSessionData"
    assert subject.label() == "pyx_subject"
    assert subject.id().startswith("Xnat4Tests_S")

    scan.attrs.set("type", "T1")
    assert scan.attrs.get("type") == "T1"
    subject.attrs.set("gender", "female")
    assert subject.attrs.get("gender") == "female"

    # pyxnat reads listings as CSV
    assert interface.select("/project/PYX/subjects").get() == [subject.id()]
    assert [s.label() for s in interface.select("/project/PYX/subjects")] == ["pyx_subject"]
    rows = interface._get_json("/data/projects/PYX/subjects")
    assert [(row["label"], row["gender"]) for row in rows] == [("pyx_subject", "female")]
    csv = http.get(xnat_server.url + "/data/projects/PYX/experiments", params={"format": "csv"})
    header, row = csv.text.strip().splitlines()
    assert header.split(",")[:2] == ["ID", "project"]
    assert "pyx_session" in row and "xnat:mrSessionData" in row
    sessions = interface.array.experiments(project_id="PYX", experiment_type="xnat:mrSessionData").data
    assert [s["ID"] for s in sessions] == [experiment.id()]


def test_upload_inbody_and_download(interface, tmp_path, xnat_server):
    resource = interface.select("/project/PYX/subject/pyx_subject/experiment/pyx_session/scan/1/resource/NIFTI")
    resource.create()
    source = tmp_path / "brain.nii"
    source.write_bytes(b"\x00pyxnat upload\xff" * 100)
    resource.file("brain.nii").put(str(source), format="NIFTI", content="T1")  # POST ...?inbody=true
    assert resource.files().get() == ["brain.nii"]
    target = tmp_path / "back.nii"
    resource.file("brain.nii").get(str(target))
    assert target.read_bytes() == source.read_bytes()
    on_disk = xnat_server.data_dir / "archive/PYX/arc001/pyx_session/SCANS/1/NIFTI/brain.nii"
    assert md5(on_disk.read_bytes()) == md5(source.read_bytes())
    # a whole resource as a zip, which pyxnat unpacks
    extracted = resource.get(str(tmp_path), extract=True)
    assert [p.rsplit("/", 1)[-1] for p in extracted] == ["brain.nii"]


def test_delete(interface, http, xnat_server):
    # a project of its own, so that the test does not depend on (nor undo) what the others made, in any order
    project = interface.select.project("PYXDEL")
    project.create()
    project.subject("del_subject").create()
    experiment = interface.select("/project/PYXDEL/subject/del_subject/experiment/del_session")
    experiment.create(experiments="xnat:mrSessionData")
    assert experiment.exists()
    experiment.delete()
    assert not experiment.exists()
    assert http.get(xnat_server.url + "/data/projects/PYXDEL/experiments", params={"format": "json"}).json()[
        "ResultSet"]["totalRecords"] == "0"
