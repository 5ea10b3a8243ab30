"""The remaining resource routes: ``pdf``, ``module``/``module-patient``, ``instances-tags``, ``ordered-slices``,
``export`` and ``reconstruct``, as the real Orthanc 1.10.1 answers them (measured)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.dicom_json import render_tags
from ...core.errors import InexistentItem
from ...core.ids import Level
from ...core.instance_files import ExportDisabled, ExportRefused, export_instance, extract_pdf
from ...core.modules import MODULE_OF_LEVEL
from ...core.reconstruct import reconstruct
from ...core.slices import CannotOrderSlices, order_slices
from .errors import OrthancError, bad_request
from .json import json_response
from .params import archive_of, flag, loads

_CHARSET, _PIXEL_REPRESENTATION = 0x00080005, 0x00280103  # kept while rendering: they say how to read values
_HELPER_KEYS = {_CHARSET: ("0008,0005", "SpecificCharacterSet"), _PIXEL_REPRESENTATION: ("0028,0103",
                                                                                          "PixelRepresentation")}


def _form(request: Request) -> str:
    return "simplify" if flag(request, "simplify") else "short" if flag(request, "short") else "full"


def _text(value: str = "") -> Response:
    return Response(value.encode("utf-8"), headers={"Content-Type": "text/plain"})


async def pdf(request: Request) -> Response:
    try:
        document = await run_in_threadpool(extract_pdf, archive_of(request), request.path_params["id"])
    except InexistentItem:
        return Response(b"", status_code=404)  # Orthanc: a bare 404 for an instance that is no PDF
    return Response(document, media_type="application/pdf")


def _module_tags(archive, instance_id: str, tags: frozenset[int], form: str) -> dict:
    """The tags of one module of an instance, rendered as ``/tags`` renders them."""
    dataset = archive.instance_dataset(instance_id)
    keep = tags | {_CHARSET, _PIXEL_REPRESENTATION}
    for tag in list(dataset.keys()):  # (keys() converts nothing; the data set is this request's own)
        if int(tag) not in keep:
            del dataset[tag]
    rendered = render_tags(dataset, form, archive.settings.default_encoding)
    for tag, keys in _HELPER_KEYS.items():
        if tag not in tags:
            for key in keys:
                rendered.pop(key, None)
    return rendered


async def module(request: Request, level: Level, module_level: Level) -> Response:
    archive, form = archive_of(request), _form(request)

    def read() -> dict:
        instances = archive.instance_ids_below(level, request.path_params["id"])
        return _module_tags(archive, instances[0], MODULE_OF_LEVEL[module_level], form) if instances else {}

    return json_response(await run_in_threadpool(read))


async def instances_tags(request: Request, level: Level) -> Response:
    archive, form = archive_of(request), _form(request)

    def read() -> dict:
        encoding = archive.settings.default_encoding
        return {instance_id: render_tags(archive.instance_dataset(instance_id), form, encoding)
                for instance_id in archive.instance_ids_below(level, request.path_params["id"])}

    return json_response(await run_in_threadpool(read))


async def ordered_slices(request: Request) -> Response:
    archive, series_id = archive_of(request), request.path_params["id"]

    def order():
        series = archive.resource(Level.SERIES, series_id)
        return order_slices(series, archive.related(Level.SERIES, series_id, Level.INSTANCE))

    try:
        ordered = await run_in_threadpool(order)
    except CannotOrderSlices as error:
        # (Orthanc answers 500: the data, not the request, is at fault)
        raise OrthancError(2040, "Unable to order the slices of the series", 500, error.details) from None
    return json_response({
        "Dicom": [f"/instances/{one.instance_id}/file" for one in ordered.slices],
        "Slices": [f"/instances/{one.instance_id}/frames/{frame}" for one in ordered.slices
                   for frame in range(one.frames)],
        "SlicesShort": [[one.instance_id, 0, one.frames] for one in ordered.slices],
        "Type": "Volume" if ordered.is_volume else "Sequence",
    })


async def export(request: Request) -> Response:
    target = (await request.body()).decode("utf-8", "replace")
    try:
        await run_in_threadpool(export_instance, archive_of(request), request.path_params["id"], target)
    except ExportDisabled:
        return Response(b"", status_code=403)  # Orthanc's answer while RestApiWriteToFileSystemEnabled is false
    except ExportRefused as error:
        # Orthanc answers 500 "Cannot write to file"; the path is the client's mistake: 400, Orthanc's code kept
        raise OrthancError(14, "Cannot write to file", 400, error.details) from None
    return Response(b"{}", media_type="application/json")


async def _reconstruct_options(request: Request) -> bool:
    raw = await request.body()
    if not raw.strip():
        return False
    try:
        options = await loads(request, raw)
    except (ValueError, RecursionError):
        options = None
    if not isinstance(options, dict) or not isinstance(options.get("ReconstructFiles", False), bool):
        raise bad_request('The body must be a JSON object with an optional boolean "ReconstructFiles"')
    return bool(options.get("ReconstructFiles", False))


async def reconstruct_resource(request: Request, level: Level) -> Response:
    files = await _reconstruct_options(request)
    await run_in_threadpool(lambda: reconstruct(archive_of(request), level, request.path_params["id"], files=files))
    return _text()


async def reconstruct_all(request: Request) -> Response:
    files = await _reconstruct_options(request)
    await run_in_threadpool(lambda: reconstruct(archive_of(request), files=files))
    return _text()
