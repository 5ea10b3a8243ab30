"""The prearchive's routes: sessions (by project), a session, its scans, resources and files, and their zips."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import xnat_date
from ...core.catalog_prearchive import Prearchive, PrearchiveScan, PrearchiveSession
from ...core.errors import UnknownResource
from ...core.safe_paths import archive_member
from ..http_common import stored_file_response
from . import render
from .access import readable_projects
from .errors import XnatError
from .files import zip_response
from .params import archive_of, response_format


def _prearchive(request: Request) -> Prearchive:
    return archive_of(request).catalog.importer.prearchive


SESSION_COLUMNS = ("project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName",
                   "name", "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE",
                   "VISIT", "PROTOCOL", "TIMEZONE", "TAG")
SCAN_COLUMNS = ("ID", "series_description", "modality", "file_count", "file_size")


def session_row(session: PrearchiveSession) -> dict[str, Any]:
    tags = session.study_tags
    date, moment = tags.get("StudyDate", ""), tags.get("StudyTime", "")
    url = f"/prearchive/projects/{session.project}/{session.timestamp}/{session.name}"
    return {
        "project": session.project, "timestamp": session.timestamp, "lastmod": xnat_date(session.lastmod),
        "uploaded": xnat_date(session.uploaded),
        "scan_date": f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) >= 8 else "",
        "scan_time": f"{moment[:2]}:{moment[2:4]}:{moment[4:6]}" if len(moment) >= 6 else "",
        "subject": session.subject, "folderName": session.name, "name": session.name,
        "tag": tags.get("StudyInstanceUID", ""), "status": session.status, "url": url,
        "autoarchive": "Manual", "prevent_anon": "false", "prevent_auto_commit": "false",
        "SOURCE": "DICOM C-STORE" if session.source == "dicom" else "Import", "VISIT": "", "PROTOCOL": "",
        "TIMEZONE": "", "TAG": tags.get("StudyInstanceUID", ""),
    }


def _session(request: Request) -> PrearchiveSession:
    params = request.path_params
    return _prearchive(request).session(params["project"], params["timestamp"], params["name"])


def _scan(request: Request) -> tuple[PrearchiveSession, PrearchiveScan]:
    session = _session(request)
    return session, _prearchive(request).scan(session, request.path_params["scan"])


def _check_resource(request: Request) -> None:
    if request.path_params["resource"] != "DICOM":
        raise UnknownResource(f"Unknown resource {request.path_params['resource']!r}: prearchive scans hold DICOM")


async def list_sessions(request: Request) -> Response:
    project = request.path_params.get("project")
    sessions = await run_in_threadpool(_prearchive(request).sessions, project)
    readable = readable_projects(request)  # others' sessions (and the unassigned ones) only to administrators
    if readable is not None:
        sessions = [s for s in sessions if s.project in readable]
    return render.result_set(request, [session_row(s) for s in sessions], SESSION_COLUMNS,
                             honour_columns=False)


async def get_session(request: Request) -> Response:
    session = _session(request)
    if response_format(request) == "zip":
        scans = _prearchive(request).scans(session)
        return await _zip(request, session, scans)
    return render.result_set(request, [session_row(session)], SESSION_COLUMNS, honour_columns=False)


async def post_session(request: Request) -> Response:
    """POST a prearchive session with ``action=build`` (query or form body): XNAT's reset, which rebuilds the
    session from its files (pyxnat's ``prearchive.reset``)."""
    from .services import form_values  # the services module imports this one's helpers

    session = _session(request)
    action = ((await form_values(request)).get("action") or [""])[0].lower()
    if action not in ("build", "rebuild", "reset"):
        raise XnatError(400, f"Unsupported prearchive session action {action!r}: use action=build")
    rebuilt = await run_in_threadpool(_prearchive(request).rebuild, session)
    return render.text_response(f"/data/prearchive/projects/{rebuilt.project}/{rebuilt.timestamp}/{rebuilt.name}")


async def delete_session(request: Request) -> Response:
    session = _session(request)
    await run_in_threadpool(_prearchive(request).delete, session)
    return render.text_response("")


def _scan_row(scan: PrearchiveScan) -> dict[str, Any]:
    return {"ID": scan.id, "series_description": scan.series_tags.get("SeriesDescription", ""),
            "modality": scan.series_tags.get("Modality", ""), "file_count": str(len(scan.files)),
            "file_size": str(sum(f.size for f in scan.files))}


async def list_scans(request: Request) -> Response:
    scans = _prearchive(request).scans(_session(request))
    return render.result_set(request, [_scan_row(s) for s in scans], SCAN_COLUMNS, honour_columns=False)


async def get_scan(request: Request) -> Response:
    session, scan = _scan(request)
    if response_format(request) == "zip":
        return await _zip(request, session, [scan])
    return render.result_set(request, [_scan_row(scan)], SCAN_COLUMNS, honour_columns=False)


async def list_resources(request: Request) -> Response:
    _, scan = _scan(request)
    row = {"label": "DICOM", "format": "DICOM", "content": "RAW", "file_count": str(len(scan.files)),
           "file_size": str(sum(f.size for f in scan.files))}
    return render.result_set(request, [row], tuple(row), honour_columns=False)


async def list_files(request: Request) -> Response:
    _check_resource(request)
    session, scan = _scan(request)
    if response_format(request) == "zip":
        return await _zip(request, session, [scan])
    base = request.url.path.rstrip("/")
    if not base.endswith("/files"):
        base += "/files"
    rows = [{"Name": f.path, "Size": str(f.size), "URI": f"{base}/{f.path}", "collection": "DICOM",
             "file_format": "DICOM", "file_content": "RAW", "file_tags": "", "digest": f.md5} for f in scan.files]
    return render.result_set(request, rows, render.FILE_COLUMNS, honour_columns=False)


async def get_file(request: Request) -> Response:
    _check_resource(request)
    _, scan = _scan(request)
    wanted = request.path_params["path"]
    entry = next((f for f in scan.files if f.path == wanted), None)

    def unknown() -> UnknownResource:
        return UnknownResource(f"Unknown file {wanted!r} in prearchive scan {scan.id}")

    if entry is None:
        raise unknown()
    return await stored_file_response(entry.disk, "application/dicom", unknown, attachment=entry.path)


async def _zip(request: Request, session: PrearchiveSession, scans: list[PrearchiveScan]) -> Response:
    entries = [(archive_member(session.name, "scans", scan.id, "resources", "DICOM", "files", f.path), f.disk)
               for scan in scans for f in scan.files]
    return await zip_response(request, entries, f"{session.name}.zip")
