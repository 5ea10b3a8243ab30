"""Resources and files at every level: listings, uploads (raw body, ``extract``), downloads and zips.

Zips follow XNAT's layout: ``<session>/scans/<scan>-<type>/resources/<label>/files/<path>`` for scans,
``<session>/resources/<label>/files/<path>`` for sessions, ``<label of the subject or project>/resources/...``
above.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...core.catalog_files import Resource, Resources
from ...core.errors import UnknownResource
from ...core.safe_paths import archive_member
from ..http_common import content_disposition, spool_directory, stored_file_response
from . import render
from .errors import XnatError
from .objects import locate
from .params import archive_of, field_updates, flag, response_format, spool_body, text

_CHUNK = 1024 * 1024


def _resources(request: Request) -> Resources:
    return archive_of(request).catalog.resources


def owner_of(request: Request):
    """The owner of the resources a URL names: its scan, experiment, subject or project."""
    located = locate(request)
    resources = located.catalog.resources
    if located.experiment is not None and "reconstruction" in request.path_params:
        reconstruction = located.catalog.reconstructions.get(located.experiment,
                                                             request.path_params["reconstruction"])
        return resources.owner(project=located.experiment.project, experiment=located.experiment,
                               reconstruction=reconstruction.id)
    if located.experiment is not None:
        scan = request.path_params.get("scan")
        if scan is not None:
            located.catalog.scan(located.experiment, scan)
        return resources.owner(project=located.experiment.project, experiment=located.experiment, scan=scan)
    if located.subject is not None:
        return resources.owner(project=located.subject.project, subject=located.subject)
    return resources.owner(project=located.project)


def _resource(request: Request) -> Resource:
    return _resources(request).get(owner_of(request), request.path_params["resource"])


def _resource_uri(request: Request) -> str:
    """The URL of the resource a request names (file URIs in listings start with it)."""
    path = request.url.path
    marker = f"/resources/{request.path_params['resource']}"
    return path[: path.index(marker) + len(marker)] if marker in path else path


_RESOURCE_FIELDS = ("format", "content", "tags", "description")


def _resource_fields(request: Request) -> dict[str, str]:
    """``?format=..&content=..&tags=..``, or the same as ``xnat:resourceCatalog/format=..`` fields."""
    updates = field_updates(request, {key: key for key in _RESOURCE_FIELDS})
    return {key: value for key, value in updates.items() if key in _RESOURCE_FIELDS and value}


# -- resources --------------------------------------------------------------------------------------------
async def list_resources(request: Request) -> Response:
    resources = _resources(request).list(owner_of(request))
    return render.result_set(request, [render.resource_row(r) for r in resources], render.RESOURCE_COLUMNS,
                             honour_columns=False)


async def get_resource(request: Request) -> Response:
    return render.json_response(render.resource_object(_resource(request)))


async def put_resource(request: Request) -> Response:
    resources = _resources(request)
    resource, created = await run_in_threadpool(resources.put, owner_of(request), request.path_params["resource"],
                                                _resource_fields(request))
    return render.text_response(str(resource.rid), 201 if created else 200)


async def delete_resource(request: Request) -> Response:
    await run_in_threadpool(_resources(request).delete, owner_of(request), request.path_params["resource"],
                            flag(request, "removeFiles"))
    return render.text_response("")


# -- files ------------------------------------------------------------------------------------------------
async def list_files(request: Request) -> Response:
    resource = _resource(request)
    if response_format(request) == "zip":
        return await _zip_response(request, [resource], f"{resource.label}.zip")
    entries = _resources(request).files(resource)
    uri = _resource_uri(request)
    return render.result_set(request, [render.file_row(e, resource, uri) for e in entries], render.FILE_COLUMNS,
                             honour_columns=False)


async def get_file(request: Request) -> Response:
    resource = _resource(request)
    entry = _resources(request).file(resource, request.path_params["path"])
    return await stored_file_response(
        entry.disk, "application/dicom" if entry.instance else "application/octet-stream",
        lambda: UnknownResource(f"The file {entry.path} is missing from the storage area"),
        attachment=entry.path.rsplit("/", 1)[-1])


async def upload_file(request: Request) -> Response:
    """PUT, or POST (pyxnat adds inbody=true), of a raw body to ``.../files/<path>``; ``extract=true`` unpacks
    a zip, tar or tar.gz. Format, content and tags describe the file."""
    owner = owner_of(request)
    body = await spool_body(request)
    try:
        fields = {key: text(request, key) for key in ("format", "content", "tags")}
        await run_in_threadpool(
            _resources(request).upload, owner, request.path_params["resource"],
            request.path_params.get("path", ""), body, overwrite=flag(request, "overwrite"),
            extract=flag(request, "extract"), fields=fields)
    finally:
        body.close()
    return render.text_response("")


async def delete_file(request: Request) -> Response:
    resource = _resource(request)
    await run_in_threadpool(_resources(request).delete_file, resource, request.path_params["path"])
    return render.text_response("")


async def scan_files(request: Request) -> Response:
    """``.../scans/<ALL|id,id,...>/files``: the files of a session's scans, listed or zipped."""
    located = locate(request)
    experiment = located.experiment
    wanted = request.path_params["scan"]
    scans = None if wanted.upper() == "ALL" else [s for s in wanted.split(",") if s]
    for scan in scans or []:
        located.catalog.scan(experiment, scan)
    resources = located.catalog.resources.list_below(experiment, scans)
    return await _files_of(request, resources, f"{experiment.label}.zip")


