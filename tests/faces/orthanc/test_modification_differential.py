"""Modify, anonymize, merge and split: the same requests on the same files to the real Orthanc 1.10.1 and to
pacsbox, compared (answers, new resources' tags, counts and metadata; generated UIDs, patient IDs and names by
the pattern of their reuse, see modification_support)."""

from __future__ import annotations

import io
import subprocess
import tempfile
import time

import numpy
import pydicom
import pytest
from pydicom.datadict import keyword_for_tag

from tests.faces.orthanc.modification_support import (
    IGNORE,
    Pair,
    Tokens,
    compare_made,
    dicom_tags,
    same_answer,
    values_of,
)
from tests.support.compare import assert_equivalent, assert_same
from tests.support.every_tag import actions, every_tag_dataset, every_tag_file
from tests.support.orthanc_ref import SKIP_REASON, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def pair(reference_orthanc, corpus):
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as ours:
        both = Pair(ours, reference_orthanc)
        for name, data in corpus:
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200, name
        yield both


def _layout(pair: Pair, side: int) -> dict[str, list[str]]:
    """Each study's series and each series' instances on one side."""
    return {**{study["ID"]: sorted(study["Series"]) for study in pair.get("/studies?expand", side)},
            **{series["ID"]: sorted(series["Instances"]) for series in pair.get("/series?expand", side)}}


@pytest.fixture(scope="module")
def pristine(pair) -> dict[str, list[str]]:
    """The corpus's studies and series as uploaded (the same on both sides)."""
    return _layout(pair, 0)


@pytest.fixture(autouse=True)
def corpus_intact(pair, corpus, pristine):
    """After each test, the corpus's studies and series are as uploaded, in whatever order the tests run: a test
    that changed them (merge, split, KeepSource false, a series modified into its own study, UIDs kept) has both
    servers emptied and given the corpus again (same IDs). Other tests only add resources of their own."""
    yield
    if all({key: value for key, value in _layout(pair, side).items() if key in pristine} == pristine
           for side in (0, 1)):
        return
    for side, (session, url) in enumerate(zip(pair.sessions, pair.urls, strict=True)):
        for patient in pair.get("/patients", side):
            session.delete(f"{url}/patients/{patient}").raise_for_status()
    for name, data in corpus:
        mine, theirs = pair.call("POST", "/instances", data=data)
        assert mine.status_code == theirs.status_code == 200, name


@pytest.fixture(scope="module")
def originals(pair) -> set[str]:
    """The IDs of the corpus's resources (the same on both servers)."""
    return {public_id for level in ("patients", "studies", "series", "instances")
            for public_id in pair.get(f"/{level}")}


def _patient(pair: Pair, patient_id: str) -> dict:
    return next(p for p in pair.get("/patients?expand") if p["MainDicomTags"]["PatientID"] == patient_id)


def _studies(pair: Pair, patient_id: str, originals: set[str]) -> list[str]:
    """The patient's studies of the corpus (not those made by earlier tests), in a stable order."""
    return sorted(study for study in _patient(pair, patient_id)["Studies"] if study in originals)


def _first(pair: Pair, path: str, originals: set[str]) -> str:
    return sorted(item["ID"] for item in pair.get(path) if item["ID"] in originals)[0]


def _job(pair: Pair, path: str, body: dict, originals: set[str]) -> tuple[dict, dict]:
    ours, theirs = pair.call("POST", path, json=body)
    assert ours.status_code == theirs.status_code == 200, (path, ours.text, theirs.text)
    same_answer(ours.json(), theirs.json(), originals)
    return ours.json(), theirs.json()


@pytest.mark.parametrize("body", [
    {"Replace": {"StudyDescription": "Modified study", "InstitutionName": "Elsewhere"}, "Remove": ["StationName"]},
    {"Replace": {"ReferringPhysicianName": "Doctor^Who"}, "RemovePrivateTags": True},
    {"Replace": {"StudyDescription": "Kept UIDs"}, "Keep": ["StudyInstanceUID", "SeriesInstanceUID"],
     "Force": True},
])
def test_modify_study(pair, originals, body):
    # (keeping the UIDs adds instances to the study itself: corpus_intact uploads the corpus again afterwards)
    study = _studies(pair, "PBX-001", originals)[1 if "Keep" in body else 0]
    ours, theirs = _job(pair, f"/studies/{study}/modify", body, originals)
    compare_made(pair, "studies", ours["ID"], theirs["ID"])


