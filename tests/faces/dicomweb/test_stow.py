"""STOW-RS: the real dicomweb-client stores, the same bodies go to the Orthanc DICOMweb plugin, what is stored is
seen by the other faces (Orthanc's /tools/find, C-FIND), and bad bodies lose nothing."""

from __future__ import annotations

import json

import pydicom
import pytest
import requests
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from tests.support import dimse
from tests.support.pacsbox_proc import RunningPacsbox

from .conftest import client_for
from .stow_bodies import STOW_TYPE, body, instance, sop_uid, study_uid

REFERENCED, FAILED, RETRIEVE_URL = "00081199", "00081198", "00081190"


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"DicomAlwaysAllowFind": True, "MaximumUploadSize": 512 * 1024}) as running:
        yield running


def _post(server, path: str, data: bytes, content_type: str = STOW_TYPE):
    return requests.post(f"{server.url}/dicom-web{path}", data=data, auth=server.auth,
                         headers={"Content-Type": content_type})


def _referenced(answer: dict) -> list[str]:
    return [item["00081155"]["Value"][0] for item in answer[REFERENCED].get("Value", [])]


def test_store_with_the_client_then_search_and_find_everywhere(server):
    client = client_for(server.url + "/dicom-web", server.auth)
    datasets = [pydicom.dcmread(__import__("io").BytesIO(instance("client", n))) for n in (1, 2)]
    answer = client.store_instances(datasets)
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == sorted(
        [sop_uid("client", 1), sop_uid("client", 2)])
    assert len(client.search_for_instances(study_instance_uid=study_uid("client"))) == 2
    session = server.session()
    found = session.post(server.url + "/tools/find", json={"Level": "Study", "Query": {
        "StudyInstanceUID": study_uid("client")}}).json()
    assert len(found) == 1
    responses = dimse.find(server.dicom_port, server.aet, dimse.query("STUDY", StudyInstanceUID=study_uid("client"),
                                                                       NumberOfStudyRelatedInstances=""))
    answers = [dataset for _, dataset in responses if dataset is not None]
    assert len(answers) == 1 and int(answers[0].NumberOfStudyRelatedInstances) == 2


def test_c_store_then_qido_sees_it_and_an_orthanc_delete_removes_it(server):
    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
    association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert association.is_established
    try:
        status = association.send_c_store(pydicom.dcmread(__import__("io").BytesIO(instance("cstore", 1))))
        assert status.Status == 0
    finally:
        association.release()
    session = server.session()
    url = f"{server.url}/dicom-web/studies?StudyInstanceUID={study_uid('cstore')}"
    (study,) = session.get(url).json()
    assert study["00201208"]["Value"] == [1]
    orthanc_id = session.post(server.url + "/tools/lookup", data=study_uid("cstore")).json()[0]["ID"]
    assert session.delete(f"{server.url}/studies/{orthanc_id}").status_code == 200
    assert session.get(url).json() == []


