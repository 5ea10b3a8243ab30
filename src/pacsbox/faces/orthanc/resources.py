"""Routes on the resource hierarchy: lists, one resource, relatives, deletion, statistics, metadata."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...core.ids import Level

# metadata values with their revisions (ETag, If-Match), routed by app.py as resources.*_metadata
from .attachments import delete_metadata, get_metadata, put_metadata  # noqa: F401
from .errors import bad_request
from .json import json_response
from .params import archive_of, flag, paging
from .render import reference_json, resource_json


async def list_resources(request: Request, level: Level) -> Response:
    since, limit = paging(request)
    archive = archive_of(request)
    if flag(request, "expand"):
        rows = await run_in_threadpool(archive.list_resources, level, since, limit)
        return json_response([resource_json(row) for row in rows])
    # a short list is read on the event loop (see _CHILDREN_ON_LOOP: one indexed read, no trip to a thread that
    # waits behind running jobs for its turn on the GIL); a longer one is read again in a worker thread
    bound = _CHILDREN_ON_LOOP + 1 if limit is None else min(limit, _CHILDREN_ON_LOOP + 1)
    ids = archive.list_ids(level, since, bound)
    if len(ids) <= _CHILDREN_ON_LOOP:
        return json_response(ids)
    return json_response(await run_in_threadpool(archive.list_ids, level, since, limit))


# Reads answered on the event loop itself: one or two indexed SQLite reads (WAL: never waiting for a writer) cost
# less than the trip to a worker thread and back (~0.1 ms, and several under load, when the loop and the thread take
# turns on the GIL). A child list of more resources than this is read in a worker thread.
_CHILDREN_ON_LOOP = 100


async def get_resource(request: Request, level: Level) -> Response:
    """GET /{level}/{id}, read on the event loop (its children's IDs come from one indexed query)."""
    return json_response(resource_json(archive_of(request).resource(level, request.path_params["id"])))


async def delete_resource(request: Request, level: Level) -> Response:
    remaining = await run_in_threadpool(archive_of(request).delete, level, request.path_params["id"])
    return json_response({"RemainingAncestor": reference_json(*remaining) if remaining else None})


async def related(request: Request, level: Level, target: Level) -> Response:
    archive, public_id = archive_of(request), request.path_params["id"]
    rows = archive.related_if_few(level, public_id, target, _CHILDREN_ON_LOOP)
    if rows is None:
        rows = await run_in_threadpool(archive.related, level, public_id, target)
    if target < level:  # a parent route answers one object
        return json_response(resource_json(rows[0]))
    return json_response([resource_json(row) for row in rows])


async def statistics(request: Request, level: Level) -> Response:
    stats = await run_in_threadpool(archive_of(request).resource_statistics, level, request.path_params["id"])
    body = {}
    for prefix, key in (("DicomDiskSize", "dicom_disk_size"), ("DicomUncompressedSize", "dicom_size"),
                        ("DiskSize", "disk_size"), ("UncompressedSize", "size")):
        body[prefix] = str(stats[key])
        body[prefix + "MB"] = stats[key] // (1024 * 1024)
    for below, key, name in ((Level.STUDY, "CountStudies", "studies"), (Level.SERIES, "CountSeries", "series"),
                             (Level.INSTANCE, "CountInstances", "instances")):
        if below > level:  # Orthanc counts only the levels under the resource
            body[key] = stats[name]
    return json_response(body)


async def list_metadata(request: Request, level: Level) -> Response:
    values = await run_in_threadpool(archive_of(request).metadata, level, request.path_params["id"])
    return json_response(values if flag(request, "expand") else list(values))


async def get_protected(request: Request) -> Response:
    protected = await run_in_threadpool(archive_of(request).is_protected, request.path_params["id"])
    return PlainTextResponse("1" if protected else "0")


async def put_protected(request: Request) -> Response:
    text = (await request.body()).decode("utf-8", "replace").strip().lower()
    if text not in ("0", "1", "true", "false"):
        raise bad_request("The body must be 0, 1, true or false")
    await run_in_threadpool(archive_of(request).set_protected, request.path_params["id"], text in ("1", "true"))
    return PlainTextResponse("")
