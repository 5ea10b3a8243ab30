"""The lean path for small reads (``http_protocol`` + ``faces.orthanc.quick_reads``) answers byte for byte as the
normal ASGI path does.

A fault rule that can never fire (on another face) makes every request take the normal path, as it does for any
user with a rule set: each hot route is read both ways on raw sockets and the answers compared (status line,
headers but Date, body). Keep-alive, ``Connection: close``, HTTP/1.0, pipelining, HEAD, wrong credentials and
unknown IDs are compared the same way, and the event log and the metrics must count lean answers as they count the
others. An in-process check shows the lean path really answers the hot routes (and only them).
"""

from __future__ import annotations

import base64
import socket

import pytest

from pacsbox.core.assembly import open_archive
from pacsbox.core.config import Config
from pacsbox.faults.client import EventsClient, http_caller
from pacsbox.http_app import create_http_app
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

USERS = {"alice": "fast-pw"}
NEVER_FIRES = {"face": "xnat", "method": "GET", "path": "/data/never-asked", "action": {"http_status": 500}}


def _dicom(n: int) -> bytes:
    return to_bytes(make_dataset(patient_id="FAST-1", patient_name="Fast^Reads", study_uid=uid("fast", "study"),
                                 series_uid=uid("fast", "series"), sop_uid=uid("fast", "sop", n), rows=4, cols=4))


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"RegisteredUsers": USERS}) as running:
        session = running.session()
        for n in range(3):
            assert session.post(f"{running.url}/instances", data=_dicom(n)).status_code == 200
        yield running


@pytest.fixture(scope="module")
def ids(server) -> dict[str, str]:
    session = server.session()
    instance = session.get(f"{server.url}/instances").json()[0]
    described = session.get(f"{server.url}/instances/{instance}").json()
    series = session.get(f"{server.url}/series/{described['ParentSeries']}").json()
    study = session.get(f"{server.url}/studies/{series['ParentStudy']}").json()
    return {"instance": instance, "series": series["ID"], "study": study["ID"], "patient": study["ParentPatient"]}


def _hot_paths(ids: dict[str, str]) -> list[str]:
    instance, series, study, patient = ids["instance"], ids["series"], ids["study"], ids["patient"]
    return [f"/instances/{instance}", f"/series/{series}", f"/studies/{study}", f"/patients/{patient}",
            f"/instances/{instance}/tags", f"/instances/{instance}/simplified-tags",
            f"/instances/{instance}/tags?simplify", f"/instances/{instance}/tags?short",
            f"/studies/{study}/series", f"/series/{series}/instances", f"/patients/{patient}/instances",
            f"/instances/{instance}/study", f"/series/{series}/patient"]


