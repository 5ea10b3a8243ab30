"""The archive-wide gate: stores and deletes share it, a reset, a restore or a snapshot hold it alone.

A store writes its file, then commits its rows; a reset or a restore replaces the files and the rows. Were they
to interleave, a store could commit rows for a file the reset had just removed (an acknowledged instance listed
without its file). Shared holders run side by side; an exclusive holder waits for them to finish and keeps new
ones out, and a waiting exclusive holder goes before new shared ones (a stream of uploads cannot starve a reset).
Shared holds are reentrant per thread (storing a zip stores each of its members).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

_Result = TypeVar("_Result")


class Gate:
    """A reader/writer lock preferring writers, with reentrant shared holds."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._shared = 0  # shared holds, counted once per thread
        self._exclusive = False
        self._waiting_exclusive = 0
        self._local = threading.local()

    @property
    def is_contended(self) -> bool:
        """Whether an exclusive holder holds the gate or waits for it (a shared hold would wait now)."""
        return self._exclusive or self._waiting_exclusive > 0

    def acquire_shared(self, blocking: bool = True) -> bool:
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            return True
        with self._condition:
            while self._exclusive or self._waiting_exclusive:
                if not blocking:
                    return False
                self._condition.wait()
            self._shared += 1
        self._local.depth = 1
        return True

    def release_shared(self) -> None:
        self._local.depth -= 1
        if self._local.depth:
            return
        with self._condition:
            self._shared -= 1
            if self._shared == 0:
                self._condition.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate beside other shared holders (a store, a delete)."""
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone (a reset, a restore, a snapshot), once every shared holder has left."""
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a shared holder of the archive gate cannot take it exclusively")
        with self._condition:
            self._waiting_exclusive += 1
            try:
                while self._exclusive or self._shared:
                    self._condition.wait()
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


def beside_reset_and_restore(gate_of: Callable[[Any], Gate]
                             ) -> Callable[[Callable[..., _Result]], Callable[..., _Result]]:
    """Run a method that writes archive state (the XNAT catalog's rows and folders) as a shared holder of the
    archive's gate, found by ``gate_of(self)``: a reset or a restore then never interleaves with it (their state
    switch replaces the catalog's folders and rows too), and it never writes into a state being replaced."""
    def decorate(method: Callable[..., _Result]) -> Callable[..., _Result]:
        @functools.wraps(method)
        def gated(self: Any, *args: Any, **kwargs: Any) -> _Result:
            with gate_of(self).shared():
                return method(self, *args, **kwargs)
        return gated
    return decorate
