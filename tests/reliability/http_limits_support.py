"""What the HTTP limit suites share: a watch on the server (peak memory, health answers) and raw sockets."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator

import requests

from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import PeakRss

HEALTH_TIMEOUT = 10.0  # generous: the health check must answer, not answer fast


class ServerWatch(PeakRss):
    """While the block runs: the server's resident memory sampled every few milliseconds (``growth`` is the peak
    over the level at the start), and ``GET /pacsbox/health`` asked on a new connection every 100 ms
    (``health_failures`` lists what did not answer 200 within HEALTH_TIMEOUT)."""

    def __init__(self, server: RunningPacsbox) -> None:
        super().__init__(server)
        self.server = server
        self.health_answers = 0
        self.health_failures: list[str] = []
        self.slowest_health = 0.0
        self._prober = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        while True:
            self._ask_health()
            if self._stop.wait(0.1):
                return

    def _ask_health(self) -> None:
        started = time.monotonic()
        try:
            answer = requests.get(self.server.url + "/pacsbox/health", timeout=HEALTH_TIMEOUT)
            if answer.status_code != 200:
                self.health_failures.append(f"status {answer.status_code}")
            else:
                self.health_answers += 1
        except requests.RequestException as error:
            self.health_failures.append(repr(error))
        self.slowest_health = max(self.slowest_health, time.monotonic() - started)

    def __enter__(self) -> ServerWatch:
        super().__enter__()
        self._prober.start()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)  # (sets the stop event the prober waits on too)
        self._prober.join()
        self._ask_health()  # once more, after the attack

    def describe(self) -> str:
        return (f"RSS growth {self.growth / 2**20:.1f} MiB; health answered {self.health_answers} times, slowest "
                f"{self.slowest_health:.2f} s, failures {self.health_failures[:3]}")


def address(server: RunningPacsbox) -> tuple[str, int]:
    host, port = server.url.split("//")[1].rsplit(":", 1)
    return host.strip("[]"), int(port)


def send_until_closed(server: RunningPacsbox, head: bytes, filler: Iterator[bytes], most: int) -> tuple[int, bytes]:
    """Send ``head`` then ``filler`` chunks on a raw socket until the server closes it or ``most`` bytes went;
    returns the bytes sent and what the server answered."""
    sent = 0
    with socket.create_connection(address(server), timeout=10) as sock:
        try:
            sock.sendall(head)
            sent += len(head)
            for chunk in filler:
                if sent >= most:
                    break
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset or broken pipe: the server closed the connection
            pass
        return sent, read_answer(sock)


def read_answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sent until it closed the connection (or ``timeout`` passed)."""
    sock.settimeout(timeout)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    return answer


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes the connection within ``timeout`` seconds (whatever it sends before)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while sock.recv(65536):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def status_of(answer: bytes) -> int | None:
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.") else None


def raise_own_file_limit(needed: int) -> None:
    """Let this test process open ``needed`` descriptors (its soft limit up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
