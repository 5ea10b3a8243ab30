"""Server-wide routes: /system, /statistics, /changes, /exports."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ... import __version__
from .json import json_response
from .params import archive_of, flag, integer
from .render import resource_path

# The Orthanc release whose REST API pacsbox follows; clients gate features on it.
ORTHANC_VERSION = "1.10.1"
API_VERSION = 16
DATABASE_VERSION = 6
_MAX_CHANGES = 10000


async def system(request: Request) -> Response:
    config = request.app.state.config
    return json_response({
        "ApiVersion": API_VERSION,
        "CheckRevisions": bool(config.CheckRevisions),
        "DatabaseBackendPlugin": None,
        "DatabaseVersion": DATABASE_VERSION,
        "DicomAet": config.DicomAet,
        "DicomPort": request.app.state.dicom_port,
        "HttpPort": request.app.state.http_port,
        "IsHttpServerSecure": config.AuthenticationEnabled or not config.RemoteAccessAllowed,
        "Name": config.Name,
        "PluginsEnabled": True,  # as Debian's Orthanc, built with plugin support, says with or without plugins
        "StorageAreaPlugin": None,
        "Version": ORTHANC_VERSION,
        "PacsboxVersion": __version__,
        "UserMetadata": dict(config.UserMetadata),
    })


async def statistics(request: Request) -> Response:
    stats = await run_in_threadpool(archive_of(request).statistics)
    size, disk_size = stats["size"], stats["disk_size"]
    return json_response({
        "CountPatients": stats["patients"],
        "CountStudies": stats["studies"],
        "CountSeries": stats["series"],
        "CountInstances": stats["instances"],
        "TotalDiskSize": str(disk_size),
        "TotalDiskSizeMB": disk_size // (1024 * 1024),
        "TotalUncompressedSize": str(size),
        "TotalUncompressedSizeMB": size // (1024 * 1024),
    })


def _change_json(change) -> dict:
    return {
        "ChangeType": change.change_type,
        "Date": change.date,
        "ID": change.public_id,
        "Path": resource_path(change.level, change.public_id),
        "ResourceType": change.level.title,
        "Seq": change.seq,
    }


async def changes(request: Request) -> Response:
    archive = archive_of(request)
    if flag(request, "last"):
        last_change, last = await run_in_threadpool(archive.last_change)
        found = [_change_json(last_change)] if last_change else []
        return json_response({"Changes": found, "Done": True, "Last": last})
    since = integer(request, "since", 0)
    limit = min(integer(request, "limit", 100), _MAX_CHANGES)
    page, done, last = await run_in_threadpool(archive.changes, since, limit)
    return json_response({"Changes": [_change_json(c) for c in page], "Done": done, "Last": last})


async def clear_changes(request: Request) -> Response:
    await run_in_threadpool(archive_of(request).clear_changes)
    return PlainTextResponse("")


async def exports(request: Request) -> Response:
    since = integer(request, "since", 0)
    limit = min(integer(request, "limit", 100) or 100, _MAX_CHANGES)
    page, done, last = await run_in_threadpool(archive_of(request).exports, since, limit)
    body = [{
        "Date": e.date, "ID": e.public_id, "Path": resource_path(e.level, e.public_id), "PatientID": e.patient_id,
        "RemoteModality": e.remote_modality, "ResourceType": e.level.title, "Seq": e.seq,
        "StudyInstanceUID": e.study_uid, "SeriesInstanceUID": e.series_uid, "SOPInstanceUID": e.sop_uid,
    } for e in page]
    return json_response({"Done": done, "Exports": body, "Last": last})


async def clear_exports(request: Request) -> Response:
    await run_in_threadpool(archive_of(request).clear_exports)
    return PlainTextResponse("")
