"""Query/retrieve through REST against the real Orthanc 1.10.1: both servers query the same pynetdicom peer (which
records every identifier it receives), then read, refine and retrieve the answers; everything must match, from
the C-FIND identifier on the wire to the JSON of each answer and the C-MOVE requests of a retrieve.
"""

from __future__ import annotations

import time

import pytest

from tests.support.compare import DEFAULT_IGNORE_KEYS
from tests.support.dicom_peer import DicomPeer
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.remote_pair import CORPUS_SOP_CLASSES, IGNORE, RemotePair, calling_aets, sent

pytestmark = [pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON),
              pytest.mark.filterwarnings("ignore:Invalid value for VR UI")]  # the peer reading GE's "*" UIDs

IGNORE_URI = IGNORE | {"Uri"}  # error bodies name the query, whose ID differs


@pytest.fixture(scope="module")
def remotes(corpus):
    with DicomPeer("PEER", storage_classes=CORPUS_SOP_CLASSES) as peer, \
            DicomPeer("THIRD", storage_classes=CORPUS_SOP_CLASSES) as third:
        peer.add_all(data for _, data in corpus)
        peer.known["THIRD"] = ("127.0.0.1", third.port)
        yield peer, third


@pytest.fixture(scope="module")
def pair(remotes):
    peer, third = remotes
    config = {"DicomScuTimeout": 3, "DicomModalities": {
        "peer": peer.modality(), "third": third.modality(), "nobody": ["NOBODY", "127.0.0.1", free_port()],
        "ge": peer.modality(Manufacturer="GE"), "nwd": peer.modality(Manufacturer="GenericNoWildcardInDates"),
        "nuw": peer.modality(Manufacturer="GenericNoUniversalWildcard"), "mine": peer.modality(LocalAet="MINE"),
    }}
    with RunningPacsbox(config) as ours, ReferenceOrthanc(extra_config=config, graceful_stop=False) as reference:
        for server in (ours, reference):
            peer.known[server.aet] = ("127.0.0.1", server.dicom_port)
        yield RemotePair(ours, reference)


class QueryPair:
    """One query made on both servers: their query IDs, and what the peer was sent by each."""

    def __init__(self, pair: RemotePair, peer: DicomPeer, path: str, body, third: DicomPeer | None = None) -> None:
        self.pair = pair
        peer.clear()
        ours = pair.to_ours("POST", path, data=body)
        self.ours_sent, self.ours_callers = sent(peer), calling_aets(peer)
        peer.clear()
        reference = pair.to_reference("POST", path, data=body)
        self.reference_sent, self.reference_callers = sent(peer), calling_aets(peer)
        self.answer = pair.assert_same(ours, reference, f"POST {path} {body}", IGNORE_URI)
        self.ids = (ours.json().get("ID"), reference.json().get("ID"))

    def compare(self, method: str, suffix: str, data=None, ignore=IGNORE_URI):
        ours = self.pair.to_ours(method, f"/queries/{self.ids[0]}{suffix}", data=data)
        reference = self.pair.to_reference(method, f"/queries/{self.ids[1]}{suffix}", data=data)
        return self.pair.assert_same(ours, reference, f"{method} /queries/...{suffix} {data!r}", ignore)


