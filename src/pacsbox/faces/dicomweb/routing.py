"""The DICOMweb face's ASGI application: route table under the configured roots, authentication, errors (built on
the face's first request: ``app.create_app``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from ...core.archive import Archive
from ...core.config import Config
from ...core.ids import Level
from ..answer_cache import AnswerCache
from ..http_common import BASIC_CHALLENGE, BasicAuth, BodyLimits, UploadRoutes, grouped_routes
from . import qido, rendered, servers, stow, wado, wado_uri
from .app import DicomWebSettings
from .cors import with_cors
from .errors import DicomWebError, error_response
from .server_registry import ServerRegistry

Handler = Callable[..., Awaitable[Response]]


def _guarded(handler: Handler, **bound) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint whose every failure becomes the plugin's error answer; the server keeps serving."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, **bound)
        except Exception as error:
            return error_response(request, error)

    return endpoint


def routes(settings: DicomWebSettings):
    """PS3.18's Studies Service resources (10.1.1), under ``Root``; WADO-URI at ``WadoRoot``."""
    root = settings.root
    study, series = root + "/studies/{study}", root + "/studies/{study}/series/{series}"
    instance = series + "/instances/{instance}"
    table = []
    if settings.enable:
        table += [
            (root + "/studies", ["GET"], _guarded(qido.search, level=Level.STUDY)),
            (root + "/series", ["GET"], _guarded(qido.search, level=Level.SERIES)),
            (root + "/instances", ["GET"], _guarded(qido.search, level=Level.INSTANCE)),
            (study + "/series", ["GET"], _guarded(qido.search, level=Level.SERIES)),
            (study + "/instances", ["GET"], _guarded(qido.search, level=Level.INSTANCE)),
            (series + "/instances", ["GET"], _guarded(qido.search, level=Level.INSTANCE)),
            (root + "/studies", ["POST"], _guarded(stow.store)),
            (study, ["POST"], _guarded(stow.store)),
            (study, ["GET"], _guarded(wado.retrieve, level=Level.STUDY)),
            (series, ["GET"], _guarded(wado.retrieve, level=Level.SERIES)),
            (instance, ["GET"], _guarded(wado.retrieve, level=Level.INSTANCE)),
            (study + "/metadata", ["GET"], _guarded(wado.metadata, level=Level.STUDY)),
            (series + "/metadata", ["GET"], _guarded(wado.metadata, level=Level.SERIES)),
            (instance + "/metadata", ["GET"], _guarded(wado.metadata, level=Level.INSTANCE)),
            (instance + "/frames/{frames}", ["GET"], _guarded(wado.frames)),
            (instance + "/bulk/{path:path}", ["GET"], _guarded(wado.bulk)),
            # the plugin's DICOMweb client: remote servers and what is asked of them
            (root + "/servers", ["GET"], _guarded(servers.list_servers)),
            (root + "/servers/{id}", ["GET"], _guarded(servers.operations)),
            (root + "/servers/{id}", ["PUT"], _guarded(servers.put_server)),
            (root + "/servers/{id}", ["DELETE"], _guarded(servers.delete_server)),
            (root + "/servers/{id}/get", ["POST"], _guarded(servers.get)),
            (root + "/servers/{id}/qido", ["POST"], _guarded(servers.qido)),
            (root + "/servers/{id}/stow", ["POST"], _guarded(servers.stow)),
            (root + "/servers/{id}/retrieve", ["POST"], _guarded(servers.retrieve)),
            (root + "/servers/{id}/wado", ["POST"], _guarded(servers.wado)),
            (root + "/servers/{id}/delete", ["POST"], _guarded(servers.delete)),
        ]
        for resource, thumbnail in (("/rendered", False), ("/thumbnail", True)):
            table += [
                (study + resource, ["GET"], _guarded(rendered.rendered, level=Level.STUDY, thumbnail=thumbnail)),
                (series + resource, ["GET"], _guarded(rendered.rendered, level=Level.SERIES, thumbnail=thumbnail)),
                (instance + resource, ["GET"],
                 _guarded(rendered.rendered, level=Level.INSTANCE, thumbnail=thumbnail)),
                (instance + "/frames/{frames}" + resource, ["GET"],
                 _guarded(rendered.rendered, level=Level.INSTANCE, thumbnail=thumbnail)),
            ]
    if settings.enable_wado:
        table.append((settings.wado_root, ["GET"], _guarded(wado_uri.retrieve)))
    return grouped_routes(table)


async def _http_exception(request: Request, error: HTTPException) -> Response:
    """Unknown routes and wrong methods, as Orthanc answers them around the plugin."""
    if error.status_code == 405:
        response = error_response(request, DicomWebError(405, 12, "Method not allowed"))
        response.headers.update(dict(error.headers or {}))
        return response
    return error_response(request, DicomWebError(error.status_code, 17, "Unknown resource"))


def build_app(archive: Archive, config: Config, servers_known: ServerRegistry) -> ASGIApp:
    """The DICOMweb face over ``archive``, wrapped in Basic authentication, itself inside the body limits (an
    oversized body is refused before its credentials are looked at; only STOW-RS takes MaximumUploadSize), all
    behind the CORS policy when ``DicomWeb.Cors`` sets one."""
    settings = DicomWebSettings.from_config(config)
    app = Starlette(routes=routes(settings), exception_handlers={HTTPException: _http_exception})
    app.state.archive = archive
    app.state.config = config
    app.state.settings = settings
    app.state.servers = servers_known  # DicomWeb.Servers, changed at run time by PUT/DELETE /dicom-web/servers/{id}
    app.state.metadata_answers = AnswerCache(wado.METADATA_CACHE_BYTES)  # instances' DICOM JSON by stored file
    uploads = UploadRoutes([(settings.root + "/studies", ["POST"]), (settings.root + "/studies/{study}", ["POST"])])
    authenticated = BasicAuth(app, dict(config.RegisteredUsers), config.AuthenticationEnabled,
                              lambda scope: Response(b"", status_code=401, headers=BASIC_CHALLENGE))
    limited = BodyLimits(authenticated, config, uploads, lambda scope, error: error_response(Request(scope), error))
    # outermost: preflights never meet authentication, and refusals (401, 413) still carry the CORS headers
    return with_cors(limited, settings.cors)
