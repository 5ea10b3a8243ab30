"""The HTTP side of fault injection and of the event log: one ASGI middleware around every web face.

Each request is recorded once answered (method, path and query with secrets masked, face, status, user, duration,
bytes of the body received and sent). While a rule is set, each request is first matched against the rules; one that
fires delays the request, answers it with a status in the face's own error format (Orthanc's JSON body for the Orthanc
and DICOMweb faces, plain text for XNAT), or closes the connection half-way through the answer. The routes that
manage faults and events (``/pacsbox/faults``, ``/pacsbox/events``) and the readiness probe (``/pacsbox/health``)
are neither faulted nor recorded, so a test can always clear its rules and reading the log does not fill it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..faces.http_common import LEAN_BODY, basic_credentials, orthanc_error_body
from .eventlog import redact
from .rules import Action, Fired, Request
from .state import Faults

if TYPE_CHECKING:
    from ..http_protocol import QuickAnswer

UNWATCHED = ("/pacsbox/faults", "/pacsbox/events", "/pacsbox/health")  # readiness probes would fill the log too
# characters of a path or query kept: a full log of 32 KiB URLs (HttpMaximumUrlLength) would hold 300 MB
_KEPT_CHARACTERS = 1024
_DRAINED_AT_MOST = 64 * 1024 * 1024  # bytes of a faulted request's body read (and dropped) before answering


def _unwatched(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in UNWATCHED)


class FaultsMiddleware:
    """Records every HTTP request in the event log and applies the HTTP fault rules; ``face_of(path)`` names the
    face a path belongs to (``orthanc``, ``xnat`` or ``dicomweb``)."""

    def __init__(self, app: ASGIApp, faults: Faults, face_of: Callable[[str], str]) -> None:
        self.app = app
        self.faults = faults
        self.face_of = face_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["path"].startswith("/pacsbox/") and _unwatched(scope["path"])):
            await self.app(scope, receive, send)
            return
        face = self.face_of(scope["path"])
        fired = None
        if self.faults.rules.active:  # the one check a server without rules makes
            fired = self.faults.rules.fire(Request(face, method=scope["method"], path=scope["path"]))
        if fired is None and not self.faults.log.size:
            await self.app(scope, receive, send)
            return
        await self._watched(scope, receive, send, face, fired)

    async def _watched(self, scope: Scope, receive: Receive, send: Send, face: str, fired: Fired | None) -> None:
        started = time.perf_counter()
        seen = [0, 0, 0]  # status, bytes received, bytes sent
        scope.setdefault("state", {})  # BasicAuth writes the user here

        async def counting_receive() -> Message:
            message = await receive()
            seen[1] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if "status" in message:  # http.response.start
                seen[0] = message["status"]
            else:
                seen[2] += len(message.get("body", b""))
            await send(message)

        outcome = None
        try:
            action = fired.action if fired is not None else None
            if action is not None and action.delay:
                await asyncio.sleep(action.delay)
            if action is not None and action.http_status is not None:
                await _drain(counting_receive)
                await _answer(scope, counting_send, face, action)
            elif action is not None and action.close:
                outcome = "closed"
                await self.app(scope, counting_receive, _closing(counting_send))
            else:
                await self.app(scope, counting_receive, counting_send)
        finally:
            self._record(scope, face, started, seen, fired, outcome)

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``): only while no rule is set; the answer is recorded as above."""
        quick = getattr(self.app, "quick_answer", None)
        if quick is None or self.faults.rules.active or scope["path"].startswith("/pacsbox/"):
            return None
        if not self.faults.log.size:
            return quick(scope)
        started = time.perf_counter()
        scope.setdefault("state", {})
        answer = quick(scope)
        if answer is not None:
            body_size = len(scope.get(LEAN_BODY, b""))
            self._record(scope, self.face_of(scope["path"]), started, [answer[0], body_size, len(answer[2])], None,
                         None)
        return answer

    def _record(self, scope: Scope, face: str, started: float, seen: list[int], fired: Fired | None,
                outcome: str | None) -> None:
        state = scope.get("state") or {}
        query = scope.get("query_string", b"").decode("latin-1")
        self.faults.log.record(
            "http", face, method=scope["method"], path=redact(scope["path"])[:_KEPT_CHARACTERS],
            query=redact("?" + query)[1:_KEPT_CHARACTERS] if query else None,
            status=seen[0], user=state.get("user") or _claimed_user(scope),
            duration_ms=int((time.perf_counter() - started) * 1e6) / 1000, body_size=seen[1],
            response_size=seen[2], peer=(scope.get("client") or ("",))[0],
            fault=fired.rule_id if fired is not None else None, outcome=outcome)


def _claimed_user(scope: Scope) -> str | None:
    """The user name a request's Basic credentials claim (never the password), when authentication did not run."""
    credentials = basic_credentials(scope)
    return credentials[0] if credentials is not None else None


async def _drain(receive: Receive) -> None:
    """Read the request's body (up to a bound) and drop it: a client still sending would otherwise see its
    connection reset before it reads the answer."""
    received = 0
    while received <= _DRAINED_AT_MOST:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _answer(scope: Scope, send: Send, face: str, action: Action) -> None:
    """The fault's status with a body in the face's error format."""
    status = action.http_status or 500
    phrase = _phrase(status)
    message = action.message or f"{phrase} (a fault injected by pacsbox)"
    if face == "xnat":
        body, content_type = (message + "\n").encode(), b"text/plain; charset=utf-8"
    else:  # the Orthanc face, and the DICOMweb plugin that answers inside Orthanc
        error = orthanc_error_body(scope["method"], scope["path"], status, _orthanc_code(status), phrase, message)
        body, content_type = json.dumps(error, indent=4).encode(), b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in action.headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status without a registered phrase (299, 599, ...)
        return f"HTTP {status}"


def _orthanc_code(status: int) -> int:
    """Orthanc's error code closest to an HTTP status (its ErrorCode enumeration)."""
    return {400: 8, 401: 29, 403: 30, 404: 17, 405: 12, 413: 8, 415: 3000, 500: 1, 501: 2, 503: 1, 507: 19}.get(
        status, 1 if status >= 500 else 8)


def _closing(send: Send) -> Send:
    """A ``send`` that lets the answer's headers and half of its first body part through, then drops the rest:
    the application returns with the answer incomplete, and the server closes the connection."""
    state = {"cut": False}

    async def closing_send(message: Message) -> None:
        if state["cut"]:
            return
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            state["cut"] = True
            await send({"type": "http.response.body", "body": body[:len(body) // 2], "more_body": True})
            return
        await send(message)

    return closing_send
