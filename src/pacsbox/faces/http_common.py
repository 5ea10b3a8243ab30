"""HTTP pieces every web face needs the same way: Basic credentials, method-grouped routes, spooled bodies.

Not a face: faces import it, it imports no face.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

Endpoint = Callable[[Request], Awaitable[Response]]
SPOOL_IN_MEMORY = 32 * 1024 * 1024  # bodies above this go to a temporary file


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
