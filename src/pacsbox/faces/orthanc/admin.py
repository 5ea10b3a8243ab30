"""pacsbox's own admin routes under the reserved ``/pacsbox`` prefix: reset, snapshots, restore.

Authenticated like every Orthanc route (only ``/pacsbox/health`` is open); errors in Orthanc's JSON body.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.snapshots import Snapshots
from .json import json_response
from .params import archive_of


async def reset(request: Request) -> Response:
    """Empty the archive: index, files, change log, XNAT objects."""
    started = time.perf_counter()
    await run_in_threadpool(archive_of(request).reset)
    return json_response({"Seconds": round(time.perf_counter() - started, 4)})


async def list_snapshots(request: Request) -> Response:
    return json_response(await run_in_threadpool(Snapshots(archive_of(request)).list))


async def save_snapshot(request: Request) -> Response:
    return json_response(await run_in_threadpool(Snapshots(archive_of(request)).save, request.path_params["name"]))


async def restore_snapshot(request: Request) -> Response:
    snapshots = Snapshots(archive_of(request))
    return json_response(await run_in_threadpool(snapshots.restore, request.path_params["name"]))


async def delete_snapshot(request: Request) -> Response:
    await run_in_threadpool(Snapshots(archive_of(request)).delete, request.path_params["name"])
    return json_response({})
