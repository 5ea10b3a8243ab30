"""The measures themselves: ingest rates (REST, C-STORE, STOW-RS) and request latencies (REST, C-FIND, QIDO-RS,
WADO-RS), against one server, or against both servers at once, their requests alternating (``interleaved``).

Nothing here generates files or starts servers; what is timed is only the traffic. Every measure checks that the
server did what was asked (HTTP 200, C-FIND status Success, the instance count after an ingest), so a fast error
can never pass for a fast server.

Why alternate: the load that other work puts on these shared 2-core machines drifts from second to second, and a
measure of ~1 s taken on one server, then on the other, carries that drift into the ratio. Paired probes of the
same reads gave ratios from 0.68 to 1.38 taken one block after the other, and from 1.00 to 1.11 with the requests
alternating (six repeats each, ``GET /instances/{id}``, ``/studies/{id}``, ``/series/{id}``). Each request still
waits for the previous answer, as a test suite's client does, so what each server is timed on is unchanged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacsbox.faces.dimse.network import held_reactor

from .servers import DICOMWEB_ROOT, Server

CALLING_AET = "BENCHSCU"
# What a test suite typically asks of a study: an exact PatientID, a few main tags back (Orthanc's /tools/find
# without "Expand", and the study-level C-FIND below, both answer from the index alone on either server).
FIND_STUDY_TAGS = ("StudyInstanceUID", "StudyDate", "StudyDescription", "AccessionNumber", "PatientName")
DICOM_JSON = {"Accept": "application/dicom+json"}


class MeasureFailed(RuntimeError):
    """The server answered a measured request with an error."""


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of some durations in seconds, returned in milliseconds."""
    if len(samples) < 2:
        only = samples[0] * 1000
        return {"p50_ms": only, "p95_ms": only}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": statistics.median(samples) * 1000, "p95_ms": cuts[94] * 1000}


def instance_count(server: Server) -> int:
    answer = server.session().get(server.url + "/statistics", timeout=60)
    answer.raise_for_status()
    return int(answer.json()["CountInstances"])


def upload(server: Server, payloads: Sequence[bytes], clients: int = 4) -> list[str]:
    """Store files (untimed loading, ``clients`` sessions at once); return the instances' Orthanc IDs in order."""
    def store(files: Sequence[bytes]) -> list[str]:
        session = server.session()
        ids = []
        for data in files:
            answer = session.post(server.url + "/instances", data=data, timeout=120)
            if answer.status_code != 200:
                raise MeasureFailed(f"{server.name}: POST /instances answered {answer.status_code}: "
                                    f"{answer.text[:300]}")
            ids.append(answer.json()["ID"])
        return ids

    with ThreadPoolExecutor(clients) as pool:
        slices = list(pool.map(store, [payloads[number::clients] for number in range(clients)]))
    ordered = [""] * len(payloads)
    for number, ids in enumerate(slices):
        ordered[number::clients] = ids
    return ordered


