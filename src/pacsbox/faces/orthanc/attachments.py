"""Attachment routes (``/{level}/{id}/attachments/...``) and the revisions (ETag, If-Match) of metadata.

Answers as the real Orthanc 1.10.1 gives them (measured): a reserved attachment is a 403 with an empty body, an
unknown name 404 "Accessing an inexistent item", an absent attachment 404 "Unknown resource", a stale or
malformed If-Match 409 or 400 (core.attachments says how revisions work with Orthanc's SQLite index).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.attachments import DICOM, Expected, ReservedAttachment, etag, metadata_md5
from ...core.errors import UnknownResource
from ...core.ids import Level
from ..http_common import spool_body
from .errors import OrthancError, inexistent_item
from .json import json_response
from .params import archive_of, flag

# what GET /{level}/{id}/attachments/{name} lists (Orthanc lists "uuid" too, and answers 404 for it)
_OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info", "is-compressed",
               "md5", "size", "uncompress", "verify-md5", "uuid"]


def _where(request: Request, level: Level) -> tuple[Level, str, str]:
    return level, request.path_params["id"], request.path_params["name"]


def _if_match(request: Request) -> Expected | None:
    return Expected.parse(request.headers.get("if-match"))


def _text(value: str, headers: dict[str, str] | None = None) -> Response:
    """Plain text as Orthanc sends it: ``text/plain`` without a charset."""
    return Response(value.encode("utf-8"), headers={"Content-Type": "text/plain", **(headers or {})})


def _forbidden() -> Response:
    return Response(b"", status_code=403)  # Orthanc's 403 here has no body


async def list_attachments(request: Request, level: Level) -> Response:
    found = await run_in_threadpool(archive_of(request).attachments.list, level, request.path_params["id"])
    if flag(request, "full"):
        return json_response(dict(found))
    return json_response([name for name, _ in found])


async def operations(request: Request, level: Level) -> Response:
    info = await run_in_threadpool(archive_of(request).attachments.info, *_where(request, level))
    return json_response(_OPERATIONS, headers={"ETag": etag(0, info.uncompressed_md5)})


async def info(request: Request, level: Level) -> Response:
    found = await run_in_threadpool(archive_of(request).attachments.info, *_where(request, level))
    return json_response({
        "CompressedMD5": found.compressed_md5, "CompressedSize": found.compressed_size,
        "ContentType": found.content_type, "UncompressedMD5": found.uncompressed_md5,
        "UncompressedSize": found.uncompressed_size, "Uuid": found.uuid,
    }, headers={"ETag": etag(0, found.uncompressed_md5)})


async def one_value(request: Request, level: Level, field: str) -> Response:
    """``md5``, ``size``, ``is-compressed``, ``compressed-md5``, ``compressed-size``: one value as plain text."""
    found = await run_in_threadpool(archive_of(request).attachments.info, *_where(request, level))
    value = {"md5": found.uncompressed_md5, "size": found.uncompressed_size, "is-compressed": int(found.is_compressed),
             "compressed-md5": found.compressed_md5, "compressed-size": found.compressed_size}[field]
    return _text(str(value), {"ETag": etag(0, found.uncompressed_md5)})


async def data(request: Request, level: Level, as_stored: bool = False) -> Response:
    attachments = archive_of(request).attachments
    found, content = await run_in_threadpool(lambda: attachments.read(*_where(request, level), as_stored=as_stored))
    headers = {"ETag": etag(0, found.uncompressed_md5)}
    if as_stored:
        return Response(content, media_type="application/octet-stream", headers=headers)
    suffix = ".dcm" if found.content_type == DICOM else ""
    headers["Content-Disposition"] = f'filename="{found.uuid}{suffix}"'
    headers["Content-Type"] = attachments.mime_type(found.content_type)  # as declared: no charset added
    return Response(content, headers=headers)


async def verify_md5(request: Request, level: Level) -> Response:
    """Orthanc answers ``{}`` when the stored bytes have their recorded MD5, else (and for an absent attachment)
    a 400 without a body."""
    try:
        intact = await run_in_threadpool(archive_of(request).attachments.verify_md5, *_where(request, level))
    except UnknownResource:
        intact = False
    if not intact:
        return Response(b"", status_code=400)
    return Response(b"{}", media_type="application/json")


async def set_compressed(request: Request, level: Level, compressed: bool) -> Response:
    await run_in_threadpool(archive_of(request).attachments.set_compressed, *_where(request, level), compressed)
    return Response(b"{}", media_type="application/json")


async def put(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    expected = _if_match(request)
    limit = request.app.state.config.MaximumUploadSize
    spool = await spool_body(request, limit, lambda size: OrthancError(
        8, "Bad request", 413, f"The body exceeds MaximumUploadSize ({size} bytes)"))
    try:
        content = spool.read()
    finally:
        spool.close()
    try:
        tag = await run_in_threadpool(archive.attachments.put, *_where(request, level), content, expected)
    except ReservedAttachment:
        return _forbidden()
    return Response(b"{}", media_type="application/json", headers={"ETag": tag})


async def delete(request: Request, level: Level) -> Response:
    try:
        await run_in_threadpool(archive_of(request).attachments.delete, *_where(request, level), _if_match(request))
    except ReservedAttachment:
        return _forbidden()
    return _text("")


# -- metadata revisions (routed by app.py as resources.*_metadata) -------------------------------------------
async def get_metadata(request: Request, level: Level) -> Response:
    values = await run_in_threadpool(archive_of(request).metadata, level, request.path_params["id"])
    name = request.path_params["name"]
    if name not in values:
        raise inexistent_item(f"No metadata {name!r} on this {level.title.lower()}")
    return _text(values[name], {"ETag": etag(0, metadata_md5(values[name]))})


async def put_metadata(request: Request, level: Level) -> Response:
    value = (await request.body()).decode("utf-8", "replace")
    expected = _if_match(request)
    try:
        tag = await run_in_threadpool(archive_of(request).attachments.set_metadata, level, request.path_params["id"],
                                      request.path_params["name"], value, expected)
    except PermissionError:
        return _forbidden()
    return _text("", {"ETag": tag})


async def delete_metadata(request: Request, level: Level) -> Response:
    expected = _if_match(request)
    try:
        await run_in_threadpool(archive_of(request).attachments.delete_metadata, level, request.path_params["id"],
                                request.path_params["name"], expected)
    except PermissionError:
        return _forbidden()
    return _text("")
