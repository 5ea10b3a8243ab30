"""The XNAT face's ASGI application: URL aliases, route table, authentication, error mapping (built on the face's
first request: ``app.create_app``).

XNAT answers the same objects under ``/data/archive/...``, ``/data/...`` and ``/REST/...``: the aliases are
folded into ``/data/...`` before routing, so the table names each route once.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ...core.archive import Archive
from ...core.config import Config
from ...core.events import ArchiveReset
from ..http_common import BodyLimits, UploadRoutes, grouped_routes
from . import (
    access,
    assessors,
    dicomdump,
    files,
    inbox,
    objects,
    prearchive,
    reconstructions,
    search,
    services,
    settings,
    sharing,
    system,
    tokens,
    xapi,
)
from .auth import Sessions, XnatAuth
from .errors import XnatError, error_response

Handler = Callable[..., Awaitable[Response]]


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that answers every failure with XNAT's status and a plain-text message, never a 500 page."""

    async def endpoint(request: Request) -> Response:
        try:
            access.guard(request)  # 403 before anything runs for a user without the rights the route needs
            return await handler(request)
        except Exception as error:  # every error becomes a status and a message; the server keeps serving
            return error_response(error)

    return endpoint


# -- the object tree, under each of its URL forms ---------------------------------------------------------
_PROJECT = "/data/projects/{project}"
_SUBJECTS = (_PROJECT + "/subjects/{subject}", "/data/subjects/{subject}")
_EXPERIMENTS = tuple(f"{s}/experiments/{{experiment}}" for s in _SUBJECTS) + (
    _PROJECT + "/experiments/{experiment}", "/data/experiments/{experiment}")
_SCANS = tuple(e + "/scans/{scan}" for e in _EXPERIMENTS)
_ASSESSORS = tuple(e + "/assessors/{assessor}" for e in _EXPERIMENTS)
_RECONSTRUCTIONS = tuple(e + "/reconstructions/{reconstruction}" for e in _EXPERIMENTS)
# everything that holds resources (assessors' and reconstructions' also under /in/resources and /out/resources,
# as pyxnat addresses them: pacsbox keeps one set of resources per object)
_OWNERS = (_PROJECT, *_SUBJECTS, *_EXPERIMENTS, *_SCANS,
           *(o + suffix for o in (*_ASSESSORS, *_RECONSTRUCTIONS) for suffix in ("", "/in", "/out")))

_GET, _PUT, _DELETE, _UPLOAD = ["GET"], ["PUT"], ["DELETE"], ["PUT", "POST"]


