"""Credentials with any bytes in them are refused like wrong ones; XNAT sessions end; bodies spool in the data folder.

* An Authorization header holding bytes that are not base64, credentials that are not UTF-8, or a scheme that is
  not ASCII: 401 with the Basic challenge on both faces, as the real Orthanc answers (compared on the wire), never
  a 500. A Cookie or a login form with such bytes: 401 as well.
* XNAT sessions (JSESSIONID) end after XnatSessionTimeout seconds unused, a session in use lives on, and at most
  XnatMaximumSessions live at once (the least recently used ends first): a client asking for a token on every
  request (pyxnat does) cannot grow the table without bound.
* Request bodies too large for memory spool under ``<StorageDirectory>/tmp`` (never TMPDIR), and what a killed
  server left there is removed at the next start.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path

import pytest
import requests

from pacsbox.faces.xnat.auth import Sessions
from tests.support.pacsbox_proc import RunningPacsbox

from .http_limits_support import address, read_answer, status_of

SESSION_TIMEOUT = 2
MAXIMUM_SESSIONS = 5


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"XnatSessionTimeout": SESSION_TIMEOUT, "XnatMaximumSessions": MAXIMUM_SESSIONS}) as running:
        yield running


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


_AUTHORIZATIONS = {
    "non-ascii-token": b"Basic \xe9\xe9",
    "valid-token-then-junk": b"Basic " + _b64(b"admin:admin") + b"\xe9",
    "latin1-password": b"Basic " + _b64("admin:\xe9".encode("latin-1")),
    "utf8-wrong-password": b"Basic " + _b64("admin:\xe9".encode()),
    "not-utf8-user": b"Basic " + _b64(b"\xff\xfe:admin"),
    "bad-padding": b"Basic YWRtaW46YWRtaW4",
    "non-ascii-scheme": b"B\xe1sic " + _b64(b"admin:admin"),
    "empty": b"Basic ",
}
_ROUTES = [("GET", b"/system"), ("GET", b"/patients"), ("POST", b"/tools/find"), ("GET", b"/data/projects"),
           ("GET", b"/data/JSESSION"), ("PUT", b"/data/projects/P")]


def _raw_request(port: int, method: str, path: bytes, extra: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(method.encode() + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra
                     + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        return read_answer(sock)


def _challenge(answer: bytes) -> bool:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    return b"\r\nwww-authenticate: basic realm=" in head


@pytest.mark.parametrize("shape", list(_AUTHORIZATIONS))
def test_invalid_bytes_in_basic_credentials_are_401(server, reference_orthanc, shape):
    header = b"Authorization: " + _AUTHORIZATIONS[shape] + b"\r\n"
    _, port = address(server)
    for method, path in _ROUTES:
        answer = _raw_request(port, method, path, header)
        assert status_of(answer) == 401 and _challenge(answer), (method, path, answer[:300])
        if not path.startswith(b"/data"):  # the same as the real Orthanc says
            reference = _raw_request(int(reference_orthanc.url.rsplit(":", 1)[1]), method, path, header)
            assert status_of(reference) == 401 and _challenge(reference), reference[:300]


def test_nul_in_a_header_is_refused_by_the_parser(server):
    """A NUL byte in a header value is not HTTP: the parser refuses it (400) before any face sees it."""
    answer = _raw_request(address(server)[1], "GET", b"/system", b"Authorization: Basic YWRt\x00aW46YWRtaW4=\r\n")
    assert status_of(answer) == 400, answer[:300]


@pytest.mark.parametrize("cookie", [b"JSESSIONID=\xe9\xe9", b"JSESSIONID=\"\xff", b"\xe9=\xe9; JSESSIONID=x"])
def test_invalid_bytes_in_a_cookie_are_401(server, cookie):
    answer = _raw_request(address(server)[1], "GET", b"/data/projects", b"Cookie: " + cookie + b"\r\n")
    assert status_of(answer) == 401, answer[:300]


@pytest.mark.parametrize("form", [b"username=admin&password=%E9", b"username=\xe9&password=\xff",
                                  b"username=admin&password=admin\xe9", b"\xff\xfe"])
def test_invalid_bytes_in_a_login_form_are_401(server, form):
    response = requests.post(server.url + "/data/services/auth", data=form, timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401, response.text[:300]


# -- XNAT sessions -----------------------------------------------------------------------------------------------

def _token(server: RunningPacsbox) -> str:
    response = requests.get(server.url + "/data/JSESSION", auth=server.auth, timeout=10)
    assert response.status_code == 200
    return response.text.strip()


def _with_cookie(server: RunningPacsbox, token: str) -> int:
    return requests.get(server.url + "/data/projects", cookies={"JSESSIONID": token}, timeout=10).status_code


def test_unused_session_expires(server):
    token = _token(server)
    assert _with_cookie(server, token) == 200
    time.sleep(SESSION_TIMEOUT + 0.5)
    assert _with_cookie(server, token) == 401


def test_session_in_use_lives_on(server):
    token = _token(server)
    for _ in range(4):  # twice the timeout in all, never unused for half of it
        time.sleep(SESSION_TIMEOUT / 2)
        assert _with_cookie(server, token) == 200


def test_sessions_are_bounded(server):
    tokens = [_token(server) for _ in range(MAXIMUM_SESSIONS + 3)]
    assert [_with_cookie(server, token) for token in tokens] == [401] * 3 + [200] * MAXIMUM_SESSIONS


def test_session_table_stays_bounded_under_a_flood():
    sessions = Sessions({"admin": "admin"}, timeout=900, capacity=1000)
    kept = sessions.open("admin")
    for _ in range(100_000):
        sessions.open("admin")
        sessions.user_of(kept)  # in use: never the least recently used
    assert len(sessions) == 1000 and sessions.user_of(kept) == "admin"


def test_expired_sessions_are_forgotten_without_being_asked_for():
    sessions = Sessions({"admin": "admin"}, timeout=0.05, capacity=1000)
    for _ in range(500):
        sessions.open("admin")
    time.sleep(0.1)
    sessions.open("admin")
    assert len(sessions) == 1


# -- where bodies spool ------------------------------------------------------------------------------------------

def _open_paths(pid: int) -> list[str]:
    paths = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            paths.append(os.readlink(fd))
        except OSError:
            continue
    return paths


def test_large_bodies_spool_in_the_data_folder(tmp_path):
    temporary = tmp_path / "TMPDIR"
    temporary.mkdir()
    running = RunningPacsbox(env={"TMPDIR": str(temporary)})
    leftover = running.data_dir / "tmp" / "left-by-a-killed-server"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x" * 1000)
    with running:
        assert not leftover.exists()
        size, sent = 48 * 1024 * 1024, 0  # past the 32 MiB kept in memory
        token = base64.b64encode(":".join(running.auth).encode())
        with socket.create_connection(address(running), timeout=30) as sock:
            sock.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + token
                         + b"\r\nConnection: close\r\nContent-Length: " + str(size).encode() + b"\r\n\r\n")
            chunk = os.urandom(1024 * 1024)  # not DICOM, and refused at once (zeros parse slowly)
            while sent < 40 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            spool = str(running.data_dir / "tmp")
            deadline = time.monotonic() + 10
            while not any(path.startswith(spool) for path in _open_paths(running.process.pid)):
                assert time.monotonic() < deadline, _open_paths(running.process.pid)
                time.sleep(0.05)
            assert not any(path.startswith(str(temporary)) for path in _open_paths(running.process.pid))
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            answer = read_answer(sock, timeout=30)
        assert status_of(answer) == 400, answer[:300]
        assert list(temporary.iterdir()) == []
