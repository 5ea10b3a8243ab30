"""Connections that stall cannot lock the server: header and body timeouts, keep-alive, a cap on connections.

The slowloris run starts the server with an open-file limit of 1024 (soft and hard, the common default) and opens
3,000 connections that each send part of a request's headers and stall. A new client must still upload an
instance (POST /instances, 200), a DICOM peer must still get its C-ECHO answered, and every stalled connection
must be closed by the server within HttpHeaderTimeout of its opening (evicted sooner when the cap on connections
is reached). A second server with a cap of 16 connections shows the cap itself: idle connections make room for
new clients, busy ones get a 503 for the newcomer; and the timeouts of a stalled body and of keep-alive.
"""

from __future__ import annotations

import base64
import contextlib
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import server_process
from .http_limits_support import address, closed_by_server, raise_own_file_limit, read_answer, status_of

STALLED = 3000
HEADER_TIMEOUT = 3  # HttpHeaderTimeout of the slowloris server
SLACK = 5.0  # seconds of scheduling slack on a loaded machine
PARTIAL = b"GET /system HTTP/1.1\r\nHost: x\r\nX-Stalled: waiting"


def _dicom(key: str) -> bytes:
    return to_bytes(make_dataset(patient_id=f"SL-{key}", patient_name="Slow^Loris", study_uid=uid("sl-st", key),
                                 series_uid=uid("sl-se", key), sop_uid=uid("sl-in", key), rows=4, cols=4))


def _echo_from_another_process(server: RunningPacsbox) -> int:
    """The status of a pynetdicom C-ECHO made by a fresh Python process: this one holds thousands of sockets, and
    pynetdicom's select() cannot watch a descriptor numbered past 1024."""
    code = ("import sys; from tests.support.dimse import echo; "
            f"status = echo({server.dicom_port}, {server.aet!r}); print(status); sys.exit(status != 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def _open_stalled(server: RunningPacsbox, count: int, payload: bytes = PARTIAL) -> list[tuple[socket.socket, float]]:
    """``count`` connections that each send ``payload`` and then nothing; with the time each was opened."""
    opened = []
    try:
        for _ in range(count):
            sock = socket.create_connection(address(server), timeout=10)
            sock.sendall(payload)
            opened.append((sock, time.monotonic()))
    except BaseException:
        for sock, _ in opened:
            sock.close()
        raise
    return opened


class Closures:
    """Watches connections from a background thread until the server has closed each (EOF, after any answer) or
    ``within`` seconds passed since the last was opened: ``lifetimes`` are the seconds from each one's opening to
    its closing, ``still_open`` the count never closed, ``statuses`` the answers seen (by status)."""

    def __init__(self, opened: list[tuple[socket.socket, float]], within: float) -> None:
        self.opened, self.within = opened, within
        self.lifetimes: list[float] = []
        self.statuses: dict[int | None, int] = {}
        self.still_open = len(opened)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        for sock, started in self.opened:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, started)
        deadline = max(started for _, started in self.opened) + self.within
        try:
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.2):
                    try:
                        data = key.fileobj.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:  # an answer (the 408); EOF follows
                        self.statuses[status_of(data)] = self.statuses.get(status_of(data), 0) + 1
                        continue
                    selector.unregister(key.fileobj)
                    self.lifetimes.append(time.monotonic() - key.data)
            self.still_open = len(selector.get_map())
        finally:
            selector.close()

    def join(self) -> Closures:
        self._thread.join()
        for sock, _ in self.opened:
            sock.close()
        return self


# -- slowloris ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited_server():
    """A server started with only 1024 open files, as on most machines, and a short header timeout."""
    with RunningPacsbox({"HttpHeaderTimeout": HEADER_TIMEOUT}, open_files=(1024, 1024)) as running:
        yield running


