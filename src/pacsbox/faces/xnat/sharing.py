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


def _shared(request: Request) -> tuple[Catalog, str, str]:
    """The catalog, and the kind and accession ID of the object the URL names."""
    located = objects.locate(request)
    if "experiment" in request.path_params:
        return located.catalog, "experiment", located.experiment.id
    return located.catalog, "subject", located.subject.id


async def list_shares(request: Request) -> Response:
    catalog, kind, object_id = _shared(request)
    rows = []
    for share in catalog.sharing.projects_of(kind, object_id):
        project = catalog.project(share.project)
        rows.append({**render.project_row(project), "label": share.label,
                     "primary": "true" if share.primary else "false"})
    return render.result_set(request, rows, (*render.PROJECT_COLUMNS, "label", "primary"), title="Projects")


async def put_share(request: Request) -> Response:
    catalog, kind, object_id = _shared(request)
    target = request.path_params["target"]
    if flag(request, "primary"):
        raise XnatError(501, "Changing the primary project of a subject or experiment is not supported by pacsbox")
    access.require(request, target, "edit")  # sharing into a project creates there
    label = text(request, "label") or None
    _, created = await run_in_threadpool(catalog.sharing.share, kind, object_id, target, label)
    return render.text_response(object_id, 201 if created else 200)


async def delete_share(request: Request) -> Response:
    catalog, kind, object_id = _shared(request)
    target = request.path_params["target"]
    access.require(request, target, "edit")
    await run_in_threadpool(catalog.sharing.unshare, kind, object_id, target)
    return render.text_response("")


def as_seen_from(catalog: Catalog, project: str | None, listed: Sequence[T], kind: str) -> list[T]:
    """Objects listed in ``project`` with the labels they have there (shared ones keep their IDs and URIs)."""
    if project is None:
        return list(listed)
    seen = []
    for obj in listed:
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
