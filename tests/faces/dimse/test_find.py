"""C-FIND answers of pacsbox compared with the real Orthanc's on the same data, through pynetdicom and findscu."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread

from tests.support import dcmtk
from tests.support.dicomgen import standard_corpus
from tests.support.dimse import SCU_AET, comparable_answers, find, query

CORPUS = standard_corpus()
JOHN_CT_STUDY = "1.2.826.0.1.3680043.10.1137.909677796036698711830554482396695173"


def _study_uids() -> list[str]:
    return sorted({str(dcmread(io.BytesIO(data), force=True).StudyInstanceUID) for _, data in CORPUS})


STUDIES = _study_uids()

# (level, keys): every matching kind of PS3.4 C.2.2.2 at every level, with return keys and computed keys.
QUERIES = {
    "patient-universal": ("PATIENT", dict(PatientID="", PatientName="", PatientBirthDate="", PatientSex="",
                                          NumberOfPatientRelatedStudies="", NumberOfPatientRelatedSeries="",
                                          NumberOfPatientRelatedInstances="")),
    "patient-single": ("PATIENT", dict(PatientID="PBX-002", PatientName="")),
    "patient-pn-case": ("PATIENT", dict(PatientName="doe^john", PatientID="")),
    "patient-wildcard-star": ("PATIENT", dict(PatientName="*o*", PatientID="")),
    "patient-wildcard-question": ("PATIENT", dict(PatientName="Sm?th^Jane", PatientID="")),
    "patient-birthdate-range": ("PATIENT", dict(PatientBirthDate="19700101-19801231", PatientID="")),
    "patient-sex": ("PATIENT", dict(PatientSex="F", PatientID="")),
    "patient-latin1": ("PATIENT", dict(PatientName="M*", PatientID="")),
    "study-universal": ("STUDY", dict(StudyInstanceUID="", PatientID="", PatientName="", StudyDate="", StudyTime="",
                                      AccessionNumber="", StudyDescription="", ModalitiesInStudy="",
                                      SOPClassesInStudy="", NumberOfStudyRelatedSeries="",
                                      NumberOfStudyRelatedInstances="", ReferringPhysicianName="")),
    "study-uid-list": ("STUDY", dict(StudyInstanceUID="\\".join(STUDIES[:3]), StudyDate="")),
    "study-date-range": ("STUDY", dict(StudyDate="20230101-20230615", StudyInstanceUID="")),
    "study-date-open-low": ("STUDY", dict(StudyDate="-20230301", StudyInstanceUID="")),
    "study-date-open-high": ("STUDY", dict(StudyDate="20230701-", StudyInstanceUID="")),
    "study-time-range": ("STUDY", dict(StudyTime="080000-120000", StudyInstanceUID="")),
    "study-description-wildcard": ("STUDY", dict(StudyDescription="MR*", StudyInstanceUID="")),
    "study-modalities": ("STUDY", dict(ModalitiesInStudy="CT", StudyInstanceUID="")),
    "study-modalities-list": ("STUDY", dict(ModalitiesInStudy="MR\\OT", StudyInstanceUID="")),
    "study-patient-keys": ("STUDY", dict(PatientID="PBX-001", StudyInstanceUID="", PatientBirthDate="")),
    "study-no-match": ("STUDY", dict(PatientID="NOBODY", StudyInstanceUID="")),
    "series-universal": ("SERIES", dict(StudyInstanceUID="", SeriesInstanceUID="", Modality="", SeriesNumber="",
                                        SeriesDescription="", BodyPartExamined="", SeriesDate="",
                                        NumberOfSeriesRelatedInstances="", ProtocolName="")),
    "series-of-study": ("SERIES", dict(StudyInstanceUID=JOHN_CT_STUDY, SeriesInstanceUID="", Modality="")),
    "series-modality": ("SERIES", dict(Modality="MR", SeriesInstanceUID="", SeriesNumber="")),
    "series-number": ("SERIES", dict(SeriesNumber="2", SeriesInstanceUID="")),
    "series-description-wildcard": ("SERIES", dict(SeriesDescription="*series 3", SeriesInstanceUID="")),
    "image-universal": ("IMAGE", dict(SOPInstanceUID="", SOPClassUID="", InstanceNumber="", SeriesInstanceUID="",
                                      StudyInstanceUID="", NumberOfFrames="", Rows=None, Columns=None,
                                      SliceThickness="", ImageType="")),
    "image-number": ("IMAGE", dict(InstanceNumber="3", SOPInstanceUID="")),
    "image-sop-class": ("IMAGE", dict(SOPClassUID="1.2.840.10008.5.1.4.1.1.4", SOPInstanceUID="")),
    "image-file-tag": ("IMAGE", dict(SliceThickness="2.5", SOPInstanceUID="")),
    "image-frames": ("IMAGE", dict(NumberOfFrames="3", SOPInstanceUID="")),
}


def _query(name: str):
    level, keys = QUERIES[name]
    return query(level, **keys)


@pytest.fixture(scope="module")
def loaded(dimse_pacsbox, dimse_orthanc):
    for _, data in CORPUS:
        dimse_orthanc.upload(data)
        assert dimse_pacsbox.session().post(dimse_pacsbox.url + "/instances", data=data).ok
    return dimse_pacsbox, dimse_orthanc


# Every query in the Patient Root model; the Study Root model for all but the PATIENT-level variants (once).
CASES = [(name, "patient") for name in sorted(QUERIES)] + [
    (name, "study") for name in sorted(QUERIES) if QUERIES[name][0] != "PATIENT" or name == "patient-universal"]


@pytest.mark.parametrize("name, model", CASES)
def test_find_answers_match_orthanc(loaded, name, model):
    pacsbox, orthanc = loaded
    ours = find(pacsbox.dicom_port, pacsbox.aet, _query(name), model)
    theirs = find(orthanc.dicom_port, orthanc.aet, _query(name), model)
    assert comparable_answers(ours) == comparable_answers(theirs)
    if name != "study-no-match":
        assert len(ours) > 1, "the query should match something"
    assert all(ds.RetrieveAETitle == pacsbox.aet for status, ds in ours if ds is not None)


@pytest.mark.parametrize("identifier", [
    dict(QueryRetrieveLevel="BOGUS", StudyInstanceUID=""),
    dict(QueryRetrieveLevel="", PatientID=""),
    dict(PatientID="PBX-001"),
])
def test_bad_identifier_gets_orthancs_failure_status(loaded, identifier):
    from pydicom.dataset import Dataset

    pacsbox, orthanc = loaded
    dataset = Dataset()
    for keyword, value in identifier.items():
        setattr(dataset, keyword, value)
    ours = find(pacsbox.dicom_port, pacsbox.aet, dataset)
    theirs = find(orthanc.dicom_port, orthanc.aet, dataset)
    assert [status for status, _ in ours] == [status for status, _ in theirs]
    assert ours[-1][0] not in (0x0000, 0xFF00)
    assert find(pacsbox.dicom_port, pacsbox.aet, _query("patient-single"))[-1][0] == 0x0000


def _findscu(server, level: str, keys: list[str], directory) -> list[str]:
    directory.mkdir()
    result = dcmtk.run("findscu", "-aet", SCU_AET, "-aec", server.aet, "-S", "-X", "-od", directory,
                       "-k", f"QueryRetrieveLevel={level}", *[arg for key in keys for arg in ("-k", key)],
                       "127.0.0.1", server.dicom_port)
    assert result.returncode == 0, result.stderr
    answers = []
    for path in sorted(directory.iterdir()):
        dataset = dcmread(path, force=True)
        dataset.pop(0x00080054, None)
        answers.append(str(sorted((str(e.tag), e.VR, str(e.value)) for e in dataset)))
    return sorted(answers)


@pytest.mark.parametrize("level, keys", [
    ("STUDY", ["StudyInstanceUID", "PatientName=*", "StudyDate=20230101-20231231", "ModalitiesInStudy",
               "NumberOfStudyRelatedInstances"]),
    ("SERIES", ["SeriesInstanceUID", "Modality=CT", "SeriesNumber", "NumberOfSeriesRelatedInstances"]),
    ("IMAGE", [f"StudyInstanceUID={JOHN_CT_STUDY}", "SOPInstanceUID", "InstanceNumber", "SOPClassUID"]),
])
def test_findscu_answers_match_orthanc(loaded, needs_dcmtk, tmp_path, level, keys):
    pacsbox, orthanc = loaded
    ours = _findscu(pacsbox, level, keys, tmp_path / "pacsbox")
    theirs = _findscu(orthanc, level, keys, tmp_path / "orthanc")
    assert ours == theirs
    assert ours