def test_slowloris_does_not_lock_out_http_or_dicom(limited_server):
    server = limited_server
    raise_own_file_limit(STALLED + 512)
    process = server_process(server)
    closures = Closures(_open_stalled(server, STALLED), HEADER_TIMEOUT + SLACK)
    try:
        http = server.session()
        upload = http.post(server.url + "/instances", data=_dicom("during"), timeout=30)
        assert upload.status_code == 200, upload.text[:300]
        assert _echo_from_another_process(server) == 0x0000
        assert requests.get(server.url + "/pacsbox/health", timeout=30).status_code == 200
        assert process.num_fds() < 1024
    finally:
        closures.join()
    assert not closures.still_open, f"{closures.still_open} stalled connections still open"
    assert len(closures.lifetimes) == STALLED and max(closures.lifetimes) < HEADER_TIMEOUT + SLACK
    assert closures.statuses.get(408, 0) > 0, closures.statuses  # those not evicted timed out, with a 408
    assert server.session().get(server.url + "/instances", timeout=30).json() == [upload.json()["ID"]]


def test_silent_connections_are_closed_too(limited_server):
    """A client that connects and sends nothing at all gets the same header timeout."""
    closures = Closures(_open_stalled(limited_server, 50, payload=b""), HEADER_TIMEOUT + SLACK).join()
    assert not closures.still_open and len(closures.lifetimes) == 50
    assert min(closures.lifetimes) > HEADER_TIMEOUT - 0.5, closures.lifetimes  # not before the timeout either


def test_fds_return_to_their_level(limited_server):
    process = server_process(limited_server)
    before = process.num_fds()
    Closures(_open_stalled(limited_server, 300), HEADER_TIMEOUT + SLACK).join()
    deadline = time.monotonic() + SLACK
    while process.num_fds() > before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.num_fds() <= before + 5, (before, process.num_fds())


# -- the cap, the body and keep-alive timeouts -------------------------------------------------------------------

CAP = 16


@pytest.fixture(scope="module")
def capped_server():
    with RunningPacsbox({"HttpMaximumConnections": CAP, "HttpRequestTimeout": 2, "HttpKeepAliveTimeout": 2},
                        open_files=(256, 2048)) as running:
        yield running


def test_open_file_limit_is_raised_to_the_hard_limit(capped_server):
    assert server_process(capped_server).rlimit(psutil.RLIMIT_NOFILE) == (2048, 2048)


def test_idle_connections_make_room_for_new_clients(capped_server):
    """CAP connections that say nothing, then 5 clients that keep their connections open: each newcomer closes
    the oldest idle connection, the other idle ones stay open."""
    idle = _open_stalled(capped_server, CAP, payload=b"")
    clients = [capped_server.session() for _ in range(5)]
    try:
        for client in clients:
            assert client.get(capped_server.url + "/system", timeout=10).status_code == 200
        assert all(closed_by_server(sock, timeout=5) for sock, _ in idle[:5])
        assert not any(closed_by_server(sock, timeout=0.2) for sock, _ in idle[5:])
        for client in clients:  # their connections were not evicted: they were in use, then the newest
            assert client.get(capped_server.url + "/system", timeout=10).status_code == 200
    finally:
        for sock, _ in idle:
            sock.close()
        for client in clients:
            client.close()


def test_busy_connections_fill_the_cap_then_time_out(capped_server):
    """Connections whose request body is under way are never evicted: past the cap a newcomer gets 503; bodies
    that stop arriving are closed after HttpRequestTimeout, and the server serves again."""
    busy = _busy_uploads(capped_server, CAP)
    try:
        time.sleep(0.5)  # the server has read every request's headers
        with socket.create_connection(address(capped_server), timeout=10) as newcomer:
            answer = read_answer(newcomer)
        assert status_of(answer) == 503 and b"connection: close" in answer.lower(), answer
        started = time.monotonic()
        for sock, _ in busy:
            assert closed_by_server(sock, timeout=2 + SLACK)
        assert time.monotonic() - started < 2 + SLACK
    finally:
        for sock, _ in busy:
            sock.close()
    assert requests.get(capped_server.url + "/pacsbox/health", timeout=10).status_code == 200
    assert capped_server.session().get(capped_server.url + "/instances", timeout=10).json() == []


