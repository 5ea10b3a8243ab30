"""Projects, subjects, experiments and scans: listings, single objects, PUT (create, set fields, relabel), DELETE."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import Catalog, Experiment, Subject
from ...core.catalog_assessors import is_assessor
from . import access, render, sharing
from .errors import XnatError
from .params import archive_of, field_updates, flag, text
from .schemas import DATA_TYPES, scan_type_for_modality
from .xml_body import body_updates

# XNAT's REST shortcuts: plain query parameters that set a field (``?gender=male``), by object kind.
_DEMOGRAPHICS = "demographics[@xsi:type=xnat:demographicData]/"
PROJECT_SHORTCUTS = {"name": "name", "secondary_ID": "secondary_ID", "description": "description",
                     "keywords": "keywords", "pi_firstname": "PI/firstname", "pi_lastname": "PI/lastname"}
SUBJECT_SHORTCUTS = {
    **{key: _DEMOGRAPHICS + key for key in ("gender", "dob", "yob", "age", "handedness", "education", "race",
                                            "ethnicity", "height", "weight", "ses")},
    "group": "group", "src": "src",
}
EXPERIMENT_SHORTCUTS = {key: key for key in ("date", "time", "visit_id", "note", "acquisition_site", "scanner",
                                             "operator", "session_type", "modality")}
SCAN_SHORTCUTS = {key: key for key in ("type", "quality", "series_description", "note", "frames", "scanner",
                                       "modality", "UID")}


@dataclass(frozen=True)
class Located:
    """The objects a URL names above the one a handler acts on."""

    catalog: Catalog
    project: str | None
    subject: Subject | None
    experiment: Experiment | None


def locate(request: Request, *, subject: bool = True, experiment: bool = True) -> Located:
    """Look up the project, subject and experiment of the URL (by ID, or by label within the project)."""
    catalog = archive_of(request).catalog
    params = request.path_params
    project = params.get("project")
    if project is not None:
        catalog.project(project)
    found_subject = catalog.subject(project, params["subject"]) if subject and "subject" in params else None
    found_experiment = None
    if experiment and "experiment" in params:
        if found_subject is None and "subject" in params:
            found_subject = catalog.subject(project, params["subject"])
        # under /data/subjects/{ID} an experiment label is looked up in the subject's project
        scope = project or (found_subject.project if found_subject else None)
        found_experiment = catalog.experiment(scope, params["experiment"],
                                              found_subject.id if found_subject else None)
        if "assessor" in params:  # below an assessor of the session, the assessor is the experiment
            found_experiment = catalog.assessors.get(found_experiment, params["assessor"])
    return Located(catalog, project, found_subject, found_experiment)


def _given_id(updates: dict[str, str], in_url: str, exists) -> str:
    """The ID of an object to PUT: the URL's, unless that names nothing yet and the fields give an ID (xnatpy
    builds the URL of a new project or scan from its name or type, and sends its ID as a field)."""
    given = updates.get("ID") or updates.get("id")
    return given if given and not exists(in_url) else in_url


def checked_type(xsi_type: str, kinds: tuple[str, ...], what: str) -> str:
    """A type a client asks to create: one the served schemas declare, concrete, of the right level (400 else,
    and nothing is created)."""
    data_type = DATA_TYPES.get(xsi_type)
    if data_type is None or data_type.abstract or data_type.kind not in kinds:
        raise XnatError(400, f"Unknown or abstract {what} type {xsi_type!r}: the schema documents at /xapi/schemas"
                             f" declare the concrete ones")
    return xsi_type


def _put_status(created: bool) -> int:
    return 201 if created else 200


# -- projects ---------------------------------------------------------------------------------------------
async def list_projects(request: Request) -> Response:
    projects = [p for p in archive_of(request).catalog.list_projects() if access.visible(request, p.id)]
    return render.result_set(request, [render.project_row(p) for p in projects], render.PROJECT_COLUMNS,
                             title="Projects")


async def get_project(request: Request) -> Response:
    project = archive_of(request).catalog.project(request.path_params["project"])
    return render.object_response(request, render.project_object(project))


async def put_project(request: Request) -> Response:
    catalog = archive_of(request).catalog
    _, from_body = await body_updates(request)
    updates = {**from_body, **field_updates(request, PROJECT_SHORTCUTS)}
    # xnatpy's ProjectData(parent=session, id="P") PUTs /projects/None with the ID among the fields
    project_id = _given_id(updates, request.path_params["project"], catalog.has_project)
    if project_id != request.path_params["project"]:
        access.require(request, project_id, "manage")  # the URL's project was checked; this is another
    project, created = await run_in_threadpool(catalog.put_project, project_id, updates)
    if created:
        await access.make_owner(request, project.id)
    return render.text_response(project.id, _put_status(created))


async def delete_project(request: Request) -> Response:
    catalog = archive_of(request).catalog
    await run_in_threadpool(catalog.delete_project, request.path_params["project"], flag(request, "removeFiles"))
    return render.text_response("")


# -- subjects ---------------------------------------------------------------------------------------------
async def list_subjects(request: Request) -> Response:
    located = locate(request)
    subjects = located.catalog.list_subjects(located.project)
    readable = access.readable_projects(request) if located.project is None else None
    if readable is not None:
        subjects = [s for s in subjects if s.project in readable]
    subjects = sharing.as_seen_from(located.catalog, located.project, subjects, "subject")
    return render.result_set(request, [render.subject_row(s) for s in subjects], render.SUBJECT_COLUMNS,
                             title="Subjects")


async def get_subject(request: Request) -> Response:
    located = locate(request)
    body = render.subject_object(located.subject)
    body["items"][0]["children"] += sharing.sharing_children(located.catalog, "subject", located.subject.id)
    return render.object_response(request, body)


async def put_subject(request: Request) -> Response:
    located = locate(request, subject=False)
    _, from_body = await body_updates(request)
    subject, created = await run_in_threadpool(
        located.catalog.put_subject, located.project, request.path_params["subject"],
        {**from_body, **field_updates(request, SUBJECT_SHORTCUTS)}, text(request, "label") or None)
    return render.text_response(subject.id, _put_status(created))


async def delete_subject(request: Request) -> Response:
    located = locate(request, subject=False)
    await run_in_threadpool(located.catalog.delete_subject, located.project, request.path_params["subject"],
                            flag(request, "removeFiles"))
    return render.text_response("")


# -- experiments ------------------------------------------------------------------------------------------
async def list_experiments(request: Request) -> Response:
    located = locate(request, subject=False)
    experiments = located.catalog.list_experiments(located.project, request.path_params.get("subject"))
    readable = access.readable_projects(request) if located.project is None else None
    if readable is not None:
        experiments = [e for e in experiments if e.project in readable]
    experiments = sharing.as_seen_from(located.catalog, located.project, experiments, "experiment")
    if not wanted_assessors(request):  # assessors are listed under their session (.../assessors)
        experiments = [e for e in experiments if not is_assessor(e)]
    wanted = text(request, "xsiType")
    if wanted:  # a type selects its subtypes too: xnat:subjectAssessorData lists every session
        experiments = [e for e in experiments if e.xsi_type in DATA_TYPES and DATA_TYPES[e.xsi_type].is_a(wanted)]
    rows = [render.experiment_row(e) for e in experiments]
    scan_columns = [c.strip() for c in text(request, "columns").split(",") if render.is_scan_column(c.strip())]
    if scan_columns:
        rows = _scan_rows(located.catalog, experiments, rows, scan_columns)
    return render.result_set(request, rows, render.EXPERIMENT_COLUMNS, title="Experiments")


def _scan_rows(catalog: Catalog, experiments: list[Experiment], rows: list[dict], columns: list[str]) -> list[dict]:
    """An experiments listing asking for scan columns (pyxnat's ``array.scans``): one row per scan of the type,
    keyed by the columns' lower-case paths; a session without such scans keeps one row with them empty."""
    scan_type = columns[0].split("/", 1)[0]
    expanded = []
    for experiment, row in zip(experiments, rows, strict=True):
        scans = [scan for scan in catalog.list_scans(experiment)
                 if scan.xsi_type in DATA_TYPES and DATA_TYPES[scan.xsi_type].is_a(scan_type)]
        for scan in scans or [None]:
            values = {}
            for column in columns:
                path = column.split("/", 1)[1]
                values[column.lower()] = "" if scan is None else scan.id if path == "ID" else \
                    scan.fields["data"].get(path, "")
            expanded.append(render.Row({**row, **values}, getattr(row, "fields", {})))
    return expanded


def wanted_assessors(request: Request) -> bool:
    """Whether a listing's xsiType asks for assessors (``?xsiType=xnat:qcAssessmentData``)."""
    wanted = text(request, "xsiType")
    return bool(wanted) and any(t.is_a(wanted) and t.kind == "assessor" for t in DATA_TYPES.values())


async def get_experiment(request: Request) -> Response:
    located = locate(request)
    experiment = located.experiment
    body = render.experiment_object(experiment, located.catalog.list_scans(experiment))
    body["items"][0]["children"] += sharing.sharing_children(located.catalog, "experiment", experiment.id)
    return render.object_response(request, body)


async def put_experiment(request: Request) -> Response:
    located = locate(request, subject=False, experiment=False)
    body_type, from_body = await body_updates(request)
    updates = {**from_body, **field_updates(request, EXPERIMENT_SHORTCUTS)}
    if flag(request, "quarantine"):
        updates["status"] = "quarantine"
    if flag(request, "activate"):
        updates["status"] = "active"
    xsi_type = text(request, "xsiType") or body_type or ""
    if xsi_type:
        checked_type(xsi_type, ("experiment",), "experiment")
    experiment, created = await run_in_threadpool(
        located.catalog.put_experiment, located.project, request.path_params.get("subject"),
        request.path_params["experiment"], xsi_type or None, updates, text(request, "label") or None)
    if flag(request, "pullDataFromHeaders"):  # scan and session fields from the DICOM files of the scans
        await run_in_threadpool(located.catalog.headers.pull_data_from_headers, experiment, declares_field)
    return render.text_response(experiment.id, _put_status(created))


def declares_field(xsi_type: str, path: str) -> bool:
    """Whether the served schema gives ``xsi_type`` the field ``path``."""
    data_type = DATA_TYPES.get(xsi_type)
    return data_type is not None and path in data_type.fields


async def delete_experiment(request: Request) -> Response:
    located = locate(request, subject=False, experiment=False)
    await run_in_threadpool(located.catalog.delete_experiment, located.project, request.path_params["experiment"],
                            flag(request, "removeFiles"), request.path_params.get("subject"))
    return render.text_response("")


async def experiment_status(request: Request) -> Response:
    experiment = locate(request).experiment
    return render.text_response(experiment.fields["data"].get("status", "active"))


# -- scans ------------------------------------------------------------------------------------------------
async def list_scans(request: Request) -> Response:
    located = locate(request)
    scans = located.catalog.list_scans(located.experiment)
    return render.result_set(request, [render.scan_row(s, request.url.path.rstrip("/")) for s in scans],
                             render.SCAN_COLUMNS,
                             title="Scans")


async def get_scan(request: Request) -> Response:
    located = locate(request)
    scan = located.catalog.scan(located.experiment, request.path_params["scan"])
    return render.object_response(request, render.scan_object(scan))


async def put_scan(request: Request) -> Response:
    located = locate(request)
    experiment = located.experiment
    body_type, from_body = await body_updates(request)
    xsi_type = text(request, "xsiType") or body_type or ""
    if not xsi_type:  # XNAT's default: the scan type of the session's modality (xnat:mrSessionData: mrScanData)
        session_type = DATA_TYPES.get(experiment.xsi_type)
        xsi_type = scan_type_for_modality(session_type.modality if session_type and session_type.modality else "")
    checked_type(xsi_type, ("scan",), "scan")
    updates = {**from_body, **field_updates(request, SCAN_SHORTCUTS)}
    scan_id = _given_id(updates, request.path_params["scan"], lambda ref: located.catalog.has_scan(experiment, ref))
    scan, created = await run_in_threadpool(located.catalog.put_scan, experiment, scan_id, xsi_type, updates)
    return render.text_response(scan.id, _put_status(created))


async def delete_scan(request: Request) -> Response:
    located = locate(request)
    await run_in_threadpool(located.catalog.delete_scan, located.experiment, request.path_params["scan"],
                            flag(request, "removeFiles"))
    return render.text_response("")
