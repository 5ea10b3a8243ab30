"""Measuring the Orthanc face's requests: Orthanc's REST metrics, pacsbox's request counts, the ``http`` log.

Orthanc 1.10.1 publishes ``orthanc_rest_api_active_requests`` (requests being served, the scrape included) and
``orthanc_rest_api_duration_ms`` (the longest request of the last 10 s); pacsbox adds
``pacsbox_rest_api_requests_total`` by method and status class. A DICOM upload (``POST /instances``) also counts
as ``orthanc_store_dicom_duration_ms``, as a C-STORE does.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...core.archive import Archive
from ...core.metrics import labelled

if TYPE_CHECKING:
    from ...http_protocol import QuickAnswer

LOG = logging.getLogger("pacsbox.http")
_ACTIVE = "orthanc_rest_api_active_requests"
_DURATION = "orthanc_rest_api_duration_ms"
_STORE_DURATION = "orthanc_store_dicom_duration_ms"


class RequestMetrics:
    """ASGI middleware around the whole face (authentication included: refused requests count too)."""

    def __init__(self, app: ASGIApp, archive: Archive) -> None:
        self.app, self.archive = app, archive
        self.active = 0  # counted here (on the event loop) so that switching metrics off and on keeps it right
        self._counter_names: dict[tuple[str, int], str] = {}  # (method, status // 100) -> the counter's name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        metrics = self.archive.metrics
        status = 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.active += 1
        metrics.set(_ACTIVE, self.active)
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._answered(scope, status, started, was_active=True)

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``): an answer given at once is counted as above (it was active for
        as long as it took, with nothing else running meanwhile)."""
        quick = getattr(self.app, "quick_answer", None)
        if quick is None or scope["type"] != "http":
            return None
        started = time.perf_counter()
        answer = quick(scope)
        if answer is not None:  # (active for as long as it took: counted in and out at once, as one update)
            self._answered(scope, answer[0], started)
        return answer

    def _answered(self, scope: Scope, status: int, started: float, *, was_active: bool = False) -> None:
        elapsed = round((time.perf_counter() - started) * 1000)
        method, path = scope.get("method", ""), scope.get("path", "")
        # the path quoted (a decoded %0A cannot forge a log line); no query: it may hold secrets
        LOG.info("%s %r answered %d in %d ms", method, path, status, elapsed)
        if was_active:
            self.active -= 1
        maxima: tuple[tuple[str, float], ...] = ((_DURATION, elapsed),)
        if method == "POST" and path == "/instances" and status == 200:
            maxima += ((_STORE_DURATION, elapsed),)
        self.archive.metrics.update(((_ACTIVE, self.active),), maxima, (self._counter_name(method, status),))

    def _counter_name(self, method: str, status: int) -> str:
        key = (method, status // 100)
        name = self._counter_names.get(key)
        if name is None:
            name = labelled("pacsbox_rest_api_requests_total", method=method, status=f"{status // 100}xx")
            if len(self._counter_names) < 256:  # methods are whatever a client sends: the names kept are bounded
                self._counter_names[key] = name
        return name
