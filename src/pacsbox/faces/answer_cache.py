"""Bounded least-recently-used caches of rendered answers.

``AnswerCache``: answers that depend only on a stored file. A stored file never changes under its UUID (storing,
overwriting, modifying, compressing or restoring writes a new file under a new UUID; a reset or a delete removes
UUIDs that are never reused), so an answer kept under its file's UUID is never stale: one whose file is gone is
simply never asked for again and ages out.

``GenerationAnswers``: whole answers that depend on the index, kept only while nothing is committed to it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class AnswerCache:
    """Answers (bytes) by key, at most ``limit`` bytes of them; the least recently used go first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # filled from worker threads, read from the event loop

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._answers.get(key)
            if body is not None:
                self._answers.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.limit // 16:  # one huge answer must not flush every other
            return
        with self._lock:
            previous = self._answers.pop(key, None)
            self._size += len(body) - (len(previous) if previous is not None else 0)
            self._answers[key] = body
            while self._size > self.limit:
                _, dropped = self._answers.popitem(last=False)
                self._size -= len(dropped)


class GenerationAnswers:
    """Whole answers of the lean path's reads, kept while the archive's index does not change.

    Each answer is kept with the index's generation (``Index.generation``) read *before* it was made; a lookup
    under another generation first drops what may be stale, so that no answer made before a change (a store through
    any face, a modification, a deletion, metadata, a label, a reset, a restore, a stability flag) is ever given
    after it: everything, unless only stability flags changed; then only the answers whose body names a resource
    flagged (``Index.stable_marks_since``; an answer showing a resource's ``IsStable`` shows its ``ID`` too), as
    the watcher flags a few resources at a time while the rest of what is kept stays true. Only the event loop's
    thread uses it (no lock). At most ``limit`` bytes of bodies, the least recently used going first.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._generation: tuple[int, int] | None = None
        self._answers: OrderedDict[Hashable, tuple[Any, bytes]] = OrderedDict()
        self._size = 0

    def get(self, key: Hashable, generation: tuple[int, int],
            stable_marks_since: Callable[[int], list[str] | None]) -> Any:
        """The answer kept for ``key`` under ``generation``, else None."""
        if generation != self._generation:
            self._catch_up(generation, stable_marks_since)
        kept = self._answers.get(key)
        if kept is None:
            return None
        self._answers.move_to_end(key)
        return kept[0]

    def put(self, key: Hashable, generation: tuple[int, int], answer: Any, body: bytes) -> None:
        """Keep ``answer`` (whose body is ``body``) for ``key``, if ``generation`` is still the current one."""
        if generation != self._generation or len(body) > self.limit // 16:
            return
        previous = self._answers.pop(key, None)
        if previous is not None:
            self._size -= len(previous[1])
        self._answers[key] = (answer, body)
        self._size += len(body)
        while self._size > self.limit:
            _, (_, dropped) = self._answers.popitem(last=False)
            self._size -= len(dropped)

    def _catch_up(self, generation: tuple[int, int], stable_marks_since: Callable[[int], list[str] | None]) -> None:
        old, self._generation = self._generation, generation
        if not self._answers:
            return
        flagged = None
        if old is not None and old[0] == generation[0] and old[1] < generation[1]:
            flagged = stable_marks_since(old[1])
        if flagged is None or len(flagged) > _FLAGS_SEARCHED:
            self._answers.clear()
            self._size = 0
            return
        names = [public_id.encode("ascii", "replace") for public_id in flagged]
        for key, (_, body) in list(self._answers.items()):
            if any(name in body for name in names):
                del self._answers[key]
                self._size -= len(body)


_FLAGS_SEARCHED = 64  # resources flagged stable at once past which every kept answer is dropped instead of searched
