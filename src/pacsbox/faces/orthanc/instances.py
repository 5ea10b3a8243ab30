"""Routes on instance content: upload, the stored file, tags in Orthanc's three forms, /content, frames."""

from __future__ import annotations

import io

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Origin, StoreResult
from ...core.ids import Level
from ..http_common import SPOOL_IN_MEMORY, spool_body, spool_file, stored_file_response
from .errors import OrthancError, unknown_resource
from .json import json_response
from .params import archive_of
from .tag_answers import tags_form  # GET /instances/{id}/tags itself is served there

_ZIP_MAGIC = b"PK\x03\x04"


def _too_large(limit: int) -> OrthancError:
    return OrthancError(8, "Bad request", 413, f"The body exceeds MaximumUploadSize ({limit} bytes)")


def _store_json(result: StoreResult) -> dict[str, str]:
    return {
        "ID": result.instance_id,
        "ParentPatient": result.patient_id,
        "ParentStudy": result.study_id,
        "ParentSeries": result.series_id,
        "Path": f"/instances/{result.instance_id}",
        "Status": result.status,
    }


async def upload(request: Request) -> Response:
    """POST /instances: one DICOM file, or a zip of them, streamed to a spool file (bounded memory)."""
    limit = request.app.state.config.MaximumUploadSize
    spool = await spool_body(request, limit, _too_large)
    if request.headers.get("content-encoding", "").strip().lower() == "gzip":  # a peer's "Compress": true
        spool = await run_in_threadpool(_gunzip, spool, limit, spool_file(request.app.state.config))
    try:
        size = spool.seek(0, io.SEEK_END)
        if size == 0:
            raise OrthancError(15, "Bad file format", 400, "Received an empty DICOM file")
        spool.seek(0)
        is_zip = spool.read(4) == _ZIP_MAGIC
        spool.seek(0)
        if request.scope.get("pacsbox.origin") == "Lua":  # RestApiPost("/instances", ...) from a Lua script
            origin = Origin("Lua")
        else:
            origin = Origin("RestApi", remote_ip=request.client.host if request.client else "",
                            http_username=getattr(request.state, "user", "") or "")
        archive = archive_of(request)
        if is_zip:
            results = await run_in_threadpool(archive.store_zip, spool, origin)
            return json_response([_store_json(r) for r in results])
        data = spool.read() if size <= SPOOL_IN_MEMORY else spool
        # on the event loop itself when that takes a few milliseconds (a small file of few elements, nothing to wait
        # for): the trip to a worker thread and back costs more than storing the file (A/B of REST ingest from 4
        # clients, pacsbox/Orthanc: ~2 KB files 0.80 with the trip, 1.17 without; ~150 KB files 0.85 with it, 1.11
        # without). Anything else (many elements to parse, a reset or restore running) goes to a worker thread, as
        # does every upload while jobs run: they send many (a store to this server as a peer), and stores on the
        # loop would keep it from the other clients (GET /studies p95 under 200 jobs: benchmarks/jobs_load.py).
        quick = isinstance(data, bytes) and not archive.jobs.busy
        result = archive.store_at_once(data, origin) if quick else None
        if result is None:
            result = await run_in_threadpool(archive.store, data, origin)
        return json_response(_store_json(result))
    finally:
        spool.close()


def _gunzip(spool, limit: int, inflated):
    """The decompressed body in the empty spool ``inflated``, refusing more than ``limit`` bytes (a gzip bomb
    stops there)."""
    import gzip

    try:
        spool.seek(0)
        with gzip.GzipFile(fileobj=spool, mode="rb") as stream:
            while chunk := stream.read(1024 * 1024):
                if inflated.tell() + len(chunk) > limit:
                    raise _too_large(limit)
                inflated.write(chunk)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        inflated.close()
        raise OrthancError(15, "Bad file format", 400, f"Cannot decompress the gzip-encoded body: {error}") from None
    except BaseException:
        inflated.close()
        raise
    finally:
        spool.close()
    inflated.seek(0)
    return inflated


async def file(request: Request) -> Response:
    archive = archive_of(request)
    instance_id = request.path_params["id"]
    path = await run_in_threadpool(archive.instance_path, instance_id)
    # deleted by another request since the lookup: as unknown as if the lookup had come later
    return await stored_file_response(path, "application/dicom",
                                      lambda: unknown_resource(f"Unknown instance: {instance_id}"))


async def header(request: Request) -> Response:
    from pydicom.dataset import FileMetaDataset

    from ...core.dicom_json import render_header

    dataset = await run_in_threadpool(archive_of(request).instance_dataset, request.path_params["id"])
    meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
    return json_response(render_header(meta, tags_form(request)))


async def content(request: Request) -> Response:
    from ...core import dicom_json

    dataset = await run_in_threadpool(archive_of(request).instance_dataset, request.path_params["id"])
    path = [part for part in request.path_params.get("path", "").split("/") if part]
    try:
        found = dicom_json.content_lookup(dataset, path)
    except dicom_json.UnknownDicomTag as error:
        # Orthanc answers 500 here; an unknown tag name is the client's mistake, so 400 with Orthanc's code.
        raise OrthancError(27, "Unknown DICOM tag", 400, str(error) or None) from None
    except dicom_json.ContentNotFound as error:
        raise OrthancError(21, "Inexistent tag", 404, str(error) or None) from None
    if found.listing is not None:
        return json_response(list(found.listing))
    return Response(found.body, media_type=found.media_type)


async def frames(request: Request) -> Response:
    row = await run_in_threadpool(archive_of(request).resource, Level.INSTANCE, request.path_params["id"])
    try:
        count = max(1, int(row.main_tags.get("NumberOfFrames", "1") or 1))
    except ValueError:
        count = 1
    if row.file_size is not None and count > row.file_size:
        # every frame takes at least a byte of the file: a larger NumberOfFrames is a lie, not a list to build
        raise OrthancError(15, "Bad file format", 400, f"NumberOfFrames ({count}) exceeds what the file holds")
    return json_response(list(range(count)))


async def shared_tags(request: Request, level: Level) -> Response:
    from ...core.dicom_json import render_tags

    archive = archive_of(request)
    dataset = await run_in_threadpool(archive.shared_tags, level, request.path_params["id"])
    return json_response(render_tags(dataset, tags_form(request), archive.settings.default_encoding))


