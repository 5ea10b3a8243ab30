"""REST latency under a load of jobs, pacsbox beside the real Orthanc: GET /studies p95 idle and while 200
asynchronous jobs of mixed types run (archives, C-STOREs, stores to an Orthanc peer, C-MOVE retrieves).

    PYTHONPATH=. python benchmarks/jobs_load.py [--rounds 3] [--jobs 200] [--idle-requests 200] [--no-orthanc]

Needs Debian's orthanc (bash scripts/install-test-deps.sh) unless --no-orthanc. Both servers run with their
defaults (ConcurrentJobs 2) and JobsHistorySize 1000; the mix and the measure are tests/support/job_load.py's.
Each round starts a fresh pair of servers and measures them in turn (the first alternating from round to round);
a server's idle p95 comes from requests just before and just after its load, so that the machine's own load falls
on both sides of the ratio alike. Every GET /studies is timed from a process of its own (``LatencyProbe``), idle
and under load alike: a thread of this process would share its GIL with the DICOM peer, the submitters and the
poller, and time its own turns on that GIL too (measured side by side in the same runs, a thread here saw a p95
above the probe process's in 5 runs out of 6, by up to 2 times). Prints, for each server and round: the time to
finish the jobs, p95 idle, p95 under load and their ratio; then the median ratio over the rounds and whether it is
within 3 (issue 17 asks pacsbox to stay within 3 times its idle p95), with the machine's load average (the figures
are only as quiet as the machine was).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import standard_corpus
from tests.support.job_load import LatencyProbe, percentile, run_load
from tests.support.orthanc_ref import ReferenceOrthanc
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.remote_pair import CORPUS_SOP_CLASSES

FILES = [data for _, data in standard_corpus()[:4]]  # one CT study of 4 instances
CONFIG = {"JobsHistorySize": 1000}
WITHIN = 3.0  # issue 17: REST p95 under load within 3 times its idle value


def measure(name: str, url: str, session, aet: str, dicom_port: int, peer: DicomPeer, jobs: int,
            idle_requests: int) -> dict:
    """Fill the server, measure idle, the load, idle again; one line of figures."""
    for data in FILES:
        session.post(url + "/instances", data=data).raise_for_status()
    user, password = session.auth
    session.put(f"{url}/peers/self", json={"Url": url, "Username": user, "Password": password}).raise_for_status()
    session.put(f"{url}/modalities/peer", json=peer.modality()).raise_for_status()
    peer.known[aet] = ("127.0.0.1", dicom_port)
    study = session.get(url + "/studies").json()[0]
    query = session.post(f"{url}/modalities/peer/query", json={"Level": "Study", "Query": {"PatientID": "*"}})
    query.raise_for_status()
    with LatencyProbe(url, session.auth) as probe:
        before = probe.idle(idle_requests // 2)
        result = run_load(session, url, count=jobs, study=study, modality="peer", peer="self",
                          query=query.json()["ID"], use_get=False, probe=probe)
        after = probe.idle(idle_requests - idle_requests // 2)
    failed = sum(state != "Success" for state in result.states.values())
    for job_id, state in result.states.items():
        if state != "Success":
            job = session.get(f"{url}/jobs/{job_id}").json() if state != "Lost" else {}
            print(f"  {name}: job {job_id} ({result.jobs[job_id]}) {state}: {job.get('ErrorDescription')} "
                  f"{job.get('ErrorDetails')}", flush=True)
    idle, loaded = percentile(before + after, 0.95), percentile(result.latencies, 0.95)
    ratio = loaded / idle
    print(f"  {name:15} {jobs} jobs in {result.seconds:6.1f} s ({failed} not Success); GET /studies p95 "
          f"{idle * 1000:6.1f} ms idle, {loaded * 1000:6.1f} ms under load: x{ratio:.2f} "
          f"({len(result.latencies)} requests; load average {os.getloadavg()[0]:.1f})", flush=True)
    return {"idle_p95": idle, "load_p95": loaded, "ratio": ratio, "seconds": result.seconds, "failed": failed}


def measure_orthanc(peer: DicomPeer, options: argparse.Namespace) -> dict:
    with ReferenceOrthanc(extra_config=CONFIG, graceful_stop=False) as orthanc:
        return measure("orthanc 1.10.1", orthanc.url, orthanc.session, orthanc.aet, orthanc.dicom_port, peer,
                       options.jobs, options.idle_requests)


def measure_pacsbox(peer: DicomPeer, options: argparse.Namespace) -> dict:
    with RunningPacsbox(CONFIG) as ours:
        return measure("pacsbox", ours.url, ours.session(), ours.aet, ours.dicom_port, peer, options.jobs,
                       options.idle_requests)


def summary(name: str, rounds: list[dict]) -> str:
    """The median figures of a server over the rounds, and whether its ratio is within 3."""
    ratio = statistics.median(item["ratio"] for item in rounds)
    idle = statistics.median(item["idle_p95"] for item in rounds) * 1000
    loaded = statistics.median(item["load_p95"] for item in rounds) * 1000
    ratios = ", ".join(f"x{item['ratio']:.2f}" for item in rounds)
    verdict = "within" if ratio <= WITHIN else "NOT within"
    return (f"  {name:15} median p95 {idle:6.1f} ms idle, {loaded:6.1f} ms under load: x{ratio:.2f}, {verdict} "
            f"x{WITHIN:g} (rounds {ratios})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh pairs of servers (default 3)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--idle-requests", type=int, default=200, help="half before the load, half after")
    parser.add_argument("--no-orthanc", action="store_true", help="measure pacsbox alone")
    options = parser.parse_args()
    print(f"REST latency under {options.jobs} jobs (GET /studies, one client beside the jobs), "
          f"{options.rounds} rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    measures = {"pacsbox": measure_pacsbox} if options.no_orthanc else \
        {"orthanc 1.10.1": measure_orthanc, "pacsbox": measure_pacsbox}
    figures: dict[str, list[dict]] = {name: [] for name in measures}
    for number in range(options.rounds):
        order = list(measures) if number % 2 == 0 else list(measures)[::-1]
        for name in order:
            with DicomPeer(storage_classes=CORPUS_SOP_CLASSES) as peer:
                peer.add_all(FILES)
                figures[name].append(measures[name](peer, options))
    print(f"Medians over {options.rounds} rounds (load average {os.getloadavg()[0]:.1f}):")
    for name, rounds in figures.items():
        print(summary(name, rounds))
    ours = statistics.median(item["ratio"] for item in figures["pacsbox"])
    return 0 if ours <= WITHIN else 1


if __name__ == "__main__":
    sys.exit(main())
