"""The archive's events: one typed publish/subscribe seam for everything that reacts to the archive.

The archive publishes; it names none of its listeners (the XNAT catalog, Lua callbacks, later the event log
subscribe here); the jobs engine (``core.jobs``) publishes its job events here too. This module imports only the
core's leaf modules, so every import goes one way:
``events`` <- ``archive`` <- ``catalog`` <- ``assembly`` (which wires them) <- the server.

Rules, for every listener:

* **Phases.** A listener subscribes to one event type in one phase.

  - ``Phase.IN_TRANSACTION``: called inside the index's write transaction, on the thread that writes, before the
    commit. ``event.transaction`` is the open SQLite connection: the listener may read and write through it, and
    its rows commit (or roll back) with the archive's own. An exception raised here aborts the change: the
    transaction rolls back, nothing is stored (the files written for it are removed) and the exception reaches the
    caller of the archive's verb. Such listeners must be short and must not call the archive (its write lock is
    held: a nested write would wait for itself).
  - ``Phase.AFTER_COMMIT``: called after the change is durable (committed, files on disk), on the thread that made
    the change, synchronously. An exception is logged and swallowed: it never reaches the ingest or delete path,
    and the other listeners still run. A listener with slow work (Lua, network) hands the event to a thread of
    its own and returns at once.

* **Ordering.** Listeners of one event run in the order they subscribed. Events reach after-commit listeners in the
  order the archive committed them when they come from one thread; events of concurrent writers (two uploads) may
  interleave. Every in-transaction listener of an event runs before any after-commit listener of it.

* **Filters.** A store filter (``add_store_filter``) is asked before an instance is written; every filter must
  accept it, else the archive stores nothing and answers ``FilteredOut``. Filters run on the storing thread, outside
  any transaction, and may take time (a Lua filter is bounded by its own time limit); an exception in a filter
  reaches the caller of the archive's verb and nothing is stored (Orthanc answers an upload whose Lua filter
  fails with the Lua error).
  Find filters rewrite queries the same way: ``add_find_filter`` an incoming C-FIND identifier (the DICOM face
  asks ``filter_find`` before matching), ``add_outgoing_find_filter`` a query sent to a modality (the Orthanc face
  asks ``filter_outgoing_find``); an exception fails that C-FIND. ``add_worklist_filter`` rewrites an incoming
  Modality Worklist C-FIND identifier the same way (Lua's IncomingWorklistRequestFilter; ``filter_worklist``).
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .dicom import ParsedInstance
from .ids import Level

log = logging.getLogger("pacsbox.events")


@dataclass(frozen=True)
class Origin:
    """Who sent an instance: recorded as the Origin, RemoteIP, RemoteAET, CalledAET, HttpUsername metadata."""

    kind: str = "Unknown"  # Orthanc's RequestOrigin: RestApi, DicomProtocol, Plugins, Lua, ...
    remote_ip: str = ""
    remote_aet: str = ""
    called_aet: str = ""
    http_username: str = ""


class Phase(enum.Enum):
    """When a listener runs (see the module's rules)."""

    IN_TRANSACTION = "in-transaction"
    AFTER_COMMIT = "after-commit"


@dataclass(frozen=True)
class InstanceStored:
    """An instance was stored (or replaced, with OverwriteInstances)."""

    parsed: ParsedInstance
    patient_id: str
    study_id: str
    series_id: str
    instance_id: str
    origin: Origin
    is_new: bool  # false when it replaced an instance of the same SOPInstanceUID
    # the open write transaction (in-transaction listeners only; None after the commit)
    transaction: sqlite3.Connection | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ResourceDeleted:
    """A resource was deleted with its descendants (and the ancestors it left empty)."""

    level: Level
    public_id: str
    studies: tuple[str, ...]  # the Orthanc IDs of the studies it was part of or held, gathered before deleting
    remaining_ancestor: tuple[Level, str] | None


@dataclass(frozen=True)
class ArchiveReset:
    """The archive was emptied (its index, files and the XNAT catalog's rows and folders). Published while the reset
    still holds the archive's gate alone: no store or delete runs beside its listeners, which must not call one."""


@dataclass(frozen=True)
class ResourceStable:
    """A patient, study or series received nothing for StableAge seconds (Orthanc's Stable* changes)."""

    level: Level
    public_id: str


@dataclass(frozen=True)
class ArchiveClosing:
    """The archive is about to close: listeners finish their work (Lua's Finalize runs here)."""


@dataclass(frozen=True)
class UncleanStopSwept:
    """After an unclean stop, the file store was swept (``core.recovery``, a background thread once the server
    answers): listeners with files of their own sweep theirs now, on that thread, beside the running server (so
    never a file this process is writing)."""


@dataclass(frozen=True)
class JobSubmitted:
    """A job entered the jobs engine (``core.jobs``); published on the thread that submitted it."""

    job_id: str
    job_type: str


@dataclass(frozen=True)
class JobSuccess:
    """A job ended in Success; published on the worker thread that ran it."""

    job_id: str
    job_type: str


@dataclass(frozen=True)
class JobFailure:
    """A job ended in Failure (an error, or a client cancelled it)."""

    job_id: str
    job_type: str

Event = Any
E = TypeVar("E")
Listener = Callable[[Any], None]
StoreFilter = Callable[[ParsedInstance, Origin], bool]
# rewrites an incoming C-FIND identifier (a pydicom Dataset): what Lua's IncomingFindRequestFilter does
FindFilter = Callable[[Any, Origin], Any]
# rewrites an outgoing C-FIND query ({tag: text}) sent to a modality's AET: Lua's OutgoingFindRequestFilter
OutgoingFindFilter = Callable[[dict[int, str], str], dict[int, str]]


class EventBus:
    """Listeners by event type and phase, plus the store filters; safe to subscribe from any thread."""

    def __init__(self) -> None:
        self._listeners: dict[tuple[type, Phase], list[Listener]] = {}
        self._filters: list[StoreFilter] = []
        self._find_filters: list[FindFilter] = []
        self._outgoing_find_filters: list[OutgoingFindFilter] = []
        self._worklist_filters: list[FindFilter] = []
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], listener: Callable[[E], None],
                  phase: Phase = Phase.AFTER_COMMIT) -> Callable[[], None]:
        """Call ``listener`` with every event of ``event_type`` in ``phase``; returns a function that unsubscribes."""
        if phase is Phase.IN_TRANSACTION and event_type is not InstanceStored:
            raise ValueError(f"{event_type.__name__} has no in-transaction phase")
        key = (event_type, phase)
        with self._lock:
            self._listeners[key] = [*self._listeners.get(key, []), listener]  # copy on write: publish reads lock-free

        def unsubscribe() -> None:
            with self._lock:
                self._listeners[key] = [item for item in self._listeners.get(key, []) if item is not listener]

        return unsubscribe

    def publish_in_transaction(self, event: Event) -> None:
        """Run the in-transaction listeners; their exceptions propagate (the caller rolls back)."""
        for listener in self._listeners.get((type(event), Phase.IN_TRANSACTION), ()):
            listener(event)

    def publish(self, event: Event) -> None:
        """Run the after-commit listeners; an exception is logged and the next listener still runs."""
        for listener in self._listeners.get((type(event), Phase.AFTER_COMMIT), ()):
            try:
                listener(event)
            except Exception:  # a listener must never break the path that committed the change
                log.exception("listener %r failed on %s", listener, type(event).__name__)

    def has_listeners(self, event_type: type, phase: Phase = Phase.AFTER_COMMIT) -> bool:
        return bool(self._listeners.get((event_type, phase)))

    # -- store filters ------------------------------------------------------------------------------------
    def add_store_filter(self, accepts: StoreFilter) -> Callable[[], None]:
        """Ask ``accepts(parsed, origin)`` before storing each instance; returns a function that removes it."""
        with self._lock:
            self._filters = [*self._filters, accepts]

        def remove() -> None:
            with self._lock:
                self._filters = [item for item in self._filters if item is not accepts]

        return remove

    def add_find_filter(self, rewrite: FindFilter) -> Callable[[], None]:
        """Let ``rewrite(identifier, origin)`` replace each incoming C-FIND identifier (before matching); an
        exception fails the C-FIND. Returns a function that removes the filter."""
        with self._lock:
            self._find_filters = [*self._find_filters, rewrite]

        def remove() -> None:
            with self._lock:
                self._find_filters = [item for item in self._find_filters if item is not rewrite]

        return remove

    def filter_find(self, identifier: Any, origin: Origin) -> Any:
        """The C-FIND identifier after every find filter (unchanged when there is none)."""
        for rewrite in self._find_filters:
            identifier = rewrite(identifier, origin)
        return identifier

    def add_outgoing_find_filter(self, rewrite: OutgoingFindFilter) -> Callable[[], None]:
        """Let ``rewrite(query, aet)`` replace each C-FIND query sent to a modality; returns its remover."""
        with self._lock:
            self._outgoing_find_filters = [*self._outgoing_find_filters, rewrite]

        def remove() -> None:
            with self._lock:
                self._outgoing_find_filters = [f for f in self._outgoing_find_filters if f is not rewrite]

        return remove

    def filter_outgoing_find(self, query: dict[int, str], aet: str) -> dict[int, str]:
        """An outgoing C-FIND query after every outgoing find filter."""
        for rewrite in self._outgoing_find_filters:
            query = rewrite(query, aet)
        return query

    def add_worklist_filter(self, rewrite: FindFilter) -> Callable[[], None]:
        """Let ``rewrite(identifier, origin)`` replace each incoming worklist C-FIND identifier; returns its
        remover."""
        with self._lock:
            self._worklist_filters = [*self._worklist_filters, rewrite]

        def remove() -> None:
            with self._lock:
                self._worklist_filters = [item for item in self._worklist_filters if item is not rewrite]

        return remove

    def filter_worklist(self, identifier: Any, origin: Origin) -> Any:
        """A worklist C-FIND identifier after every worklist filter."""
        for rewrite in self._worklist_filters:
            identifier = rewrite(identifier, origin)
        return identifier

    @property
    def has_store_filters(self) -> bool:
        return bool(self._filters)

    def accepts(self, parsed: ParsedInstance, origin: Origin) -> bool:
        """Whether every store filter accepts the instance; a filter's exception propagates."""
        return all(accepts(parsed, origin) for accepts in self._filters)
