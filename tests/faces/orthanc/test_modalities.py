"""The /modalities routes against the real Orthanc 1.10.1: both servers know the same remote modalities (pynetdicom
peers started here, a port nobody listens on, a socket that never answers) and get the same requests; their
answers, and what the peers receive from each, must be the same.

Deliberate differences are asserted on their own at the end (asynchronous jobs, storage commitment, C-GET).
"""

from __future__ import annotations

import io
import json
import socket
import time

import pydicom
import pytest

from tests.support.dicom_peer import DicomPeer, dataset_bytes
from tests.support.dicomgen import MR_IMAGE_STORAGE, make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.remote_pair import CORPUS_SOP_CLASSES, RemotePair, calling_aets, sent

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

FAKE_ID = "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee"


class Remotes:
    """The peers both servers know, by symbolic name."""

    def __init__(self) -> None:
        self.peer = DicomPeer("PEER", storage_classes=CORPUS_SOP_CLASSES)
        self.third = DicomPeer("THIRD", storage_classes=CORPUS_SOP_CLASSES)
        self.refuser = DicomPeer("REFUSER", refuse=True)
        self.failing = DicomPeer("FAILING", store_status=0xA700)
        self.mr_only = DicomPeer("MRONLY", storage_classes=[MR_IMAGE_STORAGE])
        self.silent = socket.socket()  # accepts connections (the kernel does) but never answers
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(8)
        self.peers = [self.peer, self.third, self.refuser, self.failing, self.mr_only]

    def __enter__(self) -> Remotes:
        for peer in self.peers:
            peer.start()
        return self

    def __exit__(self, *exc) -> None:
        for peer in self.peers:
            peer.stop()
        self.silent.close()

    def config(self) -> dict:
        return {"DicomScuTimeout": 3, "DicomModalities": {
            "peer": self.peer.modality(), "third": self.third.modality(), "refuser": self.refuser.modality(),
            "failing": self.failing.modality(), "mronly": self.mr_only.modality(),
            "nobody": ["NOBODY", "127.0.0.1", free_port()],
            "silent": ["SILENT", "127.0.0.1", self.silent.getsockname()[1]],
        }}

    def clear(self) -> None:
        for peer in self.peers:
            peer.clear()


@pytest.fixture(scope="module")
def remotes():
    with Remotes() as running:
        yield running


@pytest.fixture(scope="module")
def pair(remotes, corpus):
    config = remotes.config()
    with RunningPacsbox(config) as ours, ReferenceOrthanc(extra_config=config, graceful_stop=False) as reference:
        both = RemotePair(ours, reference)
        for _, data in corpus:
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200
        for server in (ours, reference):
            remotes.peer.known[server.aet] = ("127.0.0.1", server.dicom_port)
        remotes.peer.known["THIRD"] = ("127.0.0.1", remotes.third.port)
        remotes.peer.add_all(data for _, data in corpus)
        yield both


@pytest.fixture(scope="module")
def ids(pair):
    get = pair.ours_session.get
    url = pair.ours.url
    return {level: get(f"{url}/{level}").json() for level in ("patients", "studies", "series", "instances")}


@pytest.fixture(scope="module")
def originals(corpus):
    """The corpus files by SOP Instance UID."""
    return {str(pydicom.dcmread(io.BytesIO(data), force=True).SOPInstanceUID): data for _, data in corpus}


# -- the registry -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/modalities", "/modalities?expand", "/modalities?expand=false", "/modalities/peer",
                                  "/modalities/peer/configuration", "/modalities/nobody/configuration",
                                  "/modalities/zzz", "/modalities/zzz/configuration"])
def test_read_the_registry(pair, path):
    pair.compare("GET", path)


