"""The /jobs routes against the real Orthanc 1.10.1: the same jobs on both (archives, C-STOREs to a slow modality
and to a closed port), the same job shapes, the same state sequences through pause, resume, cancel and resubmit,
the same answers to every action on a job in each state, the same Lua job callbacks; and, for pacsbox alone, jobs
that survive a clean restart as Orthanc's do (measured: a job running at the stop comes back Pending and goes on,
a finished one keeps its state, an Archive job is not saved).
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import pytest

from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import standard_corpus
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

FINISHED = ("Success", "Failure")
JOB_KEYS = {"CompletionTime", "Content", "CreationTime", "EffectiveRuntime", "ErrorCode", "ErrorDescription",
            "ErrorDetails", "ID", "Priority", "Progress", "State", "Timestamp", "Type"}
LUA = """
seen = {}
function OnJobSubmitted(id) table.insert(seen, 'submitted ' .. id) end
function OnJobSuccess(id) table.insert(seen, 'success ' .. id) end
function OnJobFailure(id) table.insert(seen, 'failure ' .. id) end
"""


class SlowPeer(DicomPeer):
    """A modality that takes 0.3 s per C-STORE: a store job of a few instances runs long enough to be paused."""

    def _on_store(self, event) -> int:
        time.sleep(0.3)
        return super()._on_store(event)


class Server:
    """One of the two servers: its URL and a session."""

    def __init__(self, name: str, url: str, session) -> None:
        self.name, self.url, self.session = name, url, session

    def get(self, path: str):
        return self.session.get(self.url + path, timeout=30)

    def post(self, path: str, body=None):
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        return self.session.post(self.url + path, data=data, timeout=60)

    def job(self, job_id: str) -> dict:
        return self.get(f"/jobs/{job_id}").json()

    def wait(self, job_id: str, states=FINISHED, seconds: float = 20) -> dict:
        deadline = time.monotonic() + seconds
        while (job := self.job(job_id))["State"] not in states:
            assert time.monotonic() < deadline, (self.name, job)
            time.sleep(0.03)
        return job

    def submit(self, path: str, body: dict) -> str:
        answer = self.post(path, {**body, "Asynchronous": True})
        assert answer.status_code == 200, (self.name, answer.text)
        assert set(answer.json()) == {"ID", "Path"} and answer.json()["Path"] == f"/jobs/{answer.json()['ID']}"
        return answer.json()["ID"]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """pacsbox and the real Orthanc, one job worker each, knowing a slow modality and a closed port, holding the
    same files, with the same Lua job callbacks."""
    script = tmp_path_factory.mktemp("lua") / "jobs.lua"
    script.write_text(LUA)
    with SlowPeer() as slow:
        modalities = {"slow": slow.modality(), "dead": ["DEAD", "127.0.0.1", free_port()]}
        config = {"DicomModalities": modalities, "ConcurrentJobs": 1, "LuaScripts": [str(script)],
                  "ExecuteLuaEnabled": True}
        with ReferenceOrthanc(extra_config=config, graceful_stop=False) as orthanc, RunningPacsbox(config) as ours:
            servers = (Server("pacsbox", ours.url, ours.session()), Server("orthanc", orthanc.url, orthanc.session))
            files = standard_corpus()[:4]
            for server in servers:
                for _, data in files:
                    assert server.post("/instances", data).status_code == 200
            yield servers


def ids_of(server: Server) -> dict:
    study = server.get("/studies").json()[0]
    instances = server.get(f"/studies/{study}/instances").json()
    return {"study": study, "instances": sorted(item["ID"] for item in instances)}


def shape(value):
    """The JSON types of a value, recursively (what must match when values cannot)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def test_an_asynchronous_archive_job_and_its_output(both):
    jobs = []
    for server in both:
        study = ids_of(server)["study"]
        job_id = server.submit(f"/studies/{study}/archive", {"Priority": 3})
        job = server.wait(job_id)
        assert set(job) == JOB_KEYS and job["ID"] == job_id and job_id in server.get("/jobs").json()
        assert job_id in [item["ID"] for item in server.get("/jobs?expand").json()]
        output = server.get(f"/jobs/{job_id}/archive")
        assert output.status_code == 200 and output.headers["Content-Type"] == "application/zip"
        assert output.headers["Content-Disposition"] == 'filename="archive.zip"'
        with zipfile.ZipFile(io.BytesIO(output.content)) as zipped:
            assert len(zipped.namelist()) == 4
        assert str(len(output.content)) == job["Content"]["ArchiveSize"]
        jobs.append(job)
    ours, reference = jobs
    assert shape(ours) == shape(reference)
    for key in ("Type", "State", "Progress", "Priority", "ErrorCode", "ErrorDescription", "ErrorDetails"):
        assert ours[key] == reference[key], key
    for key in ("InstancesCount", "Description", "UncompressedSize", "ArchiveSizeMB", "UncompressedSizeMB"):
        assert ours["Content"][key] == reference["Content"][key], key


