"""Remote DICOMweb servers, as the Orthanc DICOMweb plugin 1.7 knows them (``/dicom-web/servers``), and what this
server asks of them: STOW-RS of archived resources, QIDO-RS and plain GETs relayed, WADO-RS retrieval into the
archive.

The registry is seeded from ``DicomWeb.Servers`` (the plugin's array ``[url, user, password]`` or object form,
read as Orthanc peers are) and changed at run time by PUT and DELETE, in memory as the plugin keeps it. Bodies,
answers and errors follow the real plugin (tests/faces/dicomweb/test_servers.py); STOW and retrieve run as jobs
(``client_jobs``). The outgoing HTTP client is the
one of the Orthanc peers (``core.peers.PeerConnection``): standard library only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive, Origin
from ...core.errors import BadFormat, NetworkError, UnknownResource, Unsupported
from ...core.peers import Peer, PeerAnswer, PeerConnection, parse_peer
from . import client_jobs
from .errors import DicomWebError, bad_format, bad_request, out_of_range, unknown_resource
from .multipart import close_parts, media_type_of, new_boundary, read_parts, whole
from .server_registry import ServerRegistry

# What GET /dicom-web/servers/{id} lists: the plugin's operations, in its order ("delete" follows for a server
# whose HasDelete property is true).
OPERATIONS = ["get", "retrieve", "stow", "wado", "qido"]
_NO_DELETE_TARGET = 'The request body must contain a JSON object with fields "Level" and "StudyInstanceUID"'
# the UIDs a DELETE names at each level, after the study's
_DELETE_LEVELS = {"study": (), "series": ("SeriesInstanceUID",), "instance": ("SeriesInstanceUID", "SOPInstanceUID")}
_WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_NO_URI = ('A request to the DICOMweb client must provide a JSON object with the field "Uri" containing the URI '
           "of interest")
_NO_RESOURCES = 'The body must be a JSON object containing an array "Resources"'
_PLUGIN_FAILURE = "Error encountered within the plugin engine"
_MEGABYTE = 1024 * 1024


def _registry(request: Request) -> ServerRegistry:
    return request.app.state.servers


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, indent=3), status_code=status, media_type="application/json")


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise bad_format("A JSON file was expected") from None


# -- the registry -------------------------------------------------------------------------------------------------
async def list_servers(request: Request) -> Response:
    """GET /servers: the names; with ``expand`` their public configuration (secrets as null)."""
    if "expand" in request.query_params:
        return _json({name: server.public_json() for name, server in _registry(request).items()})
    return _json([name for name, _ in _registry(request).items()])


async def operations(request: Request) -> Response:
    """GET /servers/{id}: what can be asked of the server."""
    server = _registry(request).get(request.path_params["id"])
    return _json(OPERATIONS + (["delete"] if _has_delete(server) else []))


def _has_delete(server: Peer) -> bool:
    """The server's ``HasDelete`` user property (kept as text, booleans as "1"/"0"), read as the plugin reads a
    Boolean property: anything but true or false is a 400 that names it."""
    value = server.user_properties.get("HasDelete")
    if value is None or value in ("0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise bad_format("Bad value for a Boolean user property in the parameters of a Web service: "
                     f'Property "HasDelete" equals: {value}')


async def put_server(request: Request) -> Response:
    """PUT /servers/{id}: add or replace a server (the plugin's body: Url, Username, Password, HttpHeaders, ...)."""
    body = await _json_body(request)
    if not isinstance(body, Mapping):
        raise bad_format("A JSON file was expected")
    try:
        server = parse_peer(body)
    except BadFormat as error:
        raise bad_format(error.details) from None
    _registry(request).put(request.path_params["id"], server)
    return _json({})


async def delete_server(request: Request) -> Response:
    """DELETE /servers/{id}."""
    _registry(request).remove(request.path_params["id"])
    return _json({})


# -- the client ---------------------------------------------------------------------------------------------------
def _extra_headers(body: Mapping[str, Any]) -> dict[str, str]:
    """The request's own ``HttpHeaders`` (added to the server's)."""
    headers = body.get("HttpHeaders", {})
    if not isinstance(headers, Mapping) or not all(isinstance(value, str) for value in headers.values()):
        raise bad_format('"HttpHeaders" must be an object of strings')
    for name, value in headers.items():
        if not name or any(char in str(name) + value for char in "\r\n\0"):
            raise bad_request(f"Bad HTTP header: {name!r}")
    return dict(headers)


def _exchange(server: Peer, method: str, path: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> PeerAnswer:
    """One request to the server; a failed exchange or an error status becomes the plugin's error."""
    try:
        with PeerConnection(server) as connection:
            answer = connection.request(method, path, body, headers=headers)
    except NetworkError:
        raise DicomWebError(500, 9, "Error in the network protocol") from None
    except Unsupported as error:
        raise DicomWebError(501, 2, "Not implemented yet", error.details) from None
    if answer.status == 404:
        raise unknown_resource()
    if answer.status == 400:
        raise bad_request()
    if not answer.ok:
        raise DicomWebError(500, 9, "Error in the network protocol", f"HTTP status {answer.status} from the server")
    return answer


def _relative(uri: object, arguments: object) -> str:
    """The server-relative path of ``Uri`` with ``Arguments`` as its query."""
    if not isinstance(uri, str):
        raise bad_format(_NO_URI)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise bad_format('"Arguments" must be an object')
    for name, value in arguments.items():
        if not isinstance(value, str):
            raise bad_format(f'Value "{name}" in the associative array is not a string as expected')
    if any(char in uri for char in "\r\n\0 ") or "://" in uri:
        raise bad_request(f"Bad URI: {uri!r}")
    path = uri.lstrip("/")
    if arguments:
        path += ("&" if "?" in path else "?") + urlencode(dict(arguments))
    return path


async def _client_request(request: Request, expected: str) -> tuple[Peer, Mapping[str, Any]]:
    """The server named in the path and the JSON object of the body (else ``expected`` says what it must be)."""
    server = _registry(request).get(request.path_params["id"])
    body = await _json_body(request)
    if not isinstance(body, Mapping):
        raise bad_format(expected)
    return server, body


async def get(request: Request) -> Response:
    """POST /servers/{id}/get: the server's answer to a GET of ``Uri``, relayed as is."""
    server, body = await _client_request(request, _NO_URI)
    if "Uri" not in body:
        raise bad_format(_NO_URI)
    path, headers = _relative(body["Uri"], body.get("Arguments")), _extra_headers(body)
    answer = await run_in_threadpool(_exchange, server, "GET", path, None, headers)
    return Response(answer.body, media_type=answer.headers.get("content-type", "application/octet-stream"))


async def qido(request: Request) -> Response:
    """POST /servers/{id}/qido: a QIDO-RS query relayed, each attribute re-shaped as the plugin does."""
    server, body = await _client_request(request, _NO_URI)
    if "Uri" not in body:
        raise bad_format(_NO_URI)
    path = _relative(body["Uri"], body.get("Arguments"))
    headers = {**_extra_headers(body), "Accept": "application/dicom+json"}
    answer = await run_in_threadpool(_exchange, server, "GET", path, None, headers)
    try:
        matches = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        raise DicomWebError(500, 9, "Error in the network protocol", "The server's answer is not JSON") from None
    if not isinstance(matches, list) or not all(isinstance(match, Mapping) for match in matches):
        raise DicomWebError(500, 9, "Error in the network protocol", "The server's answer is not a QIDO-RS answer")
    return _json([_reshaped(match) for match in matches])


def _reshaped(match: Mapping[str, Any]) -> dict[str, Any]:
    """The plugin's rendering of one QIDO-RS match: per tag its Group, Element, Name, vr and first value as text
    (a person name's alphabetic form; numbers and sequences give no Value)."""
    from pydicom.datadict import keyword_for_tag  # pydicom loads on first use, not at start-up

    result: dict[str, Any] = {}
    for key, attribute in match.items():
        try:
            tag = int(key, 16)
        except ValueError:
            continue
        if len(key) != 8 or not isinstance(attribute, Mapping):
            continue
        item: dict[str, Any] = {"Element": tag & 0xFFFF, "Group": tag >> 16}
        name = keyword_for_tag(tag)
        if name:
            item["Name"] = name
        values = attribute.get("Value")
        if isinstance(values, list) and values:
            first = values[0]
            if isinstance(first, str):
                item["Value"] = first
            elif isinstance(first, Mapping) and isinstance(first.get("Alphabetic"), str):
                item["Value"] = first["Alphabetic"]
        item["vr"] = attribute.get("vr")
        result[key.upper()] = item
    return result


async def stow(request: Request) -> Response:
    """POST /servers/{id}/stow: every instance of ``Resources`` (Orthanc IDs, any level) in one STOW-RS request,
    as a DicomWebStowClient job (``client_jobs``)."""
    server, body = await _client_request(request, _NO_RESOURCES)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise bad_format(_NO_RESOURCES)
    client_jobs.options(body)
    headers = _extra_headers(body)
    archive: Archive = request.app.state.archive
    paths = await run_in_threadpool(_stow_paths, archive, resources)  # an unknown resource: 404 before any job

    def work(content: dict) -> dict:
        content["InstancesCount"] = str(len(paths))
        sent = _stow(server, paths, headers)
        if paths:
            content["NetworkSizeMB"] = str(sent // _MEGABYTE)
        return {"InstancesCount": str(len(paths)), "NetworkSizeMB": str(sent // _MEGABYTE)}

    return await client_jobs.run(request, client_jobs.ClientJob("DicomWebStowClient", work), body)


def _stow_paths(archive: Archive, resources: list[str]) -> list[Path]:
    paths = []
    for public_id in resources:
        try:
            level = archive.level_of(public_id)
        except UnknownResource:
            raise unknown_resource() from None  # the plugin gives no details here
        paths += [archive.instance_path(instance) for instance in archive.instance_ids_below(level, public_id)]
    return paths


def _stow(server: Peer, paths: list[Path], headers: dict[str, str]) -> int:
    """One STOW-RS request of the files; the bytes sent."""
    if not paths:
        return 0
    boundary = new_boundary()
    payload = whole(boundary, "application/dicom", (path.read_bytes() for path in paths))
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    _exchange(server, "POST", "studies", payload, {**headers, "Content-Type": content_type,
                                                   "Accept": "application/dicom+json"})
    return len(payload)


async def retrieve(request: Request) -> Response:
    """POST /servers/{id}/retrieve: WADO-RS retrieval of each of ``Resources`` (``Study``, optional ``Series`` and
    ``Instance`` UIDs), stored here."""
    server, body = await _client_request(request, _NO_RESOURCES)
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise bad_format(_NO_RESOURCES)
    paths = [_wado_path(resource) for resource in resources]
    client_jobs.options(body)
    headers = _extra_headers(body)
    origin = Origin("RestApi", remote_ip=request.client.host if request.client else "",
                    http_username=getattr(request.state, "user", "") or "")
    archive: Archive = request.app.state.archive

    def work(content: dict) -> dict:
        if not paths:
            return {}  # as the plugin answers
        received, size = _retrieve(archive, server, paths, headers, origin)
        content.update(NetworkUsageMB=str(size // _MEGABYTE), ReceivedInstancesCount=str(received))
        return dict(content)

    return await client_jobs.run(request, client_jobs.ClientJob("DicomWebWadoRetrieveClient", work), body)


async def wado(request: Request) -> Response:
    """POST /servers/{id}/wado: the WADO-RS answer to a GET of ``Uri`` (a study, series or instance), stored here.
    As in the plugin it is a job that runs in the background unless ``Synchronous`` is true, and the server is
    looked up by the job (an unknown one fails the job, not the request)."""
    name = request.path_params["id"]
    body = await _json_body(request)
    if not isinstance(body, Mapping) or "Uri" not in body:
        raise bad_format(_NO_URI)
    if not isinstance(body["Uri"], str):
        raise bad_format('The field "Uri" in a JSON object should be a string')
    path = _relative(body["Uri"], body.get("Arguments"))
    client_jobs.options(body, synchronous_by_default=False)
    headers = _extra_headers(body)
    registry, archive = _registry(request), request.app.state.archive
    origin = Origin("RestApi", remote_ip=request.client.host if request.client else "",
                    http_username=getattr(request.state, "user", "") or "")

    def work(content: dict) -> dict:
        server = registry.get(name)
        try:
            received, size = _retrieve(archive, server, [path], headers, origin)
        except DicomWebError:  # whatever failed (the server's 404, an answer not multipart), the plugin reports
            # it as the network's failure
            network = DicomWebError(500, 9, "Error in the network protocol")
            raise DicomWebError(500, 1, _PLUGIN_FAILURE, _PLUGIN_FAILURE) from network
        content.update(NetworkUsageMB=str(size // _MEGABYTE), ReceivedInstancesCount=str(received))
        return dict(content)

    job = client_jobs.ClientJob("DicomWebWadoRetrieveClient", work)
    return await client_jobs.run(request, job, body, synchronous_by_default=False)


async def delete(request: Request) -> Response:
    """POST /servers/{id}/delete: an HTTP DELETE of one study, series or instance on a server that declares
    ``HasDelete`` (DICOMweb has no standard deletion; dcm4chee and cloud stores take this form)."""
    name = request.path_params["id"]
    server = _registry(request).get(name)
    if not _has_delete(server):  # checked before the body, as the plugin does
        raise bad_format(f'Cannot delete on DICOMweb server, check out property "HasDelete": {name}')
    body = await _json_body(request)
    if not isinstance(body, Mapping) or not isinstance(body.get("Level"), str) \
            or not isinstance(body.get("StudyInstanceUID"), str):
        raise bad_format(_NO_DELETE_TARGET)
    below = _DELETE_LEVELS.get(body["Level"].lower())
    if below is None:
        raise out_of_range()
    path = "studies/" + quote(body["StudyInstanceUID"], safe="")
    for field, segment in zip(below, ("series", "instances")[:len(below)], strict=True):
        if not isinstance(body.get(field), str):
            raise bad_format(f'The request body must contain the field "{field}"')
        path += f"/{segment}/" + quote(body[field], safe="")  # a UID with "/" or "?" must not change the path
    await run_in_threadpool(_exchange, server, "DELETE", path, None, _extra_headers(body))
    return _json({})


def _wado_path(resource: object) -> str:
    """The WADO-RS path of one item of ``Resources``; a malformed one is the plugin's 400 without details."""
    if not isinstance(resource, Mapping) or not isinstance(resource.get("Study"), str) or not resource["Study"]:
        raise bad_format()
    uids = [resource["Study"], resource.get("Series"), resource.get("Instance")]
    if uids[2] is not None and uids[1] is None:
        raise bad_format()
    path = "studies/" + uids[0]
    for segment, uid in (("series", uids[1]), ("instances", uids[2])):
        if uid is not None:
            if not isinstance(uid, str) or not uid:
                raise bad_format()
            path += f"/{segment}/{uid}"
    if any(char in path for char in "?#\r\n\0 "):
        raise bad_format()
    return path


def _retrieve(archive: Archive, server: Peer, paths: list[str], headers: dict[str, str],
              origin: Origin) -> tuple[int, int]:
    received = size = 0
    for path in paths:
        try:
            answer = _exchange(server, "GET", path, None, {**headers, "Accept": _WADO_ACCEPT})
        except DicomWebError as error:  # the plugin answers any failed retrieval the same way (its job's
            # Content names the first error: client_jobs reads it from __cause__)
            raise DicomWebError(500, 1, _PLUGIN_FAILURE, _PLUGIN_FAILURE) from error
        size += len(answer.body)
        kind, options = media_type_of(answer.headers.get("content-type", ""))
        if kind != "multipart/related" or not options.get("boundary"):
            raise DicomWebError(500, 1, _PLUGIN_FAILURE, "The server's answer is not multipart/related")
        parts = read_parts(io.BytesIO(answer.body), options["boundary"])
        try:
            for part in parts:
                if part.media_type == "application/dicom":
                    archive.store(part.content, origin)
                    received += 1
        finally:
            close_parts(parts)
    return received, size
