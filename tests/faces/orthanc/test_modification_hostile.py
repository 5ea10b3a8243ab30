"""Hostile and concurrent modification requests against a real pacsbox server: each gets a 4xx in Orthanc's
format, nothing stored changes, the server keeps serving; concurrent jobs on one study all finish."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.dicomgen import standard_corpus


@pytest.fixture(scope="module")
def server(spawned_pacsbox):
    session = spawned_pacsbox.session()
    for _, data in standard_corpus():
        assert session.post(spawned_pacsbox.url + "/instances", data=data).status_code == 200
    return spawned_pacsbox


def _nested(depth: int) -> list:
    value: list = [{"CodeValue": "X"}]
    for _ in range(depth):
        value = [{"ReferencedStudySequence": value}]
    return value


@pytest.mark.parametrize("body", [
    {"Replace": {"ReferencedStudySequence": _nested(200)}},
    (b'{"Replace": {"ReferencedStudySequence": ' + b'[{"ReferencedStudySequence": ' * 5000 + b"[]"
     + b"}]" * 5000 + b"}}"),  # deeper than Python's JSON parser goes
    {"Replace": {f"Unknown{n}": "x" for n in range(5000)}},
    {"Remove": ["0010,0010"] * 20000 + [17]},
    {"Replace": {"PatientName": {"nested": "object"}}},
    {"Transcode": "1.2.3.4"},  # not a transfer syntax
    {"DicomVersion": ["2021b" * 1000], "Replace": "not an object"},
    b"\xff\xfe not even text",
])
def test_hostile_bodies_are_refused_and_change_nothing(server, body):
    session, url = server.session(), server.url
    study = session.get(url + "/studies").json()[0]
    before = session.get(url + "/statistics").json()
    for verb in ("modify", "anonymize"):
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        answer = session.post(f"{url}/studies/{study}/{verb}", **kwargs)
        assert 400 <= answer.status_code < 500 or answer.status_code == 501, (verb, answer.text[:300])
        assert {"HttpStatus", "OrthancStatus", "Message"} <= answer.json().keys()
    assert session.get(url + "/statistics").json() == before


def test_unknown_resources_in_bulk(server):
    session, url = server.session(), server.url
    answer = session.post(url + "/tools/bulk-anonymize", json={"Resources": [f"unknown-{n}" for n in range(10000)]})
    assert answer.status_code == 404 and answer.json()["OrthancStatus"] == 17


def test_concurrent_jobs_on_one_study_all_finish(server):
    session, url = server.session(), server.url
    study = session.get(url + "/studies").json()[0]
    count = len(session.get(f"{url}/studies/{study}/instances").json())
    studies_before = len(session.get(url + "/studies").json())

    def modify(number: int) -> str:
        verb = "anonymize" if number % 2 else "modify"
        body = {} if verb == "anonymize" else {"Replace": {"StudyDescription": f"Concurrent {number}"}}
        answer = server.session().post(f"{url}/studies/{study}/{verb}", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["ID"]

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(modify, range(8)))
    assert len(set(made)) == 8
    for new in made:
        assert len(session.get(f"{url}/studies/{new}/instances").json()) == count
    assert len(session.get(url + "/studies").json()) == studies_before + 8


def test_new_instances_are_ingested_like_any_other(server):
    """What a job makes is stored through the archive: the change log, DICOMweb and deletion see it."""
    session, url = server.session(), server.url
    study = session.get(url + "/studies").json()[0]
    made = session.post(f"{url}/studies/{study}/anonymize", json={}).json()["ID"]
    uid = session.get(f"{url}/studies/{made}").json()["MainDicomTags"]["StudyInstanceUID"]
    changes = session.get(url + "/changes", params={"limit": 10000}).json()["Changes"]
    assert {"ChangeType": "NewStudy", "ID": made} in [{k: c[k] for k in ("ChangeType", "ID")} for c in changes]
    found = session.get(url + "/dicom-web/studies", params={"StudyInstanceUID": uid})
    assert found.status_code == 200 and len(found.json()) == 1
    assert found.json()[0]["0020000D"]["Value"] == [uid]
    assert session.delete(f"{url}/studies/{made}").status_code == 200
