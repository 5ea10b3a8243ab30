"""POST /tools/create-dicom: Orthanc's request fields checked and its error codes given; the building is the core's
(``core.create_dicom``)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Origin, StoreResult
from ...core.create_dicom import (
    CreatedSeries,
    CreateRefused,
    CreateRequest,
    Refusal,
    canonical_charset,
    charset_of_encoding,
    create,
    create_legacy,
    inherited_from,
)
from ...core.embed_content import MAX_PIXEL_BYTES
from .errors import OrthancError, bad_request, out_of_range
from .json import json_response
from .params import archive_of, loads

# Orthanc's error codes for the refusals of create-dicom (ErrorCode_CreateDicom*, all HTTP 400)
_REFUSAL_CODES = {
    Refusal.NOT_STRING: 2019,
    Refusal.OVERRIDE_TAG: 2020,
    Refusal.USE_CONTENT: 2021,
    Refusal.NO_PAYLOAD: 2022,
    Refusal.USE_DATA_URI: 2023,
    Refusal.BAD_PARENT: 2024,
    Refusal.PARENT_IS_INSTANCE: 2025,
    Refusal.BAD_TYPE: 5,
}


def _refused(error: CreateRefused) -> OrthancError:
    return OrthancError(_REFUSAL_CODES[error.reason], error.reason.value, 400, error.details)


def _boolean(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise OrthancError(8, "Bad request", 400)
    return value


def _request(archive, body: dict[str, Any]) -> CreateRequest:
    """The fields of a request with "Tags", checked in Orthanc's order."""
    tags = body["Tags"]
    if not isinstance(tags, dict):
        raise OrthancError(8, "Bad request", 400)
    charset = charset_of_encoding(archive.settings.default_encoding)
    if "SpecificCharacterSet" in tags:
        term = tags["SpecificCharacterSet"]
        if not isinstance(term, str):
            raise bad_request("SpecificCharacterSet should be a string")
        charset = canonical_charset(term)
        if charset is None:
            raise out_of_range(f"Unknown specific character set: {term}")
    inherited = None
    if "Parent" in body:
        parent = body["Parent"]
        if not isinstance(parent, str):
            raise CreateRefused(Refusal.BAD_PARENT)
        inherited = inherited_from(archive, parent)
    decode_binary = _boolean(body, "InterpretBinaryTags", True)
    if "PrivateCreator" in body and not isinstance(body["PrivateCreator"], str):
        raise OrthancError(8, "Bad request", 400)
    force = _boolean(body, "Force", False)
    limit = min(archive.config.MaximumUploadSize, MAX_PIXEL_BYTES)
    return CreateRequest(tags, body.get("Content"), force, decode_binary, charset, inherited, limit)


def _create(archive, body: dict[str, Any], origin: Origin) -> StoreResult | CreatedSeries:
    try:
        if "Tags" not in body:
            return create_legacy(archive, body, origin)
        return create(archive, _request(archive, body), origin)
    except CreateRefused as error:
        raise _refused(error) from None


async def create_dicom(request: Request) -> Response:
    """POST /tools/create-dicom: store a new instance (or a series) and answer as Orthanc does."""
    try:
        body = await loads(request, await request.body())  # a large body is parsed off the event loop
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        body = None
    if not isinstance(body, dict):
        raise OrthancError(8, "Bad request", 400)
    origin = Origin("RestApi", remote_ip=request.client.host if request.client else "",
                    http_username=getattr(request.state, "user", "") or "")
    result = await run_in_threadpool(_create, archive_of(request), body, origin)
    if isinstance(result, CreatedSeries):
        path = f"/series/{result.series_id}"
        return json_response({"ID": result.series_id, "Path": path, "Status": "Success"})
    return json_response({
        "ID": result.instance_id,
        "ParentPatient": result.patient_id,
        "ParentSeries": result.series_id,
        "ParentStudy": result.study_id,
        "Path": f"/instances/{result.instance_id}",
        "Status": result.status,
    })
