"""The lean path for small uploads (``http_protocol`` waits for the body of a small ``POST /instances``, then
``faces.orthanc.quick_reads.quick_upload``) answers byte for byte as the normal ASGI path does.

As in ``test_fast_reads``, a fault rule that can never fire sends every request the normal way. An instance's ID
is a hash of its UIDs, so the same file uploaded through the lean path, deleted, and uploaded again through the
normal one must get the same bytes back: a new file, the same file again, a file that is not DICOM, an empty body,
wrong credentials, a zip (the lean path declines it: its handler would wait for a worker thread), keep-alive,
``Connection: close`` and HTTP/1.0. The event log and the metrics count a lean upload as any other, body size
included. An in-process check shows the lean path really stores and answers small uploads (and declines the rest),
and a body that stops coming is timed out as on the normal path.
"""

from __future__ import annotations

import io
import socket
import time
import zipfile

import pytest

from pacsbox.core.assembly import open_archive
from pacsbox.core.config import Config
from pacsbox.faces.http_common import LEAN_BODY
from pacsbox.faults.client import EventsClient, http_caller
from pacsbox.http_app import create_http_app
from tests.faces.orthanc.test_fast_reads import NEVER_FIRES, USERS, _address, _authorization, _exchange, _Reader
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox


def _dicom(n: int) -> bytes:
    return to_bytes(make_dataset(patient_id="LEAN-1", patient_name="Lean^Uploads", study_uid=uid("lean", "study"),
                                 series_uid=uid("lean", "series"), sop_uid=uid("lean", "sop", n), rows=4, cols=4))


def _zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("one.dcm", data)
    return buffer.getvalue()


def _upload(body: bytes, *, version: str = "1.1", extra: bytes = b"", authorization: bytes | None = None) -> bytes:
    head = (f"POST /instances HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/dicom\r\n").encode()
    return head + b"Authorization: " + (authorization or _authorization()) + b"\r\n" + extra + b"\r\n" + body


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"RegisteredUsers": USERS, "HttpRequestTimeout": 1}) as running:
        yield running


def _delete_all(server) -> None:
    session = server.session()
    for patient in session.get(f"{server.url}/patients").json():
        assert session.delete(f"{server.url}/patients/{patient}").status_code == 200


def _both_ways(server, faults, requests: list[bytes]):
    """The exchange through the lean path (no rule set), then, from an empty archive again, the normal one."""
    _delete_all(server)
    lean = _exchange(server, requests)
    _delete_all(server)
    faults.add(NEVER_FIRES)
    try:
        normal = _exchange(server, requests)
    finally:
        faults.clear()
    return lean, normal


def test_small_uploads_answer_the_same_bytes_both_ways(server, faults):
    first, second = _dicom(1), _dicom(2)
    requests = [_upload(first), _upload(first), _upload(b"not a DICOM file"), _upload(b""),
                _upload(first, authorization=_authorization(password="wrong")), _upload(_zipped(second)),
                _upload(second), b"GET /pacsbox/health HTTP/1.1\r\nHost: x\r\n\r\n"]
    lean, normal = _both_ways(server, faults, requests)
    assert lean == normal
    statuses = [status for status, _, _ in lean[0]]
    assert statuses == [b"HTTP/1.1 200 OK"] * 2 + [b"HTTP/1.1 400 Bad Request"] * 2 + [
        b"HTTP/1.1 401 Unauthorized"] + [b"HTTP/1.1 200 OK"] * 3
    assert [answer[2].count(b'"Status"') for answer in lean[0][:2]] == [1, 1]
    assert b'"Success"' in lean[0][0][2] and b'"AlreadyStored"' in lean[0][1][2]
    assert not lean[1], "the connection was closed after keep-alive requests"


@pytest.mark.parametrize("version,extra", [("1.1", b"Connection: close\r\n"), ("1.0", b"")])
def test_connection_close_and_http_1_0(server, faults, version, extra):
    lean, normal = _both_ways(server, faults, [_upload(_dicom(3), version=version, extra=extra)])
    assert lean == normal
    assert lean[0][0][0].split(b" ", 1)[1] == b"200 OK"
    assert lean[1], "the connection stayed open"


