"""The jobs engine: Orthanc's queue of long operations (archives, stores, retrievals, modifications), in the core.

As Orthanc 1.10.1 runs its jobs (the Orthanc Book, "Jobs"; measured against the real one):

* A job is **Pending** in a priority queue (higher ``Priority`` first, first come first served among equals), then
  **Running** on one of ``ConcurrentJobs`` worker threads, then **Success** or **Failure**; **Paused** when a
  client pauses it, **Retry** while it waits to try again.
* ``pause`` and ``cancel`` of a running job take effect at its next step (``JobContext.checkpoint``): until then it
  stays Running. A cancelled job ends in Failure ("This job was canceled"); a paused one waits for ``resume``, which
  queues it again (Pending). ``resubmit`` queues a failed job again; ``pause`` and ``cancel`` of a finished job do
  nothing; ``resume`` of a job that is not paused and ``resubmit`` of one that has not failed are refused.
* While jobs queue up (more than one to run), a worker rests at each step as long as its last step took, up to
  50 ms (``JobContext.checkpoint``): each worker runs about half of the time and leaves the interpreter (the GIL)
  and the cores to the requests that the server answers meanwhile, which get their turns sooner. A load of jobs
  takes longer, as in Orthanc (whose REST API stays within about twice its idle p95 while it runs 200 jobs at about
  half pacsbox's pace: see benchmarks/jobs_load.py); a single job runs at full speed.
* Finished jobs are kept, with their outputs, up to ``JobsHistorySize``; the oldest finished job goes first.
* With ``SaveJobs``, the jobs that can be saved (``Job.serialize``) are written at every change and at a clean stop,
  and read back at start: a job running at the stop comes back Pending (it goes on from where it stopped if it
  keeps its position in what it serializes), others in their state. Jobs that cannot be saved (Orthanc's Archive
  and Media jobs) are lost at a stop, as in Orthanc.

The engine knows no protocol: a job's error is the core exception it raised (``core.errors``), which each face
renders (the Orthanc face as ``ErrorCode``/``ErrorDescription``). It publishes ``JobSubmitted``, ``JobSuccess`` and
``JobFailure`` (``core.events``) and names no listener. It never blocks an event loop: ``run_and_wait`` awaits a
future that the worker completes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import errors
from .errors import ArchiveError, JobCanceled
from .events import EventBus, JobFailure, JobSubmitted, JobSuccess
from .job_model import (
    FAILURE,
    FINISHED,
    PAUSED,
    PENDING,
    RETRY,
    RUNNING,
    SUCCESS,
    Job,
    JobInfo,
    JobInterrupted,
    JobLoader,
    JobOutput,
    JobRecord,
    JobRetry,
    timestamp,
)

__all__ = ["FINISHED", "Job", "JobCanceled", "JobContext", "JobInfo", "JobInterrupted", "JobOutput", "JobRetry",
           "JobsEngine", "open_jobs_engine"]
_SAVED_PROPERTY = "jobs"  # where the saved registry goes (Orthanc: the global property JobsRegistry)
_OUTPUT_FOLDER = "tmp"  # the storage area's spool folder, which the server empties at every start
# A worker's rest at a checkpoint while jobs queue up: this share of its time since its previous checkpoint (1.0:
# as long as it worked), at most _LONGEST_REST seconds, so that pause, cancel and stop still act within moments.
# Measured under the 200-job load of benchmarks/jobs_load.py, quarter-seconds with the rest against quarter-seconds
# without in the same runs (6 runs, machine load ~17 on 2 cores): GET /studies p95 8.3 ms against 11.3 ms.
_REST_SHARE = 1.0
_LONGEST_REST = 0.05

log = logging.getLogger("pacsbox.jobs")


class JobContext:
    """What a running job sees of the engine: its Content, its progress, its checkpoints and its outputs."""

    def __init__(self, engine: JobsEngine, record: JobRecord) -> None:
        self._engine = engine
        self._record = record
        self.content: dict = record.content  # the job's Orthanc "Content": the job may change it while it runs
        self.job_id = record.id
        self._worked_since = time.perf_counter()

    def progress(self, fraction: float) -> None:
        """Report the share of the work done (0..1), shown as Progress 0..100."""
        self._record.progress = min(1.0, max(0.0, float(fraction)))

    def checkpoint(self) -> None:
        """Between two steps: rest a while if jobs queue up (see the module's docstring), then raise
        ``JobInterrupted`` if the job was paused or cancelled, or the engine stops."""
        if self._engine.crowded and not self._engine._stopping:
            time.sleep(min(_LONGEST_REST, (time.perf_counter() - self._worked_since) * _REST_SHARE))
        self._worked_since = time.perf_counter()
        if self._record.request is not None or self._engine._stopping:
            raise JobInterrupted(self._record.request or "stop")

    def add_output(self, key: str, data: bytes, mime: str, filename: str = "") -> None:
        """Keep ``data`` as the output ``key`` of the job (GET /jobs/{id}/{key})."""
        self._engine._set_output(self._record, key, JobOutput(mime, filename, data=data))

    def add_output_file(self, key: str, path: Path, mime: str, filename: str = "") -> None:
        """Keep the file at ``path`` as the output ``key``: the engine owns it from now on and removes it with
        the job (large outputs such as archives stay on disk)."""
        self._engine._set_output(self._record, key, JobOutput(mime, filename, path=Path(path)))


class JobsEngine:
    """A registry of jobs and a bounded pool of worker threads that run them. Thread-safe."""

    def __init__(self, events: EventBus, *, concurrent_jobs: int = 2, history_size: int = 10,
                 load: Callable[[], str | None] | None = None, save: Callable[[str], None] | None = None,
                 output_directory: Path | None = None) -> None:
        self._events = events
        # Orthanc's ConcurrentJobs 0: as many workers as cores
        self._workers_count = concurrent_jobs if concurrent_jobs > 0 else (os.cpu_count() or 1)
        self._history_size = max(0, history_size)
        self._save_to, self._load_from = save, load
        # where jobs write large outputs (add_output_file); outputs are never saved, so a folder emptied at start
        self.output_directory = output_directory
        self._lock = threading.Condition()
        self._jobs: dict[str, JobRecord] = {}
        self._queue: list[tuple[int, int, str]] = []  # (-priority, order, id): a heap
        self._order = itertools.count()
        self._finished_order: list[str] = []  # ids of finished jobs, oldest completion first
        self._loaders: dict[str, JobLoader] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._started = False
        self._running = 0  # workers running a job now (read without the lock: a hint, see ``busy``)
        self._dirty = threading.Event()
        self._saver: threading.Thread | None = None

    # -- life ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Read the saved jobs (if any); the workers (and the saver) start now if there are jobs, else with the
        first one queued."""
        with self._lock:
            if self._started:
                return
            self._started = True
        if self._load_from is not None:
            self._restore(self._load_from())
        # The workers and the saver start with the first job (or now, for jobs read back): a server that runs
        # none starts no thread for them (cold start).
        with self._lock:
            if self._jobs:
                self._start_threads()

    def _start_threads(self) -> None:
        """With the lock held: start the workers and the saver, once, unless the engine was never started or is
        stopping."""
        if self._threads or not self._started or self._stopping:
            return
        for number in range(self._workers_count):
            thread = threading.Thread(target=self._work, name=f"pacsbox-job-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._save_to is not None:
            self._saver = threading.Thread(target=self._save_when_changed, name="pacsbox-jobs-save", daemon=True)
            self._saver.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the running jobs at their next checkpoint (they come back Pending when saved), stop the
        workers, save the registry. Safe to call twice."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._dirty.set()
        if self._saver is not None:
            self._saver.join(timeout=max(0.5, deadline - time.monotonic()))
        self._save()
        with self._lock:
            for record in self._jobs.values():
                for output in record.outputs.values():
                    output.discard()
                self._wake_waiters(record)

    def register_loader(self, job_type: str, loader: JobLoader) -> None:
        """How to rebuild a saved job of ``job_type`` from what its ``serialize`` gave; saved jobs of that type
        read at start are rebuilt now (and queued if they were pending)."""
        with self._lock:
            self._loaders[job_type] = loader
            for record in self._jobs.values():
                if record.job is None and record.job_type == job_type and record.saved_job is not None:
                    self._rebuild(record)
            self._lock.notify_all()

    def forget_finished(self) -> None:
        """Drop every finished job and its outputs (the archive was reset: a test starts from a clean slate);
        pending, running and paused jobs stay."""
        with self._lock:
            for job_id in self._finished_order:
                dropped = self._jobs.pop(job_id, None)
                if dropped is not None:
                    for output in dropped.outputs.values():
                        output.discard()
            self._finished_order = []
        self._changed()

    # -- submitting ---------------------------------------------------------------------------------------
    def submit(self, job: Job, priority: int = 0) -> str:
        """Queue ``job``; its ID (a UUID, as Orthanc's)."""
        return self._admit(self._record(job, priority)).id

    @staticmethod
    def _record(job: Job, priority: int) -> JobRecord:
        import uuid  # (it imports platform: loaded on first use, not at start)

        return JobRecord(str(uuid.uuid4()), job, job.job_type, int(priority), dict(job.initial_content()))

    def _admit(self, record: JobRecord) -> JobRecord:
        """Register and queue ``record``, then say so (JobSubmitted)."""
        with self._lock:
            if self._stopping:
                raise errors.Unsupported("The jobs engine is stopping")
            self._jobs[record.id] = record
            self._enqueue(record)
        self._changed()
        self._events.publish(JobSubmitted(record.id, record.job_type))
        return record

    async def run_and_wait(self, job: Job, priority: int = 0) -> dict | None:
        """The Synchronous path: submit ``job`` and await its end without blocking the event loop; its answer, or
        its failure re-raised (a core ``ArchiveError``; ``JobCanceled`` when a client cancelled it)."""
        import asyncio  # (loaded with the HTTP server, not with the archive: cold start)

        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def finished() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        record = self._record(job, priority)
        record.waiters.append(finished)
        self._admit(record)
        await done
        if record.state == SUCCESS:
            return record.answer
        if record.error is not None:
            raise record.error
        raise errors.Unsupported("The jobs engine stopped before the job ended")

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a job runs now: a hint for callers that may do a little work themselves or hand it to a thread
        (an event loop that stores a small upload in its own thread when nothing competes with it)."""
        return self._running > 0

    @property
    def crowded(self) -> bool:
        """Whether jobs queue up: several run, or one waits to run (a paused or cancelled job left in the queue
        does not count)."""
        if self._running > 1:
            return True
        with self._lock:
            return any(self._jobs[job_id].state == PENDING for _, _, job_id in self._queue if job_id in self._jobs)

    def ids(self) -> list[str]:
        """Every job's ID, sorted (Orthanc lists them from a sorted set)."""
        with self._lock:
            return sorted(self._jobs)

    def info(self, job_id: str) -> JobInfo:
        """A snapshot of one job; ``InexistentItem`` when unknown."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise errors.InexistentItem(f"Unknown job: {job_id}")
            return self._snapshot(record)

    def infos(self) -> list[JobInfo]:
        with self._lock:
            return [self._snapshot(self._jobs[job_id]) for job_id in sorted(self._jobs)]

    def output(self, job_id: str, key: str) -> JobOutput:
        """An output of a job; ``InexistentItem`` when the job or the output is unknown."""
        with self._lock:
            record = self._jobs.get(job_id)
            output = None if record is None else record.outputs.get(key)
            if output is None:
                raise errors.InexistentItem(f"Job has no such output: {key}")
            return output

    def _snapshot(self, record: JobRecord) -> JobInfo:
        """With the lock held: a JobInfo of ``record``, the same object again while the job has not changed."""
        key = record.unchanged_key()
        if key is not None and record.cached_info is not None and record.cached_info[0] == key:
            return record.cached_info[1]
        info = self._new_snapshot(record)
        record.cached_info = None if key is None else (key, info)
        return info

    def _new_snapshot(self, record: JobRecord) -> JobInfo:
        runtime = record.runtime
        started = getattr(record, "_started", None)
        if record.state == RUNNING and started is not None:
            runtime += time.monotonic() - started
        return JobInfo(record.id, record.job_type, record.priority, record.state,
                       int(record.progress * 100 + 0.5), _copy(record.content),
                       record.error, timestamp(record.created),
                       None if record.completed is None else timestamp(record.completed),
                       round(runtime, 3), tuple(record.outputs))

    # -- client actions (Orthanc's POST /jobs/{id}/...) ---------------------------------------------------
    def pause(self, job_id: str) -> bool:
        """Pause a pending job at once, a running one at its next checkpoint; a finished job stays as it is.
        False when the job is unknown."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                return False
            if record.state in (PENDING, RETRY):
                record.state = PAUSED
            elif record.state == RUNNING:
                record.request = "pause"
        self._changed()
        return True

    def cancel(self, job_id: str) -> bool:
        """Cancel a pending, paused or retrying job at once (Failure), a running one at its next checkpoint; a
        finished job stays as it is. False when the job is unknown."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                return False
            if record.state in (PENDING, PAUSED, RETRY):
                self._finish(record, FAILURE, JobCanceled())
            elif record.state == RUNNING:
                record.request = "cancel"
        self._after_finish(record)
        return True

    def resume(self, job_id: str) -> bool:
        """Queue a paused job again; False when the job is unknown or not paused."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or record.state != PAUSED:
                return False
            self._enqueue(record)
        self._changed()
        return True

    def resubmit(self, job_id: str) -> bool:
        """Queue a failed job again from its start; False when it is unknown or has not failed."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or record.state != FAILURE or record.job is None:
                return False
            reset = getattr(record.job, "reset", None)
            if callable(reset):
                reset()
            record.content = dict(record.job.initial_content())
            record.completed = None
            record.request = None
            self._finished_order = [item for item in self._finished_order if item != record.id]
            self._enqueue(record)
        self._changed()
        return True

    # -- the workers --------------------------------------------------------------------------------------
    def _enqueue(self, record: JobRecord) -> None:
        """With the lock held: queue a job as Pending."""
        record.state = PENDING
        heapq.heappush(self._queue, (-record.priority, next(self._order), record.id))
        self._start_threads()
        self._lock.notify()

    def _next(self) -> JobRecord | None:
        """With the lock held: the next job to run, marked Running; None when there is none."""
        now = time.monotonic()
        for record in self._jobs.values():
            if record.state == RETRY and record.retry_at <= now:
                self._enqueue(record)
        while self._queue:
            _, _, job_id = heapq.heappop(self._queue)
            record = self._jobs.get(job_id)
            if record is None or record.state != PENDING:
                continue  # paused, cancelled or dropped since it was queued
            if record.job is None:
                continue  # a saved job whose loader is not registered yet: queued again by register_loader
            record.state = RUNNING
            record.request = None
            record._started = time.monotonic()  # type: ignore[attr-defined]
            return record
        return None

    def _work(self) -> None:
        while True:
            with self._lock:
                record = self._next()
                while record is None and not self._stopping:
                    waiting_retry = any(item.state == RETRY for item in self._jobs.values())
                    self._lock.wait(timeout=0.2 if waiting_retry else None)
                    record = self._next()
                if record is None:
                    return
            self._changed()
            self._running += 1  # (a worker's own count: each worker adds and removes its one)
            try:
                self._run(record)
            finally:
                self._running -= 1

    def _run(self, record: JobRecord) -> None:
        context = JobContext(self, record)
        assert record.job is not None
        try:
            answer = record.job.run(context)
        except JobInterrupted:
            with self._lock:
                self._account(record)
                if record.request == "cancel":
                    self._finish(record, FAILURE, JobCanceled())
                elif record.request == "pause":
                    record.state = PAUSED
                else:  # the engine stops: back to the queue, as Orthanc saves a job that was running
                    record.state = PENDING
                record.request = None
        except JobRetry as retry:
            with self._lock:
                self._account(record)
                record.state, record.retry_at = RETRY, time.monotonic() + retry.delay
                self._lock.notify_all()
        except BaseException as error:  # every failure of a job is its Failure; the worker goes on
            if not isinstance(error, ArchiveError):
                log.exception("job %s (%s) failed", record.id, record.job_type)
            with self._lock:
                self._account(record)
                self._finish(record, FAILURE, error)
        else:
            with self._lock:
                self._account(record)
                record.answer = answer
                record.progress = 1.0
                self._finish(record, SUCCESS, None)
        self._after_finish(record)

    def _account(self, record: JobRecord) -> None:
        started = getattr(record, "_started", None)
        if started is not None:
            record.runtime += time.monotonic() - started
            record._started = None  # type: ignore[attr-defined]

    def _finish(self, record: JobRecord, state: str, error: BaseException | None) -> None:
        """With the lock held: end a job; drop the oldest finished jobs past JobsHistorySize."""
        record.state, record.error, record.completed, record.request = state, error, time.time(), None
        self._finished_order.append(record.id)
        while len(self._finished_order) > self._history_size:
            dropped = self._jobs.pop(self._finished_order.pop(0), None)
            if dropped is not None:
                for output in dropped.outputs.values():
                    output.discard()

    def _after_finish(self, record: JobRecord) -> None:
        """Outside the lock: wake the waiters and publish the end of a job that just finished."""
        self._changed()
        if record.state not in FINISHED:
            return
        with self._lock:
            waiters, record.waiters = record.waiters, []
        for wake in waiters:
            wake()
        event = JobSuccess if record.state == SUCCESS else JobFailure
        if getattr(record, "_published", None) != record.completed:
            record._published = record.completed  # type: ignore[attr-defined]
            self._events.publish(event(record.id, record.job_type))

    def _wake_waiters(self, record: JobRecord) -> None:
        waiters, record.waiters = record.waiters, []
        for wake in waiters:
            wake()

    def _set_output(self, record: JobRecord, key: str, output: JobOutput) -> None:
        with self._lock:
            previous = record.outputs.get(key)
            record.outputs[key] = output
        if previous is not None and previous.path != output.path:
            previous.discard()

    # -- saving -------------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty.set()

    def _save_when_changed(self) -> None:
        while not self._stopping:
            self._dirty.wait()
            if self._stopping:
                return
            time.sleep(0.1)  # gather the changes of a burst of jobs into one write
            self._dirty.clear()
            self._save()

    def _save(self) -> None:
        if self._save_to is None:
            return
        with self._lock:
            saved = [text for text in (self._saved_text(record) for record in self._jobs.values()) if text]
        try:
            self._save_to('{"Jobs": [' + ", ".join(saved) + "]}")
        except Exception:  # a locked or closed index must not break the engine
            log.exception("cannot save the jobs")

    def _saved_text(self, record: JobRecord) -> str:
        """With the lock held: the JSON ``record`` is saved as ("" when it cannot be saved), made again only when
        the job changed."""
        key = record.unchanged_key()
        if key is not None and record.cached_save is not None and record.cached_save[0] == key:
            return record.cached_save[1]
        item = self._serialize(record)
        text = "" if item is None else json.dumps(item)
        record.cached_save = None if key is None else (key, text)
        return text

    def _serialize(self, record: JobRecord) -> dict | None:
        payload = record.saved_job
        if record.job is not None:
            serialize = getattr(record.job, "serialize", None)
            payload = serialize() if callable(serialize) else None
        if payload is None:
            return None
        error = record.error
        return {"ID": record.id, "Type": record.job_type, "Priority": record.priority,
                "State": PENDING if record.state in (RUNNING, RETRY) else record.state,
                "Progress": record.progress, "Content": record.content, "CreationTime": record.created,
                "CompletionTime": record.completed, "Runtime": record.runtime,
                "Error": None if error is None else {"Class": type(error).__name__,
                                                     "Details": getattr(error, "details", None) or str(error)},
                "Job": payload}

    def _restore(self, text: str | None) -> None:
        try:
            saved = json.loads(text)["Jobs"] if text else []
        except (ValueError, KeyError, TypeError):
            log.error("the saved jobs are unreadable; starting without them")
            return
        with self._lock:
            for item in saved:
                try:
                    record = JobRecord(str(item["ID"]), None, str(item["Type"]), int(item["Priority"]),
                                       dict(item["Content"]), state=str(item["State"]),
                                       progress=float(item["Progress"]), created=float(item["CreationTime"]),
                                       completed=item["CompletionTime"], runtime=float(item["Runtime"]),
                                       saved_job=dict(item["Job"]))
                    record.error = _error_from(item.get("Error"))
                except (KeyError, TypeError, ValueError):
                    log.error("a saved job is unreadable; skipped")
                    continue
                self._jobs[record.id] = record
                if record.state in FINISHED:
                    self._finished_order.append(record.id)
                if record.job_type in self._loaders:
                    self._rebuild(record)
            self._finished_order.sort(key=lambda job_id: self._jobs[job_id].completed or 0)

    def _rebuild(self, record: JobRecord) -> None:
        """With the lock held: the job of a saved record, from its loader; a job that cannot be rebuilt fails."""
        try:
            record.job = self._loaders[record.job_type](record.saved_job or {})
            record.saved_job = None
        except Exception as error:  # a saved job of an older layout: it fails, the others still run
            log.exception("cannot rebuild the saved job %s", record.id)
            if record.state not in FINISHED:
                self._finish(record, FAILURE, error)
            return
        if record.state == PENDING:
            heapq.heappush(self._queue, (-record.priority, next(self._order), record.id))


def _copy(content: dict) -> dict:
    """A deep copy of a job's Content, which its job may change meanwhile on its worker thread (a key added while
    the copy iterates: copy again)."""
    for _ in range(100):
        try:
            return json.loads(json.dumps(content, default=str))
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return {}


def _error_from(saved: Any) -> BaseException | None:
    """A saved job's error as the core exception it was (its class by name), else an ``ArchiveError``."""
    if not isinstance(saved, dict):
        return None
    details = saved.get("Details")
    name = saved.get("Class")
    cls = getattr(errors, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, ArchiveError)):
        cls = ArchiveError
    return cls(details)


def open_jobs_engine(archive: Any) -> JobsEngine:
    """The jobs engine of an archive, from its configuration (``ConcurrentJobs``, ``JobsHistorySize``,
    ``SaveJobs``); saved in the index as Orthanc saves its registry in a global property."""
    config = archive.config
    save = load = None
    if config.SaveJobs:
        index = archive.index
        load = lambda: index.get_property(_SAVED_PROPERTY)  # noqa: E731
        save = lambda text: index.set_property(_SAVED_PROPERTY, text)  # noqa: E731
    return JobsEngine(archive.events, concurrent_jobs=config.ConcurrentJobs, history_size=config.JobsHistorySize,
                      load=load, save=save, output_directory=config.storage_path / _OUTPUT_FOLDER)