def _busy_uploads(server: RunningPacsbox, count: int) -> list[tuple[socket.socket, float]]:
    token = base64.b64encode(":".join(server.auth).encode()).decode()
    head = (f"POST /instances HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
            "Content-Length: 1000000\r\n\r\n").encode() + b"\0" * 100
    return _open_stalled(server, count, payload=head)


def test_dripping_bodies_make_room_once_the_cap_is_full(capped_server):
    """CAP uploads that each send a byte every half second (under HttpRequestTimeout, so never timed out):
    once they have crawled for 5 s at a few bytes a second, a newcomer closes one of them and is served."""
    drips = _busy_uploads(capped_server, CAP)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 6:
            time.sleep(0.5)
            for sock, _ in drips:
                with contextlib.suppress(OSError):  # already closed by the server
                    sock.send(b"\0")
        assert requests.get(capped_server.url + "/pacsbox/health", timeout=10).status_code == 200
        assert sum(closed_by_server(sock, timeout=0.5) for sock, _ in drips) >= 1
    finally:
        for sock, _ in drips:
            sock.close()


def test_unread_answer_is_closed(capped_server):
    """A client that asks for a large file and never reads it: the server closes the connection after
    HttpRequestTimeout (2 s) of a full send buffer, instead of holding it for ever."""
    size = 2048 * 2048 * 2  # 8 MiB of pixels: more than the kernel's socket buffers hold
    upload = capped_server.session().post(capped_server.url + "/instances", timeout=60, data=to_bytes(make_dataset(
        patient_id="SL-big", patient_name="Big^File", study_uid=uid("sl-st", "big"), series_uid=uid("sl-se", "big"),
        sop_uid=uid("sl-in", "big"), rows=2048, cols=2048)))
    assert upload.status_code == 200
    token = base64.b64encode(":".join(capped_server.auth).encode())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect(address(capped_server))
        sock.sendall(b"GET /instances/" + upload.json()["ID"].encode() + b"/file HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Basic " + token + b"\r\n\r\n")
        time.sleep(2 + SLACK)  # not reading
        received = 0
        try:
            while chunk := sock.recv(1024 * 1024):
                received += len(chunk)
        except OSError:  # reset: what the kernel still held is dropped
            pass
    assert received < size, "the whole answer arrived: it was not cut off"
    capped_server.session().delete(capped_server.url + "/instances/" + upload.json()["ID"], timeout=10)


def test_keep_alive_connection_is_closed_when_idle(capped_server):
    with socket.create_connection(address(capped_server), timeout=10) as sock:
        sock.sendall(b"GET /pacsbox/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"\r\n\r\nok"):  # headers and body may come in two writes
            first += sock.recv(65536)
        assert status_of(first) == 200
        started = time.monotonic()
        assert closed_by_server(sock, timeout=2 + SLACK)
        waited = time.monotonic() - started
    assert 1.5 <= waited < 2 + SLACK, waited


def _head_of(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("sent,declared,kept", [(1000, 1000, True), (0, 60_000, True), (1000, 200_000, False)])
def test_answer_before_the_body_says_whether_the_connection_stays(capped_server, sent, declared, kept):
    """Without credentials the answer (401) comes before the body is read: a small rest is read and dropped and
    the connection serves the next request; a large one is not read, and the answer says ``Connection: close``."""
    with socket.create_connection(address(capped_server), timeout=10) as sock:
        sock.sendall(b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(declared).encode()
                     + b"\r\n\r\n" + b"{" * sent)
        head = _head_of(sock)
        assert status_of(head) == 401
        assert (b"connection: close" not in head.lower()) == kept, head
        if kept:
            sock.sendall(b"{" * (declared - sent) + b"GET /pacsbox/health HTTP/1.1\r\nHost: x\r\n\r\n")
            while b"HTTP/1.1 200" not in (head := sock.recv(65536)):
                assert head, "the connection was closed"
        else:
            assert closed_by_server(sock, timeout=2 + SLACK)
