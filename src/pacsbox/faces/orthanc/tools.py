"""/tools routes (find, lookup, create-archive) and the per-resource zip archive."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...core.archive import FindQuery
from ...core.ids import Level
from .errors import OrthancError, bad_request
from .job_types import ArchiveJob
from .jobs import engine_of, is_synchronous, job_submitted, priority
from .json import json_response
from .params import archive_of, json_body, level_of
from .render import reference_json, resource_json


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
    """GET or POST /{patients|studies|series}/{id}/archive: a zip in Orthanc's layout, made by an Archive job;
    asynchronous when the POST body asks (its output ``archive``)."""
    public_id = request.path_params["id"]
    options: dict = {}
    if request.method == "POST":
        if not (await request.body()).strip():
            # Orthanc's archive POST parses its body as a file: an empty one is "Bad file format"
            raise OrthancError(15, "Bad file format", 400, "The body must contain a JSON object")
        options = await json_body(request)
    # an unknown resource is refused before any job starts (Orthanc's 404, asynchronous or not)
    await run_in_threadpool(archive_of(request).resource, level, public_id)
    return await _archive_job(request, [(level, public_id)], options, f"{public_id}.zip")


async def create_archive(request: Request) -> Response:
    """POST /tools/create-archive with a list of IDs or {"Resources": [...], "Synchronous"...}."""
    raw = await request.body()
    body = await json_body(request, object) if raw.strip() else None
    options: dict = {}
    if isinstance(body, dict):
        options, body = body, body.get("Resources")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise bad_request("The body must be a list of resource IDs, or an object with a \"Resources\" list")
    archive = archive_of(request)
    resources = [(await run_in_threadpool(archive.level_of, public_id), public_id) for public_id in body]
    return await _archive_job(request, resources, options, "Archive.zip")


async def _archive_job(request: Request, resources: list[tuple[Level, str]], options: dict,
                       filename: str) -> Response:
    """Run the Archive job: the zip itself when synchronous, else the job's ID (the zip is its output)."""
    synchronous = is_synchronous(options)
    level = priority(options)
    job = ArchiveJob(archive_of(request), resources, synchronous=synchronous)
    if not synchronous:
        return job_submitted(engine_of(request).submit(job, level))
    await engine_of(request).run_and_wait(job, level)
    assert job.handle is not None
    return _zip_response(job.handle, filename)