QUERIES = [
    ("peer", {"Level": "Study", "Query": {"PatientName": "*"}}),
    ("peer", {"Level": "Patient", "Query": {}}),
    ("peer", {"Level": "Patient"}),
    ("peer", {"Level": "Patient", "Query": {"PatientName": "", "PatientSex": "", "OtherPatientIDsSequence": "",
                                            "NumberOfPatientRelatedStudies": ""}}),
    ("peer", {"Level": "Series", "Query": {"StudyInstanceUID": "", "Modality": "MR", "SeriesNumber": ""}}),
    ("peer", {"Level": "Instance", "Query": {"SOPInstanceUID": "", "InstanceNumber": "1", "SOPClassUID": ""}}),
    ("peer", {"Level": "study", "Query": {"PatientName": "Doe*", "StudyDescription": "", "ModalitiesInStudy": "",
                                          "NumberOfStudyRelatedInstances": "", "0008,0020": "", "SeriesDescription": "",
                                          "PatientID": "PBX-001", "StudyInstanceUID": ""}}),
    ("peer", {"Level": "IMAGE", "Query": {"PatientID": "PBX-MF"}}),
    ("peer", {"Level": "Study", "Query": {"PatientName": "Doe*", "SeriesDescription": "", "SOPInstanceUID": ""},
              "Normalize": False}),
    ("peer", {"Level": "Study", "Query": {"PatientName": "Doe*", "SeriesDescription": "", "StudyDate": "*",
                                          "ModalitiesInStudy": "*"}, "Normalize": True}),
    ("peer", {"Level": "Patient", "Query": {"PatientName": "Müller*"}}),
    ("peer", {"Level": "Patient", "Query": {"PatientName": "Yamada*"}}),
    ("peer", {"Level": "Patient", "Query": {"PatientName": "山田*"}}),
    ("peer", {"Level": "Patient", "Query": {"PatientName": "山田*", "SpecificCharacterSet": "ISO_IR 192"}}),
    ("peer", {"Level": "Patient", "Query": {"0010,0010": "a*", "00100040": "M", "0010-1010": ""}}),
    ("peer", {"Level": "Patient", "Query": {"PatientID": "PBX-001\\PBX-002"}}),
    ("peer", {"Level": "Study", "Query": {"StudyDate": "20200101-20231231", "QueryRetrieveLevel": "SERIES"}}),
    ("peer", {"Level": "Study", "Query": {"StudyInstanceUID": "1.2.3", "PatientID": "X"}}),
    ("peer", {"Level": "Study", "Query": {"ReferencedStudySequence": "", "0009,1001": "x", "PatientAge": ""}}),
    ("peer", {"Level": "Study", "Query": {"PatientName": "*"}, "LocalAet": "MYAET", "Timeout": 4}),
    ("mine", {"Level": "Study", "Query": {}, "LocalAet": "MYAET"}),
    ("ge", {"Level": "Instance", "Query": {"PatientName": "*", "StudyDate": "*"}}),
    ("nwd", {"Level": "Study", "Query": {"PatientName": "*", "StudyDate": "*", "StudyTime": "*"}}),
    ("nwd", {"Level": "Study", "Query": {"PatientName": "*", "StudyDate": "*"}, "Normalize": False}),
    ("nuw", {"Level": "Study", "Query": {"PatientName": "*", "StudyDate": "*", "StudyDescription": "a*"}}),
]
READS = ["", "/answers", "/answers?expand", "/answers?expand&simplify", "/answers?expand&short",
         "/answers?simplify", "/level", "/modality", "/query", "/query?simplify", "/query?short"]
ANSWER_READS = ["", "/content", "/content?simplify", "/content?short"]


@pytest.mark.parametrize("name,body", QUERIES, ids=lambda value: str(value)[:60])
def test_query_and_read_the_answers(pair, remotes, name, body):
    query = QueryPair(pair, remotes[0], f"/modalities/{name}/query", body)
    assert pair.as_reference(query.ours_sent) == query.reference_sent  # the same C-FIND, tag for tag
    assert pair.as_reference(query.ours_callers) == query.reference_callers
    for suffix in READS:
        query.compare("GET", suffix)
    for index in query.compare("GET", "/answers")[:2]:
        for suffix in ANSWER_READS:
            query.compare("GET", f"/answers/{index}{suffix}")


@pytest.mark.parametrize("index", ["99", "x", "-1", "+1", " 1"])
def test_answer_indexes_out_of_range(pair, remotes, index):
    query = QueryPair(pair, remotes[0], "/modalities/peer/query",
                      {"Level": "Patient", "Query": {"PatientID": "PBX-00*"}})
    for suffix in ANSWER_READS:
        query.compare("GET", f"/answers/{index}{suffix}")
    query.compare("POST", f"/answers/{index}/retrieve", data="THIRD")


@pytest.mark.parametrize("name,body", [
    ("peer", {"Query": {}}), ("peer", {"Level": 5}), ("peer", {"Level": "Foo"}),
    ("peer", {"Level": "Study", "Query": []}),
    ("peer", {"Level": "Study", "Query": {"PatientName": 5}}), ("peer", {"Level": "Study", "Query": {"Foo": "x"}}),
    ("peer", {"Level": "Study", "Query": {"patientname": "x"}}), ("peer", {"Level": "Study", "Normalize": 1}),
    ("peer", {"Level": "Study", "Timeout": "x"}), ("peer", {"Level": "Study", "LocalAet": 1}), ("peer", "[]"),
    ("peer", "{x"), ("peer", ""), ("peer", {"Level": "Study", "Query": {"ReferencedStudySequence": "abc"}}),
    ("nobody", {"Level": "Study"}), ("zzz", {"Level": "Study"}), ("zzz", "{x"),
])
def test_query_failures(pair, name, body):
    answer = pair.compare("POST", f"/modalities/{name}/query", data=body)
    assert answer["HttpStatus"] >= 400


