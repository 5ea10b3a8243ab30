"""Two-way interoperation with the real Orthanc 1.10.1 over DICOM, each driven through its REST /modalities routes:
each server stores to the other, queries the other and retrieves from it (C-MOVE to itself, and pacsbox's C-GET).
"""

from __future__ import annotations

import io
import json

import pydicom
import pytest

from tests.support.dicom_peer import dataset_bytes
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)


class Node:
    """One server and its REST session."""

    def __init__(self, server, session) -> None:
        self.server, self.session, self.url = server, session, server.url

    def post(self, path: str, body) -> dict | list:
        answer = self.session.post(self.url + path, data=body if isinstance(body, (str, bytes)) else json.dumps(body),
                                   timeout=60)
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    def get(self, path: str):
        answer = self.session.get(self.url + path, timeout=60)
        assert answer.status_code == 200, (path, answer.text)
        return answer.json()

    def find(self, level: str, **query) -> list[str]:
        return self.post("/tools/find", {"Level": level, "Query": query})

    def upload(self, files) -> None:
        for data in files:
            self.post("/instances", data)

    def stored_datasets(self, patient_id: str) -> set[bytes]:
        return {dataset_bytes(self.session.get(f"{self.url}/instances/{i}/file").content)
                for i in self.find("Instance", PatientID=patient_id)}


@pytest.fixture(scope="module")
def nodes():
    """pacsbox and Orthanc, each registered as a modality of the other (pacsbox through its REST API)."""
    with RunningPacsbox({"DicomScuTimeout": 5}) as ours:
        orthanc_port = free_port()
        config = {"DicomPort": orthanc_port, "DicomScuTimeout": 5,
                  "DicomModalities": {"pacsbox": [ours.aet, "127.0.0.1", ours.dicom_port]}}
        with ReferenceOrthanc(extra_config=config, graceful_stop=False) as orthanc:
            pacsbox = Node(ours, ours.session())
            answer = pacsbox.session.put(f"{ours.url}/modalities/orthanc",
                                         data=json.dumps(["ORTHANC", "127.0.0.1", orthanc_port]))
            assert answer.status_code == 200
            yield pacsbox, Node(orthanc, orthanc.session)


def _files(corpus, prefix: str) -> list[bytes]:
    return [data for name, data in corpus if name.startswith(prefix)]


def _patient(files: list[bytes]) -> str:
    return str(pydicom.dcmread(io.BytesIO(files[0]), force=True).PatientID)


def test_echo_both_ways(nodes):
    pacsbox, orthanc = nodes
    assert pacsbox.post("/modalities/orthanc/echo", "") == {}
    assert orthanc.post("/modalities/pacsbox/echo", "") == {}


def test_each_stores_to_the_other(nodes, corpus):
    pacsbox, orthanc = nodes
    ct, mr = _files(corpus, "ct/"), _files(corpus, "mr/")
    pacsbox.upload(ct)
    study = pacsbox.find("Study", PatientID="PBX-001")[0]
    answer = pacsbox.post("/modalities/orthanc/store", study)
    assert answer["InstancesCount"] == len(ct) and answer["FailedInstancesCount"] == 0
    assert orthanc.stored_datasets("PBX-001") == {dataset_bytes(data) for data in ct}

    orthanc.upload(mr)
    series = orthanc.find("Series", PatientID="PBX-001", Modality="MR")
    answer = orthanc.post("/modalities/pacsbox/store", {"Resources": series, "Synchronous": True})
    assert answer["InstancesCount"] == len(mr)
    assert pacsbox.stored_datasets("PBX-001") == {dataset_bytes(data) for data in ct + mr}
    received_mr = pacsbox.find("Instance", PatientID="PBX-001", Modality="MR")[0]
    received = pacsbox.get(f"/instances/{received_mr}/metadata?expand")
    assert received["Origin"] == "DicomProtocol" and received["RemoteAET"] == "ORTHANC"


@pytest.mark.parametrize("level,query,expected", [
    ("Patient", {"PatientID": "PBX-002"}, 1), ("Study", {"PatientID": "PBX-002", "StudyDescription": ""}, 2),
    ("Series", {"PatientID": "PBX-002", "Modality": "MR"}, 1), ("Instance", {"PatientID": "PBX-002"}, 4),
])
def test_each_queries_the_other(nodes, corpus, level, query, expected):
    """The same data on both sides, the same query from each to the other: the same answers."""
    pacsbox, orthanc = nodes
    files = _files(corpus, "p2/")
    pacsbox.upload(files)
    orthanc.upload(files)
    answers = []
    for node, remote, remote_aet in ((pacsbox, "orthanc", "ORTHANC"), (orthanc, "pacsbox", pacsbox.server.aet)):
        made = node.post(f"/modalities/{remote}/query", {"Level": level, "Query": query})
        found = node.get(f"/queries/{made['ID']}/answers?expand&simplify")
        for answer in found:
            assert answer.pop("RetrieveAETitle", remote_aet) == remote_aet
        answers.append(sorted(found, key=json.dumps))
    assert len(answers[0]) == expected
    assert answers[0] == answers[1]


def test_pacsbox_retrieves_from_orthanc(nodes, corpus):
    pacsbox, orthanc = nodes
    files = _files(corpus, "charset/") + _files(corpus, "seq/")
    orthanc.upload(files)
    made = pacsbox.post("/modalities/orthanc/query", {"Level": "Patient", "Query": {"PatientID": "PBX-LATIN1"}})
    answer = pacsbox.post(f"/queries/{made['ID']}/answers/0/retrieve", "")  # to pacsbox itself
    assert answer["RemoteAet"] == "ORTHANC" and answer["Query"] == [{"0008,0052": "PATIENT", "0010,0020": "PBX-LATIN1"}]
    assert pacsbox.stored_datasets("PBX-LATIN1") == orthanc.stored_datasets("PBX-LATIN1")

    studies = [str(pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID) for data in files[1:]]
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": study} for study in studies]}
    pacsbox.post("/modalities/orthanc/get", body)  # C-GET: Orthanc sends on the same association
    for patient_id in ("PBX-UTF8", "PBX-SEQ"):
        assert pacsbox.stored_datasets(patient_id) == orthanc.stored_datasets(patient_id) != set()


def test_orthanc_retrieves_from_pacsbox(nodes, corpus):
    pacsbox, orthanc = nodes
    files = _files(corpus, "multiframe/") + _files(corpus, "nometa/")
    pacsbox.upload(files)
    made = orthanc.post("/modalities/pacsbox/query", {"Level": "Study", "Query": {"PatientID": "PBX-MF\\PBX-NOMETA"}})
    assert len(orthanc.get(f"/queries/{made['ID']}/answers")) == 2
    orthanc.post(f"/queries/{made['ID']}/retrieve", {"TargetAet": "ORTHANC", "Synchronous": True})
    for patient_id in ("PBX-MF", "PBX-NOMETA"):
        assert orthanc.stored_datasets(patient_id) == pacsbox.stored_datasets(patient_id) != set()
    orthanc.post("/modalities/pacsbox/move", {"Level": "Patient", "Resources": [{"PatientID": "PBX-MF"}]})
