"""pyorthanc (1.23), a real Orthanc client, against a spawned pacsbox: upload, find, browse, download, delete."""

from __future__ import annotations

import asyncio
import datetime
import io
import zipfile
from pathlib import Path

import httpx
import pydicom
import pyorthanc
import pytest
from pyorthanc import Instance, Orthanc, Patient, Series, Study

from tests.support.compare import orthanc_id
from tests.support.dicomgen import make_dataset, to_bytes, uid, zip_of


def ids_of(data: bytes) -> tuple[str, str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    keys = [str(ds.PatientID), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    return tuple(orthanc_id(*keys[:n]) for n in range(1, 5))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def files(corpus) -> dict[str, bytes]:
    return dict(corpus)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, files) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def client(spawned_pacsbox) -> Orthanc:
    user, password = spawned_pacsbox.auth
    orthanc = Orthanc(spawned_pacsbox.url, user, password, timeout=30)
    yield orthanc
    orthanc.close()


@pytest.fixture(scope="module")
def uploaded(client, corpus_dir) -> list[Instance]:
    return pyorthanc.upload(client, str(corpus_dir), recursive=True)


def test_client_reads_system_and_statistics(client, uploaded, files):
    assert client.get_system()["Version"] == "1.10.1"
    statistics = client.get_statistics()
    assert (statistics["CountPatients"], statistics["CountStudies"], statistics["CountSeries"],
            statistics["CountInstances"]) == (7, 9, 11, 22)
    assert statistics["TotalDiskSize"] == str(sum(len(data) for data in files.values()))


def test_upload_of_a_directory(uploaded, files):
    assert all(isinstance(instance, Instance) for instance in uploaded)
    assert sorted(instance.id_ for instance in uploaded) == sorted(ids_of(data)[3] for data in files.values())


def test_upload_of_a_zip_file(client, uploaded, files, tmp_path):
    names = ["ct/1.dcm", "mr/s2/2.dcm"]
    path = tmp_path / "two.zip"
    path.write_bytes(zip_of([(name, files[name]) for name in names]))
    instances = pyorthanc.upload(client, str(path))
    assert [instance.id_ for instance in instances] == [ids_of(files[name])[3] for name in names]


def test_upload_of_a_dataset_and_check_before_upload(client, uploaded):
    ds = make_dataset(patient_id="PBX-PYO", patient_name="Py^Orthanc", study_uid=uid("study", "PBX-PYO"),
                      series_uid=uid("series", "PBX-PYO"), sop_uid=uid("instance", "PBX-PYO"), modality="MR")
    data = to_bytes(ds)
    dataset = pydicom.dcmread(io.BytesIO(data))
    expected = ids_of(data)[3]
    try:
        first = pyorthanc.upload(client, dataset)
        assert [instance.id_ for instance in first] == [expected]
        again = pyorthanc.upload(client, dataset, check_before_upload=True)  # asks /instances/{id}/metadata first
        assert [instance.id_ for instance in again] == [expected]
        assert Instance(expected, client).get_pydicom().SOPInstanceUID == ds.SOPInstanceUID
    finally:
        client.delete_patients_id(orthanc_id("PBX-PYO"))
    assert client.get_statistics()["CountPatients"] == 7


def test_find_patients(client, uploaded, files):
    patients = pyorthanc.find_patients(client, query={"PatientID": "PBX-00*"})
    assert all(isinstance(patient, Patient) for patient in patients)
    by_id = {patient.patient_id: patient for patient in patients}
    assert set(by_id) == {"PBX-001", "PBX-002"}
    john = by_id["PBX-001"]
    ds = pydicom.dcmread(io.BytesIO(files["ct/1.dcm"]))
    assert john.id_ == orthanc_id("PBX-001")
    assert john.name == "Doe^John"
    assert john.sex == ds.PatientSex
    assert john.birth_date == datetime.datetime.strptime(ds.PatientBirthDate, "%Y%m%d")
    assert len(john.studies) == 2
    assert john.is_stable is False
    assert isinstance(john.last_update, datetime.datetime)
    assert [p.patient_id for p in pyorthanc.find_patients(client, query={"PatientName": "smith^jane"})] == ["PBX-002"]


def test_find_studies(client, uploaded, files):
    studies = pyorthanc.find_studies(client, query={"PatientID": "PBX-001", "ModalitiesInStudy": "MR"})
    assert len(studies) == 1 and isinstance(studies[0], Study)
    study = studies[0]
    ds = pydicom.dcmread(io.BytesIO(files["mr/s1/1.dcm"]))
    assert study.id_ == ids_of(files["mr/s1/1.dcm"])[1]
    assert study.uid == ds.StudyInstanceUID
    assert study.date == datetime.datetime.strptime(ds.StudyDate + ds.StudyTime, "%Y%m%d%H%M%S")
    assert study.accession_number == ds.AccessionNumber
    assert study.description == ds.StudyDescription
    assert study.study_id == ds.StudyID
    assert study.referring_physician_name == "Referrer^Rita"
    assert study.patient_information["PatientName"] == "Doe^John"
    assert study.parent_patient.patient_id == "PBX-001"
    assert sorted(series.series_number for series in study.series) == [1, 2, 3]
    ranged = pyorthanc.find_studies(client, query={"StudyDate": f"{ds.StudyDate}-{ds.StudyDate}"})
    assert study.id_ in [s.id_ for s in ranged]
    assert all(s.date.strftime("%Y%m%d") == ds.StudyDate for s in ranged)


def test_find_series(client, uploaded, files):
    series = pyorthanc.find_series(client, query={"Modality": "MR", "PatientID": "PBX-001"})
    assert len(series) == 3 and all(isinstance(s, Series) for s in series)
    by_number = {s.series_number: s for s in series}
    assert sorted(by_number) == [1, 2, 3]
    second = by_number[2]
    ds = pydicom.dcmread(io.BytesIO(files["mr/s2/1.dcm"]))
    assert second.uid == ds.SeriesInstanceUID
    assert second.modality == "MR"
    assert second.description == "MR series 2"
    assert second.body_part_examined == "HEAD"
    assert second.manufacturer == "PACSBOX Imaging"
    assert second.protocol_name == "MR protocol 2"
    assert len(second.instances) == 2
    assert second.parent_study.id_ == ids_of(files["mr/s2/1.dcm"])[1]
    assert second.parent_patient.name == "Doe^John"
    assert second.shared_tags["SeriesInstanceUID"] == ds.SeriesInstanceUID


def test_find_instances_and_their_content(client, uploaded, files):
    instances = pyorthanc.find_instances(client, query={"PatientID": "PBX-001", "InstanceNumber": "3"})
    expected = {ids_of(files[name])[3]: name for name in ("ct/3.dcm", "mr/s1/3.dcm", "mr/s3/3.dcm")}
    assert {instance.id_ for instance in instances} == set(expected)
    for instance in instances:
        data = files[expected[instance.id_]]
        ds = pydicom.dcmread(io.BytesIO(data))
        assert instance.get_dicom_file_content() == data
        assert instance.file_size == len(data)
        assert instance.uid == ds.SOPInstanceUID
        assert instance.instance_number == 3
        assert instance.creation_date == datetime.datetime.strptime(
            ds.InstanceCreationDate + ds.InstanceCreationTime, "%Y%m%d%H%M%S")
        assert instance.image_position_patient == [float(v) for v in ds.ImagePositionPatient]
        assert instance.simplified_tags["PatientName"] == "Doe^John"
        assert instance.simplified_tags["SeriesDescription"] == ds.SeriesDescription
        assert instance.tags["0020,0013"] == {"Name": "InstanceNumber", "Type": "String", "Value": "3"}
        assert instance.get_content_by_tag("0010-0010") == "Doe^John"
        assert instance.get_pydicom().SOPInstanceUID == ds.SOPInstanceUID
        assert instance.parent_series.modality == ds.Modality
        assert instance.parent_patient.patient_id == "PBX-001"


def test_find_pages_with_since_and_limit(client, uploaded, files):
    """pyorthanc pages with Since += Limit until an empty answer: a small limit must still give everything."""
    instances = pyorthanc.find_instances(client, query={"PatientID": "PBX-001"}, limit=4)
    expected = {ids_of(data)[3] for name, data in files.items() if name.startswith(("ct/", "mr/"))}
    assert len(instances) == len(expected) == 13
    assert {instance.id_ for instance in instances} == expected


def test_find_reads_non_main_tags_from_files(client, uploaded, files):
    instances = pyorthanc.find_instances(client, query={"SliceThickness": "5"})
    expected = {ids_of(data)[3] for data in files.values()
                if str(pydicom.dcmread(io.BytesIO(data), force=True).SliceThickness) == "5"}
    assert len(expected) == 12
    assert {instance.id_ for instance in instances} == expected


def test_filtering_find(client, uploaded):
    patients = pyorthanc.find(client, patient_filter=lambda p: p.patient_id == "PBX-001",
                              series_filter=lambda s: s.modality == "CT")
    assert [p.patient_id for p in patients] == ["PBX-001"]
    assert [len(s.instances) for study in patients[0].studies for s in study.series] == [5]


def test_resources_by_id(client, uploaded, files):
    patient_id, study_id, series_id, instance_id = ids_of(files["p2/b/1.dcm"])
    assert Patient(patient_id, client).name == "Smith^Jane"
    assert Study(study_id, client).parent_patient.id_ == patient_id
    assert Series(series_id, client).study_identifier == study_id
    assert Instance(instance_id, client).series_identifier == series_id
    with pytest.raises(httpx.HTTPError, match="HTTP code: 404"):
        _ = Patient("00000000-00000000-00000000-00000000-00000000", client).name


def test_patient_protection(client, uploaded):
    patient = Patient(orthanc_id("PBX-002"), client)
    try:
        assert patient.protected is False
        patient.protected = True
        assert patient.protected is True
        patient.protected = False
        assert patient.protected is False
    finally:
        patient.protected = False


def _zip_members(data: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sorted(archive.read(info) for info in archive.infolist())


def test_download_a_study_zip(client, uploaded, files, tmp_path):
    study = Study(ids_of(files["mr/s1/1.dcm"])[1], client)
    expected = sorted(data for name, data in files.items() if name.startswith("mr/"))
    assert _zip_members(study.get_zip()) == expected
    target = tmp_path / "study.zip"
    study.download(str(target))
    assert _zip_members(target.read_bytes()) == expected
    buffer = io.BytesIO()
    Series(ids_of(files["mr/s3/1.dcm"])[2], client).download(buffer)
    assert _zip_members(buffer.getvalue()) == sorted(files[f"mr/s3/{n}.dcm"] for n in (1, 2, 3))
    Patient(orthanc_id("PBX-002"), client).download(str(tmp_path / "patient.zip"))
    assert len(_zip_members((tmp_path / "patient.zip").read_bytes())) == 4


def test_async_client(spawned_pacsbox, uploaded, files):
    async def scenario():
        async with pyorthanc.AsyncOrthanc(spawned_pacsbox.url, *spawned_pacsbox.auth) as orthanc:
            system = await orthanc.get_system()
            found = await orthanc.post_tools_find({"Level": "Patient", "Query": {"PatientID": "PBX-MF"}})
            answer = await pyorthanc.async_upload(orthanc, pydicom.dcmread(io.BytesIO(files["ct/1.dcm"])))
            return system, found, answer

    system, found, answer = asyncio.run(scenario())
    assert system["Version"] == "1.10.1"
    assert found == [orthanc_id("PBX-MF")]
    assert answer["Status"] == "AlreadyStored" and answer["ID"] == ids_of(files["ct/1.dcm"])[3]


def test_delete_through_the_client(fresh_pacsbox, files):
    client = Orthanc(fresh_pacsbox.url, *fresh_pacsbox.auth)
    try:
        for name in ("ct/1.dcm", "ct/2.dcm", "mr/s1/1.dcm", "p2/a/1.dcm"):
            client.post_instances(files[name])
        patient_id, ct_study, ct_series, ct1 = ids_of(files["ct/1.dcm"])
        answer = client.delete_instances_id(ct1)
        assert answer == {"RemainingAncestor": {"ID": ct_series, "Path": f"/series/{ct_series}", "Type": "Series"}}
        answer = client.delete_studies_id(ct_study)
        assert answer["RemainingAncestor"]["ID"] == patient_id
        assert [s.id_ for s in pyorthanc.find_studies(client, query={"PatientID": "PBX-001"})] == \
            [ids_of(files["mr/s1/1.dcm"])[1]]
        assert client.delete_patients_id(patient_id) == {"RemainingAncestor": None}
        assert [p.patient_id for p in pyorthanc.find_patients(client)] == ["PBX-002"]
        statistics = client.get_statistics()
        assert statistics["CountInstances"] == 1
        assert statistics["TotalDiskSize"] == str(len(files["p2/a/1.dcm"]))
        with pytest.raises(httpx.HTTPError):
            client.get_instances_id_file(ct1)
    finally:
        client.close()
