"""/peers routes: the known Orthanc peers (list, configure, forget) and what this server asks of them (their
``/system``, and ``POST /instances`` of archived resources or of the request's body).

Bodies, answers and errors follow Orthanc 1.10.1 (the Orthanc Book, "REST API of Orthanc": "Sending resources to
Orthanc peers"), checked against the real server by tests/faces/orthanc/test_peers.py.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...core.config import Config
from ...core.errors import BadFormat, NetworkError, Unsupported
from ...core.peers import InexistentFile, Peer, PeerAnswer, PeerConnection, PeerRegistry, parse_peer
from ..http_common import spool_body
from . import scu_params as fields
from .errors import OrthancError
from .job_types import OrthancPeerStoreJob
from .json import json_response
from .params import archive_of

# What GET /peers/{id} lists (Orthanc 1.10.1's sub-routes of a peer).
OPERATIONS = ["configuration", "store", "store-straight", "system"]
# The statuses Orthanc 1.10.1 relays from a peer's /system (others become its "not allowed in a REST API").
_RELAYED_STATUSES = (400, 403, 415, 500)


def registry_for(config: Config) -> PeerRegistry:
    """The peers of a new application, from ``OrthancPeers`` (kept on ``app.state.peers``)."""
    return PeerRegistry(config.OrthancPeers)


def _registry(request: Request) -> PeerRegistry:
    return request.app.state.peers


def _bad_format(error: BadFormat) -> OrthancError:
    return OrthancError(15, "Bad file format", 400, error.details)


def _network_error(error: NetworkError) -> OrthancError:
    """A failed exchange: "Error in the network protocol" (500), with curl's reason when the peer was not reached."""
    return OrthancError(9, "Error in the network protocol", 500, error.details)


# -- the registry -------------------------------------------------------------------------------------------------
async def list_peers(request: Request) -> Response:
    """GET /peers: the symbolic names; with ``expand`` (present, whatever its value) their public configuration."""
    if "expand" in request.query_params:
        return json_response({name: peer.public_json() for name, peer in _registry(request).items()})
    return json_response(_registry(request).names())


async def operations(request: Request) -> Response:
    """GET /peers/{id}; an unknown peer is an empty 404, as in Orthanc."""
    if request.path_params["id"] not in _registry(request).names():
        return Response(status_code=404)
    return json_response(OPERATIONS)


async def configuration(request: Request) -> Response:
    return json_response(_registry(request).get(request.path_params["id"]).public_json())


async def put_peer(request: Request) -> Response:
    """PUT /peers/{id} with Orthanc's array or object form; replaces a peer of the same name. A body that is not
    JSON gets Orthanc's answer to it: an empty 404."""
    _, value = await fields.read_json(request)
    if value is fields.NOT_JSON:
        return Response(status_code=404)
    try:
        peer = parse_peer(value)
        _registry(request).put(request.path_params["id"], peer)
    except InexistentFile as error:
        raise OrthancError(13, "Inexistent file", 404, error.details) from None
    except BadFormat as error:
        raise _bad_format(error) from None
    return PlainTextResponse("")


async def delete_peer(request: Request) -> Response:
    _registry(request).remove(request.path_params["id"])
    return PlainTextResponse("")


# -- talking to a peer ----------------------------------------------------------------------------------------------
async def system(request: Request) -> Response:
    """GET /peers/{id}/system: the peer's own /system, relayed as it answered."""
    peer = _registry(request).get(request.path_params["id"])
    answer = await run_in_threadpool(_exchange, peer, "GET", "system")
    if answer.ok:
        return Response(answer.body, media_type="application/json")
    if answer.status in _RELAYED_STATUSES:
        return Response(status_code=answer.status)
    raise OrthancError(2005, "This HTTP status is not allowed in a REST API", 500)


async def store_straight(request: Request) -> Response:
    """POST /peers/{id}/store-straight: the body (a DICOM file, not stored here) to the peer's /instances; the
    answer is the peer's, provided it is a success in JSON."""
    name = request.path_params["id"]
    peer = _registry(request).get(name)
    limit = request.app.state.config.MaximumUploadSize
    spool = await spool_body(request, limit, lambda n: OrthancError(
        8, "Bad request", 413, f"The body exceeds MaximumUploadSize ({n} bytes)"))
    try:
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
        answer = await run_in_threadpool(_exchange, peer, "POST", "instances", spool, size)
    finally:
        spool.close()
    parsed = fields.parse_json(answer.body) if answer.ok else fields.NOT_JSON
    if parsed is fields.NOT_JSON:
        raise OrthancError(9, "Error in the network protocol", 500, f"Cannot send DICOM to remote peer: {name}")
    return json_response(parsed)


def _exchange(peer: Peer, method: str, path: str, body: BinaryIO | None = None, size: int = 0) -> PeerAnswer:
    """One request on a connection of its own (run in a worker thread)."""
    try:
        with PeerConnection(peer) as connection:
            return connection.request(method, path, body, size,
                                      headers={"Content-Type": "application/dicom"} if body is not None else None)
    except NetworkError as error:
        raise _network_error(error) from None


async def store(request: Request) -> Response:
    """POST /peers/{id}/store: every instance of the given resources to the peer, each as stored, on one
    connection, as an "OrthancPeerStore" job (synchronous unless asked otherwise; its report is the answer)."""
    # imported here: the face builds its peer registry from this module at start, these load with the first store
    from . import jobs
    from .modalities import instances_below, store_request  # Orthanc parses both store bodies with one helper

    resources, options = store_request(*await fields.read_json(request))
    archive = archive_of(request)
    instance_ids = await instances_below(archive, resources)
    compress = bool(fields.boolean(options, "Compress", False))
    transcode = _transcode(options)
    peer = _registry(request).get(request.path_params["id"])
    permissive = bool(fields.boolean(options, "Permissive", False))
    level = jobs.priority(options)
    synchronous = jobs.is_synchronous(options)
    if transcode is not None:
        raise Unsupported(f"Transcoding before sending to a peer (\"Transcode\": \"{transcode}\") is not supported")
    job = OrthancPeerStoreJob(archive, peer, instance_ids, resources, compress=compress, permissive=permissive)
    if not synchronous:
        return jobs.job_submitted(jobs.engine_of(request).submit(job, level))
    try:
        return json_response(await jobs.engine_of(request).run_and_wait(job, level))
    except NetworkError as error:
        raise _network_error(error) from None


def _transcode(options: Mapping[str, Any]) -> str | None:
    """The ``Transcode`` option, checked as Orthanc does: a string naming a transfer syntax it knows."""
    if "Transcode" not in options:
        return None
    uid = options["Transcode"]
    if not isinstance(uid, str):
        raise _bad_format(BadFormat("String value expected in field: Transcode"))
    from pydicom.uid import UID_dictionary  # pydicom loads on first use, not at start-up

    if UID_dictionary.get(uid, ("", ""))[1] != "Transfer Syntax":
        raise _bad_format(BadFormat(f"Unknown transfer syntax UID: {uid}"))
    return uid
