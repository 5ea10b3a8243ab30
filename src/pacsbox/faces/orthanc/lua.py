"""Lua on the Orthanc face: POST /tools/execute-script and the IncomingHttpRequestFilter callback.

The engine (``pacsbox.lua``) is on the application's state as ``lua`` (None when the server runs without one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ...core.errors import ScriptError
from ..http_common import basic_credentials
from .errors import OrthancError, error_response

if TYPE_CHECKING:
    from ...http_protocol import QuickAnswer

_MAX_SCRIPT = 16 * 1024 * 1024  # bytes of one script: a larger body is no script a test suite sends


async def execute_script(request: Request) -> Response:
    """Run the body in the main Lua state; 200 text/plain with what it printed. Off (403, empty) unless
    ExecuteLuaEnabled, as in Orthanc; a Lua error is a 500 with OrthancStatus 2031 and Lua's message."""
    engine = getattr(request.app.state, "lua", None)
    if engine is None or not request.app.state.config.ExecuteLuaEnabled:
        return Response(status_code=403)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_SCRIPT:
            raise OrthancError(8, "Bad request", 413, f"A Lua script is limited to {_MAX_SCRIPT} bytes")
    output = await run_in_threadpool(engine.execute, bytes(body))
    return PlainTextResponse(output)


class HttpRequestFilter:
    """Asks the Lua IncomingHttpRequestFilter about every request (after authentication, which gives the
    username); false answers 403 with an empty body, as Orthanc does. Nothing is asked when no LuaScripts file
    defines the filter."""

    def __init__(self, app: ASGIApp, engine) -> None:
        self.app, self.engine = app, engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.engine is None or not self.engine.filters_http:
            return await self.app(scope, receive, send)
        headers = {}
        for name, value in scope.get("headers", []):
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        client = scope.get("client") or ("", 0)
        credentials = basic_credentials(scope)
        username = scope.get("state", {}).get("user") or (credentials[0] if credentials else "")
        try:
            allowed = await run_in_threadpool(self.engine.http_allowed, scope["method"], scope["path"], client[0],
                                              username, headers)
        except ScriptError as error:
            return await error_response(Request(scope), error)(scope, receive, send)
        if not allowed:
            return await Response(status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``), only while no filter is defined (a filter runs in a thread)."""
        quick = getattr(self.app, "quick_answer", None)
        if quick is None or (self.engine is not None and self.engine.filters_http):
            return None
        return quick(scope)


