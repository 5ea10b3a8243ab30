"""Memory stays bounded before authentication and before parsing, whatever the shape of a large request.

Every route that reads its body whole gets MaximumRequestBodySize (1 MiB by default), refused with 413 in its
face's format before the credentials are looked at: a declared Content-Length at once, a chunked body once it
streams past the limit. Headers are bounded while they arrive (HttpMaximumHeaderSize, HttpMaximumHeaderCount,
HttpMaximumUrlLength): a header line that never ends is answered 431 and its connection closed after about the
limit, not after the gigabyte the client would send. The server's peak RSS, sampled every 5 ms, grows by less
than a stated multiple of the limits, one request at a time or many at once; meanwhile ``GET /pacsbox/health``
keeps answering on new connections.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.pacsbox_proc import RunningPacsbox

from .http_limits_support import ServerWatch, send_until_closed, status_of

MiB = 1024 * 1024
BODY_LIMIT = MiB  # MaximumRequestBodySize: the default
HEADER_LIMIT = 64 * 1024  # HttpMaximumHeaderSize: the default
# Bounds on the server's RSS growth: one oversized request may cost a few copies of the limit (the body as read,
# as joined, as decoded) plus the allocator's slack; concurrent ones at most that each.
ONE_REQUEST_BOUND = 16 * BODY_LIMIT
CONCURRENT = 16
CONCURRENT_BOUND = 48 * MiB + CONCURRENT * 4 * BODY_LIMIT
HUGE = 20 * 1000 * 1000  # what the attack sent: 20 MB bodies (16 MB of JSON)
GIGABYTE = 1024 * MiB


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox() as running:
        yield running


def _chunks(total: int, piece: bytes = b"a" * (256 * 1024)):
    """A body of ``total`` bytes sent chunked (no Content-Length), as a generator makes requests do."""
    for _ in range(total // len(piece)):
        yield piece


def _json_filler(total: int):
    yield b'{"Level": "Study", "Query": {"PatientName": "'
    yield from _chunks(total)
    yield b'"}}'


# -- bodies -----------------------------------------------------------------------------------------------------

_BODIES = {  # name: (face, method, path, credentials)
    "xnat-login-post": ("xnat", "POST", "/data/services/auth", False),
    "xnat-login-put": ("xnat", "PUT", "/data/services/auth", False),
    "xnat-search": ("xnat", "POST", "/data/search", True),
    "xnat-search-anonymous": ("xnat", "POST", "/data/search", False),
    "xnat-put-project": ("xnat", "PUT", "/data/projects/P", False),
    "orthanc-find": ("orthanc", "POST", "/tools/find", True),
    "orthanc-find-anonymous": ("orthanc", "POST", "/tools/find", False),
    "orthanc-modality": ("orthanc", "PUT", "/modalities/m", False),
    "orthanc-unknown-route": ("orthanc", "POST", "/no/such/route", False),
}


def _assert_too_large(face: str, response: requests.Response) -> None:
    if response.status_code == 401:  # refused at once for its credentials, before a byte of the body was read
        return
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert "MaximumRequestBodySize" in response.text
    if face == "orthanc":
        body = response.json()
        assert body["HttpStatus"] == 413 and body["Method"] == response.request.method, body
    else:
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers


@pytest.mark.parametrize("shape", ["declared", "chunked"])
@pytest.mark.parametrize("name", list(_BODIES))
def test_large_body_is_refused_before_auth_and_parsing(server, name, shape):
    face, method, path, credentials = _BODIES[name]
    data = b"x" * HUGE if shape == "declared" else _json_filler(HUGE)
    with ServerWatch(server) as watch:
        response = requests.request(method, server.url + path, data=data, auth=server.auth if credentials else None,
                                    timeout=60)
    if shape == "declared" or credentials or path.endswith("/auth"):
        _assert_too_large(face, response)  # 413 before authentication
        assert response.headers.get("Connection", "").lower() == "close"  # the rest of the body is not read
    else:  # a chunked body declares no size: a route that needs credentials refuses it before reading it
        assert response.status_code == 401, (response.status_code, response.text[:300])
    print(watch.describe())
    assert watch.growth < ONE_REQUEST_BOUND, watch.describe()
    assert watch.health_answers and not watch.health_failures, watch.describe()


def test_body_at_the_limit_is_parsed(server):
    """Just under MaximumRequestBodySize is not refused: the route parses it (and finds no JSON object)."""
    body = json.dumps([{}] * ((BODY_LIMIT - 2) // 4)).encode()
    assert len(body) <= BODY_LIMIT
    response = requests.post(server.url + "/tools/find", data=body, auth=server.auth, timeout=60)
    assert response.status_code == 400, response.text[:300]


def test_many_parses_at_the_limit_leave_the_server_answering(server):
    """Bodies just under the limit are parsed whole: many at once cost a bounded amount and do not stop the
    event loop for others."""
    worst = b"[" + b"0," * ((BODY_LIMIT - 2) // 2 - 1) + b"0]"  # the most Python objects per byte

    def send(_: int) -> int:
        return requests.post(server.url + "/tools/find", data=worst, auth=server.auth, timeout=60).status_code

    with ServerWatch(server) as watch, ThreadPoolExecutor(CONCURRENT) as pool:
        statuses = list(pool.map(send, range(CONCURRENT * 2)))
    assert set(statuses) == {400}, statuses
    print(watch.describe())
    assert watch.growth < CONCURRENT_BOUND, watch.describe()
    assert watch.health_answers and not watch.health_failures, watch.describe()


# -- headers ----------------------------------------------------------------------------------------------------

_HEADERS = {  # name: (first bytes, what follows forever, statuses that may answer)
    "one-line-never-ends": (b"GET /system HTTP/1.1\r\nHost: x\r\nX-Long: ", itertools.repeat(b"a" * 65536), {431}),
    "header-name-never-ends": (b"GET /system HTTP/1.1\r\nHost: x\r\n", itertools.repeat(b"X" * 65536), {431}),
    "lines-never-end": (b"GET /system HTTP/1.1\r\nHost: x\r\n", itertools.repeat(b"X-A: b\r\n" * 8192), {431}),
    "big-lines-never-end": (b"GET /system HTTP/1.1\r\nHost: x\r\n",
                            itertools.repeat(b"X-A: " + b"b" * 8000 + b"\r\n"), {431}),
    "target-never-ends": (b"GET /system?", itertools.repeat(b"a" * 65536), {414}),
    "login-header-never-ends": (b"POST /data/services/auth HTTP/1.1\r\nHost: x\r\nCookie: ",
                                itertools.repeat(b"a" * 65536), {431}),
}


@pytest.mark.parametrize("name", list(_HEADERS))
def test_endless_headers_are_cut_off(server, name):
    """A gigabyte offered in 64 KiB chunks: the server answers and closes after about HttpMaximumHeaderSize (what
    the kernel's socket buffers absorb aside), before authentication."""
    head, filler, statuses = _HEADERS[name]
    with ServerWatch(server) as watch:
        sent, answer = send_until_closed(server, head, filler, GIGABYTE)
    assert status_of(answer) in statuses, answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 32 * MiB, f"{sent} bytes were sent before the server closed"
    print(watch.describe())
    assert watch.growth < ONE_REQUEST_BOUND, watch.describe()
    assert watch.health_answers and not watch.health_failures, watch.describe()


def test_many_oversized_requests_at_once(server):
    """Every shape above from CONCURRENT clients at once: memory bounded by the stated multiple, health
    answering all along."""
    shapes = list(_HEADERS.values())

    def attack(index: int) -> int | None:
        if index % 2:
            head, filler, _ = shapes[index // 2 % len(shapes)]
            return status_of(send_until_closed(server, head, filler, GIGABYTE)[1])
        _, method, path, _ = list(_BODIES.values())[index // 2 % len(_BODIES)]
        return requests.request(method, server.url + path, data=_json_filler(HUGE), timeout=60).status_code

    with ServerWatch(server) as watch, ThreadPoolExecutor(CONCURRENT) as pool:
        statuses = list(pool.map(attack, range(CONCURRENT * 2)))
    assert set(statuses) <= {401, 413, 414, 431}, statuses
    print(watch.describe())
    assert watch.growth < CONCURRENT_BOUND, watch.describe()
    assert watch.health_answers and not watch.health_failures, watch.describe()


@pytest.mark.parametrize("total", [100, 101])
def test_header_count_limit(server, total):
    """HttpMaximumHeaderCount (100) header lines are served, one more is 431."""
    # requests adds Host, User-Agent, Accept-Encoding, Accept, Connection and Authorization
    headers = {f"X-Header-{index}": "v" for index in range(total - 6)}
    response = requests.get(server.url + "/system", headers=headers, auth=server.auth, timeout=30)
    assert response.status_code == (200 if total <= 100 else 431), response.text[:200]


def test_server_still_serves(server):
    http = server.session()
    assert http.get(server.url + "/system", timeout=30).status_code == 200
    assert http.get(server.url + "/data/projects", timeout=30).status_code == 200
