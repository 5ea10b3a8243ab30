"""XNAT's services: the DICOM import service, archiving from the prearchive, prearchive delete/move/rebuild."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog_files import Resource
from ...core.catalog_import import DicomTypes, ImportRequest
from ...core.catalog_prearchive import PrearchiveSession
from . import access, inbox, render
from .errors import XnatError
from .params import archive_of, flag, origin_of, spool_body, text
from .schemas import scan_type_for_modality, session_type_for_modality

# Session and scan types for DICOM modalities, as the served schema documents declare them.
SCHEMA_TYPES = DicomTypes(session=session_type_for_modality, scan=scan_type_for_modality)
_HANDLERS = ("", "dicom-zip", "dicom", "gradual-dicom", "si")


def _destination(dest: str) -> tuple[bool | None, dict[str, str]]:
    """``/archive[/projects/P[/subjects/S[/experiments/E]]]`` or ``/prearchive[/projects/P]``."""
    parts = [part for part in dest.strip().split("/") if part]
    if parts and parts[0] == "data":
        parts = parts[1:]
    if not parts:
        return None, {}
    if parts[0] not in ("archive", "prearchive"):
        raise XnatError(400, f"dest must start with /archive or /prearchive, not {dest!r}")
    names = dict(zip(parts[1::2], parts[2::2], strict=False))
    labels = {"project": names.get("projects", ""), "subject": names.get("subjects", ""),
              "session": names.get("experiments", "")}
    return parts[0] == "archive", {k: v for k, v in labels.items() if v}


def overwrite_mode(request: Request) -> str:
    """XNAT's overwrite parameter: none, append or delete; the legacy boolean spelling (xnat4tests sends
    ``overwrite=True``) means append, and false means none."""
    value = (text(request, "overwrite") or "none").strip().lower()
    return {"true": "append", "false": "none", "": "none"}.get(value, value)


def import_options(request: Request) -> ImportRequest:
    """The import service's query: destination, labels, overwrite, quarantine."""
    to_archive, labels = _destination(text(request, "dest"))
    if to_archive is None and flag(request, "Direct-Archive"):
        to_archive = True
    # with neither dest nor Direct-Archive, the project's prearchive code decides (to_archive None)
    return ImportRequest(
        to_archive=to_archive,
        project=text(request, "project") or text(request, "PROJECT_ID") or labels.get("project", ""),
        subject=text(request, "subject") or text(request, "SUBJECT_ID") or labels.get("subject", ""),
        session=text(request, "session") or text(request, "EXPT_LABEL") or labels.get("session", ""),
        overwrite=overwrite_mode(request),
        ignore_unparsable=flag(request, "Ignore-Unparsable"),
        types=SCHEMA_TYPES,
        quarantine=flag(request, "quarantine"),
    )


async def import_service(request: Request) -> Response:
    """POST /data/services/import: a zip, tar or tar.gz of DICOM files into the archive or the prearchive.
    Answers 200 with the new session's path, one line per study."""
    handler = text(request, "import-handler").lower()
    if handler == "inbox":
        options = import_options(request)
        if options.project:
            access.require(request, options.project, "edit")
        return await inbox.import_inbox(request, options)
    if handler not in _HANDLERS:
        raise XnatError(400, f"Unsupported import-handler {handler!r}: pacsbox imports DICOM (DICOM-zip,"
                             " gradual-DICOM, inbox)")
    options = import_options(request)
    if options.project:
        access.require(request, options.project, "edit")
    body = await spool_body(request)
    try:
        if body.seek(0, 2) == 0:
            raise XnatError(400, "The import service needs a zip, tar or tar.gz of DICOM files as the body")
        catalog = archive_of(request).catalog
        paths = await run_in_threadpool(catalog.importer.import_upload, body, options, origin_of(request))
    finally:
        body.close()
    return render.text_response("\n".join("/data" + path for path in paths))


def prearchive_session(request: Request, source: str) -> PrearchiveSession:
    """The prearchive session a ``src`` names: ``[/data]/prearchive/projects/P/TIMESTAMP/NAME``."""
    parts = [part for part in source.split("?")[0].split("/") if part]
    if parts and parts[0] == "data":
        parts = parts[1:]
    if len(parts) != 5 or parts[:2] != ["prearchive", "projects"]:
        raise XnatError(400, f"src must be /data/prearchive/projects/PROJECT/TIMESTAMP/SESSION, not {source!r}")
    return archive_of(request).catalog.importer.prearchive.session(*parts[2:])


def _source(request: Request) -> str:
    source = text(request, "src")
    if not source:
        raise XnatError(400, "Missing the src parameter (/data/prearchive/projects/PROJECT/TIMESTAMP/SESSION)")
    return source


async def archive_service(request: Request) -> Response:
    """POST /data/services/archive?src=...: archive a prearchive session; answers the experiment's path."""
    session = prearchive_session(request, _source(request))
    prearchive = archive_of(request).catalog.importer.prearchive
    access.require(request, text(request, "project") or session.project, "edit")
    experiment = await run_in_threadpool(
        prearchive.archive, session, text(request, "project"), text(request, "subject"), text(request, "session"),
        overwrite_mode(request), SCHEMA_TYPES)
    return render.text_response(f"/data/archive/projects/{experiment.project}/subjects/{experiment.subject}"
                                f"/experiments/{experiment.id}")


