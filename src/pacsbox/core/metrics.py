"""Metrics as Orthanc's MetricsRegistry keeps them: named values, each with the time of its last update.

``GET /tools/metrics-prometheus`` publishes them in Prometheus's text format 0.0.4 as Orthanc 1.10.1 writes it:
``name value timestamp_ms`` lines, no ``# TYPE`` or ``# HELP`` comments. Durations keep the largest value seen over
10 seconds (Orthanc's ``MetricsUpdatePolicy_MaxOver10Seconds``); counters only grow; gauges are set.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

_WINDOW_MS = 10_000  # Orthanc's MaxOver10Seconds
T = TypeVar("T")


def now_ms() -> int:
    """Milliseconds since the epoch, as Prometheus timestamps are written."""
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=1024)  # the same few names on every request: built once
def labelled(name: str, **labels: str) -> str:
    """``name{key="value",...}``: a metric with labels (values quoted as Prometheus's text format escapes them)."""
    if not labels:
        return name
    text = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
    return f"{name}{{{text}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """One server's metrics; safe to update from any thread. Nothing is collected while ``is_enabled()`` is false
    (Orthanc's MetricsEnabled)."""

    def __init__(self, is_enabled: Callable[[], bool] = lambda: True) -> None:
        self.is_enabled = is_enabled
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, int]] = {}  # name → (value, time of the update in ms)
        self._window_start: dict[str, int] = {}  # for durations: when the current 10-second window began

    def set(self, name: str, value: float) -> None:
        """A gauge: the value now."""
        if not self.is_enabled():
            return
        with self._lock:
            self._values[name] = (value, now_ms())

    def add(self, name: str, delta: float = 1) -> None:
        """A counter (or a gauge moved up or down)."""
        if not self.is_enabled():
            return
        with self._lock:
            value = self._values.get(name, (0, 0))[0]
            self._values[name] = (value + delta, now_ms())

    def observe_max(self, name: str, value: float) -> None:
        """A duration: the largest value of the current 10-second window (a new window starts with the first value
        after the previous one ended; until then the last window's largest value stays published)."""
        if not self.is_enabled():
            return
        stamp = now_ms()
        with self._lock:
            started = self._window_start.get(name)
            if started is None or stamp - started >= _WINDOW_MS or name not in self._values:
                self._window_start[name] = stamp
                self._values[name] = (value, stamp)
            elif value >= self._values[name][0]:
                self._values[name] = (value, stamp)

    def update(self, gauges: tuple[tuple[str, float], ...] = (), maxima: tuple[tuple[str, float], ...] = (),
               counters: tuple[str, ...] = ()) -> None:
        """``set``, ``observe_max`` and ``add`` (by 1) of several metrics at once, stamped alike: what an answered
        request records (one check of the switch, one clock reading and one lock instead of one per metric)."""
        if not self.is_enabled():
            return
        stamp = now_ms()
        values, window_start = self._values, self._window_start
        with self._lock:
            for name, value in gauges:
                values[name] = (value, stamp)
            for name, value in maxima:
                started = window_start.get(name)
                if started is None or stamp - started >= _WINDOW_MS or name not in values:
                    window_start[name] = stamp
                    values[name] = (value, stamp)
                elif value >= values[name][0]:
                    values[name] = (value, stamp)
            for name in counters:
                values[name] = (values.get(name, (0, 0))[0] + 1, stamp)

    @contextlib.contextmanager
    def timer(self, *names: str) -> Iterator[None]:
        """Record the milliseconds the block took under each of ``names`` (with ``observe_max``)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = round((time.perf_counter() - started) * 1000)
            for name in names:
                self.observe_max(name, elapsed)

    def timed(self, name: str, function: Callable[..., T]) -> Callable[..., T]:
        """``function`` recording how long each call takes under ``name``."""

        def call(*args, **kwargs) -> T:
            with self.timer(name):
                return function(*args, **kwargs)

        return call

    def samples(self) -> list[tuple[str, float, int]]:
        """Every metric as (name, value, timestamp in ms), sorted by name."""
        with self._lock:
            return sorted((name, value, stamp) for name, (value, stamp) in self._values.items())


def prometheus_text(samples: list[tuple[str, float, int]]) -> str:
    """Prometheus's text format 0.0.4 as Orthanc writes it: one ``name value timestamp_ms`` line per metric."""
    return "".join(f"{name} {_number(value)} {stamp}\n" for name, value, stamp in samples)


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.10g}"
