"""Project settings XNAT keeps beside a project's data: the prearchive code (where sessions with no destination
go: ``/data/projects/P/prearchive_code[/CODE]``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog_import import AUTO_ARCHIVE, AUTO_ARCHIVE_OVERWRITE, PREARCHIVE_ALL
from . import render
from .errors import XnatError
from .params import archive_of

PREARCHIVE_CODES = (PREARCHIVE_ALL, AUTO_ARCHIVE, AUTO_ARCHIVE_OVERWRITE)


async def get_prearchive_code(request: Request) -> Response:
    catalog = archive_of(request).catalog
    return render.text_response(str(catalog.prearchive_code(request.path_params["project"])))


async def put_prearchive_code(request: Request) -> Response:
    raw = request.path_params["code"]
    if not raw.isdigit() or int(raw) not in PREARCHIVE_CODES:
        raise XnatError(400, f"Unknown prearchive code {raw!r}: use 0 (prearchive), 4 (auto-archive) or 5"
                             " (auto-archive, overwrite)")
    catalog = archive_of(request).catalog
    await run_in_threadpool(catalog.set_project_setting, request.path_params["project"], "prearchive_code",
                            int(raw))
    return render.text_response(raw)
