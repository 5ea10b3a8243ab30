"""WADO-RS through the real dicomweb-client, and the same retrievals compared with the Orthanc DICOMweb plugin:
status codes, DICOM JSON, multipart structure and bytes."""

from __future__ import annotations

import io
import json

import pydicom
import pytest

from tests.support.dicomgen import uid

from .multipart_parts import split
from .test_qido import JOHN_MR_SERIES_2, JOHN_MR_STUDY

MF = (uid("study", "PBX-MF", "mf"), uid("series", "PBX-MF", "mf", 1), uid("instance", "PBX-MF", "mf", 1, 1))
SEQ_STUDY = uid("study", "PBX-SEQ", "sequences")
MF_PATH = "studies/{}/series/{}/instances/{}".format(*MF)


def test_retrieve_with_the_client(client, corpus):
    stored = {pydicom.dcmread(io.BytesIO(data), force=True).SOPInstanceUID: data for _, data in corpus}
    study = client.retrieve_study(JOHN_MR_STUDY)
    assert len(study) == 8
    series = client.retrieve_series(JOHN_MR_STUDY, JOHN_MR_SERIES_2)
    assert len(series) == 2
    instance = client.retrieve_instance(*MF)
    assert instance.SOPInstanceUID == MF[2] and instance.NumberOfFrames == 3
    assert instance.PixelData == pydicom.dcmread(io.BytesIO(stored[MF[2]])).PixelData


def test_metadata_frames_and_bulk_with_the_client(client, corpus):
    metadata = client.retrieve_instance_metadata(*MF)
    assert metadata["00100020"]["Value"] == ["PBX-MF"]
    assert metadata["7FE00010"]["BulkDataURI"].endswith(f"/{MF_PATH}/bulk/7fe00010")
    assert len(client.retrieve_series_metadata(JOHN_MR_STUDY, JOHN_MR_SERIES_2)) == 2
    assert len(client.retrieve_study_metadata(JOHN_MR_STUDY)) == 8
    original = pydicom.dcmread(io.BytesIO(dict(corpus)["multiframe/1.dcm"])).PixelData
    frames = client.retrieve_instance_frames(*MF, frame_numbers=[1, 3])
    assert frames == [original[:128], original[256:384]]
    # (dicomweb-client sends a Host header without the port, which the BulkDataURI then lacks: rebuild it)
    assert client.retrieve_bulkdata(f"{client.base_url}/{MF_PATH}/bulk/7fe00010") == [original]


def test_unknown_uids_are_404(loaded_pacsbox):
    session = loaded_pacsbox.session()
    for path in ["studies/1.2.3", "studies/1.2.3/metadata", f"studies/{MF[0]}/series/1.2.3",
                 f"studies/{MF[0]}/series/{MF[1]}/instances/1.2.3/frames/1", f"{MF_PATH}/bulk/7fe00011"]:
        answer = session.get(f"{loaded_pacsbox.url}/dicom-web/{path}")
        assert answer.status_code == 404 and answer.json()["Message"] == "Accessing an inexistent item", path


