"""The informational and server-control /tools routes (the listing, now, generate-uid, dicom-conformance,
dicom-echo, invalidate-tags, metrics-prometheus, reset, shutdown) and /plugins.

Answers follow Orthanc 1.10.1 (measured: tests/faces/orthanc/test_tools_differential.py). The server-control
routes act through ``app.state.control`` (``http_app.ServerControl``), set by the server that runs the face.
"""

from __future__ import annotations

import datetime
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.errors import BadFormat, Unsupported
from ...core.metrics import prometheus_text
from ...core.modalities import parse_modality
from . import modalities
from . import scu_params as fields
from .errors import OrthancError
from .json import json_response
from .params import archive_of
from .tools_settings import plain_text, small_body

_DICOM_DATE_TIME = "%Y%m%dT%H%M%S"  # Orthanc's /tools/now: ISO 8601 basic format, to the second
_UID_LEVELS = ("study", "series", "instance")
# What /plugins/dicom-web says of the plugin pacsbox's DICOMweb face follows. The real one also extends Orthanc
# Explorer and names its web page (RootUri); pacsbox serves neither, so it says so rather than name a page that 404s.
DICOMWEB_PLUGIN = {"Description": "Implementation of DICOMweb (QIDO-RS, STOW-RS and WADO-RS) and WADO-URI.",
                   "ExtendsOrthancExplorer": False, "ID": "dicom-web", "Version": "1.7"}
_EXPLORER_JS = "// Extensions to Orthanc Explorer by the registered plugins\n\n"
PROMETHEUS_TYPE = "text/plain; version=0.0.4"
# the connection closes after the answer, so that a client's next request reaches the restarted server
_LAST_ON_CONNECTION = {"Connection": "close"}


async def list_tools(request: Request) -> Response:
    """GET /tools: the names below /tools/ of the routes this server serves, sorted as Orthanc lists them."""
    names = {route.path.split("/")[2] for route in request.app.routes
             if route.path.startswith("/tools/") and route.path.count("/") == 2}
    return json_response(sorted(names))


async def now(request: Request) -> Response:
    return plain_text(datetime.datetime.now(datetime.timezone.utc).strftime(_DICOM_DATE_TIME))


async def now_local(request: Request) -> Response:
    return plain_text(datetime.datetime.now().strftime(_DICOM_DATE_TIME))


async def generate_uid_route(request: Request) -> Response:
    """A new UID for a study, series or instance (pydicom's root: Orthanc's is DCMTK's, which is not pacsbox's
    to use), a UUID for a patient; any other level is an empty 404, as in Orthanc."""
    level = request.query_params.get("level", "")
    if level == "patient":
        return plain_text(str(uuid.uuid4()))
    if level in _UID_LEVELS:
        from pydicom.uid import generate_uid  # pydicom loads on first use, not at start-up

        return plain_text(str(generate_uid()))
    return Response(status_code=404)


async def dicom_conformance(request: Request) -> Response:
    return plain_text(_control(request).dicom_conformance())


async def dicom_echo(request: Request) -> Response:
    """C-ECHO a modality described in the body (``/modalities/{id}`` form: an object or an array)."""
    body = fields.parse_json(await small_body(request))
    if body is fields.NOT_JSON:
        raise BadFormat("Cannot parse the JSON body")
    if isinstance(body, dict) and not isinstance(body.get("AET"), str):
        raise BadFormat("String value expected in field: AET")
    try:
        modality = parse_modality("dicom-echo", body)
    except BadFormat as error:  # Orthanc's "Bad file format", with details only where Orthanc gives them
        raise OrthancError(15, "Bad file format", 400, error.details) from None
    await modalities.echo_modality(request, modality, body if isinstance(body, dict) else {})
    return _empty_json()


async def invalidate_tags(request: Request) -> Response:
    """Orthanc drops its cached DICOM-as-JSON summaries here; pacsbox renders tags from the file each time, so
    there is nothing to drop."""
    return plain_text("")


async def metrics_prometheus(request: Request) -> Response:
    """The metrics in Prometheus's text format; empty while metrics are disabled, as in Orthanc."""
    archive = archive_of(request)
    if not archive.settings.metrics_enabled:
        return Response(b"", headers={"Content-Type": PROMETHEUS_TYPE})
    stats = await run_in_threadpool(archive.statistics)
    metrics = archive.metrics
    metrics.set("orthanc_dicom_cache_count", 0)  # pacsbox keeps no cache of parsed files: each read parses
    metrics.set("orthanc_dicom_cache_size", 0)
    for level in ("patients", "studies", "series", "instances"):
        metrics.set(f"orthanc_count_{level}", stats[level])
    metrics.set("orthanc_disk_size_mb", stats["disk_size"] / (1024 * 1024))  # compressed files as stored
    metrics.set("orthanc_uncompressed_size_mb", stats["size"] / (1024 * 1024))
    for state in ("completed", "failed", "pending", "running", "success"):
        metrics.set(f"orthanc_jobs_{state}", 0)  # pacsbox runs every request synchronously: it has no jobs
    return Response(prometheus_text(metrics.samples()).encode(), headers={"Content-Type": PROMETHEUS_TYPE})


async def reset(request: Request) -> Response:
    """Restart: the configuration file is read again, the archive reopened (data kept), the run-time settings
    seeded again; the ports stay. The answer goes out first."""
    _control(request).restart()
    return _empty_json(_LAST_ON_CONNECTION)


async def shutdown(request: Request) -> Response:
    """Stop the server cleanly once this answer has gone out."""
    _control(request).shutdown()
    return _empty_json(_LAST_ON_CONNECTION)


def _serves_dicomweb(request: Request) -> bool:
    """Whether this server answers DICOMweb, which a real Orthanc does through its DICOMweb plugin."""
    section = request.app.state.config.DicomWeb or {}
    return bool(section.get("Enable", True))


async def list_plugins(request: Request) -> Response:
    """The Orthanc Explorer extensions, which Orthanc always lists, then "dicom-web" when the DICOMweb face is on
    (clients probe ``/plugins`` before they use DICOMweb)."""
    return json_response(["explorer.js", *(["dicom-web"] if _serves_dicomweb(request) else [])])


async def plugin(request: Request) -> Response:
    name = request.path_params["id"]
    if name == "explorer.js":
        return Response(_EXPLORER_JS, media_type="application/javascript")
    if name == "dicom-web" and _serves_dicomweb(request):
        return json_response(DICOMWEB_PLUGIN)
    return Response(status_code=404)  # an unknown plugin is an empty 404, as in Orthanc


def _empty_json(headers: dict[str, str] | None = None) -> Response:
    """Orthanc's ``{}`` answer of an action: ``application/json`` without a charset."""
    return Response(b"{}", headers={"Content-Type": "application/json", **(headers or {})})


def _control(request: Request):
    control = getattr(request.app.state, "control", None)
    if control is None:
        raise Unsupported("This route needs a running pacsbox server (the face runs without one)")
    return control
