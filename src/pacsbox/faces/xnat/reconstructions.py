"""Reconstructions of image sessions: ``.../experiments/E/reconstructions[/R]`` (list, get, PUT to create or set
fields, DELETE), their resources and files (also under ``/out/resources``)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog_reconstructions import Reconstruction
from . import render
from .objects import checked_type, locate
from .params import field_updates, text

RECONSTRUCTION_TYPE = "xnat:reconstructedImageData"
COLUMNS = ("xnat_reconstructedimagedata_id", "ID", "type", "baseScanType", "xsiType", "URI")
_SHORTCUTS = {"type": "type", "baseScanType": "baseScanType"}


def _data(reconstruction: Reconstruction) -> dict[str, Any]:
    return {"ID": reconstruction.id, "image_session_ID": reconstruction.experiment, **reconstruction.fields["data"]}


def _row(reconstruction: Reconstruction) -> dict[str, Any]:
    data = reconstruction.fields["data"]
    return render.Row({"xnat_reconstructedimagedata_id": f"{reconstruction.experiment}_{reconstruction.id}",
                       "ID": reconstruction.id, "type": data.get("type", ""),
                       "baseScanType": data.get("baseScanType", ""), "xsiType": reconstruction.xsi_type,
                       "URI": f"/data/experiments/{reconstruction.experiment}/reconstructions/{reconstruction.id}"},
                      data)


def _session(request: Request):
    params = dict(request.path_params)
    ref = params.pop("reconstruction", None)
    request.scope["path_params"] = params  # the session itself
    return locate(request), ref


async def list_reconstructions(request: Request) -> Response:
    located, _ = _session(request)
    items = located.catalog.reconstructions.list(located.experiment)
    return render.result_set(request, [_row(r) for r in items], COLUMNS, title="Reconstructions")


async def get_reconstruction(request: Request) -> Response:
    located, ref = _session(request)
    reconstruction = located.catalog.reconstructions.get(located.experiment, ref)
    body = render.items(reconstruction.xsi_type, _data(reconstruction), reconstruction.inserted,
                        render.field_children(reconstruction.fields))
    return render.object_response(request, body)


async def put_reconstruction(request: Request) -> Response:
    located, ref = _session(request)
    xsi_type = checked_type(text(request, "xsiType") or RECONSTRUCTION_TYPE, ("reconstruction",), "reconstruction")
    updates = field_updates(request, _SHORTCUTS)
    given = updates.get("ID")
    if given and given != ref:  # xnatpy builds the URL from the type and sends the ID as a field
        catalog = located.catalog
        try:
            catalog.reconstructions.get(located.experiment, ref)
        except Exception:
            ref = given
    reconstruction, created = await run_in_threadpool(located.catalog.reconstructions.put, located.experiment,
                                                      ref, xsi_type, updates)
    return render.text_response(reconstruction.id, 201 if created else 200)


async def delete_reconstruction(request: Request) -> Response:
    located, ref = _session(request)
    await run_in_threadpool(located.catalog.reconstructions.delete, located.experiment, ref)
    return render.text_response("")
