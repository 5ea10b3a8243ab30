"""Resources and files through the real xnatpy: uploads (file, every upload_dir method), listings with MD5
digests, downloads of a file, a resource, a scan and a session in XNAT's zip layout, and the on-disk layout."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from .helpers import md5, tree

DIRECTORY = {"a.txt": b"alpha", "sub/b.txt": b"bravo bravo", "sub/deeper/c.bin": bytes(range(256)) * 8}


@pytest.fixture(scope="module")
def session(connection):
    project = connection.classes.ProjectData(parent=connection, id="FILES", name="Files")
    subject = connection.classes.SubjectData(parent=project, label="f_subject")
    experiment = connection.classes.MrSessionData(parent=subject, label="f_session")
    connection.classes.MrScanData(parent=experiment, id="1", type="T1 weighted")
    return connection.experiments[experiment.id]


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("upload")
    for name, data in DIRECTORY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_upload_a_file_and_download_it(session, tmp_path, xnat_server):
    resource = session.scans["1"].create_resource("NIFTI", format="NIFTI")
    source = tmp_path / "image.nii"
    source.write_bytes(b"not really nifti")
    resource.upload(source, "image.nii", file_format="NIFTI", file_content="T1", file_tags="raw")
    resource.clearcache()
    files = session.scans["1"].resources["NIFTI"].files
    assert [f.path for f in files.values()] == ["image.nii"]
    entry = files["image.nii"]
    assert int(entry.size) == len(b"not really nifti")
    target = tmp_path / "back.nii"
    entry.download(target, verbose=False)
    assert target.read_bytes() == b"not really nifti"
    # the listing's digest is the file's MD5, and its URI downloads it
    listing = session.xnat_session.get_json(resource.uri + "/files")["ResultSet"]["Result"]
    assert listing[0]["digest"] == md5(b"not really nifti")
    assert (listing[0]["file_format"], listing[0]["file_content"], listing[0]["file_tags"]) == ("NIFTI", "T1", "raw")
    assert session.xnat_session.get(listing[0]["URI"]).content == b"not really nifti"
    on_disk = xnat_server.data_dir / "archive/FILES/arc001/f_session/SCANS/1/NIFTI/image.nii"
    assert on_disk.read_bytes() == b"not really nifti"


def test_overwrite_needs_the_flag(session, tmp_path):
    resource = session.create_resource("OVERWRITE")
    resource.upload_data(b"first", "same.txt")
    with pytest.raises(Exception, match="409"):
        resource.upload_data(b"second", "same.txt")
    resource.upload_data(b"second", "same.txt", overwrite=True)
    assert session.xnat_session.get(resource.uri + "/files/same.txt").content == b"second"


@pytest.mark.parametrize("method", ["per_file", "tar_memory", "tgz_memory", "tar_file", "tgz_file"])
def test_upload_dir_with_every_method(session, directory, method, xnat_server):
    label = f"DIR_{method}"
    resource = session.create_resource(label)
    resource.upload_dir(directory, method=method)
    session.clearcache()
    files = session.resources[label].files
    assert sorted(f.path for f in files.values()) == sorted(DIRECTORY)
    listing = session.xnat_session.get_json(resource.uri + "/files")["ResultSet"]["Result"]
    assert {row["Name"]: row["digest"] for row in listing} == {
        name.rsplit("/", 1)[-1]: md5(data) for name, data in DIRECTORY.items()}
    folder = xnat_server.data_dir / "archive/FILES/arc001/f_session/RESOURCES" / label
    assert tree(folder) == {name: md5(data) for name, data in DIRECTORY.items()}


def test_download_resource_scan_and_session_zips(session, directory, tmp_path):
    resource = session.scans["1"].create_resource("EXTRA")
    resource.upload_dir(directory, method="tgz_memory")
    # a second resource of the scan, of this test's own (the other tests' resources may or may not be there yet)
    session.scans["1"].create_resource("IMAGES").upload_data(b"an image", "image.nii")

    resource.download_dir(tmp_path / "resource")
    extracted = tmp_path / "resource/f_session/scans/1-T1_weighted/resources/EXTRA/files"
    assert tree(extracted) == {name: md5(data) for name, data in DIRECTORY.items()}

    scan_zip = tmp_path / "scan.zip"
    session.scans["1"].download(scan_zip, verbose=False)
    names = zipfile.ZipFile(scan_zip).namelist()
    assert "f_session/scans/1-T1_weighted/resources/EXTRA/files/sub/b.txt" in names
    assert "f_session/scans/1-T1_weighted/resources/IMAGES/files/image.nii" in names

    session_zip = tmp_path / "session.zip"
    session.download(session_zip, verbose=False)
    with zipfile.ZipFile(session_zip) as archive:
        assert archive.read("f_session/scans/1-T1_weighted/resources/EXTRA/files/sub/deeper/c.bin") == \
            DIRECTORY["sub/deeper/c.bin"]
        # session resources are not scans: scans/ALL/files holds scan files only
        assert all("/scans/" in name for name in archive.namelist())

    one = session.xnat_session.get(resource.uri + "/files", query={"format": "zip"})
    with zipfile.ZipFile(io.BytesIO(one.content)) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"f_session/scans/1-T1_weighted/resources/EXTRA/files/{name}" for name in DIRECTORY)


def test_project_and_subject_resources(session, connection, xnat_server, tmp_path):  # (session: the FILES project)
    project = connection.projects["FILES"]
    project_resource = project.create_resource("PROTOCOLS")
    project_resource.upload_data(b"protocol text", "protocol.txt")
    subject = project.subjects["f_subject"]
    subject_resource = subject.create_resource("CONSENT")
    subject_resource.upload_data(b"signed", "consent.pdf")
    archive = xnat_server.data_dir / "archive" / "FILES"
    assert (archive / "resources/PROTOCOLS/protocol.txt").read_bytes() == b"protocol text"
    assert (archive / "subjects/f_subject/CONSENT/consent.pdf").read_bytes() == b"signed"
    project.clearcache()
    assert [f.path for f in connection.projects["FILES"].resources["PROTOCOLS"].files.values()] == ["protocol.txt"]
    zipped = connection.get(subject_resource.uri + "/files", query={"format": "zip"})
    assert zipfile.ZipFile(io.BytesIO(zipped.content)).namelist() == ["f_subject/resources/CONSENT/files/consent.pdf"]


def test_delete_a_file_and_a_resource(session, xnat_server):
    resource = session.create_resource("TO_DELETE")
    resource.upload_data(b"x", "x.txt")
    resource.upload_data(b"y", "y.txt")
    session.clearcache()
    session.resources["TO_DELETE"].files["x.txt"].delete()
    folder = xnat_server.data_dir / "archive/FILES/arc001/f_session/RESOURCES/TO_DELETE"
    assert sorted(p.name for p in folder.iterdir()) == ["y.txt"]
    session.resources["TO_DELETE"].delete()
    assert not folder.exists()
    session.clearcache()
    assert "TO_DELETE" not in session.resources
