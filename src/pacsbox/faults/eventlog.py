"""The event log: what the server received and sent (HTTP requests, associations, DIMSE messages, outgoing SCU
operations, archive changes, fired fault rules), bounded in memory, oldest dropped.

Every event is a JSON object with a ``seq`` (increasing, never reused while the server runs), a ``time`` (Unix
seconds), a ``kind`` and a ``face``, then the fields of its kind. No secret enters it: a path's secret
parameters are masked as in the access log, users are named without their password, headers are not kept.
Waiters (``GET /pacsbox/events?wait=``) are woken as soon as an event is recorded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..server import _SECRET_PARAMETER  # the access log's rule: one definition of what is a secret

if TYPE_CHECKING:  # asyncio loads with the HTTP server, not with the archive (cold start)
    import asyncio

DEFAULT_SIZE = 10000
KINDS = ("http", "association", "association-end", "dimse", "scu", "stored", "deleted", "reset", "job")


def redact(path: str) -> str:
    """A request path and query with every secret parameter's value masked (``?password=***``)."""
    if "=" not in path and "%3d" not in path.lower():  # no parameter value at all: the common case, no regex
        return path
    return _SECRET_PARAMETER.sub(r"\1***", path)


_Kept = tuple[int, float, str, str, dict[str, Any]]  # seq, time, kind, face, the fields as recorded


def _event(kept: _Kept) -> dict[str, Any]:
    """A kept event as its JSON object: seq, time, kind, face, then the fields that are not None."""
    seq, when, kind, face, fields = kept
    event = {"seq": seq, "time": when, "kind": kind, "face": face}
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event


class EventLog:
    """The last ``size`` events (0: none are kept); safe to record from any thread."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._events: deque[_Kept] = deque(maxlen=max(size, 1))
        self._lock = threading.Lock()
        self._seq = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread_waiters = threading.Condition(self._lock)
        self._threads_waiting = 0

    def record(self, kind: str, face: str, **fields: Any) -> None:
        """Add one event (fields with a None value are left out). It runs on every request, so the event is kept
        as it came (a tuple and the call's own keyword dict) and made into its JSON object when read."""
        if not self.size:
            return
        now = time.time()
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, now, kind, face, fields))
            if self._threads_waiting:
                self._thread_waiters.notify_all()
            waiters = list(self._waiters) if self._waiters else ()
        for loop, woken in waiters:
            with contextlib.suppress(RuntimeError):  # a loop already closed
                loop.call_soon_threadsafe(woken.set)

    @property
    def last_seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        return len(self._events)

    def events(self, since: int = 0, limit: int | None = None, faces: Iterable[str] = (),
               kinds: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The events after ``since`` (a ``seq``), oldest first, of the given faces and kinds (all if empty)."""
        faces, kinds = frozenset(faces), frozenset(kinds)
        with self._lock:
            chosen = [kept for kept in self._events if kept[0] > since
                      and (not faces or kept[3] in faces) and (not kinds or kept[2] in kinds)]
        return [_event(kept) for kept in (chosen[:limit] if limit is not None else chosen)]

    def clear(self) -> None:
        """Forget every event (``seq`` goes on increasing)."""
        with self._lock:
            self._events.clear()

    async def wait_async(self, since: int, timeout: float, select: Callable[[], list[dict[str, Any]]]) -> None:
        """Return once ``select()`` finds something or ``timeout`` seconds passed, without blocking the loop."""
        import asyncio

        woken = asyncio.Event()
        waiter = (asyncio.get_running_loop(), woken)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._waiters.add(waiter)
        try:
            while not select():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                woken.clear()
                if select():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), remaining)
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def wait(self, predicate: Callable[[dict[str, Any]], bool], since: int = 0,
             timeout: float = 10.0) -> dict[str, Any] | None:
        """The first event after ``since`` for which ``predicate`` holds, waiting up to ``timeout`` seconds for it
        (in-process callers)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = next((event for event in map(_event, (kept for kept in self._events if kept[0] > since))
                              if predicate(event)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._threads_waiting += 1
                try:
                    self._thread_waiters.wait(remaining)
                finally:
                    self._threads_waiting -= 1
