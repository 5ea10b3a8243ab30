"""pacsbox's own worklist routes under ``/pacsbox/worklists``: the items the worklist SCP serves, managed from a
test (Orthanc has no REST API for them: its plugin reads a folder).

* ``POST /pacsbox/worklists``: a new item from DICOM JSON (PS3.18 F), Orthanc's simplified JSON (keywords or
  ``gggg,eeee``, sequences as lists of objects, optionally inside ``"Tags"``) or a DICOM file; ``?id=NAME`` names it
  (the same name replaces it). Answers ``{"ID", "Path"}``.
* ``GET /pacsbox/worklists`` (``?expand``: with each item's tags), ``GET /pacsbox/worklists/{id}`` (simplified tags;
  ``?short``, ``?full`` as Orthanc's /tags), ``GET /pacsbox/worklists/{id}/file`` (the ``.wl`` file).
* ``DELETE /pacsbox/worklists/{id}``, ``DELETE /pacsbox/worklists`` (every item).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.dicom_json import render_tags
from ...core.errors import BadFormat, BadRequest
from ...core.worklists import WorklistFolder, item_from_json
from . import scu_params as fields
from .json import json_response
from .params import archive_of, flag

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

_PATH = "/pacsbox/worklists"


def _folder(request: Request) -> WorklistFolder:
    return archive_of(request).worklists


def _form(request: Request) -> str:
    return "short" if flag(request, "short") else "full" if flag(request, "full") else "simplify"


async def create(request: Request) -> Response:
    raw, body = await fields.read_json(request)
    if body is fields.NOT_JSON:
        if len(raw) < 132 or raw[128:132] != b"DICM":
            raise BadFormat("A worklist item is DICOM JSON, simplified JSON or a DICOM file")
        item: Dataset | bytes = raw  # kept as sent, once read
    else:
        item = item_from_json(body)
    requested = request.query_params.get("id")
    if requested is not None and not requested:
        raise BadRequest("An empty worklist ID")
    item_id = await run_in_threadpool(_folder(request).add, item, requested)
    return json_response({"ID": item_id, "Path": f"{_PATH}/{item_id}"})


async def list_items(request: Request) -> Response:
    folder = _folder(request)
    ids = await run_in_threadpool(folder.ids)
    if "expand" not in request.query_params:
        return json_response(ids)
    form = _form(request)
    expanded = {}
    for item_id in ids:
        try:
            expanded[item_id] = render_tags(await run_in_threadpool(folder.read, item_id), form)
        except (BadFormat, BadRequest, OSError):  # a broken file stays listed, without tags
            expanded[item_id] = None
    return json_response(expanded)


async def read(request: Request) -> Response:
    dataset = await run_in_threadpool(_folder(request).read, request.path_params["id"])
    return json_response(render_tags(dataset, _form(request)))


async def read_file(request: Request) -> Response:
    path = _folder(request).file_of(request.path_params["id"])
    return Response(await run_in_threadpool(path.read_bytes), media_type="application/dicom")


async def delete(request: Request) -> Response:
    await run_in_threadpool(_folder(request).remove, request.path_params["id"])
    return json_response({})


async def delete_all(request: Request) -> Response:
    removed = await run_in_threadpool(_folder(request).clear)
    return json_response({"Removed": removed})
