"""POST /tools/bulk-content and /tools/bulk-delete (Orthanc 1.9.4+): many resources described or deleted at once."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive
from ...core.dicom_json import tag_name
from ...core.errors import UnknownResource
from ...core.ids import Level
from .errors import OrthancError, out_of_range
from .json import json_response
from .params import archive_of, json_body
from .render import resource_json


def _bad_format(details: str) -> OrthancError:
    return OrthancError(15, "Bad file format", 400, details)


def _resources(body: dict) -> list[str]:
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise _bad_format("List of strings expected in field: Resources")
    return resources


def _boolean(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _bad_format(f"Boolean value expected in field: {name}")
    return value


def _level(body: dict) -> Level | None:
    if "Level" not in body:
        return None
    value = body["Level"]
    if not isinstance(value, str):
        raise _bad_format("String value expected in field: Level")
    try:
        return Level.parse(value)
    except ValueError:
        raise out_of_range() from None


def _tags_in_form(tags: dict[str, str], form: str) -> dict[str, Any]:
    """MainDicomTags in Orthanc's "full" or "short" form (keyed by ``gggg,eeee``); "simplify" keeps keywords."""
    if form == "simplify":
        return tags
    from pydicom.datadict import tag_for_keyword  # pydicom loads on first use, not at start-up

    shaped: dict[str, Any] = {}
    for keyword, value in tags.items():
        tag = tag_for_keyword(keyword)
        if tag is None:  # not a dictionary keyword: kept as it is named
            shaped[keyword] = value
            continue
        key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        shaped[key] = value if form == "short" else {"Name": tag_name(tag), "Type": "String", "Value": value}
    return shaped


def _describe(archive: Archive, level: Level, public_id: str, form: str, metadata: bool) -> dict[str, Any]:
    body = resource_json(archive.resource(level, public_id))
    body["MainDicomTags"] = _tags_in_form(body["MainDicomTags"], form)
    if "PatientMainDicomTags" in body:
        body["PatientMainDicomTags"] = _tags_in_form(body["PatientMainDicomTags"], form)
    if metadata:
        body["Metadata"] = archive.metadata(level, public_id)
    return body


def _targets(archive: Archive, resources: list[str], level: Level | None) -> list[tuple[Level, str]]:
    """The resources to describe: each known one as it is, or, with a level, the set of resources of that level
    above or below them (Orthanc answers a set: sorted by ID, each once). Unknown IDs are left out."""
    if level is None:
        found = []
        for public_id in resources:
            try:
                found.append((archive.level_of(public_id), public_id))
            except UnknownResource:
                continue
        return found
    chosen: set[str] = set()
    for public_id in resources:
        try:
            own = archive.level_of(public_id)
            if own == level:
                chosen.add(public_id)
            else:
                chosen.update(row.public_id for row in archive.related(own, public_id, level))
        except UnknownResource:
            continue
    return [(level, public_id) for public_id in sorted(chosen)]


def _content(archive: Archive, body: dict) -> list[dict[str, Any]]:
    resources = _resources(body)
    level = _level(body)
    metadata = _boolean(body, "Metadata", True)
    full, short = _boolean(body, "Full", False), _boolean(body, "Short", False)
    form = "short" if short else "full" if full else "simplify"
    answer = []
    for target_level, public_id in _targets(archive, resources, level):
        try:
            answer.append(_describe(archive, target_level, public_id, form, metadata))
        except UnknownResource:  # deleted by another request meanwhile
            continue
    return answer


async def bulk_content(request: Request) -> Response:
    """POST /tools/bulk-content: the expanded description of many resources in one call."""
    body = await json_body(request)
    return json_response(await run_in_threadpool(_content, archive_of(request), body))


def _delete_all(archive: Archive, resources: list[str]) -> None:
    for public_id in resources:
        try:
            archive.delete(archive.level_of(public_id), public_id)
        except UnknownResource:  # unknown, or gone with a resource deleted before it: Orthanc skips it
            continue


async def bulk_delete(request: Request) -> Response:
    """POST /tools/bulk-delete: delete each resource of the list; Orthanc answers an empty text body."""
    resources = _resources(await json_body(request))
    await run_in_threadpool(_delete_all, archive_of(request), resources)
    return Response(b"", media_type="text/plain")