async def form_values(request: Request) -> dict[str, list[str]]:
    """The query's parameters with those of a form body (pyxnat sends ``src=...`` in the body)."""
    values: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        values.setdefault(key, []).append(value)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (await request.body()).decode("utf-8", "replace")
        for key, value in parse_qsl(body, keep_blank_values=True):
            values.setdefault(key, []).append(value)
    return values


async def prearchive_action(request: Request) -> Response:
    """POST /data/services/prearchive/delete|move|rebuild with ``src`` (one or more, in the query or a form body)
    [and ``newProject``]: answers the sessions' new paths, one per line (nothing for delete)."""
    action = request.path_params["action"]
    if action not in ("delete", "move", "rebuild"):
        raise XnatError(404, f"Unknown prearchive service {action!r}: use delete, move or rebuild")
    values = await form_values(request)
    sources = [source for source in values.get("src", []) if source]
    if not sources:
        raise XnatError(400, "Missing the src parameter (/data/prearchive/projects/PROJECT/TIMESTAMP/SESSION)")
    new_project = (values.get("newProject") or [""])[0]
    if action == "move" and not new_project:
        raise XnatError(400, "Moving a prearchive session needs newProject=")
    sessions = [prearchive_session(request, source) for source in sources]  # every src checked before any change
    for session in sessions:
        access.require(request, session.project, "delete" if action == "delete" else "edit")
    if new_project:
        access.require(request, new_project, "edit")
    prearchive = archive_of(request).catalog.importer.prearchive
    lines = []
    for session in sessions:
        if action == "delete":
            await run_in_threadpool(prearchive.delete, session)
            continue
        if action == "move":
            moved = await run_in_threadpool(prearchive.move, session, new_project)
        else:
            moved = await run_in_threadpool(prearchive.rebuild, session)
        lines.append(f"/data/prearchive/projects/{moved.project}/{moved.timestamp}/{moved.name}")
    return render.text_response("\n".join(lines))


# -- catalog refresh ----------------------------------------------------------------------------------------
_REFRESH_OPTIONS = ("checksum", "delete", "append", "populatestats")


def _resources_named(request: Request, uri: str) -> list[Resource]:
    """The resources a ``resource=`` URI names: one resource, or every resource of an object."""
    parts = [part for part in uri.split("?")[0].split("/") if part]
    for prefix in (["data"], ["REST"], ["archive"]):
        if parts[:1] == prefix:
            parts = parts[1:]
    names = dict(zip(parts[0::2], parts[1::2], strict=False))
    if len(parts) % 2 or not names or not set(names) <= {"projects", "subjects", "experiments", "scans", "resources"}:
        raise XnatError(400, f"resource must be the URI of a resource or of an object, not {uri!r}")
    catalog = archive_of(request).catalog
    project = names.get("projects")
    if project is not None:
        catalog.project(project)
    subject = catalog.subject(project, names["subjects"]) if "subjects" in names else None
    experiment = None
    if "experiments" in names:
        experiment = catalog.experiment(project or (subject.project if subject else None), names["experiments"],
                                        subject.id if subject else None)
    if experiment is None and "scans" in names:
        raise XnatError(400, f"A scan needs its experiment in {uri!r}")
    scan = names.get("scans")
    if scan is not None:
        catalog.scan(experiment, scan)
    owner_project = experiment.project if experiment else subject.project if subject else project
    if owner_project is None:
        raise XnatError(400, f"resource must name a project, subject or experiment: {uri!r}")
    access.require(request, owner_project, "edit")
    owner = catalog.resources.owner(project=owner_project, subject=subject, experiment=experiment, scan=scan)
    if "resources" in names:
        return [catalog.resources.get(owner, names["resources"])]
    return catalog.resources.list(owner)


async def refresh_catalog(request: Request) -> Response:
    """POST /data/services/refresh/catalog?resource=URI[&options=checksum,delete,append,populateStats]."""
    uris = [v for key, v in request.query_params.multi_items() if key == "resource"]
    if not uris:
        raise XnatError(400, "The catalog refresh needs resource=<resource or object URI>")
    options = {o.strip().lower() for key, v in request.query_params.multi_items() if key == "options"
               for o in v.split(",") if o.strip()}
    unknown = options - set(_REFRESH_OPTIONS)
    if unknown:
        raise XnatError(400, f"Unknown refresh option {sorted(unknown)[0]!r}: use checksum, delete, append,"
                             " populateStats")
    resources = [resource for uri in uris for resource in _resources_named(request, uri)]
    store = archive_of(request).catalog.resources
    for resource in resources:
        await run_in_threadpool(store.refresh, resource, append="append" in options, delete="delete" in options,
                                checksum="checksum" in options)
    return render.text_response("")