def rest_ingest(server: Server, payloads: Sequence[bytes], clients: int) -> float:
    """Instances per second over ``POST /instances`` from ``clients`` threads, each with its own keep-alive
    session and its own slice of the files; the clock runs from the common start to the last answer."""
    before = instance_count(server)
    slices = [payloads[number::clients] for number in range(clients)]
    sessions = [server.session() for _ in range(clients)]
    for session in sessions:  # connect before the clock starts
        session.get(server.url + "/system", timeout=30).raise_for_status()
    start = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client(session, files: Sequence[bytes]) -> None:
        start.wait()
        for data in files:
            answer = session.post(server.url + "/instances", data=data, timeout=120)
            if answer.status_code != 200:
                errors.append(f"{answer.status_code}: {answer.text[:300]}")
                return

    threads = [threading.Thread(target=client, args=pair) for pair in zip(sessions, slices, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise MeasureFailed(f"{server.name}: POST /instances answered {errors[0]}")
    _check_stored(server, before + len(payloads))
    return len(payloads) / elapsed


def interleaved_rest_ingest(running: dict[str, Server], payloads: Sequence[bytes]) -> dict[str, float]:
    """Instances per second over ``POST /instances`` from one keep-alive session per server, one file at a time,
    the servers' uploads in turns (``interleaved``): the files over the sum of the server's upload times."""
    return _interleaved_posts(running, "/instances", [({}, data) for data in payloads], len(payloads))


def interleaved_stow_ingest(running: dict[str, Server], bodies: Sequence[tuple[str, bytes]],
                            count: int) -> dict[str, float]:
    """``stow_ingest`` for every server, the requests in turns (``interleaved``): ``count`` instances over the sum of
    the server's request times."""
    requests = [({"Content-Type": content_type, **DICOM_JSON}, body) for content_type, body in bodies]
    return _interleaved_posts(running, DICOMWEB_ROOT + "/studies", requests, count)


def _interleaved_posts(running: dict[str, Server], path: str, requests: Sequence[tuple[dict[str, str], bytes]],
                       instances: int) -> dict[str, float]:
    """Each POST of ``requests`` (headers, body) sent to every server in turns, one keep-alive session a server;
    ``instances`` stored a server (checked) over the sum of its request times."""
    before = {name: instance_count(server) for name, server in running.items()}

    def poster(server: Server) -> Callable[[], None]:
        session = server.session()
        session.get(server.url + "/system", timeout=30).raise_for_status()  # connect before the clock starts
        pending = iter(requests)

        def post() -> None:
            headers, body = next(pending)
            answer = session.post(server.url + path, data=body, headers=headers, timeout=120)
            if answer.status_code != 200:
                raise MeasureFailed(f"{server.name}: POST {path} answered {answer.status_code}: {answer.text[:300]}")
            answer.content  # noqa: B018 - the answer is part of the request's cost

        return post

    durations = interleaved({name: poster(server) for name, server in running.items()}, len(requests), warmup=0)
    for name, server in running.items():
        _check_stored(server, before[name] + instances)
    return {name: instances / sum(times) for name, times in durations.items()}


def _check_stored(server: Server, expected: int) -> None:
    found = instance_count(server)
    if found != expected:
        raise MeasureFailed(f"{server.name} holds {found} instances, {expected} expected")


def stow_body(payloads: Sequence[bytes]) -> tuple[str, bytes]:
    """One STOW-RS request: its Content-Type and a ``multipart/related; type="application/dicom"`` body (PS3.18
    8.6.1.2) holding ``payloads``. The boundary is random and checked absent from every part, so no file can end
    its part early."""
    boundary = "bench-" + secrets.token_hex(16)
    if any(boundary.encode() in data for data in payloads):
        raise AssertionError("a file holds the multipart boundary")  # 2**-128 odds; never silently wrong
    body = bytearray()
    for data in payloads:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/dicom"; boundary={boundary}', bytes(body)


def stow_ingest(server: Server, bodies: Sequence[tuple[str, bytes]], count: int) -> float:
    """Instances per second sent as STOW-RS requests (``POST /dicom-web/studies``, bodies made by ``stow_body``
    before the clock starts, ``count`` instances in all) over one keep-alive session."""
    before = instance_count(server)
    session = server.session()
    session.get(server.url + "/system", timeout=30).raise_for_status()  # connect before the clock starts
    url = server.url + DICOMWEB_ROOT + "/studies"
    began = time.perf_counter()
    for content_type, body in bodies:
        answer = session.post(url, data=body, headers={"Content-Type": content_type, **DICOM_JSON}, timeout=120)
        if answer.status_code != 200:
            raise MeasureFailed(f"{server.name}: STOW-RS answered {answer.status_code}: {answer.text[:300]}")
        answer.content  # noqa: B018 - the Store Instances Response is part of the answer's cost
    elapsed = time.perf_counter() - began
    _check_stored(server, before + count)
    return count / elapsed


def write_folder(payloads: Sequence[bytes], folder: Path) -> Path:
    """Files for storescu, written before any clock starts."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(payloads):
        (folder / f"{number:06d}.dcm").write_bytes(data)
    return folder


def cstore_ingest(server: Server, folder: Path, storescu: str) -> float:
    """Instances per second sent by dcmtk's storescu over one association (``TCP_NODELAY=1``); the storescu process
    start is inside the clock, a few milliseconds against seconds of sending."""
    before = instance_count(server)
    count = sum(1 for _ in folder.iterdir())
    command = [storescu, "-aet", CALLING_AET, "-aec", server.aet, "+sd", "127.0.0.1", str(server.dicom_port),
               str(folder)]
    began = time.perf_counter()
    environment = {**os.environ, "TCP_NODELAY": "1"}  # dcmtk reads it (issue 7: storescu with TCP_NODELAY=1)
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=3600)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise MeasureFailed(f"{server.name}: storescu failed ({result.returncode}): {result.stderr[-1000:]}")
    _check_stored(server, before + count)
    return count / elapsed


def interleaved(requesters: dict[str, Callable[[], None]], count: int, warmup: int = 10) -> dict[str, list[float]]:
    """The durations of ``count`` calls of each server's ``requester`` (after ``warmup`` untimed ones), in turns:
    call N of every server, the first of them alternating from one call to the next."""
    names = list(requesters)
    for _ in range(warmup):
        for name in names:
            requesters[name]()
    durations: dict[str, list[float]] = {name: [] for name in names}
    for number in range(count):
        for name in names if number % 2 == 0 else reversed(names):
            began = time.perf_counter()
            requesters[name]()
            durations[name].append(time.perf_counter() - began)
    return durations


def interleaved_latency(requesters: dict[str, Callable[[], None]], count: int,
                        warmup: int = 10) -> dict[str, dict[str, float]]:
    """p50/p95 of each server's requests, taken in turns (``interleaved``)."""
    return {name: percentiles(durations) for name, durations in interleaved(requesters, count, warmup).items()}


def _timed(request: Callable[[], None], count: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        request()
    durations = []
    for _ in range(count):
        began = time.perf_counter()
        request()
        durations.append(time.perf_counter() - began)
    return durations


def rest_latency(server: Server, method: str, paths: Sequence[str], count: int, warmup: int = 10,
                 bodies: Sequence[object] | None = None,
                 headers: dict[str, str] | None = None) -> dict[str, float]:
    """p50/p95 of one kind of request over one keep-alive session, cycling through ``paths`` (and ``bodies``)."""
    return percentiles(_timed(rest_requester(server, method, paths, bodies, headers), count, warmup))


def rest_requester(server: Server, method: str, paths: Sequence[str], bodies: Sequence[object] | None = None,
                   headers: dict[str, str] | None = None) -> Callable[[], None]:
    """One request of one kind a call, over one keep-alive session, cycling through ``paths`` (and ``bodies``);
    an answer other than 200 fails the measure."""
    session = server.session()
    session.headers.update(headers or {})
    turn = iter(range(10**9))

    def request() -> None:
        number = next(turn)
        body = bodies[number % len(bodies)] if bodies else None
        answer = session.request(method, server.url + paths[number % len(paths)], json=body, timeout=60)
        if answer.status_code != 200:
            raise MeasureFailed(f"{server.name}: {method} {paths[0]} answered {answer.status_code}: "
                                f"{answer.text[:300]}")
        answer.content  # noqa: B018 - the whole body is part of the answer's cost

    return request


def find_study_body(patient: str) -> dict[str, object]:
    """The ``/tools/find`` request of the latency measures (see FIND_STUDY_TAGS)."""
    return {"Level": "Study", "Query": {"PatientID": patient}}


class CFindClient:
    """One open association to a server's Study Root C-FIND, reused for every request."""

    def __init__(self, server: Server) -> None:
        self.server = server
        entity = AE(ae_title=CALLING_AET)
        entity.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        self.association: Association = entity.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        if not self.association.is_established:
            raise MeasureFailed(f"{server.name}: the C-FIND association was not accepted")
        # pynetdicom's client socket keeps Nagle on: a request sent in two PDUs (command, identifier) then waits
        # for the server's delayed ACK, ~40 ms that would swamp either server's own time.
        client_socket = self.association.dul.socket.socket if self.association.dul.socket else None
        if client_socket is not None:
            client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # held while the requests go out, as pacsbox's own SCU does: pynetdicom's reactor can otherwise take an
        # answer off the queue before the request waiting for it (lost, then a 30 s DIMSE timeout: seen once)
        self._held = contextlib.ExitStack()
        self._held.enter_context(held_reactor(self.association))

    def find_studies(self, patient: str) -> int:
        """Study-level C-FIND for one PatientID; returns the number of matches."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = patient
        for keyword in FIND_STUDY_TAGS:
            setattr(query, keyword, "")
        matches = 0
        for status, identifier in self.association.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status or status.Status not in (0x0000, 0xFF00, 0xFF01):
                raise MeasureFailed(f"{self.server.name}: C-FIND answered {status}")
            if identifier is not None and status.Status != 0x0000:
                matches += 1
        return matches

    def latency(self, patients: Sequence[str], count: int, warmup: int = 10) -> dict[str, float]:
        return percentiles(_timed(self.requester(patients), count, warmup))

    def requester(self, patients: Sequence[str]) -> Callable[[], None]:
        """One study-level C-FIND a call, cycling through ``patients``."""
        turn = iter(range(10**9))

        def request() -> None:
            self.find_studies(patients[next(turn) % len(patients)])

        return request

    def close(self) -> None:
        self._held.close()
        self.association.release()

    def __enter__(self) -> CFindClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
