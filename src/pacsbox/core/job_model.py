"""What the jobs engine (``core.jobs``) is made of: the job states, the ``Job`` protocol, the signals a job raises,
its outputs, and the records the engine keeps."""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .jobs import JobContext

PENDING, RUNNING, PAUSED, SUCCESS, FAILURE, RETRY = "Pending", "Running", "Paused", "Success", "Failure", "Retry"
FINISHED = (SUCCESS, FAILURE)


class JobInterrupted(Exception):
    """Raised by ``JobContext.checkpoint`` when the job was paused or cancelled, or the engine is stopping; a job
    lets it propagate (after releasing what it holds)."""


class JobRetry(Exception):
    """Raised by a job that should run again after ``delay`` seconds (state Retry meanwhile)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay} s")
        self.delay = delay


@runtime_checkable
class Job(Protocol):
    """What the engine runs. Optional methods, looked up when present:

    * ``serialize(self) -> dict | None``: what to save with ``SaveJobs`` (``None``, or no such method: the job is
      not saved, like Orthanc's Archive jobs); ``JobsEngine.register_loader(job_type, loader)`` rebuilds it.
    * ``reset(self) -> None``: called before a resubmitted job runs again from its start.
    """

    job_type: str  # Orthanc's "Type": "Archive", "DicomModalityStore", "ResourceModification"...

    def initial_content(self) -> dict:
        """The job's Orthanc "Content" before it runs."""
        ...

    def run(self, context: JobContext) -> dict | None:
        """Do the work on a worker thread; the dict is the answer of the Synchronous path. Raise a core
        ``ArchiveError`` to fail, let ``JobInterrupted`` propagate, raise ``JobRetry`` to try again later.
        A job paused or stopped is run again on resume: it may keep its position in its own attributes."""
        ...


JobLoader = Callable[[dict], Job]


@dataclass
class JobOutput:
    """A file a job produced, served by GET /jobs/{id}/{key}: bytes in memory, or a file the engine owns."""

    mime: str
    filename: str = ""
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data or b"")

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else len(self.data or b"")

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def timestamp(moment: float) -> str:
    """Orthanc's ISO form of a time: ``20261207T052247.063843`` (UTC)."""
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


@dataclass
class JobRecord:
    """One job in the registry, with its state; read it through ``JobsEngine.info`` (a consistent copy)."""

    id: str
    job: Job | None  # None: read back from a saved registry, waiting for the loader of its type
    job_type: str
    priority: int
    content: dict
    state: str = PENDING
    progress: float = 0.0
    error: BaseException | None = None
    created: float = field(default_factory=time.time)
    completed: float | None = None
    runtime: float = 0.0  # seconds spent Running, over every run
    outputs: dict[str, JobOutput] = field(default_factory=dict)
    answer: dict | None = None
    saved_job: dict | None = None  # the serialized job not yet rebuilt
    request: str | None = None  # "pause" or "cancel", asked while it runs
    retry_at: float = 0.0
    waiters: list[Callable[[], None]] = field(default_factory=list)
    # What the engine last made of a job that is not running (its JobInfo, its saved JSON), with the fields it was
    # made from: a registry of hundreds of finished jobs is listed and saved without rebuilding them each time.
    cached_info: tuple[tuple, JobInfo] | None = field(default=None, repr=False)
    cached_save: tuple[tuple, str] | None = field(default=None, repr=False)

    def unchanged_key(self) -> tuple | None:
        """What a snapshot of this job depends on, while it is not running (its job changes nothing then); None
        while it runs."""
        if self.state == RUNNING:
            return None
        return (self.state, self.progress, self.priority, self.completed, self.runtime, id(self.error),
                id(self.content), tuple(self.outputs), self.job is None)


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of a job, for the faces."""

    id: str
    job_type: str
    priority: int
    state: str
    progress: int  # 0..100
    content: dict
    error: BaseException | None
    creation_time: str
    completion_time: str | None
    effective_runtime: float
    output_keys: tuple[str, ...]


