"""HTTP pieces every web face needs the same way: Basic credentials, method-grouped routes, spooled bodies,
stored files sent whole.

Not a face: faces import it, it imports no face.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.config import Config
from ..core.errors import TooLarge

if TYPE_CHECKING:
    from ..http_protocol import QuickAnswer

Endpoint = Callable[[Request], Awaitable[Response]]
SPOOL_IN_MEMORY = 32 * 1024 * 1024  # bodies above this go to a temporary file
# The scope key under which a request offered to the lean path with its body (``http_protocol``: a small POST,
# received whole) carries that body, as bytes; the layers that look at bodies read it there.
LEAN_BODY = "pacsbox.lean_body"
SPOOL_FOLDER = "tmp"  # under StorageDirectory: spooled bodies stay on the data's disk, not in TMPDIR
_CHUNK = 1024 * 1024


def basic_credentials(scope: Scope) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP Basic Authorization header; None when absent, malformed or not Basic.

    Any byte may arrive in the header: a token that is not base64 (a non-ASCII byte, say) or credentials that are
    not UTF-8 are no credentials, answered 401 like wrong ones (as the real Orthanc does), never a 500.
    """
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):  # not base64 (ValueError: not ASCII), or not UTF-8
                return None
            user, _, password = decoded.partition(":")
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

        dispatch.endpoints = endpoints  # type: ignore[attr-defined]  # (the lean path finds a GET's handler)
        routes.append(LazyRoute(path, dispatch, methods=list(endpoints)))
    return routes


_COMPILED_ATTRIBUTES = frozenset({"path_regex", "path_format", "param_convertors"})


class LazyRoute(Route):
    """A Starlette ``Route`` whose path pattern is compiled the first time it is needed (a request tried against
    it, a URL built from it), then kept.

    Compiling a face's hundreds of patterns takes 0.05-0.3 s, which a new server would spend before answering its
    first request; a request tries only a few of them (the Orthanc face's router picks them by the path's shape).
    """

    def __init__(self, path: str, endpoint: Callable, *, methods: list[str] | None = None) -> None:
        super().__init__("/", endpoint, methods=methods)  # "/"'s pattern: one compilation, cached by the re module
        self.path = path
        del self.path_regex, self.path_format, self.param_convertors

    def __getattr__(self, name: str):
        # called only for attributes not set: the compiled pattern, the first time it is asked for
        if name not in _COMPILED_ATTRIBUTES:
            raise AttributeError(name)
        self.path_regex, self.path_format, self.param_convertors = compile_path(self.path)
        return self.__dict__[name]


class BuiltOnFirstRequest:
    """An ASGI application built when its first request arrives: a face's modules, routes and data (the XNAT
    schemas) load then, not while the server starts, and a server that never sees that face never loads them.

    The build runs in a worker thread, so the event loop serves the other faces meanwhile; concurrent first
    requests wait for the one build, and a build that fails is tried again by the next request.
    """

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock: asyncio.Lock | None = None  # made on the event loop that serves

    @property
    def app(self) -> ASGIApp:
        """The application, built now in this thread if no request has built it yet (the warm-start template)."""
        if self._app is None:
            self._app = self._build()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            if self._lock is None:  # no await since the check: one lock per application
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._app is None:
                    self._app = await asyncio.get_running_loop().run_in_executor(None, self._build)
            app = self._app
        await app(scope, receive, send)


def spool_directory(config: Config) -> str:
    """Where bodies and archives too large for memory go: ``<StorageDirectory>/tmp``, on the disk that holds the
    data (its size is what the user planned for, not TMPDIR's), emptied at every start."""
    return str(config.storage_path / SPOOL_FOLDER)


