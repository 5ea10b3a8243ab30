"""HTTP faults through real clients (requests with retries, pyorthanc, xnat, dicomweb-client) against a spawned
pacsbox: what each client saw, and what the event log recorded. Bad rules get 400 with the reason; the routes need
authentication; no secret reaches the log."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter, Retry  # urllib3's Retry, as requests exposes it

from pacsbox.faults.client import EventsClient, FaultsApiError, FaultsClient, http_caller
from tests.faults.conftest import USERS
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox


def _file(name: str) -> bytes:
    return to_bytes(make_dataset(patient_id="FAULTS", patient_name="FAULT^HTTP", study_uid=uid("faults", "study"),
                                 series_uid=uid("faults", "series"), sop_uid=uid("faults", name), rows=4, cols=4))


def _uploads(events: EventsClient) -> list[dict]:
    return events.list(kind="http", method="POST", path="/instances")


def test_a_retrying_client_sees_two_503_then_stores(server, faults, events):
    rule = faults.add({"face": "orthanc", "method": "POST", "path": "/instances", "first": 2,
                       "action": {"http_status": 503}})
    session = requests.Session()
    session.auth = server.auth
    retries = Retry(total=3, status_forcelist=[503], allowed_methods=None, backoff_factor=0)
    session.mount("http://", HTTPAdapter(max_retries=retries))
    response = session.post(server.url + "/instances", data=_file("retried"), timeout=30)
    assert response.status_code == 200 and response.json()["Status"] == "Success"
    assert len(response.raw.retries.history) == 2  # what the client retried
    uploads = _uploads(events)
    assert [(e["status"], e.get("fault")) for e in uploads] == [(503, rule["id"]), (503, rule["id"]), (200, None)]
    assert [r["fired"] for r in faults.list()] == [2]
    stored = events.wait_for(kind="stored", sop_instance_uid=uid("faults", "retried"))
    assert stored["instance"] == response.json()["ID"] and stored["user"] == "alice"


def test_the_503_is_orthancs_error_body_and_nothing_is_stored(server, faults, events):
    faults.add(face="orthanc", method="POST", path="/instances", action={"http_status": 503, "message": "busy"})
    response = requests.post(server.url + "/instances", data=_file("refused"), auth=server.auth, timeout=30)
    assert response.status_code == 503
    body = response.json()
    assert {k: body[k] for k in ("HttpError", "HttpStatus", "Method", "Uri", "Details")} == {
        "HttpError": "Service Unavailable", "HttpStatus": 503, "Method": "POST", "Uri": "/instances",
        "Details": "busy"}
    assert set(body) >= {"Message", "OrthancError", "OrthancStatus"}
    assert events.list(kind="stored") == []
    lookup = requests.post(server.url + "/tools/lookup", data=uid("faults", "refused"), auth=server.auth, timeout=30)
    assert lookup.json() == []


def test_pyorthanc_sees_the_status_then_works(server, faults, events):
    import httpx
    from pyorthanc import Orthanc

    faults.add(face="orthanc", method="GET", path="/system", first=1, action={"http_status": 500})
    orthanc = Orthanc(server.url, *server.auth, timeout=30)
    with pytest.raises(httpx.HTTPError, match="HTTP code: 500") as raised:
        orthanc.get_system()
    assert '"OrthancStatus": 1' in str(raised.value)  # the body pyorthanc shows is Orthanc's error body
    assert orthanc.get_system()["Name"]
    assert [e["status"] for e in events.list(kind="http", path="/system")] == [500, 200]


def test_xnat_sees_a_plain_text_error(server, faults, events):
    xnat = pytest.importorskip("xnat")
    session = xnat.connect(server.url, user=server.auth[0], password=server.auth[1], loglevel="ERROR")
    try:
        rule = faults.add(face="xnat", method="GET", path="/data/projects", action={"http_status": 500,
                                                                                   "message": "XNAT is down"})
        with pytest.raises(xnat.exceptions.XNATResponseError, match="status 500"):
            session.get_json("/data/projects")
        plain = requests.get(server.url + "/data/projects", auth=server.auth, timeout=30)
        assert (plain.status_code, plain.text) == (500, "XNAT is down\n")
        assert plain.headers["content-type"].startswith("text/plain")
        faulted = events.list(face="xnat", kind="http", path="/data/projects")
        assert [(e["status"], e["fault"]) for e in faulted] == [(500, rule["id"])] * 2
    finally:
        faults.clear()
        session.disconnect()


def test_dicomweb_client_retries_408_then_gives_up_on_a_lasting_503(server, faults, events):
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.auth = server.auth
    client = DICOMwebClient(url=server.url + "/dicom-web", session=session)
    client.set_http_retry_params(retry=True, max_attempts=4, wait_exponential_multiplier=10)
    rule = faults.add(face="dicomweb", method="GET", path="/dicom-web/studies", first=2,
                      action={"http_status": 408})
    assert isinstance(client.search_for_studies(), list)  # retried twice, then answered
    recorded = events.list(face="dicomweb", kind="http", path="/dicom-web/studies")
    assert [(e["status"], e.get("fault")) for e in recorded] == [(408, rule["id"])] * 2 + [(200, None)]
    faults.clear()
    faults.add(face="dicomweb", method="GET", path="/dicom-web/studies",
               action={"http_status": 503, "headers": {"Retry-After": "1"}})
    client.set_http_retry_params(retry=False)
    with pytest.raises(requests.HTTPError) as raised:
        client.search_for_studies()
    assert raised.value.response.status_code == 503 and raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response.json()["HttpStatus"] == 503  # the DICOMweb plugin answers Orthanc's error body


def test_a_delay_holds_the_answer(server, faults, events):
    faults.add(face="orthanc", method="GET", path="/statistics", action={"delay": 0.6})
    started = time.monotonic()
    response = requests.get(server.url + "/statistics", auth=server.auth, timeout=30)
    assert response.status_code == 200 and time.monotonic() - started >= 0.6
    assert events.list(kind="http", path="/statistics")[0]["duration_ms"] >= 600


def test_closing_mid_answer_breaks_the_clients_read(server, faults, events):
    stored = requests.post(server.url + "/instances", data=_file("cut"), auth=server.auth, timeout=30).json()
    rule = faults.add(face="orthanc", method="GET", path="/instances/*/file", action={"close": True})
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _ = requests.get(f"{server.url}/instances/{stored['ID']}/file", auth=server.auth, timeout=30).content
    event = events.wait_for(kind="http", path=f"/instances/{stored['ID']}/file")
    assert event["fault"] == rule["id"] and event["outcome"] == "closed" and event["status"] == 200
    assert 0 < event["response_size"] < len(_file("cut"))
    faults.clear()
    whole = requests.get(f"{server.url}/instances/{stored['ID']}/file", auth=server.auth, timeout=30)
    assert whole.content == _file("cut")  # the archive is untouched


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "The body must be a fault rule in JSON"),
    (json.dumps({"face": "pacs", "action": {"http_status": 503}}).encode(), "face must be one of"),
    (json.dumps({"face": "orthanc", "action": {"http_status": 1000}}).encode(), "between 200 and 599"),
    (json.dumps({"face": "dimse", "action": {"dimse_status": 0}}).encode(), "not a failure or warning status"),
    (json.dumps({"face": "orthanc", "first": -2, "action": {"http_status": 503}}).encode(), "first must be at least 0"),
    (json.dumps([{"face": "orthanc", "action": {"http_status": 503}}, {"face": "x"}]).encode(), "rule 1: face"),
])
def test_a_bad_rule_gets_400_with_the_reason(server, faults, body, reason):
    response = requests.post(server.url + "/pacsbox/faults", data=body, auth=server.auth, timeout=30)
    assert response.status_code == 400
    assert response.json()["HttpStatus"] == 400 and reason in response.json()["Details"]
    assert faults.list() == []  # nothing added, not even the good rule of a list
    if body.startswith((b'{"', b"[")):  # the Python API raises with the same reason
        rule = json.loads(body)
        with pytest.raises(FaultsApiError, match=reason) as raised:
            faults.add_many(rule) if isinstance(rule, list) else faults.add(rule)
        assert raised.value.status == 400


def test_the_routes_need_authentication_and_are_never_faulted(server, faults):
    for method, path in (("GET", "/pacsbox/faults"), ("POST", "/pacsbox/faults"), ("GET", "/pacsbox/events"),
                         ("DELETE", "/pacsbox/events")):
        assert requests.request(method, server.url + path, timeout=30).status_code == 401
    faults.add(face="orthanc", action={"http_status": 503})  # every Orthanc route...
    assert requests.get(server.url + "/system", auth=server.auth, timeout=30).status_code == 503
    faults.clear()  # ...but not the ones that remove the rule
    assert faults.list() == []
    assert requests.get(server.url + "/system", auth=server.auth, timeout=30).status_code == 200


def test_no_secret_reaches_the_event_log(server, faults, events):
    faults.add(face="xnat", method="POST", path="/data/JSESSION", first=1, action={"http_status": 503})
    requests.get(server.url + "/patients?password=hunter2&token=t0ken", auth=server.auth, timeout=30)
    requests.get(server.url + "/data/projects;jsessionid=SESSIONSECRET", auth=server.auth, timeout=30)
    requests.post(server.url + "/data/JSESSION", auth=server.auth, timeout=30)
    text = json.dumps(events.list())
    for secret in ("hunter2", "t0ken", "SESSIONSECRET", USERS["alice"]):
        assert secret not in text
    assert '"query": "password=***&token=***"' in text and '"user": "alice"' in text
    assert '"path": "/data/projects;jsessionid=***"' in text


def _pattern(url: str, auth: tuple[str, str], count: int = 40) -> list[int]:
    return [requests.get(url + "/system", auth=auth, timeout=30).status_code for _ in range(count)]


SEEDED = {"face": "orthanc", "method": "GET", "path": "/system", "probability": 0.3, "seed": 2024,
          "action": {"http_status": 503}}


def test_a_seeded_rule_fires_on_the_same_requests_in_two_runs(server, faults):
    faults.add(SEEDED)
    first = _pattern(server.url, server.auth)
    faults.clear()
    faults.add(SEEDED)
    assert _pattern(server.url, server.auth) == first
    assert 4 <= first.count(503) <= 24
    # a second server given the rule in its configuration (PacsboxFaults) replays it the same way
    with RunningPacsbox({"RegisteredUsers": USERS, "PacsboxFaults": [SEEDED]}) as other:
        assert _pattern(other.url, other.auth) == first
        shown = FaultsClient(http_caller(other.url, other.auth)).list()
        assert shown[0]["seed"] == 2024 and shown[0]["fired"] == first.count(503)


def test_waiting_for_an_event_needs_no_sleep(server, events):
    def upload_later() -> None:
        time.sleep(0.3)
        requests.post(server.url + "/instances", data=_file("awaited"), auth=server.auth, timeout=30)

    threading.Thread(target=upload_later).start()
    started = time.monotonic()
    response = requests.get(server.url + "/pacsbox/events", auth=server.auth, timeout=30,
                            params={"since": events.since, "kind": "stored", "wait": "10"})
    assert response.status_code == 200 and time.monotonic() - started < 8
    assert response.json()[0]["sop_instance_uid"] == uid("faults", "awaited")


def test_event_queries_are_checked(server):
    for params, reason in (({"face": "pacs"}, "Unknown face"), ({"kind": "weird"}, "Unknown kind"),
                           ({"wait": "soon"}, "should be a number"), ({"wait": "600"}, "between 0 and 60"),
                           ({"since": "-1"}, "non-negative")):
        response = requests.get(server.url + "/pacsbox/events", params=params, auth=server.auth, timeout=30)
        assert response.status_code == 400 and reason in response.json()["Details"], params


def test_the_log_stays_within_its_bound_under_load():
    with RunningPacsbox({"RegisteredUsers": USERS, "PacsboxEventLogSize": 50}) as small:
        session = requests.Session()
        session.auth = small.auth
        barrier = threading.Barrier(4)

        def client() -> None:
            barrier.wait()
            for _ in range(60):
                session.get(small.url + "/statistics", timeout=30)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        kept = session.get(small.url + "/pacsbox/events", timeout=30).json()
        assert len(kept) == 50 and kept[-1]["seq"] >= 240
        assert [e["seq"] for e in kept] == list(range(kept[0]["seq"], kept[0]["seq"] + 50))


def test_a_long_path_is_kept_short_in_the_log(server, events):
    long_path = "/patients/" + "x" * 5000
    assert requests.get(server.url + long_path + "?q=" + "y" * 5000, auth=server.auth, timeout=30).status_code == 404
    event = events.wait_for(kind="http", status=404)
    assert len(event["path"]) == 1024 and event["path"] == long_path[:1024] and len(event["query"]) <= 1024
