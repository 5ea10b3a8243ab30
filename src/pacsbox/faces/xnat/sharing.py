"""Sharing subjects and experiments into other projects: ``GET .../projects`` (the primary project, then the
shares), ``PUT .../projects/Q[?label=L]`` and ``DELETE .../projects/Q``, and the labels shared objects have in
the listings of the projects they are shared into."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import Catalog, Experiment, Subject
from . import (
    access,
    objects,  # (objects imports this module: names are looked up when called)
    render,
)
from .errors import XnatError
from .params import flag, text

T = TypeVar("T", Subject, Experiment)


def _target(request: Request) -> tuple[str, str, str]:
    """The kind and ID of the shared object, and the project named as the target."""
    located = objects.locate(request)
    if "experiment" in request.path_params:
        return "experiment", located.experiment.id, request.path_params["target"]
    return "subject", located.subject.id, request.path_params["target"]


async def list_shares(request: Request) -> Response:
    kind, object_id = _target_for_list(request)
    catalog = objects.locate(request).catalog
    rows = []
    for share in catalog.sharing.projects_of(kind, object_id):
        project = catalog.project(share.project)
        rows.append({**render.project_row(project), "label": share.label,
                     "primary": "true" if share.primary else "false"})
    return render.result_set(request, rows, (*render.PROJECT_COLUMNS, "label", "primary"), title="Projects")


def _target_for_list(request: Request) -> tuple[str, str]:
    located = objects.locate(request)
    if "experiment" in request.path_params:
        return "experiment", located.experiment.id
    return "subject", located.subject.id


async def put_share(request: Request) -> Response:
    kind, object_id, project = _target(request)
    if flag(request, "primary"):
        raise XnatError(501, "Changing the primary project of a subject or experiment is not supported by pacsbox")
    access.require(request, project, "edit")
    catalog = objects.locate(request).catalog
    label = text(request, "label") or None
    _, created = await run_in_threadpool(catalog.sharing.share, kind, object_id, project, label)
    return render.text_response(object_id, 201 if created else 200)


async def delete_share(request: Request) -> Response:
    kind, object_id, project = _target(request)
    access.require(request, project, "edit")
    await run_in_threadpool(objects.locate(request).catalog.sharing.unshare, kind, object_id, project)
    return render.text_response("")


def as_seen_from(catalog: Catalog, project: str | None, objects: Sequence[T], kind: str) -> list[T]:
    """Objects listed in ``project`` with the labels they have there (shared ones keep their IDs and URIs)."""
    if project is None:
        return list(objects)
    seen = []
    for obj in objects:
        if obj.project != project:
            label = catalog.sharing.label_in(kind, obj.id, project)
            if label is not None:
                obj = dataclasses.replace(obj, label=label)
        seen.append(obj)
    return seen


def sharing_children(catalog: Catalog, kind: str, object_id: str) -> list[dict[str, Any]]:
    """The ``sharing/share`` entries of a subject's or experiment's JSON."""
    shares = [s for s in catalog.sharing.projects_of(kind, object_id) if not s.primary]
    if not shares:
        return []
    xsi_type = "xnat:projectParticipant" if kind == "subject" else "xnat:experimentData_share"
    return [{"field": "sharing/share",
             "items": [render.item(xsi_type, {"label": s.label, "project": s.project}, None) for s in shares]}]
