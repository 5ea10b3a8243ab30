"""The job-heavy test: 200 asynchronous jobs of four types submitted at once to pacsbox all finish, none is lost,
every archive output can be fetched, and the REST API answers meanwhile. (How much slower it answers under this
load than idle is a figure of benchmarks/jobs_load.py, not a threshold here.)"""

from __future__ import annotations

import io
import time
import zipfile

from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import standard_corpus
from tests.support.job_load import KINDS, idle_latencies, percentile, run_load
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.remote_pair import CORPUS_SOP_CLASSES


def test_200_concurrent_jobs_of_mixed_types_finish_and_none_is_lost():
    files = [data for _, data in standard_corpus()[:4]]  # one CT study of 4 instances
    with DicomPeer(storage_classes=CORPUS_SOP_CLASSES) as peer:
        peer.add_all(files)
        config = {"DicomModalities": {"peer": peer.modality()}, "JobsHistorySize": 250}
        with RunningPacsbox(config) as server:
            session = server.session()
            for data in files:
                session.post(server.url + "/instances", data=data).raise_for_status()
            user, password = server.auth
            session.put(f"{server.url}/peers/self", json={"Url": server.url, "Username": user,
                                                          "Password": password}).raise_for_status()
            study = session.get(server.url + "/studies").json()[0]
            idle = idle_latencies(session, server.url, 50)
            result = run_load(session, server.url, count=200, study=study, modality="peer", peer="self")

            assert len(result.jobs) == 200
            assert set(result.jobs) <= set(session.get(server.url + "/jobs").json())  # none lost
            assert set(result.states.values()) <= {"Success", "Failure"}  # every one finished
            # On a loaded machine a DICOM exchange may rarely hit its 10 s DIMSE timeout (seen about once in 6 runs
            # of this test on a 2-core machine running 8 test suites): such a job fails with Orthanc's network
            # error, and resubmitted it succeeds. Nothing else may fail.
            failed = [session.get(f"{server.url}/jobs/{job_id}").json() for job_id, state in result.states.items()
                      if state != "Success"]
            report = [(job["Type"], job["ErrorCode"], job["ErrorDetails"], job["EffectiveRuntime"]) for job in failed]
            assert len(failed) <= 2 and all(job["ErrorCode"] == 9 and job["Type"] != "Archive" for job in failed), \
                report
            for job in failed:
                assert session.post(f"{server.url}/jobs/{job['ID']}/resubmit").status_code == 200
            deadline = time.monotonic() + 60
            while any(session.get(f"{server.url}/jobs/{job['ID']}").json()["State"] != "Success" for job in failed):
                assert time.monotonic() < deadline, report
                time.sleep(0.1)
            assert {kind: list(result.jobs.values()).count(kind) for kind in KINDS} == \
                {"Archive": 80, "DicomModalityStore": 50, "OrthancPeerStore": 60, "Retrieve": 10}
            for job_id, kind in result.jobs.items():
                if kind == "Archive":
                    output = session.get(f"{server.url}/jobs/{job_id}/archive")
                    assert output.status_code == 200
                    assert len(zipfile.ZipFile(io.BytesIO(output.content)).namelist()) == 4
            assert len(peer.received) >= 50 * 4  # every C-STORE job sent the whole study (a resubmitted one, again)
            assert result.latencies, "the REST API answered nothing during the load"
            print(f"\n200 jobs in {result.seconds:.1f} s; GET /studies p95 {percentile(idle, 0.95) * 1000:.1f} ms "
                  f"idle, {percentile(result.latencies, 0.95) * 1000:.1f} ms under load "
                  f"({len(result.latencies)} requests)")
            assert percentile(result.latencies, 0.95) < 2.0  # responsive: far below any client's timeout
