"""HTTP pieces every web face needs the same way: Basic credentials, method-grouped routes, spooled bodies,
stored files sent whole.

Not a face: faces import it, it imports no face.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import TooLarge

Endpoint = Callable[[Request], Awaitable[Response]]
SPOOL_IN_MEMORY = 32 * 1024 * 1024  # bodies above this go to a temporary file
_CHUNK = 1024 * 1024


def basic_credentials(scope: Scope) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP Basic Authorization header; None when absent, malformed or not Basic."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                user, _, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user, password
    return None


def grouped_routes(table: Iterable[tuple[str, Iterable[str], Endpoint]]) -> list[Route]:
    """One Starlette route per path, dispatching on the method (HEAD as GET), so that a 405 lists every
    allowed method."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for path, methods, endpoint in table:
        for method in methods:
            by_path.setdefault(path, {})[method] = endpoint
    routes = []
    for path, endpoints in by_path.items():
        async def dispatch(request: Request, endpoints=endpoints) -> Response:
            return await endpoints["GET" if request.method == "HEAD" else request.method](request)

        routes.append(Route(path, dispatch, methods=list(endpoints)))
    return routes


async def spool_body(request: Request, limit: int,
                     too_large: Callable[[int], Exception]) -> tempfile.SpooledTemporaryFile:
    """The request body in a spooled temporary file (memory, then disk), rewound; ``too_large(limit)`` is
    raised past ``limit`` bytes (each face words its own 413)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def content_disposition(name: str) -> str:
    """``attachment`` with a file name, RFC 6266: a name that is not plain ASCII, or holds a quote, a semicolon or
    a line break, goes percent-encoded in ``filename*`` (it can neither split the header nor fail to encode)."""
    quoted = quote(name)
    return f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"


async def stored_file_response(path: Path, media_type: str, missing: Callable[[], Exception], *,
                               attachment: str | None = None) -> Response:
    """Send a stored file, opened before the answer starts; ``missing()`` is raised when it is already gone.

    Another request may delete the file at any moment. Opened first, it is sent whole even if deleted meanwhile
    (an open file keeps its bytes on POSIX); a path opened once the headers are out (Starlette's FileResponse)
    turns such a race into a 500 or a body cut short. ``attachment`` names the file in Content-Disposition.
    """
    try:
        handle = await run_in_threadpool(open, path, "rb")
    except FileNotFoundError:
        raise missing() from None
    headers = {"Content-Length": str(os.fstat(handle.fileno()).st_size)}
    if attachment is not None:
        headers["Content-Disposition"] = content_disposition(attachment)

    def chunks() -> Iterator[bytes]:
        while chunk := handle.read(_CHUNK):
            yield chunk

    return StreamingResponse(chunks(), media_type=media_type, headers=headers, background=BackgroundTask(handle.close))


class BodyLimit:
    """Refuses request bodies past ``limit`` bytes however they come (Content-Length or chunked): reading past it
    raises TooLarge, which each face answers with its own 413. A route that reads its body whole (JSON, XML, a
    form) thus holds at most ``limit`` bytes, and a streamed upload stops there."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise TooLarge(f"The body exceeds MaximumUploadSize ({self.limit} bytes)")
            return message

        await self.app(scope, limited, send)
