"""A load of asynchronous jobs of mixed types on an Orthanc-compatible server, and REST latency measured beside it:
shared by the job-heavy test (tests/faces/orthanc/test_jobs_load.py) and the benchmark (benchmarks/jobs_load.py).

The mix, in a pattern of 20: 8 Archives of a study, 5 C-STOREs of it to a DICOM peer, 6 stores of it to an
Orthanc peer (the server itself) and one retrieve of it from the DICOM peer: a C-GET, or a C-MOVE through /queries
when ``use_get`` is false (Orthanc 1.10.1 has no C-GET route). Retrieves are few because one costs as much as
twenty archives (the association of a C-GET proposes every storage class).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import requests

KINDS = ("Archive", "DicomModalityStore", "OrthancPeerStore", "Retrieve")
MIX = ("Archive", "DicomModalityStore", "OrthancPeerStore", "Archive", "DicomModalityStore", "OrthancPeerStore",
       "Archive", "Archive", "DicomModalityStore", "OrthancPeerStore", "Retrieve", "Archive", "DicomModalityStore",
       "OrthancPeerStore", "Archive", "Archive", "DicomModalityStore", "OrthancPeerStore", "Archive",
       "OrthancPeerStore")


@dataclass
class LoadResult:
    """What a load gave: the submitted jobs by ID and kind, the final states, the latencies measured meanwhile."""

    jobs: dict[str, str] = field(default_factory=dict)  # ID -> kind
    states: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds of each REST request during the load
    seconds: float = 0.0  # from the first submission to the last job finished


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.95: p95) of ``values``."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def measure_latency(session: requests.Session, url: str, stop: threading.Event, into: list[float],
                    path: str = "/studies") -> None:
    """GET ``path`` again and again until ``stop``; each request's time goes to ``into``."""
    while not stop.is_set():
        started = time.perf_counter()
        session.get(url + path, timeout=60).raise_for_status()
        into.append(time.perf_counter() - started)


def idle_latencies(session: requests.Session, url: str, count: int, path: str = "/studies") -> list[float]:
    """``count`` timed GETs of ``path`` on an idle server."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url + path, timeout=60).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


# The probe process: timed GETs of one URL, ``N`` of them on "N", again and again from "run" until "stop"; each
# command answered by one line, the JSON list of the requests' seconds.
_PROBE = """
import json, sys, threading, time
import requests
url, user, password = sys.argv[1:4]
session = requests.Session()
session.auth = (user, password)
def timed():
    started = time.perf_counter()
    session.get(url, timeout=60).raise_for_status()
    return time.perf_counter() - started
stop = threading.Event()
for line in sys.stdin:
    command = line.strip()
    if command == "run":
        stop.clear()
        times = []
        def loop():
            while not stop.is_set():
                times.append(timed())
        looping = threading.Thread(target=loop)
        looping.start()
    elif command == "stop":
        stop.set()
        looping.join()
        print(json.dumps(times), flush=True)
    elif command:
        print(json.dumps([timed() for _ in range(int(command))]), flush=True)
"""


class LatencyProbe:
    """GET ``path`` timed from a process of its own (a context manager): its clock and its GIL are not shared
    with the threads that submit the jobs, poll them and play the DICOM peer, so that what it measures is the
    server's answer, not the client's own turn to run."""

    def __init__(self, url: str, auth: tuple[str, str], path: str = "/studies") -> None:
        self._process = subprocess.Popen([sys.executable, "-c", _PROBE, url + path, *auth], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)

    def _ask(self, command: str) -> list[float]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the latency probe ended")
        return json.loads(line)

    def idle(self, count: int) -> list[float]:
        """``count`` timed GETs, one after the other."""
        return self._ask(str(count))

    def start(self) -> None:
        """GET again and again until ``stop``."""
        assert self._process.stdin is not None
        self._process.stdin.write("run\n")
        self._process.stdin.flush()

    def stop(self) -> list[float]:
        """The times of the GETs since ``start``."""
        return self._ask("stop")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LatencyProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_load(session: requests.Session, url: str, *, count: int, study: str, modality: str, peer: str,
             query: str | None = None, use_get: bool = True, timeout: float = 300,
             probe: LatencyProbe | None = None) -> LoadResult:
    """Submit ``count`` asynchronous jobs of the mix at once (from 4 client threads), measure GET /studies
    meanwhile (from a thread of this process, or from ``probe``), wait until every job has finished; the jobs'
    states and the latencies."""
    result = LoadResult()
    lock = threading.Lock()
    get_body = {"Level": "Study", "Resources": [{"StudyInstanceUID": _study_uid(session, url, study)}],
                "Asynchronous": True}

    def submit(number: int) -> None:
        kind = MIX[number % len(MIX)]
        if kind == "Archive":
            answer = session.post(f"{url}/studies/{study}/archive", json={"Asynchronous": True}, timeout=60)
        elif kind == "DicomModalityStore":
            answer = session.post(f"{url}/modalities/{modality}/store",
                                  json={"Resources": [study], "Asynchronous": True}, timeout=60)
        elif kind == "OrthancPeerStore":
            answer = session.post(f"{url}/peers/{peer}/store", json={"Resources": [study], "Asynchronous": True},
                                  timeout=60)
        elif use_get:
            answer = session.post(f"{url}/modalities/{modality}/get", json=get_body, timeout=60)
        else:
            answer = session.post(f"{url}/queries/{query}/retrieve", json={"Asynchronous": True}, timeout=60)
        answer.raise_for_status()
        with lock:
            result.jobs[answer.json()["ID"]] = kind

    stop = threading.Event()
    prober_session = requests.Session()
    prober_session.auth = session.auth
    prober = threading.Thread(target=measure_latency, args=(prober_session, url, stop, result.latencies),
                              daemon=True)
    started = time.perf_counter()
    if probe is None:
        prober.start()
    else:
        probe.start()
    numbers = list(range(count))
    submitters = [threading.Thread(target=lambda part=part: [submit(n) for n in numbers[part::4]])
                  for part in range(4)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    deadline = time.monotonic() + timeout
    try:
        while True:
            listed = {job["ID"]: job["State"] for job in _get_again_once(session, f"{url}/jobs?expand").json()}
            result.states = {job_id: listed.get(job_id, "Lost") for job_id in result.jobs}
            if all(state in ("Success", "Failure", "Lost") for state in result.states.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        result.seconds = time.perf_counter() - started
        stop.set()
        if probe is None:
            prober.join(60)
        else:
            result.latencies = probe.stop()
        prober_session.close()
    return result


def _study_uid(session: requests.Session, url: str, study: str) -> str:
    return session.get(f"{url}/studies/{study}", timeout=60).json()["MainDicomTags"]["StudyInstanceUID"]


def _get_again_once(session: requests.Session, url: str) -> requests.Response:
    """GET ``url``, a second time if the server closed the kept-alive connection under it (the real Orthanc does,
    now and then, between two polls of a long load)."""
    try:
        return session.get(url, timeout=60)
    except requests.ConnectionError:
        return session.get(url, timeout=60)