def test_modify_study_with_sequences_and_private_tags(pair, originals):
    study = _studies(pair, "PBX-SEQ", originals)[0]
    ours, theirs = _job(pair, f"/studies/{study}/modify", {"Remove": ["ImageComments"], "Replace": {
        "RequestAttributesSequence": [{"RequestedProcedureID": "RP-9"}], "0009,1001": "changed"},
        "PrivateCreator": "PACSBOX TEST"}, originals)
    compare_made(pair, "studies", ours["ID"], theirs["ID"])


def test_modify_series_and_patient(pair, originals):
    series = _first(pair, f"/studies/{_studies(pair, 'PBX-001', originals)[0]}/series", originals)
    patient = _patient(pair, "PBX-LATIN1")
    ours, theirs = _job(pair, f"/series/{series}/modify", {"Replace": {"SeriesDescription": "Renamed"}}, originals)
    compare_made(pair, "series", ours["ID"], theirs["ID"])
    ours, theirs = _job(pair, f"/patients/{patient['ID']}/modify",
                        {"Replace": {"PatientID": "PBX-LATIN1-NEW", "PatientName": "New^Name"}, "Force": True},
                        originals)
    assert ours["ID"] == theirs["ID"]  # the ID of the new patient follows from its new PatientID
    compare_made(pair, "patients", ours["ID"], theirs["ID"])


@pytest.mark.parametrize("version,patient_id", [  # (every attribute in every edition: see the last tests)
    ("2008", "PBX-SEQ"), ("2017c", "PBX-SEQ"), ("2021b", "PBX-SEQ"), (None, "PBX-SEQ"), (None, "PBX-LATIN1"),
    ("2017c", "PBX-002"), (None, "PBX-002")])
def test_anonymize_study(pair, originals, version, patient_id):
    study = _studies(pair, patient_id, originals)[0]
    ours, theirs = _job(pair, f"/studies/{study}/anonymize", {"DicomVersion": version} if version else {},
                        originals)
    tags = compare_made(pair, "studies", ours["ID"], theirs["ID"])
    assert all(t["0012,0062"] == "YES" and t["0012,0063"].startswith("Orthanc 1.10.1 - PS 3.15-") for t in tags)
    assert not any(int(tag[:4], 16) % 2 for t in tags for tag in t)  # private tags gone


@pytest.mark.parametrize("body", [
    {"Keep": ["StudyDescription", "PatientName"], "Replace": {"StudyID": "S1"}},
    {"KeepPrivateTags": True, "Remove": ["Modality"]},
    {"Replace": {"PatientName": "Given^Name", "PatientID": "GIVEN"}, "Force": True},
])
def test_anonymize_customized(pair, originals, body):
    study = _studies(pair, "PBX-SEQ", originals)[0]
    ours, theirs = _job(pair, f"/studies/{study}/anonymize", body, originals)
    compare_made(pair, "studies", ours["ID"], theirs["ID"])


