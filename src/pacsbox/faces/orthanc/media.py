"""DICOM media routes: ``/{patients|studies|series}/{id}/media`` and ``/tools/create-media(-extended)``: a zip with
a DICOMDIR (core.media), made by a job of type Media (core.jobs): answered when it ends, or with
``"Asynchronous": true`` its ID, the zip being its output ``archive``."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.errors import Unsupported
from ...core.ids import Level
from ...core.media import MediaJob
from .errors import OrthancError, bad_request
from .jobs import engine_of, is_synchronous, job_submitted, priority
from .params import archive_of, flag, json_body
from .tools import _zip_response


def _not_boolean(key: str) -> OrthancError:
    return OrthancError(15, "Bad file format", 400, f"Boolean value expected in field: {key}")


async def _answer(request: Request, resources: list[tuple[Level, str]], extended: bool, body: dict[str, Any],
                  filename: str) -> Response:
    """Run the Media job: the zip itself when synchronous (the job listed under /jobs, as Orthanc lists it), else
    the job's ID (the zip is its output ``archive``)."""
    synchronous, level = is_synchronous(body), priority(body)
    job = MediaJob(archive_of(request), resources, extended=extended, synchronous=synchronous)
    if not synchronous:
        return job_submitted(engine_of(request).submit(job, level))
    await engine_of(request).run_and_wait(job, level)
    assert job.handle is not None
    return _zip_response(job.handle, filename)


def _options(body: dict[str, Any]) -> bool:
    """Check the options of a POST; returns ``Extended``."""
    if body.get("Transcode"):
        raise Unsupported("Transcoding DICOM media is not supported")
    extended = body.get("Extended", False)
    if not isinstance(extended, bool):
        raise _not_boolean("Extended")
    return extended


async def resource_media(request: Request, level: Level) -> Response:
    """GET (``?extended``) or POST (JSON options) ``/{level}/{id}/media``."""
    public_id = request.path_params["id"]
    extended, body = flag(request, "extended"), {}
    if request.method == "POST":
        if not (await request.body()).strip():
            raise OrthancError(15, "Bad file format", 400, "The body must contain a JSON object")
        body = await json_body(request)
        extended = _options(body)
    await run_in_threadpool(archive_of(request).resource, level, public_id)  # unknown: 404 before any job
    return await _answer(request, [(level, public_id)], extended, body, f"{public_id}.zip")


async def create_media(request: Request, extended: bool) -> Response:
    """POST /tools/create-media(-extended) with a list of IDs or ``{"Resources": [...], ...}``."""
    raw = await request.body()
    body = await json_body(request, object) if raw.strip() else None
    options: dict[str, Any] = {}
    if isinstance(body, dict):
        options = body
        extended = _options(body) or extended
        body = body.get("Resources")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise bad_request("The body must be a list of resource IDs, or an object with a \"Resources\" list")
    archive = archive_of(request)
    resources = [(await run_in_threadpool(archive.level_of, public_id), public_id) for public_id in body]
    return await _answer(request, resources, extended, options, "Archive.zip")