PUT_BODIES = [
    ["NEW", "127.0.0.1", 1234],
    ["NEW", "127.0.0.1", 1234, "GE"],
    ["NEW", "127.0.0.1", "104", "SyngoVia"],  # a port as text, a retired manufacturer name
    {"AET": "NEW", "Host": "localhost", "Port": 104, "AllowEcho": False, "LocalAet": "ME", "Timeout": 5,
     "UseDicomTls": True, "Manufacturer": "GenericNoUniversalWildcard", "Unknown": 1},
    {"AET": "NEW", "Host": "h", "Port": 65534, "AllowStorageCommitment": False},
    {"AET": "", "Host": "h", "Port": 1},
]
BAD_PUT_BODIES = [
    "{nope", "42", "null", '"abc"', "", ["A", "h"], ["A", "h", 1, "GE", "x"], ["A", 5, 1], [5, "h", 1], ["A", "h", 1.5],
    {"AET": "X", "Host": "h"}, {"AET": "X", "Host": "h", "Port": 0}, {"AET": "X", "Host": "h", "Port": 65535},
    {"AET": "X", "Host": "h", "Port": "abc"}, {"AET": "X", "Host": "h", "Port": 104.5},
    {"AET": "X", "Host": "h", "Port": True}, {"AET": 5, "Host": "h", "Port": 1}, {"AET": "X", "Host": 5, "Port": 1},
    {"AET": "X", "Host": "h", "Port": 1, "AllowEcho": "yes"}, {"AET": "X", "Host": "h", "Port": 1, "Timeout": "5"},
    {"AET": "X", "Host": "h", "Port": 1, "Timeout": -1}, {"AET": "X", "Host": "h", "Port": 1, "LocalAet": 5},
    {"AET": "X", "Host": "h", "Port": 1, "Manufacturer": "Foo"},
    {"AET": "X", "Host": "h", "Port": 1, "Manufacturer": 5}, ["X", "h", 1, "StoreScp"],
]


@pytest.mark.parametrize("body", PUT_BODIES, ids=lambda b: json.dumps(b)[:40])
def test_put_read_delete(pair, body):
    pair.compare("PUT", "/modalities/new", data=body)
    pair.compare("GET", "/modalities/new/configuration")
    pair.compare("GET", "/modalities")
    pair.compare("DELETE", "/modalities/new")
    pair.compare("GET", "/modalities/new/configuration")


@pytest.mark.parametrize("body", BAD_PUT_BODIES, ids=lambda b: json.dumps(b)[:40])
def test_put_refuses_malformed_entries(pair, body):
    pair.compare("PUT", "/modalities/bad", data=body)
    pair.compare("GET", "/modalities")


def test_delete_unknown(pair):
    body = pair.compare("DELETE", "/modalities/zzz")
    assert body["Details"] == "Unknown DICOM modality with symbolic name: zzz"


# -- C-ECHO -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,body", [
    ("peer", ""), ("peer", "{}"), ("peer", {"Timeout": 2}), ("peer", {"CheckFind": True}), ("peer", "5"),
    ("peer", "[]"), ("peer", "{x"), ("peer", "hello"), ("peer", {"Timeout": "x"}), ("peer", {"Timeout": -2}),
    ("peer", {"CheckFind": 1}), ("zzz", ""), ("nobody", ""), ("refuser", ""), ("silent", {"Timeout": 1}),
])
def test_echo(pair, remotes, name, body):
    started = time.monotonic()
    answer = pair.compare("POST", f"/modalities/{name}/echo", data=body)
    assert time.monotonic() - started < 8  # a modality that does not answer fails within the timeout
    if name in ("nobody", "refuser", "silent"):
        assert answer["OrthancStatus"] == 9 and answer["Details"].startswith("DicomAssociation - connecting")


def test_echo_with_check_find_sends_the_same_query(pair, remotes):
    remotes.clear()
    pair.call("POST", "/modalities/peer/echo", data={"CheckFind": True})
    ours, theirs = sent(remotes.peer)
    assert len(ours[3]) == len(theirs[3]) and ours[:2] == theirs[:2]  # the StudyInstanceUID is random


# -- C-STORE ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def by_kind(pair, ids):
    """Resource IDs by name: ``instance``, ``study``, ``patient``, and the CT and MR instances."""
    def modality_of(instance_id):
        return pair.ours_session.get(f"{pair.ours.url}/instances/{instance_id}/simplified-tags").json()["Modality"]

    kinds = {modality_of(i): [] for i in ids["instances"]}
    for instance_id in ids["instances"]:
        kinds[modality_of(instance_id)].append(instance_id)
    return {"instance": ids["instances"][0], "instances": ids["instances"], "study": ids["studies"][0],
            "patient": ids["patients"][-1], "ct": kinds["CT"], "mr": kinds["MR"]}