def test_event_log_and_metrics_count_lean_uploads(server, faults):
    events = EventsClient(http_caller(server.url, server.auth))
    session = server.session()
    payloads = [_dicom(10), _dicom(11), b"not a DICOM file"]

    def counted() -> float:
        text = session.get(f"{server.url}/tools/metrics-prometheus").text
        return sum(float(line.split()[1]) for line in text.splitlines()
                   if line.startswith("pacsbox_rest_api_requests_total") and 'method="POST"' in line)

    def upload_and_log() -> tuple[float, list[dict]]:
        _delete_all(server)
        events.mark()
        before = counted()
        answers, _ = _exchange(server, [_upload(body) for body in payloads])
        logged = [event for event in events.list() if event.get("method") == "POST"]
        assert [event["body_size"] for event in logged] == [len(body) for body in payloads]
        assert [event["response_size"] for event in logged] == [len(answer[2]) for answer in answers]
        return counted() - before, [{key: value for key, value in event.items()
                                     if key not in ("seq", "time", "duration_ms")} for event in logged]

    lean_counts, lean_events = upload_and_log()
    faults.add(NEVER_FIRES)
    try:
        normal_counts, normal_events = upload_and_log()
    finally:
        faults.clear()
    assert lean_counts == normal_counts == len(payloads)
    assert lean_events == normal_events
    assert [event["status"] for event in lean_events] == [200, 200, 400]
    assert {event["user"] for event in lean_events} == {"alice"}


def test_a_body_that_stops_coming_is_timed_out(server):
    """A small upload whose body stops halfway: closed after HttpRequestTimeout (1 s here), as any request."""
    with socket.create_connection(_address(server), timeout=10) as sock:
        request = _upload(_dicom(20))
        sock.sendall(request[:-100])
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # closed without an answer: the body never ended
        assert time.monotonic() - started < 4
    assert server.session().get(f"{server.url}/instances/{'x'}").status_code == 404  # still serving


def test_a_small_upload_is_answered_once_its_body_is_in(server):
    """The lean path waits for a small upload's body before asking the application, so even a refusal (here a
    401) comes once the body is in; any other POST is refused at once (``test_http_connections``)."""
    request = _upload(_dicom(21), authorization=_authorization(password="wrong"))
    head, body = request.split(b"\r\n\r\n", 1)
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)
        sock.settimeout(10)
        sock.sendall(body)
        status, _, _ = _Reader(sock).answer()
    assert status == b"HTTP/1.1 401 Unauthorized"


def _scope(body: bytes | None, authorization: bytes | None = None) -> dict:
    scope = {"type": "http", "method": "POST", "path": "/instances", "raw_path": b"/instances", "query_string": b"",
             "headers": [(b"host", b"x"), (b"authorization", authorization or _authorization()),
                         (b"content-length", str(len(body or b"")).encode())],
             "http_version": "1.1", "scheme": "http", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 2), "state": {}}
    if body is not None:
        scope[LEAN_BODY] = body
    return scope


def test_the_lean_path_stores_small_uploads_only(tmp_path):
    """The real application, in this process, asked directly: a small upload is stored and answered at once;
    what the lean path declines is not stored."""
    config = Config(StorageDirectory=str(tmp_path / "data"), RegisteredUsers=USERS)
    archive = open_archive(config)
    try:
        app = create_http_app(archive, config, http_port=1)
        answer = app.quick_answer(_scope(_dicom(30)))
        assert answer is not None and answer[0] == 200 and b'"Success"' in answer[2]
        assert [name for name, _ in answer[1]] == [b"content-length", b"content-type"]
        assert archive.statistics()["instances"] == 1
        assert app.quick_answer(_scope(None)) is None  # no body received whole: the normal way
        assert app.quick_answer(_scope(_zipped(_dicom(31)))) is None  # stored in a worker thread
        assert app.quick_answer(_scope(_dicom(32), authorization=b"Basic eA==")) is None  # a 401
        assert app.quick_answer(_scope(b"not a DICOM file")) is None  # a 400, worded by the normal way
        assert archive.statistics()["instances"] == 1
        archive.faults.rules.add(NEVER_FIRES)  # any rule set: every request goes the normal way
        assert app.quick_answer(_scope(_dicom(33))) is None
        assert archive.statistics()["instances"] == 1
    finally:
        archive.close()