@pytest.mark.parametrize("accept", [
    "application/dicom", "application/json", 'multipart/related; type="image/jpeg"',
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'])
def test_unsupported_accept_is_406(loaded_pacsbox, accept):
    """PS3.18 8.7.5 (the plugin answers 400, or 500 for a transfer syntax it cannot transcode to)."""
    answer = loaded_pacsbox.session().get(f"{loaded_pacsbox.url}/dicom-web/studies/{MF[0]}", headers={"Accept": accept})
    assert answer.status_code == 406 and answer.json()["HttpStatus"] == 406


def _both(loaded_pacsbox, dicomweb_reference, path: str, accept: str | None = None):
    headers = {"Accept": accept} if accept else {}
    ours = loaded_pacsbox.session().get(f"{loaded_pacsbox.url}/dicom-web/{path}", headers=headers)
    theirs = dicomweb_reference.session.get(f"{dicomweb_reference.url}/dicom-web/{path}", headers=headers)
    assert ours.status_code == theirs.status_code, (path, ours.text[:300], theirs.text[:300])
    return ours, theirs


def _comparable_parts(answer, base_url: str):
    content_type, parts = split(answer)
    described = [({k: v.replace(base_url, "BASE") for k, v in headers.items()}, body) for headers, body in parts]
    return content_type, sorted(described, key=lambda part: part[1])


RETRIEVALS = [
    f"studies/{JOHN_MR_STUDY}", f"studies/{JOHN_MR_STUDY}/series/{JOHN_MR_SERIES_2}", MF_PATH,
    f"{MF_PATH}/frames/1,3", f"{MF_PATH}/frames/2", f"{MF_PATH}/bulk/7fe00010", f"{MF_PATH}/bulk/00100010",
    f"{MF_PATH}/bulk/00200032", f"{MF_PATH}/bulk/00280010", f"{MF_PATH}/frames/0", f"{MF_PATH}/frames/4",
    f"{MF_PATH}/frames/x", "studies/1.2.3", f"studies/{MF[0]}/series/1.2.3", f"{MF_PATH}/bulk/7fe00011",
]


@pytest.mark.parametrize("path", RETRIEVALS)
def test_same_retrievals_as_the_plugin(loaded_pacsbox, dicomweb_reference, path):
    ours, theirs = _both(loaded_pacsbox, dicomweb_reference, path)
    if theirs.status_code != 200:
        assert ours.json()["Message"] == theirs.json()["Message"]
        return
    assert _comparable_parts(ours, loaded_pacsbox.url) == _comparable_parts(theirs, dicomweb_reference.url)


@pytest.mark.parametrize("accept", ['multipart/related; type="application/dicom"; transfer-syntax=*',
                                    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
                                    "*/*", 'multipart/related; type="application/dicom"'])
def test_same_negotiation_as_the_plugin(loaded_pacsbox, dicomweb_reference, accept):
    ours, theirs = _both(loaded_pacsbox, dicomweb_reference, MF_PATH, accept)
    assert _comparable_parts(ours, loaded_pacsbox.url) == _comparable_parts(theirs, dicomweb_reference.url)


def _metadata(answer, base_url: str) -> list[dict]:
    assert answer.headers["content-type"] == "application/dicom+json"
    return sorted(json.loads(answer.text.replace(base_url, "BASE")), key=lambda d: d["00080018"]["Value"][0])


def test_same_metadata_as_the_plugin(loaded_pacsbox, dicomweb_reference):
    """Every study's metadata, the whole data set of each instance, the same as the plugin's but for one thing:
    an empty sequence item stays an empty object (DICOM JSON, PS3.18 Annex F) where the plugin drops it."""
    studies = [answer["0020000D"]["Value"][0] for answer in dicomweb_reference.session.get(
        dicomweb_reference.url + "/dicom-web/studies").json()]
    for study in studies:
        ours, theirs = _both(loaded_pacsbox, dicomweb_reference, f"studies/{study}/metadata")
        ours_json, theirs_json = _metadata(ours, loaded_pacsbox.url), _metadata(theirs, dicomweb_reference.url)
        if study == SEQ_STUDY:
            (instance,) = ours_json
            assert instance["00400275"]["Value"][-1] == {}
            instance["00400275"]["Value"].pop()
        assert ours_json == theirs_json, study


@pytest.mark.parametrize("frames,message", [("%C2%B2", "Bad file format"), ("9" * 5000, "Parameter out of range")])
def test_odd_frame_numbers_are_400(loaded_pacsbox, frames, message):
    """A digit to str.isdigit that int refuses, and more digits than int reads: 400, not 500."""
    answer = loaded_pacsbox.session().get(f"{loaded_pacsbox.url}/dicom-web/{MF_PATH}/frames/{frames}")
    assert answer.status_code == 400 and answer.json()["Message"] == message