def spool_file(config: Config) -> tempfile.SpooledTemporaryFile:
    """An empty spool: memory up to SPOOL_IN_MEMORY bytes, then a nameless file in ``spool_directory``."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=spool_directory(config))


async def spool_body(request: Request, limit: int,
                     too_large: Callable[[int], Exception]) -> tempfile.SpooledTemporaryFile:
    """The request body in a spooled temporary file (memory, then disk), rewound; ``too_large(limit)`` is
    raised past ``limit`` bytes (each face words its own 413)."""
    spool = spool_file(request.app.state.config)
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


class UploadRoutes:
    """The routes of a face whose body is an upload (DICOM files, archives, resource files): only they may take a
    body up to MaximumUploadSize; every other route reads its body whole and gets MaximumRequestBodySize."""

    def __init__(self, routes: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._routes = [(path, frozenset(methods)) for path, methods in routes]

    def __contains__(self, scope: Scope) -> bool:
        method, path = scope.get("method", ""), scope.get("path", "")
        return any(method in methods and _pattern(route).match(path) for route, methods in self._routes)


@functools.cache
def _pattern(path: str) -> re.Pattern[str]:
    """A route's compiled pattern, compiled on first use and once a process (a face has dozens of upload routes,
    most never used by a given server)."""
    return compile_path(path)[0]


class BodyLimits:
    """Refuses request bodies past the route's limit however they come, before authentication and parsing.

    Upload routes (``uploads``) get MaximumUploadSize, every other route MaximumRequestBodySize. A declared
    Content-Length past the limit is answered at once; a body that streams past it (chunked, or longer than
    declared) raises TooLarge from ``receive``, which the face's handler answers. Either answer is ``too_large``'s
    (each face words its own 413) and closes the connection, so the rest of the body is not read either.
    """

    def __init__(self, app: ASGIApp, config: Config, uploads: UploadRoutes,
                 too_large: Callable[[Scope, TooLarge], Response]) -> None:
        self.app, self.uploads, self.too_large = app, uploads, too_large
        self.upload_limit, self.request_limit = config.MaximumUploadSize, config.MaximumRequestBodySize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # The route's limit is looked up only once a body may pass the smaller of the two (most requests have none)
        smallest = min(self.upload_limit, self.request_limit)
        if _declared_length(scope) > smallest:
            limit, refusal = self._limit(scope)
            if _declared_length(scope) > limit:
                return await self.too_large(scope, refusal)(scope, receive, _closing(send))
        received = 0
        found: list = []  # [limit, refusal] once looked up

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > smallest:
                if not found:
                    found.extend(self._limit(scope))
                if received > found[0]:
                    raise found[1]
            return message

        async def send_closing_past_limit(message: Message) -> None:
            await (_closing(send) if found and received > found[0] else send)(message)

        await self.app(scope, limited, send_closing_past_limit)

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``): a request without a body, or a small one already received whole
        (``LEAN_BODY``) within the route's limit; one past it goes the normal way, which refuses it."""
        quick = getattr(self.app, "quick_answer", None)
        if quick is None:
            return None
        length = _declared_length(scope)
        if length and (LEAN_BODY not in scope or length > self._limit(scope)[0]):
            return None
        return quick(scope)

    def _limit(self, scope: Scope) -> tuple[int, TooLarge]:
        """The route's limit, and the error refusing a body past it."""
        if scope in self.uploads:
            limit, key = self.upload_limit, "MaximumUploadSize"
        else:
            limit, key = self.request_limit, "MaximumRequestBodySize"
        return limit, TooLarge(f"The request body exceeds {key} ({limit} bytes)")


def _declared_length(scope: Scope) -> int:
    """The Content-Length of a request, 0 when absent (chunked) or not a number (the parser refuses those)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _closing(send: Send) -> Send:
    """``send`` adding ``Connection: close`` to the response: the unread rest of a refused body ends the
    connection instead of being read and thrown away."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return send_closing


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'}  # Orthanc's realm, on every face


class BasicAuth:
    """HTTP Basic authentication against RegisteredUsers. ``refusal(scope)`` is the face's own 401 answer (with
    BASIC_CHALLENGE); ``open_paths`` need no credentials (the health check). The user name goes to
    ``scope["state"]["user"]`` for the routes and filters that record it."""

    def __init__(self, app: ASGIApp, users: dict[str, str], enabled: bool, refusal: Callable[[Scope], Response],
                 open_paths: frozenset[str] = frozenset()) -> None:
        self.app, self.users, self.enabled = app, users, enabled
        self.refusal, self.open_paths = refusal, open_paths
        # Authorization values already accepted -> their user: a client sends the same one with every request.
        # Bounded (values come from clients); only accepted ones are kept, so a guess is always checked in full.
        self._accepted: dict[bytes, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        user = self._accepted_user(scope)
        if user is None:
            return await self.refusal(scope)(scope, receive, send)
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``): the inner answer once the credentials pass the same check; a
        refusal goes the normal way."""
        quick = getattr(self.app, "quick_answer", None)
        if quick is None or scope["path"] in self.open_paths:
            return None
        user = self._accepted_user(scope)
        if user is None:
            return None
        scope.setdefault("state", {})["user"] = user
        return quick(scope)

    def _accepted_user(self, scope: Scope) -> str | None:
        """The request's user ("" when authentication is off and no valid credentials came), None if refused."""
        user = self._known_user(scope)
        if user is None:
            user = self._user(scope)
        if self.enabled and user is None:
            return None
        return user or ""

    def _known_user(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return self._accepted.get(value)
        return None

    def _user(self, scope: Scope) -> str | None:
        credentials = basic_credentials(scope)
        if credentials is None:
            return None
        user, password = credentials
        expected = self.users.get(user)
        if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
            if len(self._accepted) < 64:
                self._accepted[next(value for name, value in scope["headers"] if name == b"authorization")] = user
            return user
        return None


def orthanc_error_body(method: str, path: str, http_status: int, code: int, message: str,
                       details: str | None) -> dict[str, object]:
    """Orthanc's JSON error body (``{HttpError, HttpStatus, Message, Method, OrthancError, OrthancStatus, Uri,
    Details}``), which the Orthanc face and the DICOMweb face (a plugin inside Orthanc there) both answer."""
    body: dict[str, object] = {
        "HttpError": HTTPStatus(http_status).phrase,
        "HttpStatus": http_status,
        "Message": message,
        "Method": method,
        "OrthancError": message,
        "OrthancStatus": code,
        "Uri": path,
    }
    if details:
        body["Details"] = details
    return body