def _table() -> list[tuple[str, list[str], Handler]]:
    table: list[tuple[str, list[str], Handler]] = [
        ("/data/services/auth", ["PUT", "POST"], system.login),
        ("/data/auth", _GET, system.whoami),
        ("/data/JSESSION", _GET, system.get_jsession),
        ("/data/JSESSION", _DELETE, system.delete_jsession),
        ("/data/version", _GET, system.version),
        ("/xapi/siteConfig/buildInfo", _GET, system.build_info),
        ("/xapi/siteConfig/uptime", _GET, system.uptime),
        ("/xapi/siteConfig/siteId", _GET, system.site_id),
        ("/xapi/siteConfig", _GET, xapi.site_config),
        ("/xapi/siteConfig", ["POST"], xapi.set_site_config),
        ("/xapi/siteConfig/{key}", _GET, xapi.site_config_value),
        ("/xapi/siteConfig/{key}", ["PUT", "POST"], xapi.set_site_config_value),
        ("/xapi/plugins", _GET, xapi.plugins),
        ("/xapi/plugins/", _GET, xapi.plugins),
        ("/xapi/plugins/{plugin}", _GET, xapi.plugin),
        ("/xapi/commands", _GET, xapi.empty_list),
        ("/xapi/commands/available", _GET, xapi.empty_list),
        ("/xapi/wrappers", _GET, xapi.empty_list),
        ("/xapi/containers", _GET, xapi.empty_list),
        ("/xapi/docker/images", _GET, xapi.empty_list),
        ("/xapi/docker/hubs", _GET, xapi.empty_list),
        ("/xapi/docker/server", _GET, xapi.docker_server),
        ("/data/scanners", _GET, xapi.scanners),
        ("/data/scan_types", _GET, xapi.scan_types),
        ("/xapi/schemas", _GET, system.schemas),
        ("/xapi/schemas/{name}", _GET, system.schema),
        ("/data/search/elements", _GET, system.search_elements),
        ("/data/search/elements/{element}", _GET, system.search_element_fields),
        ("/data/search", ["POST"], search.search),
        ("/data/search/saved", _GET, search.list_saved),
        ("/data/search/saved/{search_id}", _GET, search.get_saved),
        ("/data/search/saved/{search_id}", _PUT, search.put_saved),
        ("/data/search/saved/{search_id}", _DELETE, search.delete_saved),
        ("/data/search/saved/{search_id}/results", _GET, search.saved_results),
        ("/data/services/import", ["POST"], services.import_service),
        ("/data/services/dicomdump", _GET, dicomdump.dicom_dump),
        ("/xapi/inbox/import/{request_id}", _GET, inbox.inbox_request),
        ("/data/services/refresh/catalog", ["POST"], services.refresh_catalog),
        (_PROJECT + "/files", _GET, files.owner_files),
        ("/data/services/tokens/issue", _GET, tokens.issue),
        ("/data/services/tokens/issue/user/{user}", _GET, tokens.issue),
        ("/data/services/tokens/validate/{alias}/{secret}", _GET, tokens.validate),
        ("/data/services/tokens/invalidate/{alias}/{secret}", _GET, tokens.invalidate),
        ("/data/users", _GET, access.list_users),
        ("/xapi/users", _GET, access.xapi_users),
        ("/xapi/users/{login}", _GET, access.xapi_user),
        ("/xapi/access/projects", _GET, access.access_projects),
        (_PROJECT + "/users", _GET, access.project_users),
        (_PROJECT + "/users/{group}/{login}", _PUT, access.put_project_user),
        (_PROJECT + "/users/{group}/{login}", _DELETE, access.delete_project_user),
        (_PROJECT + "/accessibility", _GET, access.get_accessibility),
        (_PROJECT + "/accessibility/{value}", _PUT, access.put_accessibility),
        (_PROJECT + "/prearchive_code", _GET, settings.get_prearchive_code),
        (_PROJECT + "/prearchive_code/{code}", _PUT, settings.put_prearchive_code),
        ("/data/services/archive", ["POST"], services.archive_service),
        ("/data/services/prearchive/{action}", ["POST"], services.prearchive_action),
        ("/data/prearchive", _GET, prearchive.list_sessions),
        ("/data/prearchive/projects", _GET, prearchive.list_sessions),
        ("/data/prearchive/projects/{project}", _GET, prearchive.list_sessions),
    ]
    session = "/data/prearchive/projects/{project}/{timestamp}/{name}"
    table += [
        (session, _GET, prearchive.get_session),
        (session, _DELETE, prearchive.delete_session),
        (session, ["POST"], prearchive.post_session),
        (session + "/scans", _GET, prearchive.list_scans),
        (session + "/scans/{scan}", _GET, prearchive.get_scan),
        (session + "/scans/{scan}/resources", _GET, prearchive.list_resources),
        (session + "/scans/{scan}/resources/{resource}", _GET, prearchive.list_files),
        (session + "/scans/{scan}/resources/{resource}/files", _GET, prearchive.list_files),
        (session + "/scans/{scan}/resources/{resource}/files/{path:path}", _GET, prearchive.get_file),
        ("/data/projects", _GET, objects.list_projects),
        (_PROJECT, _GET, objects.get_project),
        (_PROJECT, _PUT, objects.put_project),
        (_PROJECT, _DELETE, objects.delete_project),
        (_PROJECT + "/subjects", _GET, objects.list_subjects),
        ("/data/subjects", _GET, objects.list_subjects),
        (_PROJECT + "/experiments", _GET, objects.list_experiments),
        ("/data/experiments", _GET, objects.list_experiments),
    ]
    for subject in _SUBJECTS:
        table += [
            (subject, _GET, objects.get_subject),
            (subject, _PUT, objects.put_subject),
            (subject, _DELETE, objects.delete_subject),
            (subject + "/experiments", _GET, objects.list_experiments),
            (subject + "/files", _GET, files.owner_files),
            (subject + "/projects", _GET, sharing.list_shares),
            (subject + "/projects/{target}", _PUT, sharing.put_share),
            (subject + "/projects/{target}", _DELETE, sharing.delete_share),
        ]
    for experiment in _EXPERIMENTS:
        table += [
            (experiment, _GET, objects.get_experiment),
            (experiment, _PUT, objects.put_experiment),
            (experiment, _DELETE, objects.delete_experiment),
            (experiment + "/status", _GET, objects.experiment_status),
            (experiment + "/assessors", _GET, assessors.list_assessors),
            (experiment + "/assessors/{assessor}", _GET, assessors.get_assessor),
            (experiment + "/assessors/{assessor}", _PUT, assessors.put_assessor),
            (experiment + "/assessors/{assessor}", _DELETE, assessors.delete_assessor),
            (experiment + "/assessors/{assessor}/files", _GET, files.experiment_files),
            (experiment + "/reconstructions", _GET, reconstructions.list_reconstructions),
            (experiment + "/reconstructions/{reconstruction}", _GET, reconstructions.get_reconstruction),
            (experiment + "/reconstructions/{reconstruction}", _PUT, reconstructions.put_reconstruction),
            (experiment + "/reconstructions/{reconstruction}", _DELETE, reconstructions.delete_reconstruction),
            (experiment + "/projects", _GET, sharing.list_shares),
            (experiment + "/projects/{target}", _PUT, sharing.put_share),
            (experiment + "/projects/{target}", _DELETE, sharing.delete_share),
            (experiment + "/scans", _GET, objects.list_scans),
            (experiment + "/files", _GET, files.experiment_files),
            (experiment + "/scans/{scan}/files", _GET, files.scan_files),
        ]
    for scan in _SCANS:
        table += [(scan, _GET, objects.get_scan), (scan, _PUT, objects.put_scan), (scan, _DELETE, objects.delete_scan)]
    for owner in _OWNERS:
        resource = owner + "/resources/{resource}"
        table += [
            (owner + "/resources", _GET, files.list_resources),
            (resource, _GET, files.get_resource),
            (resource, _PUT, files.put_resource),
            (resource, _DELETE, files.delete_resource),
            (resource + "/files", _GET, files.list_files),
            (resource + "/files", _UPLOAD, files.upload_file),
            (resource + "/files/{path:path}", _GET, files.get_file),
            (resource + "/files/{path:path}", _UPLOAD, files.upload_file),
            (resource + "/files/{path:path}", _DELETE, files.delete_file),
        ]
    return table