STORES = {
    "id as text": lambda r: r["instance"],
    "id with spaces": lambda r: f" {r['instance']}\n",
    "id as JSON string": lambda r: json.dumps(r["instance"]),
    "list": lambda r: [r["instance"], r["instances"][1]],
    "study": lambda r: r["study"],
    "mixed levels": lambda r: [r["patient"], r["instance"], r["study"]],
    "twice the same": lambda r: [r["instance"], r["instance"]],
    "object": lambda r: {"Resources": [r["instance"]]},
    "synchronous": lambda r: {"Resources": [r["instance"]], "Asynchronous": True, "Synchronous": True},
    "local AET": lambda r: {"Resources": [r["instance"]], "LocalAet": "MYAET"},
    "timeout": lambda r: {"Resources": [r["instance"]], "Timeout": 5},
    "move originator": lambda r: {"Resources": [r["instance"]], "MoveOriginatorAet": "ORIG", "MoveOriginatorID": 77},
    "move originator ID": lambda r: {"Resources": [r["instance"]], "MoveOriginatorID": 5},
    "move originator AET": lambda r: {"Resources": [r["instance"]], "MoveOriginatorAet": "ORIG"},
    "job options": lambda r: {"Resources": [r["instance"]], "Permissive": True, "Priority": 3,
                              "StorageCommitment": False},
    "nothing": lambda r: [],
}


@pytest.mark.parametrize("case", STORES)
def test_store(pair, remotes, by_kind, originals, case):
    body = STORES[case](by_kind)
    remotes.clear()
    ours = pair.to_ours("POST", "/modalities/peer/store", data=body)
    ours_received = list(remotes.peer.received)
    remotes.clear()
    reference = pair.to_reference("POST", "/modalities/peer/store", data=body)
    pair.assert_same(ours, reference, f"store {body!r}")

    def seen(received):
        return sorted((r.sop_instance_uid, pair.as_reference(r.calling_aet), pair.as_reference(
            r.move_originator_aet), r.move_originator_id, r.transfer_syntax) for r in received)

    assert seen(ours_received) == seen(remotes.peer.received)
    for item in ours_received:  # sent as stored, byte for byte
        assert item.data == dataset_bytes(originals[item.sop_instance_uid])


STORE_FAILURES = {
    "not an ID": ("peer", lambda r: "nope"),
    "unknown ID": ("peer", lambda r: FAKE_ID),
    "unknown ID as JSON": ("peer", lambda r: json.dumps(FAKE_ID)),
    "unknown ID in a list": ("peer", lambda r: [r["instance"], FAKE_ID]),
    "not an ID in a list": ("peer", lambda r: ["nope"]),
    "unknown ID in an object": ("peer", lambda r: {"Resources": [FAKE_ID]}),
    "empty body": ("peer", lambda r: ""),
    "bad JSON": ("peer", lambda r: "{x"),
    "a number": ("peer", lambda r: "5"),
    "list of numbers": ("peer", lambda r: [1]),
    "no Resources": ("peer", lambda r: {"Foo": 1}),
    "Resources not a list": ("peer", lambda r: {"Resources": "x"}),
    "Resources of numbers": ("peer", lambda r: {"Resources": [5]}),
    "bad body to unknown modality": ("zzz", lambda r: "{x"),
    "unknown ID to unknown modality": ("zzz", lambda r: [FAKE_ID]),
    "unknown ID to nobody": ("nobody", lambda r: [FAKE_ID]),
    "unknown modality": ("zzz", lambda r: r["instance"]),
    "nobody listening": ("nobody", lambda r: r["instance"]),
    "association refused": ("refuser", lambda r: r["instance"]),
    "C-STORE failure status": ("failing", lambda r: r["ct"][:2]),
    "SOP class not accepted": ("mronly", lambda r: r["ct"][0]),
    "SOP class not accepted, second": ("mronly", lambda r: [r["mr"][0], r["ct"][0], r["mr"][1]]),
    "bad Timeout": ("peer", lambda r: {"Resources": [r["instance"]], "Timeout": "x"}),
    "negative Timeout": ("peer", lambda r: {"Resources": [r["instance"]], "Timeout": -1}),
    "bad LocalAet": ("peer", lambda r: {"Resources": [r["instance"]], "LocalAet": 5}),
    "bad Synchronous": ("peer", lambda r: {"Resources": [r["instance"]], "Synchronous": "x"}),
    "bad Asynchronous": ("peer", lambda r: {"Resources": [r["instance"]], "Asynchronous": "x"}),
    "bad MoveOriginatorID": ("peer", lambda r: {"Resources": [r["instance"]], "MoveOriginatorID": "x"}),
    "negative MoveOriginatorID": ("peer", lambda r: {"Resources": [r["instance"]], "MoveOriginatorAet": "X",
                                                     "MoveOriginatorID": -5}),
    "large MoveOriginatorID": ("peer", lambda r: {"Resources": [r["instance"]], "MoveOriginatorAet": "X",
                                                  "MoveOriginatorID": 70000}),
    "bad StorageCommitment": ("peer", lambda r: {"Resources": [r["instance"]], "StorageCommitment": 1}),
}