@pytest.mark.parametrize("verb,body", [
    ("modify", {"Replace": {"PatientName": "Instance^Only"}}),
    ("modify", {"Replace": {"PatientID": "X", "StudyInstanceUID": "1.2.3.4"}, "Force": True}),
    ("anonymize", {}),
    ("anonymize", {"DicomVersion": "2017c", "Keep": ["SeriesDescription"]}),
])
def test_instance_level_answers_the_file(pair, originals, verb, body):
    instance = _first(pair, f"/patients/{_patient(pair, 'PBX-SEQ')['ID']}/instances", originals)
    before = pair.get("/statistics")
    ours, theirs = pair.call("POST", f"/instances/{instance}/{verb}", json=body)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/dicom"
    mine, reference = dicom_tags(ours.content), dicom_tags(theirs.content)
    generated = {key for key in reference if reference[key] != dicom_tags(
        pair.sessions[1].get(pair.urls[1] + f"/instances/{instance}/file").content).get(key)}
    assert sorted(mine) == sorted(reference)
    for key in reference:
        if key not in generated:
            assert mine[key] == reference[key], key
    assert {key for key in reference if mine[key] != reference[key]} <= generated
    assert_equivalent(pair.get("/statistics", 0), before, ignore_keys=IGNORE)  # nothing stored
    with tempfile.NamedTemporaryFile(suffix=".dcm") as file:
        file.write(ours.content)
        file.flush()
        dump = subprocess.run(["/usr/bin/dcmdump", file.name], capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0 and "E:" not in dump.stderr, dump.stderr


@pytest.mark.parametrize("verb,level", [("modify", None), ("modify", "Study"), ("anonymize", None)])
def test_bulk(pair, originals, verb, level):
    mf = _patient(pair, "PBX-MF")
    body = {"Resources": [mf["ID"], _studies(pair, "PBX-UTF8", originals)[0]]}
    if verb == "modify":
        body["Replace"] = {"StudyDescription": "Bulk"}
    if level:
        body["Level"] = level
    ours, theirs = _job(pair, f"/tools/bulk-{verb}", body, originals)
    for answer in (ours, theirs):
        assert [r["Type"] for r in answer["Resources"]] == sorted(
            (r["Type"] for r in answer["Resources"]), key=["Instance", "Series", "Study", "Patient"].index)


BAD_REQUESTS = [
    ("series", "modify", {"Replace": {"SeriesInstanceUID": "1.2.3"}}),
    ("series", "modify", {"Replace": {"StudyInstanceUID": "1.2.3"}, "Force": True}),
    ("series", "modify", {"Replace": {"PatientID": "P"}, "Force": True}),
    ("studies", "modify", {"Replace": {"PatientID": "P"}, "Force": True}),
    ("patients", "modify", {"Replace": {"PatientName": "Z"}}),
    ("studies", "modify", {"Remove": ["SOPInstanceUID"]}),
    ("studies", "modify", {"Remove": ["SOPInstanceUID"], "Force": True}),
    ("studies", "modify", {"Keep": ["SOPInstanceUID"]}),
    ("studies", "anonymize", {"Keep": ["StudyInstanceUID"]}),
    ("studies", "modify", {"Replace": []}),
    ("studies", "modify", {"Remove": "PatientName"}),
    ("studies", "modify", {"Replace": {"PatientName": 3}}),
    ("studies", "modify", {"Force": "yes"}),
    ("studies", "modify", {"Transcode": "1.2.3"}),
    ("studies", "modify", [1]),
    ("studies", "anonymize", {"DicomVersion": "2019"}),
    ("studies", "anonymize", {"DicomVersion": 3}),
    ("studies", "anonymize", "not json"),
    ("studies", "modify", {"Priority": "high"}),
    ("studies", "modify", {"Replace": {"ReferencedStudySequence": "text"}}),
    ("studies", "modify", {"Replace": {"ReferencedStudySequence": [1]}}),
    ("studies", "modify", {"Replace": {"Rows": "abc"}}),
]


@pytest.mark.parametrize("level,verb,body", BAD_REQUESTS)
def test_bad_requests_change_nothing(pair, level, verb, body):
    target = {"patients": _patient(pair, "PBX-NOMETA")["ID"]}
    study = _patient(pair, "PBX-NOMETA")["Studies"][0]
    target["studies"] = study
    target["series"] = pair.get(f"/studies/{study}")["Series"][0]
    before = pair.both("/statistics")
    data = body if isinstance(body, str) else None
    ours, theirs = pair.call("POST", f"/{level}/{target[level]}/{verb}", json=None if data else body, data=data)
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    assert_equivalent(ours.json(), theirs.json())
    assert pair.both("/statistics") == before


def test_unknown_tags_and_resources(pair):
    study = _patient(pair, "PBX-NOMETA")["Studies"][0]
    for body in ({"Replace": {"NoSuchTag": "1"}}, {"Remove": ["NoSuchTag"]}, {"Keep": ["NoSuchTag"]}):
        ours, theirs = pair.call("POST", f"/studies/{study}/modify", json=body)
        # Orthanc answers 500 for an unknown tag; pacsbox answers 400 (a client's mistake), with Orthanc's code
        assert (ours.status_code, theirs.status_code) == (400, 500)
        assert ours.json()["OrthancStatus"] == theirs.json()["OrthancStatus"] == 27
        assert ours.json()["Message"] == theirs.json()["Message"]
    for path in ("/studies/unknown/modify", "/series/unknown/anonymize", "/instances/unknown/modify"):
        ours, theirs = pair.call("POST", path, json={})
        assert ours.status_code == theirs.status_code == 404
        assert_equivalent(ours.json(), theirs.json())


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                                    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                                    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                                    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"])
def test_transcode(pair, originals, syntax):
    series = _first(pair, f"/studies/{_studies(pair, 'PBX-001', originals)[0]}/series", originals)
    ours, theirs = _job(pair, f"/series/{series}/modify", {"Transcode": syntax}, originals)
    # JPEG extended: DCMTK renders the stored values into a new range (RescaleIntercept, or the VOI windows and their
    # explanation, follow); pacsbox compresses the stored values as they are
    departures = frozenset({"0028,1050", "0028,1052", "0028,1055"}) if syntax.endswith(".51") else frozenset()
    compare_made(pair, "series", ours["ID"], theirs["ID"], departures)  # (TransferSyntax metadata included)


def test_transcode_of_an_instance(pair, originals):
    instance = _first(pair, f"/patients/{_patient(pair, 'PBX-NOMETA')['ID']}/instances", originals)
    ours, theirs = pair.call("POST", f"/instances/{instance}/modify", json={"Transcode": "1.2.840.10008.1.2.4.90"})
    assert ours.status_code == theirs.status_code == 500
    assert_equivalent(ours.json(), theirs.json())
    # JPEG extended of colour pixels: Orthanc's DCMTK writes it, pacsbox's encoder takes grey only: said so
    colour = pair.call("POST", "/instances", data=_eight_bit_image(True))[0].json()["ID"]
    ours = pair.sessions[0].post(pair.urls[0] + f"/instances/{colour}/modify",
                                 json={"Transcode": "1.2.840.10008.1.2.4.51"})
    assert ours.status_code == 501 and "JPEG Extended" in ours.json()["Details"]


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"])
def test_jpeg_lossless_is_lossless(pair, originals, syntax, colour):
    """pacsbox's own JPEG lossless encoder: DCMTK's decoder gives back every sample, grey and colour."""
    if colour:
        instance = pair.call("POST", "/instances", data=_eight_bit_image(True))[0].json()["ID"]
    else:
        instance = _first(pair, f"/patients/{_patient(pair, 'PBX-MF')['ID']}/instances", originals)  # 3 frames
    ours = pair.sessions[0].post(pair.urls[0] + f"/instances/{instance}/modify", json={"Transcode": syntax})
    assert ours.status_code == 200
    original = pydicom.dcmread(io.BytesIO(pair.sessions[0].get(f"{pair.urls[0]}/instances/{instance}/file").content))
    with tempfile.TemporaryDirectory() as folder:
        with open(f"{folder}/in.dcm", "wb") as file:
            file.write(ours.content)
        done = subprocess.run(["/usr/bin/dcmdjpeg", f"{folder}/in.dcm", f"{folder}/out.dcm"], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        decoded = pydicom.dcmread(f"{folder}/out.dcm")
    assert pydicom.dcmread(io.BytesIO(ours.content)).file_meta.TransferSyntaxUID == syntax
    assert numpy.array_equal(decoded.pixel_array, original.pixel_array)


# -- merge and split (last: by default they delete their sources) ------------------------------------------------
def _tags_below(pair: Pair, side: int, study: str) -> list[dict]:
    return sorted((pair.get(f"/instances/{i['ID']}/tags?short", side) for i in pair.get(
        f"/studies/{study}/instances", side)), key=lambda t: (t.get("0008,103e", ""), t.get("0020,0013", "")))


def _same_tags_below(pair: Pair, ours_study: str, their_study: str, known: set[str]) -> list[dict]:
    mine, reference = _tags_below(pair, 0, ours_study), _tags_below(pair, 1, their_study)
    assert_equivalent(Tokens(known)(mine), Tokens(known)(reference))
    return reference


def test_merge(pair, originals):
    target, source = _studies(pair, "PBX-002", originals)
    known = values_of(_tags_below(pair, 1, target)) | values_of(_tags_below(pair, 1, source))
    series = pair.get(f"/studies/{source}")["Series"][0]
    _job(pair, f"/studies/{target}/merge", {"Resources": [series], "KeepSource": True}, originals)
    tags = _same_tags_below(pair, target, target, known)
    assert len(tags) == 4 and len({t["0020,000e"] for t in tags}) == 2
    assert {t["0008,1030"] for t in tags} == {tags[0]["0008,1030"]}  # the target's study tags everywhere
    assert_equivalent(*pair.both(f"/studies/{target}/statistics"), ignore_keys=IGNORE)


def test_merge_and_split_errors(pair, originals):
    jane = _patient(pair, "PBX-002")
    study, other = _studies(pair, "PBX-002", originals)
    own_series, other_series = (_first(pair, f"/studies/{s}/series", originals) for s in (study, other))
    for path, body in ((f"/studies/{study}/merge", {"Resources": [jane["ID"]]}),
                       (f"/studies/{study}/merge", {"Resources": [study]}),
                       (f"/studies/{study}/merge", {"Resources": [own_series]}),
                       (f"/studies/{study}/merge", {}),
                       (f"/studies/{study}/split", {"Series": [other_series]}),
                       (f"/studies/{study}/split", {"Series": [own_series], "Replace": {"SeriesDescription": "x"}}),
                       ("/tools/bulk-modify", {"Resources": [study], "Level": "Bogus"}),
                       ("/tools/bulk-modify", {"Replace": {}}),
                       (f"/studies/{study}/merge", {"Resources": ["unknown"]}),
                       (f"/studies/{study}/split", {"Series": []}),
                       (f"/studies/{study}/split", {"Series": ["unknown"]}),
                       ("/studies/unknown/split", {"Series": ["unknown"]})):
        ours, theirs = pair.call("POST", path, json=body)
        assert ours.status_code == theirs.status_code, (path, body, ours.text, theirs.text)
        assert_equivalent(ours.json(), theirs.json())


def test_split_deletes_its_sources_by_default(pair, originals):
    study = _studies(pair, "PBX-002", originals)[1]
    known = values_of(_tags_below(pair, 1, study))
    series = pair.get(f"/studies/{study}")["Series"][0]
    ours, theirs = _job(pair, f"/studies/{study}/split", {"Series": [series], "Replace": {
        "StudyDescription": "Split off"}, "Remove": ["AccessionNumber"]}, originals)
    tags = _same_tags_below(pair, ours["TargetStudy"], theirs["TargetStudy"], known)
    assert {t["0020,000d"] for t in tags} == {theirs["TargetStudyUID"]}
    assert all(t["0008,1030"] == "Split off" and "0008,0050" not in t for t in tags)
    assert [r.status_code for r in pair.call("GET", f"/studies/{study}")] == [404, 404]
    assert_equivalent(*pair.both("/statistics"), ignore_keys=IGNORE)


def test_every_attribute_of_the_dictionary(pair):
    """What each edition does to each attribute (removed, emptied, changed, kept; at the top level and in the
    items of the sequences kept) is what Orthanc does: the profiles' tables checked attribute by attribute."""
    instance = [answer.json()["ID"] for answer in pair.call("POST", "/instances", data=every_tag_file())][1]
    before = every_tag_dataset()
    for version in ("2008", "2017c", "2021b"):
        answers = pair.call("POST", f"/instances/{instance}/anonymize", json={"DicomVersion": version})
        assert [answer.status_code for answer in answers] == [200, 200]
        mine, reference = (pydicom.dcmread(io.BytesIO(answer.content)) for answer in answers)
        done = [actions(before, anonymized) for anonymized in (mine, reference)]
        for table in done:
            table.pop(0xFFFAFFFA, None)  # DigitalSignaturesSequence: Orthanc's DCMTK hides it (core.anonymization)
            table.pop(0xFFFCFFFC, None)  # DataSetTrailingPadding: DCMTK drops it from every file it writes
        named = [{f"{keyword_for_tag(tag) or hex(tag)}": action for tag, action in table.items()} for table in done]
        assert_same(named[0], named[1], context=version)
        for element in reference:
            if element.VR == "SQ" and element.value:
                ours = mine[element.tag].value
                assert [sorted(item.keys()) for item in ours] == [sorted(item.keys()) for item in element.value]


def test_asynchronous_jobs(pair, originals):
    study = _studies(pair, "PBX-UTF8", originals)[0]
    count = len(pair.get("/studies", 0))
    ours, theirs = pair.call("POST", f"/studies/{study}/anonymize", json={"Asynchronous": True})
    assert ours.status_code == theirs.status_code == 200
    for answer in (ours.json(), theirs.json()):
        assert sorted(answer) == ["ID", "Path"] and answer["Path"] == f"/jobs/{answer['ID']}"
    deadline = time.monotonic() + 30
    while len(pair.get("/studies", 0)) == count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pair.get("/studies", 0)) == count + 1


def test_keep_source_false_deletes_the_sources(pair, originals):
    series = [s for s in sorted(pair.get(f"/studies/{_studies(pair, 'PBX-001', originals)[1]}")["Series"])
              if s in originals][-1]
    ours, theirs = _job(pair, f"/series/{series}/modify", {"Replace": {"SeriesDescription": "Moved"},
                                                          "KeepSource": False}, originals)
    assert [r.status_code for r in pair.call("GET", f"/series/{series}")] == [404, 404]
    assert len(pair.get(f"/series/{ours['ID']}/instances", 0)) == len(pair.get(f"/series/{theirs['ID']}/instances"))
    assert_equivalent(*pair.both("/statistics"), ignore_keys=IGNORE)


def _eight_bit_image(colour: bool) -> bytes:
    dataset = pydicom.Dataset()
    dataset.PatientID, dataset.PatientName, dataset.Modality = "PBX-JPEG", "Jpeg^Eight", "OT"
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = f"1.2.3.8.{int(colour)}.1", f"1.2.3.8.{int(colour)}.2"
    dataset.SOPInstanceUID, dataset.SOPClassUID = f"1.2.3.8.{int(colour)}.3", "1.2.840.10008.5.1.4.1.1.7"
    dataset.ImageType = ["ORIGINAL", "PRIMARY"]
    dataset.Rows = dataset.Columns = 16
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    ramp = numpy.arange(256, dtype=numpy.uint8).reshape(16, 16)
    if colour:
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation, dataset.PlanarConfiguration = 3, "RGB", 0
        dataset.PixelData = numpy.stack([ramp, ramp[::-1], ramp.T], axis=-1).tobytes()
    else:
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
        dataset.PixelData = ramp.tobytes()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("colour,syntax", [  # (JPEG extended of colour pixels: see test_transcode_of_an_instance)
    (False, "1.2.840.10008.1.2.4.50"), (True, "1.2.840.10008.1.2.4.50"), (False, "1.2.840.10008.1.2.4.51"),
    (False, "1.2.840.10008.1.2.4.81"), (True, "1.2.840.10008.1.2.4.81")])
def test_lossy_transcoding(pair, colour, syntax):
    """A lossy compression (JPEG baseline, near-lossless JPEG-LS) makes a derived instance, marked as DCMTK marks
    it; the pixels stay close."""
    data = _eight_bit_image(colour)
    instance = [answer.json()["ID"] for answer in pair.call("POST", "/instances", data=data)][1]
    answers = pair.call("POST", f"/instances/{instance}/modify", json={"Transcode": syntax})
    assert [answer.status_code for answer in answers] == [200, 200]
    mine, reference = (pydicom.dcmread(io.BytesIO(answer.content)) for answer in answers)
    assert mine.file_meta.TransferSyntaxUID == reference.file_meta.TransferSyntaxUID == syntax
    generated = {"SOPInstanceUID", "PixelData", "DerivationDescription", "LossyImageCompressionRatio",
                 "SourceImageSequence"}
    assert sorted(e.keyword for e in mine) == sorted(e.keyword for e in reference)
    for element in reference:
        if element.keyword not in generated:
            assert mine[element.tag].value == element.value, element.keyword
    assert mine.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue == "121320"
    assert mine.SourceImageSequence[0].ReferencedSOPInstanceUID not in (mine.SOPInstanceUID, "1.2.3.8.0.3")
    original = pydicom.dcmread(io.BytesIO(data)).pixel_array.astype(int)
    decoded = mine.pixel_array  # (pydicom gives YBR_FULL_422 as RGB)
    assert numpy.abs(decoded.astype(int) - original).mean() < 4


@pytest.mark.parametrize("replace", [{"SpecificCharacterSet": "ISO_IR 192"}, {"PatientName": "Zoë^Ünïcode"},
                                     {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Zoë^Ünïcode"},
                                     {"PatientName": "山田^太郎"}])
def test_character_sets(pair, originals, replace):
    """Values are written in the instance's character set (the new one when it is replaced); Orthanc 1.10 leaves
    the other values as they were encoded."""
    instance = _first(pair, f"/patients/{_patient(pair, 'PBX-LATIN1')['ID']}/instances", originals)
    answers = pair.call("POST", f"/instances/{instance}/modify", json={"Replace": replace})
    assert [answer.status_code for answer in answers] == [200, 200]
    mine, reference = (pydicom.dcmread(io.BytesIO(answer.content)) for answer in answers)
    for keyword in ("SpecificCharacterSet", "PatientName", "StudyDescription", "InstitutionName"):
        assert mine.get_item(keyword).value == reference.get_item(keyword).value, keyword


@pytest.mark.parametrize("body", [
    {"Replace": {"ReferencedImageSequence[1].ReferencedSOPClassUID": "1.2.3"}},
    {"Replace": {"ReferencedImageSequence[*].ReferencedSOPClassUID": "1.2.3"}},
    {"Remove": ["ReferencedImageSequence[0].ReferencedSOPClassUID"]},
    {"Remove": ["RequestAttributesSequence[0].ScheduledProtocolCodeSequence[1].CodeMeaning"]},
    {"Replace": {"ReferencedImageSequence[5].ReferencedSOPClassUID": "1.2.3"}},
    {"Replace": {"ProcedureCodeSequence[0].CodeMeaning": "x", "ProcedureCodeSequence[0].PatientName": "y"}},
    {"Replace": {"ReferencedImageSequence[0].ReferencedSOPInstanceUID": "1.2.3"}},
    {"Keep": ["ReferencedImageSequence[0].ReferencedSOPInstanceUID"]},
])
def test_paths_into_sequences(pair, originals, body):
    """Orthanc's paths (``Sequence[index or *].Tag``) replace and remove inside sequence items."""
    instance = _first(pair, f"/patients/{_patient(pair, 'PBX-SEQ')['ID']}/instances", originals)
    answers = pair.call("POST", f"/instances/{instance}/modify", json=body)
    assert [answer.status_code for answer in answers] == [200, 200]
    mine, reference = (dicom_tags(answer.content) for answer in answers)
    del mine["00080018"], reference["00080018"]  # (a new SOPInstanceUID on each side)
    assert mine == reference


@pytest.mark.parametrize("name", ["ReferencedImageSequence[x].ReferencedSOPClassUID",
                                  "ReferencedImageSequence.ReferencedSOPClassUID"])
def test_bad_paths(pair, originals, name):
    instance = _first(pair, f"/patients/{_patient(pair, 'PBX-SEQ')['ID']}/instances", originals)
    ours, theirs = pair.call("POST", f"/instances/{instance}/modify", json={"Replace": {name: "1.2.3"}})
    assert ours.status_code == theirs.status_code == 400
    assert_equivalent(ours.json(), theirs.json())
