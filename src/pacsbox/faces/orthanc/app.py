"""The Orthanc face as an ASGI application: route table, authentication, error mapping."""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from ...core.archive import Archive
from ...core.config import Config
from ...core.peers import PeerRegistry
from ..answer_cache import AnswerCache
from ..http_common import BASIC_CHALLENGE, BasicAuth, BodyLimits, UploadRoutes, grouped_routes
from ..route_index import IndexedRouter
from . import lua, quick_reads, route_table, saved_job_types, tag_answers
from .errors import OrthancError, error_response, unauthorized
from .request_metrics import RequestMetrics
from .route_table import HEALTH_PATH

Handler = Callable[..., Awaitable[Response]]
# the routes whose body is a file (MaximumUploadSize): DICOM, or create-dicom's JSON that carries an image or a
# PDF; every other body is small (MaximumRequestBodySize)
UPLOADS = UploadRoutes(route_table.upload_routes())


class _Endpoint:
    """A route's endpoint: the handler named ``"module:attribute"`` in the route table, imported when a request
    first reaches it (then kept), called with the route's bound arguments; every failure, an import's included, is
    answered with Orthanc's error body instead of a 500 page."""

    __slots__ = ("_handler", "bound", "target")

    def __init__(self, target: str, bound: dict[str, Any]) -> None:
        self.target, self.bound = target, bound
        self._handler: Handler | None = None

    def resolve(self) -> Handler:
        """The handler, its module imported now if no request has imported it yet."""
        if self._handler is None:
            module = importlib.import_module(route_table.module_of(self.target))
            self._handler = getattr(module, self.target.partition(":")[2])
        return self._handler

    async def __call__(self, request: Request) -> Response:
        try:
            return await (self._handler or self.resolve())(request, **self.bound)
        except Exception as error:  # every error becomes Orthanc's JSON body; the server keeps serving
            return error_response(request, error)


# Built once a process (~240 routes, each with a regular expression compiled on first use: see LazyRoute), shared
# by every app (a route holds no state: handlers read request.app.state), inherited by the servers the warm-start
# template forks. No handler's module is imported here: see route_table.py.
@functools.cache
def routes() -> list[Route]:
    """Orthanc's REST routes that pacsbox serves (its 1.10 API), from ``route_table.table()``."""
    return grouped_routes((entry.path, entry.methods, _Endpoint(entry.handler, entry.bound))
                          for entry in route_table.table())


async def health(request: Request) -> Response:
    """GET /pacsbox/health: answers while the server runs, without credentials (readiness probes)."""
    return PlainTextResponse("ok")


async def _http_exception(request: Request, error: HTTPException) -> Response:
    """Unknown routes and wrong methods, in Orthanc's error format."""
    if error.status_code == 405:
        failure = OrthancError(12, "Method not allowed", 405, f"{request.method} is not allowed on this URI")
        return error_response(request, failure, headers=dict(error.headers or {}))
    return error_response(request, OrthancError(17, "Unknown resource", error.status_code))


def _refusal(scope: Scope) -> Response:
    """Orthanc's 401: its JSON error body with the Basic challenge."""
    return error_response(Request(scope), unauthorized(), headers=BASIC_CHALLENGE)


def create_app(archive: Archive, config: Config, *, http_port: int = 0, dicom_port: int = 0,
               control: object | None = None, lua_engine=None) -> ASGIApp:
    """The Orthanc REST face over ``archive``, wrapped in the Lua HTTP filter and Basic authentication, themselves
    inside the body limits (an oversized body is refused before its credentials are even looked at); ``control`` (an
    ``http_app.ServerControl``) serves /tools/reset, /tools/shutdown and /tools/dicom-conformance."""
    app = Starlette(routes=routes(), exception_handlers={HTTPException: _http_exception})
    app.router = IndexedRouter(app.router.routes)  # the same routes, found by their path's shape
    app.quick_answer = functools.partial(quick_reads.quick_answer, app)  # type: ignore[attr-defined]
    app.state.archive = archive
    app.state.config = config
    app.state.http_port = http_port or config.HttpPort
    app.state.dicom_port = dicom_port or config.DicomPort
    app.state.json_parses = asyncio.Semaphore(1)  # large JSON bodies are parsed one at a time (params.loads)
    app.state.peers = PeerRegistry(config.OrthancPeers)  # OrthancPeers, changed at run time by PUT/DELETE /peers/{id}
    app.state.control = control
    app.state.tag_answers = AnswerCache(tag_answers.CACHE_BYTES)  # rendered /tags answers by stored file
    app.state.lua = lua_engine  # Lua scripting (pacsbox.lua), reaching this application in-process
    saved_job_types.register_loaders(archive)  # the saved jobs of this face (SaveJobs) run again
    if lua_engine is not None:
        lua_engine.bind_rest_api(app)
    authenticated = BasicAuth(lua.HttpRequestFilter(app, lua_engine), dict(config.RegisteredUsers),
                              config.AuthenticationEnabled, _refusal, open_paths=frozenset({HEALTH_PATH}))
    limited = BodyLimits(authenticated, config, UPLOADS, lambda scope, error: error_response(Request(scope), error))
    return RequestMetrics(limited, archive)
