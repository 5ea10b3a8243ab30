"""A bounded least-recently-used cache of rendered answers, for answers that depend only on a stored file.

A stored file never changes under its UUID (storing, overwriting, modifying, compressing or restoring writes a new
file under a new UUID; a reset or a delete removes UUIDs that are never reused), so an answer kept under its file's
UUID is never stale: one whose file is gone is simply never asked for again and ages out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


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
