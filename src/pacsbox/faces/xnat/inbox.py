"""XNAT's DICOM inbox import (``POST /data/services/import?import-handler=inbox&path=...``): DICOM files a test
left in a folder of the server's inbox are imported as an uploaded zip would be.

The inbox is ``<storage>/inbox`` (XNAT's ``/data/xnat/inbox``); a path outside it, or leading out of it through
a link, is refused with 403, as XNAT refuses paths outside its inbox. pacsbox imports at once, so the import
request that XNAT answers with (and xnatpy's ``import_dicom_inbox`` reads) is already ``Completed``.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog_import import ImportRequest
from . import render
from .errors import XnatError
from .params import archive_of, flag, origin_of, text

_KEPT_REQUESTS = 1000  # import requests remembered for their status route (the oldest are forgotten first)


def inbox_folder(request: Request) -> Path:
    return archive_of(request).config.storage_path / "inbox"


def _inside_inbox(request: Request, given: str) -> Path:
    if not given:
        raise XnatError(400, "The inbox import needs path=<folder in the inbox>")
    root = inbox_folder(request)
    root.mkdir(parents=True, exist_ok=True)
    candidate = Path(given) if Path(given).is_absolute() else root / given
    resolved, root = candidate.resolve(), root.resolve()
    if resolved != root and root not in resolved.parents:
        raise XnatError(403, f"The path {given!r} is outside the inbox ({root})")
    if not resolved.exists():
        raise XnatError(404, f"No file or folder {given!r} in the inbox")
    return resolved


def _remove(path: Path) -> None:
    """cleanupAfterImport: the imported folder (or file) leaves the inbox."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def new_state() -> tuple[dict[int, dict[str, Any]], itertools.count]:
    """The face's record of inbox import requests, and their IDs (``app.state``)."""
    return {}, itertools.count(1)


async def import_inbox(request: Request, options: ImportRequest) -> Response:
    folder = _inside_inbox(request, text(request, "path"))
    importer = archive_of(request).catalog.importer
    paths = await run_in_threadpool(importer.import_directory, folder, options, origin_of(request))
    cleanup = flag(request, "cleanupAfterImport")
    if cleanup and folder != inbox_folder(request).resolve():
        await run_in_threadpool(_remove, folder)
    records = request.app.state.inbox_requests
    request_id = next(request.app.state.inbox_ids)
    now = int(time.time() * 1000)
    records[request_id] = {
        "id": request_id, "username": getattr(request.state, "user", ""), "sessionPath": str(folder),
        "parameters": {key: value for key, value in request.query_params.items()},
        "cleanupAfterImport": cleanup, "clenaupAfterImport": cleanup,  # xnatpy reads XNAT's misspelling
        "enabled": True, "created": now, "timestamp": now, "status": "Completed",
        "resolution": ["/data" + path for path in paths],
    }
    while len(records) > _KEPT_REQUESTS:
        del records[next(iter(records))]
    return render.text_response(f"/xapi/inbox/import/{request_id}")


async def inbox_request(request: Request) -> Response:
    """GET /xapi/inbox/import/{id}: an inbox import request and its result."""
    raw = request.path_params["request_id"]
    record = request.app.state.inbox_requests.get(int(raw)) if raw.isdigit() else None
    if record is None:
        raise XnatError(404, f"No inbox import request {raw}")
    return render.json_response(record)