@pytest.mark.parametrize("case", STORE_FAILURES)
def test_store_failures(pair, remotes, by_kind, case):
    name, body = STORE_FAILURES[case]
    remotes.clear()
    answer = pair.compare("POST", f"/modalities/{name}/store", data=body(by_kind))
    assert answer["HttpStatus"] >= 400
    if case == "SOP class not accepted, second":
        assert len(remotes.mr_only.received) == 2  # one MR from each server, then both stop at the CT


def test_exports_are_not_logged(pair, by_kind):
    """Orthanc 1.10.1's LogExportedResources defaults to false."""
    pair.call("POST", "/modalities/peer/store", data=by_kind["instance"])
    pair.compare("GET", "/exports")


# -- C-MOVE by tags ----------------------------------------------------------------------------------------------------
def _study(index=0):
    return uid("study", "PBX-001", ("ct", "mr")[index])


MOVES = [
    {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}], "TargetAet": "THIRD"},
    {"Level": "Study", "Resources": [{"StudyInstanceUID": _study(), "PatientID": "PBX-001", "AccessionNumber": "A"}],
     "TargetAet": "THIRD"},
    {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}]},
    {"Level": "study", "Resources": [{"0020,000d": _study()}, {"StudyInstanceUID": "1.2.3"}], "TargetAet": "THIRD"},
    {"Level": "Patient", "Resources": [{"PatientID": "PBX-002"}], "TargetAet": "THIRD", "LocalAet": "MYAET"},
    {"Level": "Series", "Resources": [{"SeriesInstanceUID": "1.2.3", "StudyInstanceUID": _study()}],
     "TargetAet": "THIRD", "Timeout": 5},
    {"Level": "Instance", "Resources": [{"SOPInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.4",
                                         "StudyInstanceUID": "1.2.5"}], "TargetAet": "THIRD"},
    {"Level": "Study", "Resources": [], "TargetAet": "THIRD"},
    {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}], "TargetAet": "THIRD", "Asynchronous": True},
]


@pytest.mark.parametrize("body", MOVES, ids=lambda b: json.dumps(b)[:50])
def test_move(pair, remotes, body):
    remotes.clear()
    ours, reference = pair.call("POST", "/modalities/peer/move", data=body)
    pair.assert_same(ours, reference, f"move {body}")
    requests = sent(remotes.peer)
    half = len(requests) // 2
    assert pair.as_reference(requests[:half]) == requests[half:]
    assert calling_aets(remotes.peer)[:half] == [pair.ours.aet if "LocalAet" not in body else "MYAET"] * half
    assert len(remotes.third.received) % 2 == 0


@pytest.mark.parametrize("name,body", [
    ("peer", {"Level": "Instance", "Resources": [{"SOPInstanceUID": "1.2.3"}]}),
    ("peer", {"Level": "Study", "Resources": [{}]}),
    ("peer", {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}], "TargetAet": "NOPE"}),
    ("peer", {"Level": "Study", "TargetAet": "THIRD"}), ("peer", {"Resources": []}),
    ("peer", {"Level": "Foo", "Resources": []}), ("peer", {"Level": "Study", "Resources": "x"}),
    ("peer", {"Level": "Study", "Resources": ["x"]}), ("peer", {"Level": "Study", "Resources": [{"PatientID": 5}]}),
    ("peer", {"Level": "Study", "Resources": [], "TargetAet": 5}),
    ("peer", {"Level": "Study", "Resources": [], "Timeout": "x"}), ("peer", "{x"), ("peer", "[]"),
    ("nobody", {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}]}),
    ("zzz", {"Level": "Study", "Resources": [{"StudyInstanceUID": _study()}]}),
])
def test_move_failures(pair, name, body):
    answer = pair.compare("POST", f"/modalities/{name}/move", data=body)
    assert answer["HttpStatus"] >= 400


# -- where pacsbox differs on purpose -----------------------------------------------------------------------------
def test_unknown_tag_in_move_is_a_client_error(pair):
    body = {"Level": "Study", "Resources": [{"Foo": "x"}]}
    ours, reference = pair.call("POST", "/modalities/peer/move", data=body)
    assert reference.status_code == 500 and ours.status_code == 400  # same Orthanc code, a 4xx for a client mistake
    assert ours.json()["OrthancStatus"] == reference.json()["OrthancStatus"] == 27


