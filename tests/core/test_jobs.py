"""The jobs engine in-process: priorities, the worker bound, pause/resume/cancel/resubmit, history, outputs, events,
the Synchronous path and saving across a restart."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pacsbox.core import errors
from pacsbox.core.assembly import open_archive
from pacsbox.core.config import Config
from pacsbox.core.events import EventBus, JobFailure, JobSubmitted, JobSuccess
from pacsbox.core.jobs import Job, JobCanceled, JobContext, JobsEngine


class Steps:
    """A job of ``count`` steps; each step waits for ``gate`` (when given) or ``pause`` seconds."""

    job_type = "TestSteps"

    def __init__(self, count: int = 3, pause: float = 0.0, gate: threading.Event | None = None,
                 fail_at: int | None = None, log: list | None = None, name: str = "") -> None:
        self.count, self.pause, self.gate, self.fail_at = count, pause, gate, fail_at
        self.log = log if log is not None else []
        self.name = name
        self.position = 0
        self.at_gate = threading.Event()  # set once a step has passed its checkpoint and waits at the gate

    def initial_content(self) -> dict:
        return {"Steps": self.count, "Done": 0}

    def run(self, context: JobContext) -> dict:
        while self.position < self.count:
            context.checkpoint()
            if self.gate is not None:
                self.at_gate.set()
                self.gate.wait(5)
            time.sleep(self.pause)
            if self.fail_at == self.position:
                raise errors.NetworkError(f"step {self.position} failed")
            self.position += 1
            context.content["Done"] = self.position
            context.progress(self.position / self.count)
        self.log.append(self.name)
        context.add_output("result", f"{self.name}:{self.count}".encode(), "text/plain", "result.txt")
        return {"Name": self.name, "Steps": self.count}

    def serialize(self) -> dict:
        return {"count": self.count, "position": self.position, "name": self.name}

    def reset(self) -> None:
        self.position = 0


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def engine(events):
    built = JobsEngine(events, concurrent_jobs=1, history_size=10)
    built.start()
    yield built
    built.stop()


def test_a_job_runs_to_success_with_its_content_progress_and_output(engine):
    assert isinstance(Steps(), Job)
    job_id = engine.submit(Steps(3, name="a"), priority=4)
    wait_for(lambda: engine.info(job_id).state == "Success")
    info = engine.info(job_id)
    assert (info.job_type, info.priority, info.progress, info.content) == ("TestSteps", 4, 100, {"Steps": 3, "Done": 3})
    assert info.error is None and info.completion_time and info.creation_time <= info.completion_time
    output = engine.output(job_id, "result")
    assert (output.mime, output.filename, output.open().read()) == ("text/plain", "result.txt", b"a:3")
    with pytest.raises(errors.InexistentItem, match="no such output: other"):
        engine.output(job_id, "other")
    assert engine.ids() == [job_id]


def test_higher_priority_runs_first_and_the_pool_is_bounded(engine):
    gate = threading.Event()
    log: list[str] = []
    engine.submit(Steps(1, gate=gate, log=log, name="first"))
    wait_for(lambda: engine.infos()[0].state == "Running")
    ids = [engine.submit(Steps(1, log=log, name=name), priority=priority)
           for name, priority in (("low", 0), ("high", 9), ("mid", 5), ("low2", 0))]
    time.sleep(0.1)
    assert [engine.info(job_id).state for job_id in ids] == ["Pending"] * 4  # one worker, busy
    gate.set()
    wait_for(lambda: len(log) == 5)
    assert log == ["first", "high", "mid", "low", "low2"]


def test_pause_resume_cancel_resubmit_follow_orthanc(engine):
    gate = threading.Event()
    job = Steps(4, gate=gate, name="running")
    running = engine.submit(job)
    wait_for(lambda: engine.info(running).state == "Running")
    assert job.at_gate.wait(30)  # its first step under way (past its first checkpoint), as below
    queued = engine.submit(Steps(1, name="queued"))
    assert engine.pause(queued) and engine.info(queued).state == "Paused"
    assert engine.pause(running) and engine.info(running).state == "Running"  # at its next checkpoint
    gate.set()
    wait_for(lambda: engine.info(running).state == "Paused")
    assert engine.info(running).progress == 25
    assert not engine.resubmit(running)  # has not failed
    assert engine.resume(running) and not engine.resume(running)
    wait_for(lambda: engine.info(running).state == "Success")
    assert engine.info(running).content["Done"] == 4  # went on from its position
    assert engine.pause(running) and engine.cancel(running)  # a finished job: accepted, nothing changes
    assert engine.info(running).state == "Success"
    assert not engine.resume(running) and not engine.resubmit(running)
    assert engine.cancel(queued)
    cancelled = engine.info(queued)
    assert cancelled.state == "Failure" and isinstance(cancelled.error, JobCanceled)
    assert engine.resubmit(queued) and engine.info(queued).completion_time is None
    wait_for(lambda: engine.info(queued).state == "Success")
    assert not any([engine.pause("nope"), engine.cancel("nope"), engine.resume("nope"), engine.resubmit("nope")])
    with pytest.raises(errors.InexistentItem):
        engine.info("nope")


def test_listing_reuses_the_snapshot_of_a_job_only_while_it_is_unchanged(engine):
    # hundreds of finished jobs are listed often (GET /jobs?expand): a job that has not changed is not copied again,
    # and any change shows in the next listing
    gate = threading.Event()
    job_id = engine.submit(Steps(2, gate=gate, name="a"))
    wait_for(lambda: engine.info(job_id).state == "Running")
    assert engine.info(job_id) is not engine.info(job_id)  # running: its job may change its Content at any time
    gate.set()
    wait_for(lambda: engine.info(job_id).state == "Success")
    finished = engine.info(job_id)
    assert engine.info(job_id) is finished and engine.infos()[0] is finished
    assert finished.content == {"Steps": 2, "Done": 2} and finished.output_keys == ("result",)
    second_gate = threading.Event()
    queued = engine.submit(Steps(2, gate=second_gate, name="b"))  # the worker is free: it runs and waits
    wait_for(lambda: engine.info(queued).state == "Running")
    assert engine.cancel(queued)
    second_gate.set()
    wait_for(lambda: engine.info(queued).state == "Failure")
    failed = engine.info(queued)
    assert engine.info(queued) is failed and engine.resubmit(queued)
    assert engine.info(queued).state in ("Pending", "Running") and engine.info(queued).completion_time is None


def test_a_running_job_cancelled_fails_at_its_next_step(engine):
    gate = threading.Event()
    job = Steps(3, gate=gate)
    job_id = engine.submit(job)
    wait_for(lambda: engine.info(job_id).state == "Running")
    # "Running" shows before the job's thread reaches its first checkpoint: a cancel before it would end the job
    # at step 0; the first step is under way once it waits at the gate
    assert job.at_gate.wait(30)
    engine.cancel(job_id)
    gate.set()
    wait_for(lambda: engine.info(job_id).state == "Failure")
    assert isinstance(engine.info(job_id).error, JobCanceled)
    assert engine.info(job_id).progress == 33


def test_a_failing_job_keeps_its_error_and_can_be_resubmitted(engine, events):
    seen: list[tuple[str, str]] = []
    for kind in (JobSubmitted, JobSuccess, JobFailure):
        events.subscribe(kind, lambda event, kind=kind: seen.append((kind.__name__, event.job_id)))
    job = Steps(2, fail_at=1)
    job_id = engine.submit(job)
    wait_for(lambda: engine.info(job_id).state == "Failure")
    info = engine.info(job_id)
    assert isinstance(info.error, errors.NetworkError) and info.error.details == "step 1 failed"
    assert info.progress == 50
    job.fail_at = None
    assert engine.resubmit(job_id)
    wait_for(lambda: engine.info(job_id).state == "Success")
    wait_for(lambda: len(seen) == 3)
    assert seen == [("JobSubmitted", job_id), ("JobFailure", job_id), ("JobSuccess", job_id)]


def test_history_keeps_the_last_finished_jobs(events):
    engine = JobsEngine(events, concurrent_jobs=2, history_size=2)
    engine.start()
    try:
        ids = []
        for number in range(4):
            ids.append(engine.submit(Steps(1, name=str(number))))
            wait_for(lambda: engine.info(ids[-1]).state == "Success")
        assert engine.ids() == sorted(ids[2:])
    finally:
        engine.stop()


def test_run_and_wait_answers_or_raises_without_blocking_the_loop(engine):
    async def scenario():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        answer = await engine.run_and_wait(Steps(5, pause=0.05, name="sync"))
        with pytest.raises(errors.NetworkError, match="step 0 failed"):
            await engine.run_and_wait(Steps(1, fail_at=0))
        ticker.cancel()
        return answer, ticks

    answer, ticks = asyncio.run(scenario())
    assert answer == {"Name": "sync", "Steps": 5}
    assert ticks > 5
    assert len(engine.ids()) == 2  # synchronous jobs are listed too, as in Orthanc


def test_many_jobs_none_lost(events):
    engine = JobsEngine(events, concurrent_jobs=4, history_size=1000)
    engine.start()
    try:
        ids = [engine.submit(Steps(2, name=str(number)), priority=number % 3) for number in range(200)]
        wait_for(lambda: all(engine.info(job_id).state == "Success" for job_id in ids), 30)
        assert sorted(ids) == engine.ids()
        assert {engine.output(job_id, "result").open().read() for job_id in ids} == \
            {f"{number}:2".encode() for number in range(200)}
    finally:
        engine.stop()


class Busy:
    """A job of ``count`` steps, each keeping its thread busy for ``seconds`` of wall time (a job's CPU-bound work);
    ``between`` adds up the time spent in its checkpoints (where the engine's rests are)."""

    job_type = "TestBusy"

    def __init__(self, count: int, seconds: float) -> None:
        self.count, self.seconds = count, seconds
        self.between = 0.0

    def initial_content(self) -> dict:
        return {}

    def run(self, context: JobContext) -> dict:
        for _ in range(self.count):
            started = time.perf_counter()
            context.checkpoint()
            self.between += time.perf_counter() - started
            until = time.perf_counter() + self.seconds
            while time.perf_counter() < until:
                pass
        return {}


def test_workers_rest_between_steps_while_jobs_queue_up_and_a_lone_job_runs_at_full_speed(events):
    engine = JobsEngine(events, concurrent_jobs=1, history_size=10)
    engine.start()
    try:
        alone = Busy(5, 0.02)
        engine.submit(alone)
        wait_for(lambda: engine.info(engine.ids()[0]).state == "Success")
        crowded = [Busy(5, 0.02) for _ in range(2)]
        ids = [engine.submit(job) for job in crowded]  # the second waits: the first rests at each step
        wait_for(lambda: all(engine.info(job_id).state == "Success" for job_id in ids))
        # 4 rests as long as the 20 ms step before each (the first checkpoint comes before any work)
        assert crowded[0].between >= 0.075
        assert alone.between < crowded[0].between / 2  # no rest (only what a loaded machine adds)
    finally:
        engine.stop()


def _loader(saved: dict) -> Steps:
    job = Steps(saved["count"], name=saved["name"])
    job.position = saved["position"]
    return job


def test_jobs_survive_a_clean_restart_as_in_orthanc(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, ConcurrentJobs=1)
    archive = open_archive(config)
    done = archive.jobs.submit(Steps(1, name="done"))
    wait_for(lambda: archive.jobs.info(done).state == "Success")
    running = archive.jobs.submit(Steps(4, pause=0.2, name="running"))
    wait_for(lambda: archive.jobs.info(running).state == "Running")
    paused = archive.jobs.submit(Steps(1, name="paused"))
    archive.jobs.pause(paused)

    class Unsaved(Steps):
        serialize = None  # like Orthanc's Archive jobs: lost at a stop

    lost = archive.jobs.submit(Unsaved(1))
    archive.close()  # the running job stops at its next checkpoint

    archive = open_archive(config)
    try:
        jobs = archive.jobs
        assert lost not in jobs.ids() and {done, running, paused} <= set(jobs.ids())
        assert jobs.info(done).state == "Success" and jobs.info(paused).state == "Paused"
        assert jobs.info(running).state == "Pending" and jobs.info(running).progress > 0
        jobs.register_loader("TestSteps", _loader)
        wait_for(lambda: jobs.info(running).state == "Success")
        assert jobs.info(running).content["Done"] == 4
        assert jobs.resume(paused)
        wait_for(lambda: jobs.info(paused).state == "Success")
    finally:
        archive.close()


def test_save_jobs_false_starts_empty(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, SaveJobs=False)
    archive = open_archive(config)
    job_id = archive.jobs.submit(Steps(1))
    wait_for(lambda: archive.jobs.info(job_id).state == "Success")
    archive.close()
    archive = open_archive(config)
    try:
        assert archive.jobs.ids() == []
    finally:
        archive.close()


def test_a_reset_forgets_the_finished_jobs(tmp_path):
    archive = open_archive(Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, ConcurrentJobs=1))
    try:
        done = archive.jobs.submit(Steps(1, name="done"))
        wait_for(lambda: archive.jobs.info(done).state == "Success")
        gate = threading.Event()
        running = archive.jobs.submit(Steps(1, gate=gate))
        wait_for(lambda: archive.jobs.info(running).state == "Running")
        archive.reset()
        assert archive.jobs.ids() == [running]
        gate.set()
        wait_for(lambda: archive.jobs.info(running).state == "Success")
    finally:
        archive.close()
