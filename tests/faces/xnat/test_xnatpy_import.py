"""DICOM import and the prearchive through the real xnatpy, and what the Orthanc face shows of the result."""

from __future__ import annotations

import io
import zipfile

import pydicom
import pytest

from tests.support.dicomgen import zip_of

from .helpers import md5, mr_session, tree


@pytest.fixture(scope="module")
def projects(connection):
    for project in ("IMP", "IMP2", "Comments_Project", "CT_study_project"):
        connection.put(f"/data/archive/projects/{project}")
    connection.projects.clearcache()


def _by_sop(files: list[tuple[str, bytes]]) -> dict[str, bytes]:
    return {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for _, data in files}


def test_import_to_archive_makes_scans_of_series_and_shows_them_in_orthanc(connection, projects, tmp_path, http,
                                                                          xnat_server):
    files = mr_session("imp1", series=2, per_series=3)
    path = tmp_path / "imp1.zip"
    path.write_bytes(zip_of(files))
    experiment = connection.services.import_(path, project="IMP", subject="sub1", experiment="mr1",
                                             destination="/archive")
    assert experiment.label == "mr1"
    assert experiment.__xsi_type__ == "xnat:mrSessionData"
    assert experiment.subject.label == "sub1"
    scans = experiment.scans
    assert sorted(scans.keys()) == ["1", "2"]
    assert (scans["1"].type, scans["1"].series_description) == ("T1w", "T1w")
    assert scans["2"].__xsi_type__ == "xnat:mrScanData"

    originals = _by_sop(files)
    dicom = scans["1"].resources["DICOM"]
    assert (dicom.format, int(dicom.file_count)) == ("DICOM", 3)
    listing = connection.get_json(dicom.uri + "/files")["ResultSet"]["Result"]
    for row in listing:
        sop = row["Name"].removesuffix(".dcm")
        assert row["digest"] == md5(originals[sop])
        assert connection.get(row["URI"]).content == originals[sop]

    # the same instances, same bytes, through the Orthanc face
    instances = http.get(xnat_server.url + "/instances").json()
    stored = {http.get(xnat_server.url + f"/instances/{i}/simplified-tags").json()["SOPInstanceUID"]: i
              for i in instances}
    assert set(originals) <= set(stored)
    for sop, data in originals.items():
        assert http.get(xnat_server.url + f"/instances/{stored[sop]}/file").content == data

    # on disk, in XNAT's layout
    scan_folder = xnat_server.data_dir / "archive/IMP/arc001/mr1/SCANS/1/DICOM"
    assert tree(scan_folder) == {f"{sop}.dcm": md5(originals[sop]) for sop in list(originals)[:3]}


def test_import_labels_from_patient_comments(connection, projects, http, xnat_server):
    files = mr_session("comments", series=1, per_series=1,
                       extra={"PatientComments": "Project:Comments_Project Subject:cs_subject Session:cs_session"})
    experiment = connection.services.import_(data=zip_of(files), destination="/archive",
                                             content_type="application/zip")
    assert (experiment.project, experiment.label) == ("Comments_Project", "cs_session")
    assert experiment.subject.label == "cs_subject"


