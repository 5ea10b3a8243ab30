"""REST latency under a load of jobs, pacsbox beside the real Orthanc: GET /studies p95 idle and while 200
asynchronous jobs of mixed types run (archives, C-STOREs, stores to an Orthanc peer, C-MOVE retrieves).

    PYTHONPATH=. python benchmarks/jobs_load.py [--jobs 200] [--idle-requests 200] [--no-orthanc]

Needs Debian's orthanc (bash scripts/install-test-deps.sh) unless --no-orthanc. Both servers run with their
defaults (ConcurrentJobs 2) and JobsHistorySize 1000; the mix and the measure are tests/support/job_load.py's.
Prints, for each server: the time to finish the jobs, p95 idle, p95 under load and their ratio (issue 17 asks
pacsbox to stay within 3 times its idle p95).
"""

from __future__ import annotations

import argparse

from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import standard_corpus
from tests.support.job_load import idle_latencies, percentile, run_load
from tests.support.orthanc_ref import ReferenceOrthanc
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.remote_pair import CORPUS_SOP_CLASSES

FILES = [data for _, data in standard_corpus()[:4]]  # one CT study of 4 instances


def measure(name: str, url: str, session, aet: str, dicom_port: int, peer: DicomPeer, jobs: int,
            idle_requests: int) -> dict:
    """Fill the server, measure idle, then under the load; one line of figures."""
    for data in FILES:
        session.post(url + "/instances", data=data).raise_for_status()
    user, password = session.auth
    session.put(f"{url}/peers/self", json={"Url": url, "Username": user, "Password": password}).raise_for_status()
    session.put(f"{url}/modalities/peer", json=peer.modality()).raise_for_status()
    peer.known[aet] = ("127.0.0.1", dicom_port)
    study = session.get(url + "/studies").json()[0]
    query = session.post(f"{url}/modalities/peer/query", json={"Level": "Study", "Query": {"PatientID": "*"}})
    query.raise_for_status()
    idle = percentile(idle_latencies(session, url, idle_requests), 0.95)
    result = run_load(session, url, count=jobs, study=study, modality="peer", peer="self",
                      query=query.json()["ID"], use_get=False)
    failed = sum(state != "Success" for state in result.states.values())
    for job_id, state in result.states.items():
        if state != "Success":
            job = session.get(f"{url}/jobs/{job_id}").json() if state != "Lost" else {}
            print(f"  {name}: job {job_id} ({result.jobs[job_id]}) {state}: {job.get('ErrorDescription')} "
                  f"{job.get('ErrorDetails')}", flush=True)
    loaded = percentile(result.latencies, 0.95)
    print(f"  {name:15} {jobs} jobs in {result.seconds:6.1f} s ({failed} not Success); GET /studies p95 "
          f"{idle * 1000:6.1f} ms idle, {loaded * 1000:6.1f} ms under load: x{loaded / idle:.1f} "
          f"({len(result.latencies)} requests)", flush=True)
    return {"idle_p95": idle, "load_p95": loaded, "seconds": result.seconds, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--idle-requests", type=int, default=200)
    parser.add_argument("--no-orthanc", action="store_true", help="measure pacsbox alone")
    options = parser.parse_args()
    print(f"REST latency under {options.jobs} jobs (GET /studies, one client beside the jobs)")
    config = {"JobsHistorySize": 1000}
    with DicomPeer(storage_classes=CORPUS_SOP_CLASSES) as peer:
        peer.add_all(FILES)
        if not options.no_orthanc:
            with ReferenceOrthanc(extra_config=config, graceful_stop=False) as orthanc:
                measure("orthanc 1.10.1", orthanc.url, orthanc.session, orthanc.aet, orthanc.dicom_port, peer,
                        options.jobs, options.idle_requests)
        with RunningPacsbox(config) as ours:
            measure("pacsbox", ours.url, ours.session(), ours.aet, ours.dicom_port, peer, options.jobs,
                    options.idle_requests)


if __name__ == "__main__":
    main()
