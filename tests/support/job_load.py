"""A load of asynchronous jobs of mixed types on an Orthanc-compatible server, and REST latency measured beside it:
shared by the job-heavy test (tests/faces/orthanc/test_jobs_load.py) and the benchmark (benchmarks/jobs_load.py).

The mix, in a pattern of 20: 8 Archives of a study, 5 C-STOREs of it to a DICOM peer, 6 stores of it to an
Orthanc peer (the server itself) and one retrieve of it from the DICOM peer: a C-GET, or a C-MOVE through /queries
when ``use_get`` is false (Orthanc 1.10.1 has no C-GET route). Retrieves are few because one costs as much as
twenty archives (the association of a C-GET proposes every storage class).
"""

from __future__ import annotations

import statistics
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


def run_load(session: requests.Session, url: str, *, count: int, study: str, modality: str, peer: str,
             query: str | None = None, use_get: bool = True, timeout: float = 300) -> LoadResult:
    """Submit ``count`` asynchronous jobs of the mix at once (from 4 client threads), measure GET /studies
    meanwhile, wait until every job has finished; the jobs' states and the latencies."""
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
    probe = requests.Session()
    probe.auth = session.auth
    prober = threading.Thread(target=measure_latency, args=(probe, url, stop, result.latencies), daemon=True)
    started = time.perf_counter()
    prober.start()
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
        prober.join(60)
        probe.close()
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