@pytest.mark.parametrize("method,suffix", [
    ("GET", ""), ("GET", "/answers"), ("GET", "/level"), ("GET", "/modality"), ("GET", "/query"),
    ("GET", "/answers/0"), ("GET", "/answers/0/content"), ("POST", "/retrieve"), ("POST", "/answers/0/retrieve"),
    ("DELETE", ""),
])
def test_unknown_query(pair, method, suffix):
    pair.compare(method, f"/queries/nope{suffix}")


def test_list_and_delete(pair, remotes):
    query = QueryPair(pair, remotes[0], "/modalities/peer/query", {"Level": "Patient"})
    ours, reference = pair.call("GET", "/queries")
    assert query.ids[0] in ours.json() and query.ids[1] in reference.json()
    query.compare("DELETE", "")
    query.compare("GET", "/level")
    ours, reference = pair.call("GET", "/queries")
    assert query.ids[0] not in ours.json() and query.ids[1] not in reference.json()


# -- retrieve (C-MOVE) --------------------------------------------------------------------------------------------
LEVEL_QUERIES = [
    ("Patient", {"PatientID": "PBX-002"}), ("Study", {"PatientID": "PBX-001", "StudyDescription": ""}),
    ("Series", {"PatientID": "PBX-002", "Modality": "MR", "SeriesDescription": ""}),
    ("Instance", {"PatientID": "PBX-MF"}),
]


@pytest.mark.parametrize("level,query", LEVEL_QUERIES, ids=[level for level, _ in LEVEL_QUERIES])
def test_retrieve_an_answer(pair, remotes, level, query):
    peer, third = remotes
    made = QueryPair(pair, peer, "/modalities/peer/query", {"Level": level, "Query": query})
    _compare_retrieves(made, peer, third, "/answers/0/retrieve", "THIRD")


@pytest.mark.parametrize("body", [
    {"TargetAet": "THIRD", "Synchronous": True, "Timeout": 5}, {"TargetAet": "THIRD", "Full": True},
    {"TargetAet": "THIRD", "Simplify": True}, "NOBODY", "{x", {"TargetAet": 5}, {"TargetAet": "THIRD", "Timeout": "x"},
], ids=str)
def test_retrieve_bodies(pair, remotes, body):
    peer, third = remotes
    made = QueryPair(pair, peer, "/modalities/peer/query", {"Level": "Instance", "Query": {"PatientID": "PBX-MF"}})
    _compare_retrieves(made, peer, third, "/answers/0/retrieve", body)


def test_retrieve_all_answers(pair, remotes):
    peer, third = remotes
    made = QueryPair(pair, peer, "/modalities/peer/query", {"Level": "Series", "Query": {"PatientID": "PBX-00*"}})
    _compare_retrieves(made, peer, third, "/retrieve", {"TargetAet": "THIRD", "Simplify": True})
    empty = QueryPair(pair, peer, "/modalities/peer/query", {"Level": "Study", "Query": {"PatientID": "NOPE"}})
    _compare_retrieves(empty, peer, third, "/retrieve", "THIRD")


def _compare_retrieves(made: QueryPair, peer: DicomPeer, third: DicomPeer, suffix: str, body) -> None:
    pair = made.pair
    peer.clear()
    third.clear()
    ours = pair.to_ours("POST", f"/queries/{made.ids[0]}{suffix}", data=body)
    ours_moves, ours_stored = sent(peer), sorted(r.sop_instance_uid for r in third.received)
    peer.clear()
    third.clear()
    reference = pair.to_reference("POST", f"/queries/{made.ids[1]}{suffix}", data=body)
    pair.assert_same(ours, reference, f"retrieve {body!r}", IGNORE_URI)
    assert pair.as_reference(ours_moves) == sent(peer)
    assert ours_stored == sorted(r.sop_instance_uid for r in third.received)


def test_retrieve_to_the_server_itself(pair, remotes):
    """No target: the peer moves the answers to the server that asked (each server's own AET)."""
    made = QueryPair(pair, remotes[0], "/modalities/peer/query", {"Level": "Series", "Query": {"PatientID": "PBX-MF"}})
    for body in ("", {}):
        made.compare("POST", "/answers/0/retrieve", data=body)
    pair.compare("GET", "/instances")