def test_import_labels_from_study_description_patient_name_and_id(connection, projects, tmp_path):
    extra = {"StudyDescription": "CT_study_project", "Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}
    files = mr_session("thirdpass", series=1, per_series=2, patient_id="SESSION_FROM_ID",
                       patient_name="Subject^FromName", extra=extra)
    path = tmp_path / "third.zip"
    path.write_bytes(zip_of(files))
    experiment = connection.services.import_(path, destination="/archive")
    assert (experiment.project, experiment.label) == ("CT_study_project", "SESSION_FROM_ID")
    assert experiment.subject.label == "Subject_FromName"
    assert experiment.__xsi_type__ == "xnat:ctSessionData"
    assert experiment.scans["1"].__xsi_type__ == "xnat:ctScanData"


def test_reimport_needs_overwrite(connection, projects, http, xnat_server):
    files = mr_session("again", series=1, per_series=2)
    body = zip_of(files)
    url = xnat_server.url + "/data/services/import"
    params = {"project": "IMP", "subject": "again_subject", "session": "again", "dest": "/archive"}
    first = http.post(url, params=params, data=body)
    assert first.status_code == 200
    second = http.post(url, params=params, data=body)
    assert second.status_code == 409
    assert "overwrite" in second.text
    appended = http.post(url, params={**params, "overwrite": "append"}, data=zip_of(mr_session("again", series=2)))
    assert appended.status_code == 200
    assert appended.text.strip() == first.text.strip()
    scans = http.get(xnat_server.url + first.text.strip() + "/scans", params={"format": "json"}).json()
    assert sorted(row["ID"] for row in scans["ResultSet"]["Result"]) == ["1", "2"]


def test_import_dir_to_prearchive_then_archive(connection, projects, tmp_path, xnat_server):
    folder = tmp_path / "pre"
    for name, data in mr_session("pre1", series=2, per_series=2):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    session = connection.services.import_dir(folder, project="IMP", subject="pre_subject", experiment="pre_session",
                                             destination="/prearchive")
    assert session.project == "IMP"
    assert (session.name, session.subject, session.status) == ("pre_session", "pre_subject", "READY")
    assert session.uri in [s.uri for s in connection.prearchive.sessions()]
    assert [s.name for s in connection.prearchive.sessions(project="IMP")] == ["pre_session"]
    scans = session.scans
    assert sorted(scans.keys()) == ["1", "2"]
    assert len(scans["1"].files) == 2
    on_disk = xnat_server.data_dir / "prearchive/IMP" / session.data["timestamp"] / "pre_session/SCANS/2/DICOM"
    assert len(list(on_disk.iterdir())) == 2
    zipped = tmp_path / "pre.zip"
    session.download(zipped)
    assert len(zipfile.ZipFile(zipped).namelist()) == 4

    experiment = session.archive()
    assert (experiment.project, experiment.label) == ("IMP", "pre_session")
    assert experiment.subject.label == "pre_subject"
    assert sorted(experiment.scans.keys()) == ["1", "2"]
    assert connection.prearchive.sessions(project="IMP") == []
    assert not (xnat_server.data_dir / "prearchive/IMP").exists()
    assert len(list((xnat_server.data_dir / "archive/IMP/arc001/pre_session/SCANS/2/DICOM").iterdir())) == 2


def test_prearchive_move_and_delete(connection, projects, http, xnat_server):
    before = set(http.get(xnat_server.url + "/instances").json())
    session = connection.services.import_(data=zip_of(mr_session("pre2", series=1, per_series=3)), project="IMP",
                                          destination="/prearchive", content_type="application/zip")
    added = set(http.get(xnat_server.url + "/instances").json()) - before
    assert len(added) == 3
    name = session.name
    session.move("IMP2")
    moved = connection.prearchive.sessions(project="IMP2")
    assert [s.name for s in moved] == [name]
    assert connection.prearchive.sessions(project="IMP") == []
    assert (xnat_server.data_dir / "prearchive/IMP2" / moved[0].data["timestamp"] / name).is_dir()

    moved[0].delete()
    assert connection.prearchive.sessions(project="IMP2") == []
    assert not (xnat_server.data_dir / "prearchive/IMP2").exists()
    # the prearchive held the only copy of these instances: they are gone from the Orthanc face too
    assert set(http.get(xnat_server.url + "/instances").json()) == before


def test_archive_to_other_labels(connection, projects, http, xnat_server):
    response = http.post(xnat_server.url + "/data/services/import", params={"project": "IMP", "dest": "/prearchive"},
                         data=zip_of(mr_session("pre3", series=1, per_series=1)))
    assert response.status_code == 200
    assert response.text.startswith("/data/prearchive/projects/IMP/")
    archived = http.post(xnat_server.url + "/data/services/archive",
                         params={"src": response.text.strip(), "project": "IMP2", "subject": "s3",
                                 "session": "renamed"})
    assert archived.status_code == 200
    item = http.get(xnat_server.url + archived.text.strip(), params={"format": "json"}).json()["items"][0]
    assert (item["data_fields"]["project"], item["data_fields"]["label"]) == ("IMP2", "renamed")


def test_deleting_through_orthanc_updates_xnat(connection, projects, http, xnat_server):
    files = mr_session("cross", series=1, per_series=3)
    experiment = connection.services.import_(data=zip_of(files), project="IMP", subject="cross",
                                             experiment="cross", destination="/archive",
                                             content_type="application/zip")
    dicom_uri = experiment.scans["1"].resources["DICOM"].uri
    listing = connection.get_json(dicom_uri + "/files")["ResultSet"]["Result"]
    victim = listing[0]["Name"].removesuffix(".dcm")
    found = http.post(xnat_server.url + "/tools/lookup", data=victim).json()
    assert http.delete(xnat_server.url + found[0]["Path"]).status_code == 200
    after = connection.get_json(dicom_uri + "/files")["ResultSet"]["Result"]
    assert len(after) == 2 and victim not in {row["Name"].removesuffix(".dcm") for row in after}
    folder = xnat_server.data_dir / "archive/IMP/arc001/cross/SCANS/1/DICOM"
    assert sorted(p.name for p in folder.iterdir()) == sorted(row["Name"] for row in after)


def test_deleting_a_session_with_remove_files_deletes_its_instances(connection, projects, http, xnat_server):
    before = set(http.get(xnat_server.url + "/instances").json())
    experiment = connection.services.import_(data=zip_of(mr_session("gone", series=2, per_series=1)),
                                             project="IMP", subject="gone", experiment="gone",
                                             destination="/archive", content_type="application/zip")
    assert len(set(http.get(xnat_server.url + "/instances").json()) - before) == 2
    connection.experiments[experiment.id].delete(remove_files=True)
    assert set(http.get(xnat_server.url + "/instances").json()) == before
    assert not (xnat_server.data_dir / "archive/IMP/arc001/gone").exists()