def test_actions_on_finished_and_unknown_jobs(both):
    answers = []
    for server in both:
        job_id = server.submit("/tools/create-archive", {"Resources": [ids_of(server)["study"]]})
        server.wait(job_id)
        seen = {}
        for action in ("pause", "cancel", "resume", "resubmit"):
            answer = server.post(f"/jobs/{job_id}/{action}")
            seen[action] = (answer.status_code, answer.text, answer.headers.get("Content-Type"))
            unknown = server.post(f"/jobs/nope/{action}")
            seen["unknown " + action] = (unknown.status_code, unknown.text)
        assert server.job(job_id)["State"] == "Success"  # pause and cancel of a finished job change nothing
        unknown = server.get("/jobs/nope")
        seen["unknown job"] = (unknown.status_code, unknown.text)
        for path in (f"/jobs/{job_id}/nope", "/jobs/nope/archive"):
            body = server.get(path).json()
            seen[path.replace(job_id, "{id}")] = {key: value for key, value in body.items() if key != "Uri"}
        seen["delete"] = server.session.delete(f"{server.url}/jobs/{job_id}").status_code
        for method, path in (("GET", f"/jobs/{job_id}/pause"), ("POST", f"/jobs/{job_id}/archive"),
                             ("GET", f"/jobs/{job_id}/archive/x"), ("POST", "/jobs")):
            seen[method + path.replace(job_id, "{id}")] = server.session.request(method, server.url + path).status_code
        answers.append(seen)
    ours, reference = answers
    assert ours == reference
    assert ours["pause"] == (200, "{}", "application/json") and ours["resume"][0] == 400


def test_a_failing_store_job_and_its_resubmission(both):
    jobs = []
    for server in both:
        job_id = server.submit("/modalities/dead/store", {"Resources": [ids_of(server)["study"]]})
        jobs.append((server, job_id, server.wait(job_id)))
    (_, _, ours), (_, _, reference) = jobs
    for key in ("ErrorCode", "ErrorDescription", "Progress", "Type", "State"):
        assert ours[key] == reference[key], key
    for server, job_id, job in jobs:
        assert (job["State"], job["ErrorCode"]) == ("Failure", 9), server.name
        assert "DEAD" in job["ErrorDetails"]
        assert server.post(f"/jobs/{job_id}/resume").status_code == 400
        assert server.post(f"/jobs/{job_id}/pause").status_code == 200
        assert server.post(f"/jobs/{job_id}/resubmit").text == "{}"
        again = server.wait(job_id)
        assert (again["State"], again["ErrorCode"], again["CreationTime"]) == ("Failure", 9, job["CreationTime"])
    assert shape(jobs[0][2]) == shape(jobs[1][2])
    assert set(jobs[0][2]["Content"]) == set(jobs[1][2]["Content"])


def _sequence(server: Server) -> list:
    """Two store jobs on one worker, driven through pause, resume, cancel and resubmit; what each step showed."""
    instances = ids_of(server)["instances"]
    seen: list = []
    first = server.submit("/modalities/slow/store", {"Resources": instances})
    server.wait(first, ("Running",))
    second = server.submit("/modalities/slow/store", {"Resources": instances[:1], "Priority": 5})
    seen.append(("queued", server.job(second)["State"]))
    server.post(f"/jobs/{second}/pause")
    seen.append(("queued paused", server.job(second)["State"]))
    server.post(f"/jobs/{first}/pause")
    seen.append(("running paused at once", server.job(first)["State"]))
    paused = server.wait(first, ("Paused",))
    seen.append(("running paused at its next step", paused["State"], 0 < paused["Progress"] < 100))
    for action in ("pause", "resubmit", "resume", "resume", "resubmit"):
        seen.append((action, server.post(f"/jobs/{first}/{action}").status_code))
    time.sleep(0.1)
    server.post(f"/jobs/{first}/cancel")
    cancelled = server.wait(first)
    seen.append(("cancelled", cancelled["State"], cancelled["ErrorCode"], cancelled["ErrorDescription"],
                 cancelled["ErrorDetails"]))
    server.post(f"/jobs/{second}/resume")
    seen.append(("resumed", server.wait(second)["State"]))
    third = server.submit("/modalities/slow/store", {"Resources": instances[:1]})
    fourth = server.submit("/modalities/slow/store", {"Resources": instances[:1]})
    server.post(f"/jobs/{fourth}/cancel")
    pending_cancelled = server.job(fourth)
    seen.append(("pending cancelled", pending_cancelled["State"], pending_cancelled["ErrorCode"],
                 "CompletionTime" in pending_cancelled))
    seen.append(("resubmit", server.post(f"/jobs/{fourth}/resubmit").status_code))
    resubmitted = server.job(fourth)
    seen.append(("resubmitted", resubmitted["State"] in ("Pending", "Running"), "CompletionTime" in resubmitted))
    seen.append(("done", server.wait(third)["State"], server.wait(fourth)["State"]))
    return seen


