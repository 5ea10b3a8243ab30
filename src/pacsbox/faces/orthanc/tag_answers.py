"""GET /instances/{id}/tags (and ``?simplify``, ``?short``, /simplified-tags): rendered once per stored file.

An answer depends only on the stored file's bytes, the form asked and DefaultEncoding (for text without
SpecificCharacterSet). A stored file never changes under its UUID: storing, overwriting, modifying (new instances),
compressing or restoring writes a new file under a new UUID, and a reset or a delete removes UUIDs that are never
reused. So answers are kept by ``(file UUID, form, encoding)`` in a bounded least-recently-used cache with nothing to
invalidate: an answer whose file is gone is simply never asked for again and ages out.

Where the work goes: the instance's row is read on the event loop (one indexed SQLite read, no waiting on writers
in WAL mode), a cached answer is sent from there; a file to render goes to a worker thread unless it is small and
quick to parse (``ingest_cost.quick_to_parse``), as ``POST /instances`` stores such files on the loop: the trip to a
thread and back costs more than the rendering. A form asked for the first time while the file's full form is kept
is derived from that answer (``derived_form``) instead of parsing and walking the file again: a client that reads
/tags and then /simplified-tags of each instance pays for one parse.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive
from ...core.ids import Level
from ...core.index_rows import ResourceRow
from ..answer_cache import AnswerCache
from .json import dumps
from .params import archive_of, flag

MEDIA_TYPE = "application/json; charset=utf-8"
_ON_LOOP_FILE_SIZE = 256 * 1024  # bytes of a stored file rendered on the event loop when it has few elements
_ON_LOOP_FULL_SIZE = 256 * 1024  # bytes of a kept full answer from which another form is derived on the event loop
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
    from .tag_render import render_tags_json

    return render_tags_json(data, form, encoding)


def derived_form(full: dict[str, Any], form: str) -> dict[str, Any]:
    """The ``simplify`` or ``short`` form of a data set from its ``full`` form, as ``render_tags`` would give it:
    both forms have the full form's elements with their values (None for Null and TooLong), keyed by tag
    (``short``) or by name, the last of duplicate names winning in tag order, sorted (``simplify``)."""
    out: dict[str, Any] = {}
    for key, node in full.items():  # in tag order: the keys are "gggg,eeee", lowercase hexadecimal
        value = node["Value"]
        if node["Type"] == "Sequence":
            value = [derived_form(item, form) for item in value]
        out[key if form == "short" else node["Name"]] = value
    return dict(sorted(out.items())) if form == "simplify" else out


def _from_full(body: bytes, form: str) -> bytes:
    return dumps(derived_form(json.loads(body), form))


def _read_and_render(archive: Archive, row: ResourceRow, form: str, encoding: str) -> bytes:
    return _render(archive.instance_bytes(row), form, encoding)


async def tags(request: Request, form: str | None = None) -> Response:
    """The instance's tags in ``form`` (else the one its query asks), from the cache when rendered before."""
    from ...core.ingest_cost import MAX_ELEMENTS, quick_to_parse
    from .tag_render import render_tags_json

    archive, form = archive_of(request), form or tags_form(request)
    row = archive.resource(Level.INSTANCE, request.path_params["id"])
    encoding = archive.settings.default_encoding  # PUT /tools/default-encoding shows here at once, as in Orthanc
    key = (row.file_uuid or "", form, encoding)
    body = answers_of(request).get(key) if row.file_uuid else None
    full = answers_of(request).get((row.file_uuid, "full", encoding)) \
        if body is None and form != "full" and row.file_uuid else None
    if full is not None:
        body = _from_full(full, form) if len(full) <= _ON_LOOP_FULL_SIZE else \
            await run_in_threadpool(_from_full, full, form)
        answers_of(request).put(key, body)
    elif body is None:
        small = row.file_size is not None and row.file_size <= _ON_LOOP_FILE_SIZE and not row.file_compressed
        data = archive.instance_bytes(row) if small else None
        if data is not None and len(data) <= MAX_ELEMENTS * 8:
            # at most MAX_ELEMENTS headers (8 bytes each at least): as cheap as any file the pre-scan lets through,
            # without the pre-scan, when the fast reader reads it (else None: pydicom's time is not bounded by size)
            body = render_tags_json(data, form, encoding, plain_only=True)
        if body is not None:
            pass
        elif data is not None and quick_to_parse(data):
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