@pytest.mark.parametrize("suffix,body,expected", [
    ("/retrieve", '"THIRD"', "plain text, or a JSON object"), ("/retrieve", "[]", "plain text, or a JSON object"),
    ("/retrieve", "5", "plain text, or a JSON object"), ("/answers/0/query-series", "[]", "Must provide a JSON object"),
])
def test_json_bodies_that_are_not_objects(pair, remotes, suffix, body, expected):
    """Orthanc 1.10.1 fails with an internal error (500); pacsbox says what it expects."""
    made = QueryPair(pair, remotes[0], "/modalities/peer/query", {"Level": "Patient", "Query": {"PatientID": "PBX*"}})
    ours = pair.to_ours("POST", f"/queries/{made.ids[0]}{suffix}", data=body)
    reference = pair.to_reference("POST", f"/queries/{made.ids[1]}{suffix}", data=body)
    assert (ours.status_code, reference.status_code) == (400, 500)
    assert expected in ours.json()["Details"]


def test_asynchronous_retrieve_is_a_job(pair, remotes):
    """Orthanc answers the DicomMoveScu job; its Content is the synchronous report (same keys as Orthanc's)."""
    made = QueryPair(pair, remotes[0], "/modalities/peer/query", {"Level": "Patient", "Query": {"PatientID": "X*"}})
    jobs = []
    for query_id, send, session, url in ((made.ids[0], pair.to_ours, pair.ours_session, pair.ours.url),
                                         (made.ids[1], pair.to_reference, pair.reference_session,
                                          pair.reference.url)):
        answer = send("POST", f"/queries/{query_id}/retrieve", data={"Asynchronous": True})
        assert answer.status_code == 200 and set(answer.json()) == {"ID", "Path"}
        deadline = time.monotonic() + 10
        while (job := session.get(f"{url}/jobs/{answer.json()['ID']}").json())["State"] not in ("Success",
                                                                                                 "Failure"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        jobs.append(job)
    ours, reference = jobs
    assert (ours["Type"], ours["State"]) == (reference["Type"], reference["State"]) == ("DicomMoveScu", "Success")
    assert set(ours["Content"]) == set(reference["Content"])


# -- refining an answer -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level,child,body", [
    ("Study", "series", {}), ("Study", "instances", {"Query": {"InstanceNumber": "1"}}),
    ("Patient", "studies", {"Query": {"StudyDescription": ""}}), ("Patient", "series", None),
    ("Series", "instances", {"Timeout": 4}), ("Series", "studies", {}), ("Instance", "series", {}),
    ("Study", "series", {"Query": {"Foo": "x"}}), ("Study", "series", "{x"),
])
def test_query_below_an_answer(pair, remotes, level, child, body):
    peer = remotes[0]
    made = QueryPair(pair, peer, "/modalities/peer/query", {"Level": level, "Query": {"PatientID": "PBX-002"}})
    child_query = QueryPair.__new__(QueryPair)
    child_query.pair = pair
    peer.clear()
    ours = pair.to_ours("POST", f"/queries/{made.ids[0]}/answers/0/query-{child}", data=body)
    ours_sent = sent(peer)
    peer.clear()
    reference = pair.to_reference("POST", f"/queries/{made.ids[1]}/answers/0/query-{child}", data=body)
    answer = pair.assert_same(ours, reference, f"query-{child} {body!r}", IGNORE_URI)
    assert pair.as_reference(ours_sent) == sent(peer)
    if ours.status_code == 200:
        child_query.ids = (ours.json()["ID"], reference.json()["ID"])
        for suffix in ("/level", "/modality", "/query", "/answers?expand&simplify"):
            child_query.compare("GET", suffix)
    else:
        assert answer["HttpStatus"] >= 400


def test_answers_are_kept_with_defaultencoding(pair, remotes):
    """A UTF-8 answer is converted to Latin-1 (DefaultEncoding), losing what Latin-1 cannot say, as Orthanc does."""
    made = QueryPair(pair, remotes[0], "/modalities/peer/query", {"Level": "Patient", "Query": {"PatientName": ""}})
    answers = made.compare("GET", "/answers?expand&simplify", ignore=DEFAULT_IGNORE_KEYS)
    utf8 = [a for a in answers if a["PatientID"] == "PBX-UTF8"]
    assert utf8 and utf8[0]["PatientName"] == "Yamada^Tarou=^=^" and utf8[0]["SpecificCharacterSet"] == "ISO_IR 100"
