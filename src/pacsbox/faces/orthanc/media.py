"""DICOM media routes: ``/{patients|studies|series}/{id}/media`` and ``/tools/create-media(-extended)``: a zip with
a DICOMDIR (core.media), answered at once. Orthanc's asynchronous form (a job) is refused by name until pacsbox
has jobs."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.errors import Unsupported
from ...core.ids import Level
from ...core.media import write_media
from .errors import OrthancError, bad_request
from .params import archive_of, flag, json_body
from .tools import _zip_response


def _options(body: dict[str, Any]) -> bool:
    """Check the options of a POST; returns ``Extended``."""
    if body.get("Synchronous", True) is False or body.get("Asynchronous") is True:
        raise Unsupported("Asynchronous media (Orthanc jobs) are not supported: use Synchronous")
    if body.get("Transcode"):
        raise Unsupported("Transcoding DICOM media is not supported")
    extended = body.get("Extended", False)
    if not isinstance(extended, bool):
        raise bad_request('"Extended" must be a Boolean')
    return extended


async def resource_media(request: Request, level: Level) -> Response:
    """GET (``?extended``) or POST (JSON options) ``/{level}/{id}/media``."""
    public_id = request.path_params["id"]
    extended = flag(request, "extended")
    if request.method == "POST":
        if not (await request.body()).strip():
            raise OrthancError(15, "Bad file format", 400, "The body must contain a JSON object")
        extended = _options(await json_body(request))
    handle = await run_in_threadpool(write_media, archive_of(request), [(level, public_id)], extended=extended)
    return _zip_response(handle, f"{public_id}.zip")


async def create_media(request: Request, extended: bool) -> Response:
    """POST /tools/create-media(-extended) with a list of IDs or ``{"Resources": [...], ...}``."""
    raw = await request.body()
    body = await json_body(request, object) if raw.strip() else None
    if isinstance(body, dict):
        extended = _options(body) or extended
        body = body.get("Resources")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise bad_request("The body must be a list of resource IDs, or an object with a \"Resources\" list")
    archive = archive_of(request)
    resources = [(await run_in_threadpool(archive.level_of, public_id), public_id) for public_id in body]
    handle = await run_in_threadpool(write_media, archive, resources, extended=extended)
    return _zip_response(handle, "Archive.zip")


def routes(route) -> list:
    """The media routes, built with the app's ``route`` helper."""
    table = [route("/tools/create-media", create_media, ["POST"], extended=False),
             route("/tools/create-media-extended", create_media, ["POST"], extended=True)]
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        table.append(route(f"/{level.plural}/{{id}}/media", resource_media, ["GET", "POST"], level=level))
    return table