def test_answer_to_a_whole_success(server):
    answer = _post(server, "/studies", body([instance("ok", 1), instance("ok", 2)]))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/dicom+json"
    module = answer.json()
    assert module[FAILED] == {"vr": "SQ"}
    assert _referenced(module) == [sop_uid("ok", 1), sop_uid("ok", 2)]
    assert module[RETRIEVE_URL]["Value"] == [f"{server.url}/dicom-web/studies/{study_uid('ok')}"]
    item = module[REFERENCED]["Value"][0]
    assert item["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]
    assert item[RETRIEVE_URL]["Value"][0].endswith(f"/instances/{sop_uid('ok', 1)}")
    again = _post(server, "/studies", body([instance("ok", 1)]))
    assert again.status_code == 200 and _referenced(again.json()) == [sop_uid("ok", 1)]


def test_study_mismatch_is_a_conflict_and_partial_success_is_202(server):
    wrong = _post(server, f"/studies/{study_uid('target')}", body([instance("elsewhere", 1)]))
    assert wrong.status_code == 409
    (failure,) = wrong.json()[FAILED]["Value"]
    assert failure["00081155"]["Value"] == [sop_uid("elsewhere", 1)] and failure["00081197"]["Value"] == [0x0110]
    mixed = _post(server, f"/studies/{study_uid('target')}", body([instance("target", 1), instance("elsewhere", 2)]))
    assert mixed.status_code == 202  # PS3.18 Table 10.5.3-2 (the plugin answers 409 here)
    assert _referenced(mixed.json()) == [sop_uid("target", 1)]
    session = server.session()
    assert session.get(f"{server.url}/dicom-web/studies?StudyInstanceUID={study_uid('elsewhere')}").json() == []


@pytest.mark.parametrize("content_type", [
    'multipart/related; type="application/dicom+json"; boundary=XyZzY', "application/dicom",
    "multipart/related; boundary=XyZzY", 'multipart/related; type="application/dicom"', ""])
def test_wrong_content_type_is_415(server, content_type):
    answer = _post(server, "/studies", body([instance("ctype", 1)]), content_type)
    assert answer.status_code == 415 and answer.json()["HttpStatus"] == 415
    assert server.session().get(f"{server.url}/dicom-web/studies?StudyInstanceUID={study_uid('ctype')}").json() == []


@pytest.mark.parametrize("data", [body([b"x"], boundary="other"), b"garbage", body([]),
                                  body([b"cut short"])[:-12]], ids=["boundary", "garbage", "no-part", "cut"])
def test_broken_multipart_is_400(server, data):
    answer = _post(server, "/studies", data)
    assert answer.status_code == 400 and answer.json()["Message"] == "Bad request"


def test_a_part_that_is_not_dicom_is_400_and_keeps_the_rest(server):
    answer = _post(server, "/studies", body([instance("mixed-bad", 1), b"not dicom at all"]))
    assert answer.status_code == 400
    assert _referenced(answer.json()) == [sop_uid("mixed-bad", 1)]
    skipped = _post(server, "/studies", body([instance("other-type", 1)], content_type="application/octet-stream"))
    assert skipped.status_code == 200 and _referenced(skipped.json()) == []


def test_oversized_body_is_413_and_loses_nothing(server):
    before = server.session().get(server.url + "/statistics").json()["CountInstances"]
    answer = _post(server, "/studies", body([instance("big", 1), b"\0" * 600 * 1024]))  # limit: 512 KiB
    assert answer.status_code == 413
    assert server.session().get(server.url + "/statistics").json()["CountInstances"] == before
    assert server.session().get(server.url + "/dicom-web/studies").status_code == 200


def test_same_answers_as_the_plugin(dicomweb_reference, fresh_pacsbox):
    """The cases where pacsbox and the plugin agree, sent to both in the same order."""
    cases = [
        ("/studies", body([instance("diff", 1), instance("diff", 2)]), STOW_TYPE),
        ("/studies", body([instance("diff", 1)]), STOW_TYPE),
        (f"/studies/{study_uid('diff')}", body([instance("diff", 3)]), STOW_TYPE),
        (f"/studies/{study_uid('diff')}", body([instance("diff-other", 1)]), STOW_TYPE),
        ("/studies", body([instance("diff", 4), b"not dicom"]), STOW_TYPE),
        ("/studies", body([instance("diff", 5)], content_type="text/plain"), STOW_TYPE),
        ("/studies", body([instance("diff", 6)]), "application/dicom"),
    ]
    for path, data, content_type in cases:
        ours = _post(fresh_pacsbox, path, data, content_type)
        theirs = requests.post(f"{dicomweb_reference.url}/dicom-web{path}", data=data, auth=dicomweb_reference.auth,
                               headers={"Content-Type": content_type})
        assert ours.status_code == theirs.status_code, (path, ours.text, theirs.text)
        ours_json = json.loads(ours.text.replace(fresh_pacsbox.url, "BASE"))
        theirs_json = json.loads(theirs.text.replace(dicomweb_reference.url, "BASE"))
        if "HttpStatus" in theirs_json:
            assert ours_json["Message"] == theirs_json["Message"]
        else:
            assert ours_json == theirs_json, path
