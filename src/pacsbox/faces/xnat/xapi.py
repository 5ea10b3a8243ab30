"""XNAT's XAPI routes that clients probe: the site configuration (read and set), plugins, the container service
as an XNAT without Docker answers it (empty lists), and the site's scanners and scan types."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import render
from .access import enforced, readable_projects
from .errors import XnatError
from .params import archive_of

_MAX_DEPTH = 32  # nesting a site configuration value may have (JSON nested deeper is refused, never a 500)
_MAX_KEYS = 1000  # keys the site configuration may hold (each set is kept in memory)


def default_site_config(config) -> dict[str, Any]:
    """What ``/xapi/siteConfig`` answers before any client sets a key (XNAT's names)."""
    return {"siteId": config.XnatSiteId, "siteUrl": "", "adminEmail": "admin@localhost", "initialized": True,
            "requireLogin": config.AuthenticationEnabled, "enableDicomReceiver": True, "enableCsrfToken": False,
            "userRegistration": False, "security.allow-non-admin-project-creation": True,
            "uiAllowNonAdminProjectCreation": True, "sessionTimeout": f"{config.XnatSessionTimeout} seconds",
            "enableSitewideAnonymizationScript": False, "enableSitewideSeriesImportFilter": False,
            "reloadPrearcDatabaseOnStartup": False, "preventCrossModalityMerge": True, "archivePath": "",
            "prearchivePath": "", "inboxPath": str(config.storage_path / "inbox"), "siteWideAlertStatus": 0}


def _config(request: Request) -> dict[str, Any]:
    return request.app.state.site_config


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _parsed(body: bytes) -> Any:
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # malformed, not UTF-8, or nested past the parser's stack
        raise XnatError(400, "The body must be JSON") from None
    if _depth(value) > _MAX_DEPTH:
        raise XnatError(400, f"The JSON body nests deeper than {_MAX_DEPTH} levels")
    return value


def _administrators_only(request: Request) -> None:
    if enforced(request):
        raise XnatError(403, "Only site administrators change the site configuration")


async def site_config(request: Request) -> Response:
    return render.json_response(_config(request))


async def site_config_value(request: Request) -> Response:
    key = request.path_params["key"]
    if key not in _config(request):
        raise XnatError(404, f"No site configuration key {key!r}")
    return render.json_response(_config(request)[key])


async def set_site_config(request: Request) -> Response:
    """POST /xapi/siteConfig with a JSON object of keys to set (site administrators)."""
    _administrators_only(request)
    values = _parsed(await request.body())
    if not isinstance(values, dict):
        raise XnatError(400, "The body must be a JSON object of site configuration keys")
    _check_room(request, values)
    _config(request).update(values)
    return render.text_response("")


def _check_room(request: Request, values: dict[str, Any]) -> None:
    if len(set(_config(request)) | set(values)) > _MAX_KEYS:
        raise XnatError(400, f"The site configuration holds at most {_MAX_KEYS} keys")


async def set_site_config_value(request: Request) -> Response:
    """PUT or POST /xapi/siteConfig/{key} with the value as the body (JSON, or plain text)."""
    _administrators_only(request)
    body = await request.body()
    try:
        value = _parsed(body)
    except XnatError:
        value = body.decode("utf-8", "replace")  # a bare string value, as XNAT accepts one
    _check_room(request, {request.path_params["key"]: value})
    _config(request)[request.path_params["key"]] = value
    return render.text_response("")


async def plugins(request: Request) -> Response:
    """GET /xapi/plugins: no plugin is installed (a JSON object of plugin ID to its configuration)."""
    return render.json_response({})


async def plugin(request: Request) -> Response:
    raise XnatError(404, f"No plugin {request.path_params['plugin']!r}: pacsbox runs no XNAT plugin")


async def empty_list(request: Request) -> Response:
    """The container service of an XNAT without Docker: no command, wrapper, container or image."""
    return render.json_response([])


async def docker_server(request: Request) -> Response:
    raise XnatError(404, "No Docker server is configured")


async def scanners(request: Request) -> Response:
    """GET /data/archive/scanners: the scanner names the readable sessions name."""
    readable = readable_projects(request)
    names = sorted({e.fields["data"].get("scanner", "") for e in archive_of(request).catalog.list_experiments()
                    if readable is None or e.project in readable} - {""})
    return render.result_set(request, [{"scanner": name} for name in names], ("scanner",), honour_columns=False)


async def scan_types(request: Request) -> Response:
    """GET /data/archive/scan_types: the scan types of the readable sessions."""
    catalog = archive_of(request).catalog
    readable = readable_projects(request)
    found = set()
    for experiment in catalog.list_experiments():
        if readable is None or experiment.project in readable:
            found |= {scan.fields["data"].get("type", "") for scan in catalog.list_scans(experiment)}
    return render.result_set(request, [{"type": name} for name in sorted(found - {""})], ("type",),
                             honour_columns=False)
