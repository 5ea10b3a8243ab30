"""What the DICOM face reports of each request it serves: metrics (counts, durations) and a log line.

Both association paths (``direct_scp`` and pynetdicom's handlers in ``scp``) report through here, so
``/tools/metrics-prometheus`` and the ``dicom`` log category see every C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from ...core.archive import Archive
from ...core.metrics import labelled
from . import commands

LOG = logging.getLogger("pacsbox.dimse")
_BY_COMMAND = {commands.C_ECHO_RQ: "C-ECHO", commands.C_STORE_RQ: "C-STORE", commands.C_FIND_RQ: "C-FIND"}
_STORE_DURATION = "orthanc_store_dicom_duration_ms"  # Orthanc's name: storing one received instance


def operation_of(command_field: int | None) -> str | None:
    """The DIMSE name of a request's command field (None for those not counted, such as C-CANCEL)."""
    return _BY_COMMAND.get(command_field or 0)


def _record(archive: Archive, operation: str, calling_aet: str, started: float) -> None:
    elapsed = round((time.perf_counter() - started) * 1000)
    LOG.info("%s from %r served in %d ms", operation, calling_aet, elapsed)
    metrics = archive.metrics
    metrics.add(labelled("pacsbox_dimse_requests_total", operation=operation))
    metrics.observe_max(labelled("pacsbox_dimse_duration_ms", operation=operation), elapsed)
    if operation == "C-STORE":
        metrics.observe_max(_STORE_DURATION, elapsed)


@contextlib.contextmanager
def served(archive: Archive, operation: str | None, calling_aet: str) -> Iterator[None]:
    """Report the request served inside the block (nothing for ``operation`` None)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if operation is not None:
            _record(archive, operation, calling_aet, started)


def handler(archive: Archive, operation: str, serve: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A pynetdicom event handler that reports ``operation``; a handler answering with an iterator (C-FIND, C-MOVE,
    C-GET) is timed until pynetdicom has taken its last answer."""

    def observed(event: Any) -> Any:
        started = time.perf_counter()
        calling = event.assoc.requestor.ae_title.strip()
        watch = getattr(event.assoc, "pacsbox_watch", None)  # fault rules and the event log (pacsbox.faults)
        answer = serve(event) if watch is None else watch.serve_pynetdicom(event, operation, serve)
        if isinstance(answer, Iterator):
            return _timed_iterator(archive, operation, calling, started, answer)
        _record(archive, operation, calling, started)
        return answer

    return observed


def _timed_iterator(archive: Archive, operation: str, calling: str, started: float, answers) -> Iterator[Any]:
    try:
        yield from answers
    finally:
        _record(archive, operation, calling, started)