def _authorization(user: str = "alice", password: str = "fast-pw") -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def _request(path: str, *, method: str = "GET", version: str = "1.1", extra: bytes = b"",
             authorization: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n".encode()
    return head + b"Authorization: " + (authorization or _authorization()) + b"\r\n" + extra + b"\r\n"


def _address(server: RunningPacsbox) -> tuple[str, int]:
    host, port = server.url.split("//")[1].rsplit(":", 1)
    return host.strip("[]"), int(port)


class _Reader:
    """HTTP/1.1 answers read one by one from a raw socket (Content-Length framed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def answer(self, head_only: bool = False) -> tuple[bytes, list[bytes], bytes]:
        """(status line, header lines without Date, body)."""
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"closed before an answer: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *headers = head.split(b"\r\n")
        length = 0 if head_only else next(
            (int(line.split(b":", 1)[1]) for line in headers if line.lower().startswith(b"content-length:")), 0)
        while len(self.buffer) < length:
            assert self._fill(), "closed in the middle of a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, [line for line in headers if not line.lower().startswith(b"date:")], body

    def closed(self) -> bool:
        """Whether the server closes the connection within half a second (nothing more arriving meanwhile)."""
        self.sock.settimeout(0.5)
        try:
            return not self.buffer and not self._fill()
        except TimeoutError:
            return False


def _exchange(server: RunningPacsbox, requests: list[bytes], *, head_only: bool = False, together: bool = False):
    """The answers to ``requests`` sent on one connection (all at once when ``together``: pipelined), and whether
    the server closed it afterwards."""
    with socket.create_connection(_address(server), timeout=10) as sock:
        reader = _Reader(sock)
        answers = []
        if together:
            sock.sendall(b"".join(requests))
            answers = [reader.answer(head_only) for _ in requests]
        else:
            for request in requests:
                sock.sendall(request)
                answers.append(reader.answer(head_only))
        return answers, reader.closed()


def _both_ways(server, faults, requests: list[bytes], **options):
    """The exchange through the lean path (no rule set), then through the normal one (a rule that never fires)."""
    lean = _exchange(server, requests, **options)
    faults.add(NEVER_FIRES)
    try:
        normal = _exchange(server, requests, **options)
    finally:
        faults.clear()
    return lean, normal


def test_hot_routes_answer_the_same_bytes_both_ways(server, ids, faults):
    requests = [_request(path) for path in _hot_paths(ids)]
    (lean, lean_closed), (normal, normal_closed) = _both_ways(server, faults, requests)
    for path, mine, theirs in zip(_hot_paths(ids), lean, normal, strict=True):
        assert mine == theirs, path
        assert mine[0] == b"HTTP/1.1 200 OK", path
        assert b"content-type: application/json; charset=utf-8" in mine[1], path
    assert not lean_closed and not normal_closed  # kept alive, then closed by the client


def test_pipelined_requests_keep_their_order(server, ids, faults):
    paths = _hot_paths(ids)
    # lean answers, one a route that is not lean (/statistics) and one an unknown ID in between
    mixed = [paths[0], "/statistics", paths[4], "/instances/nothing-here", paths[8], paths[1]]
    requests = [_request(path) for path in mixed]
    (lean, _), (normal, _) = _both_ways(server, faults, requests, together=True)
    assert [answer[0].split()[1] for answer in lean] == [b"200", b"200", b"200", b"404", b"200", b"200"]
    assert lean[:1] + lean[2:] == normal[:1] + normal[2:]
    assert lean[1][0] == normal[1][0]  # /statistics: its counts may move between the two exchanges
    alone = _exchange(server, [_request(mixed[0])])[0][0]
    assert lean[0] == alone


def test_connection_close_and_http_1_0(server, ids, faults):
    path = _hot_paths(ids)[0]
    for request in (_request(path, extra=b"Connection: close\r\n"), _request(path, version="1.0")):
        (lean, lean_closed), (normal, normal_closed) = _both_ways(server, faults, [request])
        assert lean == normal
        assert b"connection: close" in lean[0][1]
        assert lean_closed and normal_closed
    keep = _request(path, version="1.0", extra=b"Connection: keep-alive\r\n")
    (lean, lean_closed), (normal, normal_closed) = _both_ways(server, faults, [keep])
    assert lean == normal and lean_closed and normal_closed  # (Uvicorn keeps no HTTP/1.0 connection alive)


def test_head_wrong_credentials_unknown_ids(server, ids, faults):
    path = _hot_paths(ids)[0]
    (head, _), (head_normal, _) = _both_ways(server, faults, [_request(path, method="HEAD")], head_only=True)
    assert head == head_normal
    get = _exchange(server, [_request(path)])[0][0]
    assert head[0][0] == get[0] and head[0][1] == get[1] and head[0][2] == b""
    refused = [_request(path, authorization=_authorization(password="wrong")), _request(path, authorization=b"x")]
    (lean, _), (normal, _) = _both_ways(server, faults, refused)
    assert lean == normal and all(answer[0] == b"HTTP/1.1 401 Unauthorized" for answer in lean)
    unknown = [_request(f"/instances/{'0' * 8}-unknown"), _request(f"/studies/{ids['series']}"),
               _request(f"/instances/{ids['instance']}/tags?simplify=maybe")]
    (lean, _), (normal, _) = _both_ways(server, faults, unknown)
    assert lean == normal
    assert [answer[0].split()[1] for answer in lean[:2]] == [b"404", b"404"]


def test_event_log_and_metrics_count_lean_answers(server, ids, faults):
    events = EventsClient(http_caller(server.url, server.auth))
    session = server.session()

    def counted() -> float:
        text = session.get(f"{server.url}/tools/metrics-prometheus").text
        line = next((line for line in text.splitlines() if line.startswith("pacsbox_rest_api_requests_total")
                     and 'method="GET"' in line and 'status="2xx"' in line), None)
        return float(line.split()[1]) if line else 0.0  # (name, value, timestamp)

    paths = _hot_paths(ids)[:4] + [_hot_paths(ids)[6]]  # one with a query

    def read_and_log() -> tuple[float, list[dict]]:
        events.mark()
        before = counted()
        answers, _ = _exchange(server, [_request(path) for path in paths])
        counts = counted() - before - 1  # (less the first scrape itself)
        logged = [event for event in events.list() if event.get("method") == "GET"
                  and event.get("path", "") + ("?" + event["query"] if event.get("query") else "") in paths]
        for event, answer in zip(logged, answers, strict=True):
            assert event["response_size"] == len(answer[2])
        return counts, [{key: value for key, value in event.items() if key not in ("seq", "time", "duration_ms")}
                        for event in logged]

    lean_counts, lean_events = read_and_log()
    faults.add(NEVER_FIRES)
    normal_counts, normal_events = read_and_log()
    assert lean_counts == normal_counts == len(paths)
    assert lean_events == normal_events
    assert [event["status"] for event in lean_events] == [200] * len(paths)
    assert {event["user"] for event in lean_events} == {"alice"}


def _scope(path: str, query: bytes = b"", authorization: bytes | None = None) -> dict:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query,
            "headers": [(b"host", b"x"), (b"authorization", authorization or _authorization())],
            "http_version": "1.1", "scheme": "http", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2), "state": {}}


def test_the_lean_path_answers_hot_routes_only(tmp_path):
    """The real application, in this process, asked directly: hot routes are answered, anything else is not."""
    config = Config(StorageDirectory=str(tmp_path / "data"), RegisteredUsers=USERS)
    archive = open_archive(config)
    try:
        instance = archive.store(_dicom(0)).instance_id
        app = create_http_app(archive, config, http_port=1)
        hot = (f"/instances/{instance}", f"/instances/{instance}/tags", f"/instances/{instance}/simplified-tags",
               f"/instances/{instance}/study", f"/instances/{instance}/series")
        for path in hot:
            answer = app.quick_answer(_scope(path))
            assert answer is not None and answer[0] == 200, path
            assert [name for name, _ in answer[1]] == [b"content-length", b"content-type"]
        assert app.quick_answer(_scope("/statistics")) is None  # not a hot route
        assert app.quick_answer(_scope("/instances/unknown")) is None  # a 404: the normal way
        assert app.quick_answer(_scope(f"/instances/{instance}", authorization=b"Basic eA==")) is None  # a 401
        assert app.quick_answer(_scope(f"/instances/{instance}/file")) is None
        # a file too large to parse on the event loop: its handler would wait for a worker thread
        large = to_bytes(make_dataset(patient_id="FAST-2", patient_name="Large", study_uid=uid("fast", "large"),
                                      series_uid=uid("fast", "large-series"), sop_uid=uid("fast", "large-sop"),
                                      rows=512, cols=512))
        large_id = archive.store(large).instance_id
        assert app.quick_answer(_scope(f"/instances/{large_id}/tags")) is None
        assert app.quick_answer(_scope(f"/instances/{large_id}")) is not None
        assert app.quick_answer(_scope("/dicom-web/studies")) is None  # another face
        assert app.quick_answer({**_scope(f"/instances/{instance}"), "method": "POST"}) is None
        archive.faults.rules.add(NEVER_FIRES)  # any rule set: every request goes the normal way
        assert app.quick_answer(_scope(f"/instances/{instance}")) is None
        archive.faults.rules.clear()
        assert app.quick_answer(_scope(f"/instances/{instance}")) is not None
    finally:
        archive.close()