def test_pause_resume_cancel_resubmit_give_the_same_states(both):
    ours, reference = (_sequence(server) for server in both)
    assert ours == reference
    assert ("running paused at once", "Running") in ours  # a running job pauses at its next step
    assert ("cancelled", "Failure", 37, "This job was canceled", "") in ours


def test_a_cancelled_synchronous_store_answers_the_cancellation(both):
    answers = []
    for server in both:
        instances = ids_of(server)["instances"]
        result: dict = {}

        def store(server=server, instances=instances, result=result):
            result["answer"] = server.post("/modalities/slow/store", {"Resources": instances})

        thread = threading.Thread(target=store)
        thread.start()
        deadline = time.monotonic() + 10
        while not (running := [job for job in server.get("/jobs?expand").json() if job["State"] == "Running"]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert running[0]["Type"] == "DicomModalityStore"
        server.post(f"/jobs/{running[0]['ID']}/cancel")
        thread.join(30)
        body = result["answer"].json()
        answers.append((result["answer"].status_code, {key: value for key, value in body.items() if key != "Uri"}))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and answers[0][1]["OrthancStatus"] == 37


def test_lua_job_callbacks(both):
    seen = []
    for server in both:
        done = server.submit("/tools/create-archive", {"Resources": [ids_of(server)["study"]]})
        failed = server.submit("/modalities/dead/store", {"Resources": [ids_of(server)["study"]]})
        server.wait(done), server.wait(failed)
        deadline = time.monotonic() + 10
        while True:
            printed = server.post("/tools/execute-script", "for _, line in ipairs(seen) do print(line) end").text
            if all(f"{kind} {job}" in printed for kind, job in (("success", done), ("failure", failed))):
                break
            assert time.monotonic() < deadline, printed
            time.sleep(0.05)
        lines = [line.replace(done, "done").replace(failed, "failed") for line in printed.splitlines()
                 if done in line or failed in line]
        seen.append(sorted(lines))
    assert seen[0] == seen[1] == ["failure failed", "submitted done", "submitted failed", "success done"]


def test_jobs_survive_a_clean_restart(tmp_path):
    """As the real Orthanc (measured): the running store comes back Pending then ends, the finished store keeps
    its state, the archive job is gone."""
    with SlowPeer() as slow:
        server = RunningPacsbox({"DicomModalities": {"slow": slow.modality()}, "ConcurrentJobs": 1})
        server.start()
        try:
            ours = Server("pacsbox", server.url, server.session())
            for _, data in standard_corpus()[:4]:
                ours.post("/instances", data)
            instances = ids_of(ours)["instances"]
            finished = ours.submit("/modalities/slow/store", {"Resources": instances[:1]})
            ours.wait(finished)
            running = ours.submit("/modalities/slow/store", {"Resources": instances})
            ours.wait(running, ("Running",))
            archive = ours.submit("/tools/create-archive", {"Resources": instances})
            time.sleep(0.4)
            server.stop()
            server.start()
            ours = Server("pacsbox", server.url, server.session())
            assert set(ours.get("/jobs").json()) == {finished, running}
            assert ours.job(finished)["State"] == "Success"
            restarted = ours.job(running)
            # it came back and goes on (on a loaded machine it may already have ended by the time we look)
            assert restarted["State"] in ("Pending", "Running", "Success") and restarted["Progress"] > 0
            assert ours.wait(running)["State"] == "Success"
            assert ours.get(f"/jobs/{archive}").status_code == 404
            assert len(slow.received) == 1 + 4  # the restarted job went on where it stopped
        finally:
            server.stop()
            server.__exit__()