# the handlers whose body is a file or an archive (MaximumUploadSize); every other body is small
# (MaximumRequestBodySize)
_UPLOAD_HANDLERS = (services.import_service, files.upload_file)


def upload_routes() -> UploadRoutes:
    return UploadRoutes((path, methods) for path, methods, handler in _table() if handler in _UPLOAD_HANDLERS)


# Built once a process (600 routes, each a regular expression: more than the re module caches, so 0.1-0.3 s a
# build), shared by every app (a route holds no state: handlers read request.app.state), inherited by the
# servers the warm-start template forks.
@functools.cache
def routes() -> list[Route]:
    return grouped_routes((path, methods, _guarded(handler)) for path, methods, handler in _table())


async def _http_exception(request: Request, error: HTTPException) -> Response:
    """Unknown routes and wrong methods, as plain-text errors like every other."""
    if error.status_code == 405:
        return error_response(XnatError(405, f"{request.method} is not allowed on {request.url.path}"),
                              headers=dict(error.headers or {}))
    return error_response(XnatError(error.status_code, f"No XNAT resource at {request.url.path}"))


class Aliases:
    """Folds XNAT's URL aliases into one form: ``/REST/x`` and ``/data/archive/x`` are ``/data/x``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/REST" or path.startswith("/REST/"):
                path = "/data" + path[len("/REST"):]
            if path.startswith("/data/archive/"):
                path = "/data/" + path[len("/data/archive/"):]
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": quote(path).encode()}
        await self.app(scope, receive, send)


def build_app(archive: Archive, config: Config) -> ASGIApp:
    """The XNAT REST face over ``archive``: aliases, then body limits, then authentication, then the routes."""
    app = Starlette(routes=routes(), exception_handlers={HTTPException: _http_exception})
    sessions = Sessions(config.RegisteredUsers, timeout=config.XnatSessionTimeout,
                        capacity=config.XnatMaximumSessions)
    app.state.archive = archive
    app.state.config = config
    app.state.sessions = sessions
    app.state.inbox_requests, app.state.inbox_ids = inbox.new_state()
    app.state.site_config = xapi.default_site_config(config)
    app.state.saved_searches = {}

    def forget(_: ArchiveReset) -> None:
        """A reset empties what the face keeps beside the archive too (logins stay, as the archive's users)."""
        app.state.inbox_requests.clear()
        app.state.saved_searches.clear()
        app.state.site_config.clear()
        app.state.site_config.update(xapi.default_site_config(config))

    archive.events.subscribe(ArchiveReset, forget)
    return Aliases(BodyLimits(XnatAuth(app, sessions, config.AuthenticationEnabled), config, upload_routes(),
                              lambda scope, error: error_response(error)))
