"""/tools routes (find, lookup, create-archive) and the per-resource zip archive."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...core.archive import FindQuery
from ...core.errors import Unsupported
from ...core.ids import Level
from .errors import OrthancError, bad_request
from .json import json_response
from .params import archive_of, json_body, level_of
from .render import reference_json, resource_json
from .zipping import write_archive


def _integer_field(body: dict, name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value > 2**63 - 1:  # Orthanc: a 64-bit integer
        raise bad_request(f"Field \"{name}\" should be an integer")
    if value < 0:
        raise bad_request(f"Field \"{name}\" should be a non-negative integer")
    return value


async def find(request: Request) -> Response:
    body = await json_body(request)
    if not isinstance(body.get("Level"), str):
        raise bad_request("Field \"Level\" is missing, or should be a string")
    level = level_of(body["Level"])
    query = body.get("Query")
    if not isinstance(query, dict):
        raise bad_request("Field \"Query\" is missing, or should be a JSON object")
    for key, value in query.items():
        if not isinstance(value, str):
            raise bad_request(f"Tag \"{key}\" should be associated with a string")
    case_sensitive = body.get("CaseSensitive", False)
    if not isinstance(case_sensitive, bool):
        raise bad_request("Field \"CaseSensitive\" should be a Boolean")
    expand = body.get("Expand", False)
    if not isinstance(expand, bool):
        raise bad_request("Field \"Expand\" should be a Boolean")
    config = request.app.state.config
    limit = _integer_field(body, "Limit")
    configured = config.LimitFindInstances if level == Level.INSTANCE else config.LimitFindResults
    if configured and (not limit or limit > configured):
        limit = configured
    request_ = FindQuery(level, query, case_sensitive, _integer_field(body, "Since"), limit)
    rows = await run_in_threadpool(archive_of(request).find, request_)
    if expand:
        return json_response([resource_json(row) for row in rows])
    return json_response([row.public_id for row in rows])


async def lookup(request: Request) -> Response:
    value = (await request.body()).decode("utf-8", "replace").strip()
    found = await run_in_threadpool(archive_of(request).lookup, value)
    return json_response([reference_json(level, public_id) for level, public_id in found])


def _zip_response(handle, filename: str) -> Response:
    def chunks():
        while data := handle.read(1024 * 1024):
            yield data

    size = handle.seek(0, 2)
    handle.seek(0)
    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"Content-Disposition": f'filename="{filename}"', "Content-Length": str(size)},
        background=BackgroundTask(handle.close),
    )


async def resource_archive(request: Request, level: Level) -> Response:
    """GET or POST /{patients|studies|series}/{id}/archive: a zip in Orthanc's layout."""
    public_id = request.path_params["id"]
    if request.method == "POST":
        if not (await request.body()).strip():
            # Orthanc's archive POST parses its body as a file: an empty one is "Bad file format"
            raise OrthancError(15, "Bad file format", 400, "The body must contain a JSON object")
        options = await json_body(request)
        if options.get("Synchronous", True) is False or options.get("Asynchronous") is True:
            raise Unsupported("Asynchronous archives (Orthanc jobs) are not supported: use Synchronous")
    handle = await run_in_threadpool(write_archive, archive_of(request), [(level, public_id)])
    return _zip_response(handle, f"{public_id}.zip")


async def create_archive(request: Request) -> Response:
    """POST /tools/create-archive with a list of IDs or {"Resources": [...]}."""
    raw = await request.body()
    body = await json_body(request, object) if raw.strip() else None
    if isinstance(body, dict):
        if body.get("Synchronous", True) is False or body.get("Asynchronous") is True:
            raise Unsupported("Asynchronous archives (Orthanc jobs) are not supported: use Synchronous")
        body = body.get("Resources")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise bad_request("The body must be a list of resource IDs, or an object with a \"Resources\" list")
    archive = archive_of(request)
    resources = [(await run_in_threadpool(archive.level_of, public_id), public_id) for public_id in body]
    handle = await run_in_threadpool(write_archive, archive, resources)
    return _zip_response(handle, "Archive.zip")
