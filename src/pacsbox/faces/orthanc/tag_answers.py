"""GET /instances/{id}/tags (and ``?simplify``, ``?short``, /simplified-tags): rendered once per stored file.

An answer depends only on the stored file's bytes, the form asked and DefaultEncoding (for text without
SpecificCharacterSet). A stored file never changes under its UUID: storing, overwriting, modifying (new instances),
compressing or restoring writes a new file under a new UUID, and a reset or a delete removes UUIDs that are never
reused. So answers are kept by ``(file UUID, form, encoding)`` in a bounded least-recently-used cache with nothing to
invalidate: an answer whose file is gone is simply never asked for again and ages out.

Where the work goes: the instance's row is read on the event loop (one indexed SQLite read, no waiting on writers
in WAL mode), a cached answer is sent from there; a file to render goes to a worker thread unless it is small and
quick to parse (``ingest_cost.quick_to_parse``), as ``POST /instances`` stores such files on the loop: the trip to a
thread and back costs more than the rendering.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive
from ...core.ids import Level
from ...core.index import ResourceRow
from ..answer_cache import AnswerCache
from .json import dumps
from .params import archive_of, flag

MEDIA_TYPE = "application/json; charset=utf-8"
_ON_LOOP_FILE_SIZE = 256 * 1024  # bytes of a stored file rendered on the event loop when it has few elements
CACHE_BYTES = 64 * 1024 * 1024  # answers kept, by their size (~5 KB each for a small image: ~13,000 of them)


def answers_of(request: Request) -> AnswerCache:
    """The application's cache (made by create_app)."""
    return request.app.state.tag_answers


def tags_form(request: Request) -> str:
    if flag(request, "simplify"):
        return "simplify"
    if flag(request, "short"):
        return "short"
    return "full"


def _render(data: bytes, form: str, encoding: str) -> bytes:
    from ...core.dicom import read_elements
    from ...core.dicom_json import render_tags

    return dumps(render_tags(read_elements(data), form, encoding))


def _read_and_render(archive: Archive, row: ResourceRow, form: str, encoding: str) -> bytes:
    return _render(archive.instance_bytes(row), form, encoding)


async def tags(request: Request, form: str | None = None) -> Response:
    """The instance's tags in ``form`` (else the one its query asks), from the cache when rendered before."""
    from ...core.ingest_cost import quick_to_parse

    archive, form = archive_of(request), form or tags_form(request)
    row = archive.resource(Level.INSTANCE, request.path_params["id"])
    encoding = archive.settings.default_encoding  # PUT /tools/default-encoding shows here at once, as in Orthanc
    key = (row.file_uuid or "", form, encoding)
    body = answers_of(request).get(key) if row.file_uuid else None
    if body is None:
        small = row.file_size is not None and row.file_size <= _ON_LOOP_FILE_SIZE and not row.file_compressed
        data = archive.instance_bytes(row) if small else None
        if data is not None and quick_to_parse(data):
            body = _render(data, form, encoding)
        elif data is not None:
            body = await run_in_threadpool(_render, data, form, encoding)
        else:
            body = await run_in_threadpool(_read_and_render, archive, row, form, encoding)
        if row.file_uuid:
            answers_of(request).put(key, body)
    return Response(body, media_type=MEDIA_TYPE)


async def simplified_tags(request: Request) -> Response:
    return await tags(request, "simplify")