async def experiment_files(request: Request) -> Response:
    """``.../experiments/<E>/files``: the files of the session's own resources and of its scans."""
    located = locate(request)
    catalog = located.catalog
    own = catalog.resources.list(catalog.resources.owner(project=located.experiment.project,
                                                         experiment=located.experiment))
    resources = own + catalog.resources.list_below(located.experiment, None)
    return await _files_of(request, resources, f"{located.experiment.label}.zip")


async def owner_files(request: Request) -> Response:
    """``/projects/P/files`` and ``.../subjects/S/files``: the files of the object's own resources."""
    owner = owner_of(request)
    name = owner.labels.get("subject", owner.project)
    return await _files_of(request, _resources(request).list(owner), f"{name}.zip")


async def _files_of(request: Request, resources: list[Resource], zip_name: str) -> Response:
    if response_format(request) == "zip":
        return await _zip_response(request, resources, zip_name)
    store = _resources(request)
    rows = []
    for resource in resources:
        uri = _uri_of(resource)
        rows += [render.file_row(e, resource, uri) for e in store.files(resource)]
    return render.result_set(request, rows, render.FILE_COLUMNS, honour_columns=False)


def _uri_of(resource: Resource) -> str:
    owner = resource.owner
    if owner.kind == "project":
        base = f"/data/projects/{owner.project}"
    elif owner.kind == "subject":
        base = f"/data/projects/{owner.project}/subjects/{owner.subject}"
    else:
        below = {"scan": f"/scans/{owner.scan}", "reconstruction": f"/reconstructions/{owner.scan}"}
        base = f"/data/experiments/{owner.experiment}" + below.get(owner.kind, "")
    return f"{base}/resources/{resource.rid}"


# -- zips -------------------------------------------------------------------------------------------------
def _clean(text_value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text_value)


def _zip_prefix(request: Request, resource: Resource) -> str:
    owner = resource.owner
    if owner.kind == "scan":
        catalog = archive_of(request).catalog
        experiment = catalog.experiment(None, owner.experiment)
        scan_type = catalog.scan(experiment, owner.scan).fields["data"].get("type", "")
        scan_folder = f"{owner.scan}-{_clean(scan_type)}" if scan_type else owner.scan
        return f"{owner.labels['session']}/scans/{scan_folder}"
    if owner.kind == "experiment":
        return owner.labels["session"]
    if owner.kind == "subject":
        return owner.labels["subject"]
    return owner.project


def _write_zip(entries: list[tuple[str, Path]], directory: str) -> BinaryIO:
    output = tempfile.TemporaryFile(dir=directory)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for name, disk in entries:
            try:
                # ZipFile.write opens the file before it writes the member's header: a file gone leaves no trace
                zipped.write(disk, name)
            except FileNotFoundError:  # deleted (through the Orthanc face, say) since the listing: left out
                continue
    output.seek(0)
    return output


async def _zip_response(request: Request, resources: list[Resource], name: str) -> Response:
    store = _resources(request)
    entries = []
    for resource in resources:
        prefix = _zip_prefix(request, resource)
        entries += [(archive_member(prefix, "resources", resource.label, "files", e.path), e.disk)
                    for e in store.files(resource)]
    return await zip_response(request, entries, name)


async def zip_response(request: Request, entries: list[tuple[str, Path]], name: str) -> Response:
    """A zip of the given files (name in the zip, from ``archive_member``: relative, no ``..``; file on disk),
    built in a temporary file and streamed."""
    missing = [name for name, disk in entries if not disk.is_file()]
    if missing:
        raise XnatError(404, f"Files missing from the storage area: {', '.join(missing[:3])}")
    output = await run_in_threadpool(_write_zip, entries, spool_directory(request.app.state.config))

    def chunks() -> Iterator[bytes]:
        while chunk := output.read(_CHUNK):
            yield chunk

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Disposition": content_disposition(name)},
                             background=BackgroundTask(output.close))
