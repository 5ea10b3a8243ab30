"""The Orthanc face as an ASGI application: route table, authentication, error mapping."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from ...core.archive import Archive
from ...core.config import Config
from ...core.ids import Level
from ...faults import routes as faults_routes
from ..answer_cache import AnswerCache
from ..http_common import BASIC_CHALLENGE, BasicAuth, BodyLimits, UploadRoutes, grouped_routes
from ..route_index import IndexedRouter
from . import (
    admin,
    attachments,
    bulk,
    commitment,
    create_dicom,
    images,
    instances,
    job_types,
    jobs,
    lua,
    media,
    modalities,
    modification,
    peers,
    queries,
    quick_reads,
    resource_views,
    resources,
    scu_finds,
    system,
    tag_answers,
    tools,
    tools_info,
    tools_settings,
    worklists,
)
from .errors import OrthancError, error_response, unauthorized
from .request_metrics import RequestMetrics

Handler = Callable[..., Awaitable[Response]]
HEALTH_PATH = "/pacsbox/health"  # the one route without authentication, for readiness probes
_ID = "{id}"
_PARENTS = (Level.PATIENT, Level.STUDY, Level.SERIES)
# the routes whose body is a file (MaximumUploadSize): DICOM, or create-dicom's JSON that carries an image or a
# PDF; every other body is small (MaximumRequestBodySize)
UPLOADS = UploadRoutes([("/instances", ["POST"]), (f"/peers/{_ID}/store-straight", ["POST"]),
                        (f"/modalities/{_ID}/store-straight", ["POST"]),
                        ("/tools/create-dicom", ["POST"]), *attachments.upload_routes()])


def _guarded(handler: Handler, **bound) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that answers every failure with Orthanc's error body instead of a 500 page."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, **bound)
        except Exception as error:  # every error becomes Orthanc's JSON body; the server keeps serving
            return error_response(request, error)

    endpoint.handler, endpoint.bound = handler, bound  # type: ignore[attr-defined]  # (for quick_reads)
    return endpoint


def _route(path: str, handler: Handler, methods: list[str], **bound) -> tuple[str, list[str], Callable]:
    return path, methods, _guarded(handler, **bound)


# Built once a process (600 routes, each a regular expression: more than the re module caches, so 0.1-0.3 s a
# build), shared by every app (a route holds no state: handlers read request.app.state), inherited by the
# servers the warm-start template forks.
@functools.cache
def routes() -> list[Route]:
    """Orthanc's REST routes that pacsbox serves (its 1.10 API)."""
    table = [
        _route(HEALTH_PATH, _health, ["GET"]),
        _route("/pacsbox/reset", admin.reset, ["POST"]),
        _route("/pacsbox/snapshots", admin.list_snapshots, ["GET"]),
        _route("/pacsbox/snapshots/{name}", admin.save_snapshot, ["PUT", "POST"]),
        _route("/pacsbox/snapshots/{name}", admin.delete_snapshot, ["DELETE"]),
        _route("/pacsbox/snapshots/{name}/restore", admin.restore_snapshot, ["POST"]),
        _route("/system", system.system, ["GET"]),
        _route("/statistics", system.statistics, ["GET"]),
        _route("/changes", system.changes, ["GET"]),
        _route("/changes", system.clear_changes, ["DELETE"]),
        _route("/exports", system.exports, ["GET"]),
        _route("/exports", system.clear_exports, ["DELETE"]),
        _route("/instances", instances.upload, ["POST"]),
        _route("/tools/find", tools.find, ["POST"]),
        _route("/tools/lookup", tools.lookup, ["POST"]),
        _route("/tools/create-archive", tools.create_archive, ["POST"]),
        *(_route(path, handler, methods) for path, handler, methods in create_dicom.ROUTES + bulk.ROUTES),
        *(_route(path, handler, methods) for path, handler, methods in faults_routes.ROUTES),
        *tools_settings.routes(_route), *tools_info.routes(_route),
        *(_route(path, handler, methods, **bound) for path, handler, methods, bound in modification.ROUTES),
        _route(f"/patients/{_ID}/protected", resources.get_protected, ["GET"]),
        _route(f"/patients/{_ID}/protected", resources.put_protected, ["PUT"]),
    ]
    modality, query, answer = f"/modalities/{_ID}", f"/queries/{_ID}", f"/queries/{_ID}/answers/{{index}}"
    table += [
        _route("/modalities", modalities.list_modalities, ["GET"]),
        _route(modality, modalities.operations, ["GET"]),
        _route(modality, modalities.put_modality, ["PUT"]),
        _route(modality, modalities.delete_modality, ["DELETE"]),
        _route(f"{modality}/configuration", modalities.configuration, ["GET"]),
        _route(f"{modality}/echo", modalities.echo, ["POST"]),
        _route(f"{modality}/store", modalities.store, ["POST"]),
        _route(f"{modality}/move", modalities.move, ["POST"]),
        _route(f"{modality}/get", modalities.get, ["POST"]),
        _route(f"{modality}/query", queries.create, ["POST"]),
        _route("/queries", queries.list_queries, ["GET"]),
        _route(query, queries.operations, ["GET"]),
        _route(query, queries.delete, ["DELETE"]),
        _route(f"{query}/answers", queries.answers, ["GET"]),
        _route(f"{query}/level", queries.level, ["GET"]),
        _route(f"{query}/modality", queries.modality, ["GET"]),
        _route(f"{query}/query", queries.original_query, ["GET"]),
        _route(f"{query}/retrieve", queries.retrieve_all, ["POST"]),
        _route(answer, queries.answer_operations, ["GET"]),
        _route(f"{answer}/content", queries.answer_content, ["GET"]),
        _route(f"{answer}/retrieve", queries.retrieve_answer, ["POST"]),
    ]
    table += [_route(f"{answer}/query-{level.plural}", queries.child_query, ["POST"], target=level)
              for level in (Level.STUDY, Level.SERIES, Level.INSTANCE)]
    table += [_route(path, handler, methods) for path, handler, methods in
              scu_finds.ROUTES + commitment.ROUTES + worklists.ROUTES]
    table += [_route(path, scu_finds.find_level, ["POST"], level=level) for path, level in scu_finds.LEVEL_ROUTES]
    peer = f"/peers/{_ID}"
    table += [
        _route("/peers", peers.list_peers, ["GET"]),
        _route(peer, peers.operations, ["GET"]),
        _route(peer, peers.put_peer, ["PUT"]),
        _route(peer, peers.delete_peer, ["DELETE"]),
        _route(f"{peer}/configuration", peers.configuration, ["GET"]),
        _route(f"{peer}/system", peers.system, ["GET"]),
        _route(f"{peer}/store", peers.store, ["POST"]),
        _route(f"{peer}/store-straight", peers.store_straight, ["POST"]),
    ]
    instance = f"/instances/{_ID}"
    table += [
        _route(f"{instance}/file", instances.file, ["GET"]),
        _route(f"{instance}/tags", tag_answers.tags, ["GET"]),
        _route(f"{instance}/simplified-tags", tag_answers.simplified_tags, ["GET"]),
        _route(f"{instance}/header", instances.header, ["GET"]),
        _route(f"{instance}/frames", instances.frames, ["GET"]),
        _route(f"{instance}/content", instances.content, ["GET"]),
        _route(instance + "/content/{path:path}", instances.content, ["GET"]),
    ]
    for level in Level:
        base = f"/{level.plural}"
        one = f"{base}/{_ID}"
        table += [
            _route(base, resources.list_resources, ["GET"], level=level),
            _route(one, resources.get_resource, ["GET"], level=level),
            _route(one, resources.delete_resource, ["DELETE"], level=level),
            _route(f"{one}/statistics", resources.statistics, ["GET"], level=level),
            _route(f"{one}/metadata", resources.list_metadata, ["GET"], level=level),
            _route(one + "/metadata/{name}", resources.get_metadata, ["GET"], level=level),
            _route(one + "/metadata/{name}", resources.put_metadata, ["PUT"], level=level),
            _route(one + "/metadata/{name}", resources.delete_metadata, ["DELETE"], level=level),
        ]
        for other in Level:
            if other != level:
                table.append(_route(f"{one}/{_relative_name(other, other > level)}", resources.related, ["GET"],
                                    level=level, target=other))
        if level in _PARENTS:
            table += [
                _route(f"{one}/shared-tags", instances.shared_tags, ["GET"], level=level),
                _route(f"{one}/archive", tools.resource_archive, ["GET", "POST"], level=level),
            ]
    table += [_route(path, handler, methods) for path, handler, methods in lua.ROUTES]
    table += attachments.routes(_route)
    table += resource_views.routes(_route)
    table += media.routes(_route)
    table += [_route(path, handler, methods) for path, handler, methods in images.ROUTES]
    table += [_route(path, handler, methods, **bound) for path, handler, methods, bound in jobs.ROUTES]
    return grouped_routes(table)


def _relative_name(level: Level, is_child: bool) -> str:
    return level.plural if is_child else level.title.lower()


async def _health(request: Request) -> Response:
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
    app.state.peers = peers.registry_for(config)  # OrthancPeers, changed at run time by PUT/DELETE /peers/{id}
    app.state.control = control
    app.state.tag_answers = AnswerCache(tag_answers.CACHE_BYTES)  # rendered /tags answers by stored file
    app.state.lua = lua_engine  # Lua scripting (pacsbox.lua), reaching this application in-process
    job_types.register_loaders(archive)  # the saved jobs of this face (SaveJobs) run again
    if lua_engine is not None:
        lua_engine.bind_rest_api(app)
    authenticated = BasicAuth(lua.HttpRequestFilter(app, lua_engine), dict(config.RegisteredUsers),
                              config.AuthenticationEnabled, _refusal, open_paths=frozenset({HEALTH_PATH}))
    limited = BodyLimits(authenticated, config, UPLOADS, lambda scope, error: error_response(Request(scope), error))
    return RequestMetrics(limited, archive)