def test_asynchronous_storage_commitment_is_unsupported(pair, by_kind):
    body = {"Resources": [by_kind["instance"]], "StorageCommitment": True, "Asynchronous": True}
    answer = pair.ours_session.post(f"{pair.ours.url}/modalities/peer/store", data=json.dumps(body))
    assert answer.status_code == 501
    assert answer.json()["OrthancStatus"] == 2 and answer.json()["Details"].startswith("Storage commitment")


@pytest.mark.parametrize("options", [{"Asynchronous": True}, {"Synchronous": False}])
def test_asynchronous_store_is_a_job_with_the_synchronous_report(pair, by_kind, options):
    """An asynchronous C-STORE answers the job; the finished job's Content is the synchronous answer."""
    session, url = pair.ours_session, pair.ours.url
    body = {"Resources": [by_kind["instance"]]}
    synchronous = session.post(f"{url}/modalities/peer/store", data=json.dumps(body)).json()
    answer = session.post(f"{url}/modalities/peer/store", data=json.dumps({**body, **options})).json()
    assert set(answer) == {"ID", "Path"} and answer["Path"] == f"/jobs/{answer['ID']}"
    job = _finished_job(session, url, answer["ID"])
    assert (job["State"], job["Type"], job["Content"]) == ("Success", "DicomModalityStore", synchronous)


def _finished_job(session, url: str, job_id: str, timeout: float = 10.0) -> dict:
    """The job once it has succeeded or failed."""
    deadline = time.monotonic() + timeout
    while (job := session.get(f"{url}/jobs/{job_id}").json())["State"] not in ("Success", "Failure"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_permissive_store_counts_its_failures(pair, by_kind):
    """Orthanc 1.10.1 reports FailedInstancesCount 0 after failures it was told to ignore; pacsbox counts them."""
    body = json.dumps({"Resources": by_kind["instances"][:2], "Permissive": True})
    answer = pair.ours_session.post(f"{pair.ours.url}/modalities/failing/store", data=body).json()
    assert answer["InstancesCount"] == 2 and answer["FailedInstancesCount"] == 2


# -- C-GET (Orthanc 1.12.6's route, absent from 1.10.1) -----------------------------------------------------------
@pytest.fixture(scope="module")
def extra_study(remotes):
    """A study only the peer has."""
    files = [to_bytes(make_dataset(patient_id="PBX-GET", patient_name="Get^Gina", study_uid=uid("study", "get"),
                                   series_uid=uid("series", "get"), sop_uid=uid("instance", "get", n),
                                   instance_number=n, modality="MR")) for n in (1, 2)]
    remotes.peer.add_all(files)
    return files


def test_get_stores_what_arrives(pair, extra_study):
    session, url = pair.ours_session, pair.ours.url
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": uid("study", "get")}]}
    answer = session.post(f"{url}/modalities/peer/get", data=json.dumps(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"Description": "REST API", "LocalAet": pair.ours.aet, "RemoteAet": "PEER",
                             "Query": [{"0008,0052": "STUDY", "0020,000d": uid("study", "get")}]}
    found = session.post(f"{url}/tools/find", json={"Level": "Instance", "Query": {"PatientID": "PBX-GET"}}).json()
    assert len(found) == 2
    for instance_id in found:
        metadata = session.get(f"{url}/instances/{instance_id}/metadata?expand").json()
        assert metadata["Origin"] == "DicomProtocol" and metadata["RemoteAET"] == "PEER"
        stored = session.get(f"{url}/instances/{instance_id}/file").content
        assert dataset_bytes(stored) in {dataset_bytes(data) for data in extra_study}


@pytest.mark.parametrize("name,body,status", [
    ("peer", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2"}], "Asynchronous": True}, 200),
    ("zzz", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2"}]}, 404),
    ("nobody", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2"}]}, 500),
    ("peer", {"Level": "Study", "Resources": [{}]}, 400),
])
def test_get_failures(pair, name, body, status):
    answer = pair.ours_session.post(f"{pair.ours.url}/modalities/{name}/get", data=json.dumps(body))
    assert answer.status_code == status, answer.text
    if body.get("Asynchronous"):  # its C-GET must not reach the peers during a later test (a shuffled order)
        _finished_job(pair.ours_session, pair.ours.url, answer.json()["ID"])
