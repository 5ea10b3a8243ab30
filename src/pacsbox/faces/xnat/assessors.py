"""Assessors of image sessions: ``.../experiments/E/assessors[/A]`` (list, get, PUT to create or set fields,
DELETE), their resources and files (also under ``/out/resources``, as XNAT's assessors keep their outputs)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import Experiment, xnat_date
from . import render
from .objects import EXPERIMENT_SHORTCUTS, checked_type, locate
from .params import field_updates, text
from .schemas import DATA_TYPES

ASSESSOR_COLUMNS = ("ID", "label", "xsiType", "project", "session_ID", "session_label", "insert_date", "URI")


def _row(assessor: Experiment, session: Experiment) -> dict[str, Any]:
    return render.Row({"ID": assessor.id, "label": assessor.label, "xsiType": assessor.xsi_type,
                       "project": assessor.project, "session_ID": session.id, "session_label": session.label,
                       "insert_date": xnat_date(assessor.inserted),
                       "URI": f"/data/experiments/{session.id}/assessors/{assessor.id}"}, assessor.fields["data"])


async def list_assessors(request: Request) -> Response:
    located = locate(request)
    session = located.experiment
    assessors = located.catalog.assessors.list(session)
    wanted = text(request, "xsiType")
    if wanted:
        assessors = [a for a in assessors if a.xsi_type in DATA_TYPES and DATA_TYPES[a.xsi_type].is_a(wanted)]
    return render.result_set(request, [_row(a, session) for a in assessors], ASSESSOR_COLUMNS, title="Assessors")


async def get_assessor(request: Request) -> Response:
    assessor = locate(request).experiment  # below .../assessors/{assessor}, locate finds the assessor
    return render.object_response(request, render.experiment_object(assessor, []))


async def put_assessor(request: Request) -> Response:
    ref = request.path_params.pop("assessor")  # locate the session itself
    located = locate(request)
    xsi_type = text(request, "xsiType")
    if xsi_type:
        checked_type(xsi_type, ("assessor",), "assessor")
    assessor, created = await run_in_threadpool(
        located.catalog.assessors.put, located.experiment, ref, xsi_type or None,
        field_updates(request, EXPERIMENT_SHORTCUTS))
    return render.text_response(assessor.id, 201 if created else 200)


async def delete_assessor(request: Request) -> Response:
    ref = request.path_params.pop("assessor")
    located = locate(request)
    await run_in_threadpool(located.catalog.assessors.delete, located.experiment, ref)
    return render.text_response("")
