"""/modalities routes: the known remote modalities (list, configure, forget) and what this server asks of them
(C-ECHO, C-STORE of archived resources, C-MOVE and C-GET by tags). Queries (C-FIND) are in ``queries.py``.

Bodies, answers and errors follow Orthanc 1.10.1 (the Orthanc Book, "REST API of Orthanc": "Sending resources to
remote modalities", "Performing C-Move"), checked against it by tests/faces/orthanc/test_modalities.py.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...core.errors import BadFormat, UnknownResource, Unsupported
from ...core.ids import Level
from ...core.modalities import Modality, parse_modality
from . import commitment, dicom_query, jobs
from . import scu_params as fields
from .errors import OrthancError, unknown_resource
from .job_types import DicomModalityStoreJob, RetrieveJob
from .json import json_response
from .params import archive_of

# What GET /modalities/{id} lists (Orthanc 1.10.1's sub-routes of a modality).
OPERATIONS = ["configuration", "echo", "find", "find-instance", "find-patient", "find-series", "find-study",
              "find-worklist", "move", "query", "storage-commitment", "store", "store-straight"]
_ORTHANC_ID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){4}$")
_GET_REPORT_KEYS = (dicom_query.SOP_INSTANCE_UID, *dicom_query.RETRIEVE_REPORT_KEYS)


def _bad_file_format() -> OrthancError:
    """Orthanc's "Bad file format" without details, as it answers for JSON of the wrong shape."""
    return OrthancError(15, "Bad file format", 400)


# -- the registry -------------------------------------------------------------------------------------------------
async def list_modalities(request: Request) -> Response:
    """GET /modalities: the symbolic names; with ``expand`` (present, whatever its value) their configurations."""
    registry = archive_of(request).modalities
    if "expand" in request.query_params:
        return json_response({name: modality.to_json() for name, modality in registry.items()})
    return json_response(registry.names())


async def operations(request: Request) -> Response:
    """GET /modalities/{id}; an unknown modality is an empty 404, as in Orthanc."""
    if request.path_params["id"] not in archive_of(request).modalities.names():
        return Response(status_code=404)
    return json_response(OPERATIONS)


async def configuration(request: Request) -> Response:
    _, modality = fields.modality_named(request)
    return json_response(modality.to_json())


async def put_modality(request: Request) -> Response:
    """PUT /modalities/{id} with Orthanc's array or object form; replaces a modality of the same name."""
    _, value = await fields.read_json(request)
    if value is fields.NOT_JSON:
        raise _bad_file_format()
    try:
        modality = parse_modality(request.path_params["id"], value)
    except BadFormat as error:
        raise OrthancError(15, "Bad file format", 400, error.details) from None
    archive_of(request).modalities.put(request.path_params["id"], modality)
    return PlainTextResponse("")


async def delete_modality(request: Request) -> Response:
    archive_of(request).modalities.remove(request.path_params["id"])
    return PlainTextResponse("")


# -- C-ECHO -------------------------------------------------------------------------------------------------------
async def echo(request: Request) -> Response:
    """POST /modalities/{id}/echo, optionally ``{"Timeout": s, "CheckFind": true}`` (a C-FIND after the C-ECHO,
    to check that the modality knows this server)."""
    raw, parsed = await fields.read_json(request)
    body = parsed if raw.strip() else {}
    if body is fields.NOT_JSON:
        raise BadFormat("Cannot parse the JSON body")
    body = body if isinstance(body, dict) else {}  # other JSON values are ignored, as Orthanc does
    _, modality = fields.modality_named(request)
    return await echo_modality(request, modality, body)


async def echo_modality(request: Request, modality: Modality, body: dict) -> Response:
    """C-ECHO ``modality`` with the options of ``body`` (``Timeout``, ``CheckFind``); also POST /tools/dicom-echo."""
    seconds = fields.timeout(body)
    check_find = fields.boolean(body, "CheckFind", False)
    call = fields.for_call(modality, seconds=seconds)
    client = fields.remote(request)
    await run_in_threadpool(client.echo, call)
    if check_find:
        from pydicom.uid import generate_uid  # pydicom loads on first use, not at start-up

        identifier = dicom_query.find_identifier(Level.STUDY, {dicom_query.STUDY_UID: generate_uid()},
                                                 normalize=True, manufacturer=call.manufacturer,
                                                 default_encoding=archive_of(request).settings.default_encoding)
        await run_in_threadpool(client.find, call, "STUDY", identifier)
    return json_response({})


# -- C-STORE ------------------------------------------------------------------------------------------------------
def store_request(raw: bytes, value: Any) -> tuple[list[str], dict]:
    """The resources and options of POST /modalities/{id}/store (its body, and that parsed as by
    ``fields.read_json``): an ID as plain text or JSON string, a JSON list of IDs, or
    ``{"Resources": [...], ...options}``."""
    if value is fields.NOT_JSON:
        text = raw.decode("utf-8", "replace").strip()
        if not _ORTHANC_ID.match(text):
            raise BadFormat("Must provide a JSON value")
        value = text
    options: dict = {}
    if isinstance(value, dict):
        if "Resources" not in value:
            raise BadFormat("Missing field in JSON: \"Resources\"")
        if not isinstance(value["Resources"], list):
            raise BadFormat("JSON field \"Resources\" must contain an array")
        options, value = value, value["Resources"]
    elif isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        raise BadFormat("Must provide a JSON object, or a JSON array of strings")
    if not all(isinstance(item, str) for item in value):
        raise BadFormat("Resources to be exported must be specified as a JSON array of strings")
    resources = [item.strip() for item in value]
    for item in resources:
        if not _ORTHANC_ID.match(item):
            raise BadFormat(f"This string is not a valid Orthanc identifier: {item}")
    return resources, options


def _move_originator(options: dict, local_aet: str) -> tuple[str, int] | None:
    """``MoveOriginatorID`` (with ``MoveOriginatorAet``, default the local AET): C-STOREs that act as the
    sub-operations of a C-MOVE (PS3.7 9.1.1.1.1)."""
    aet = fields.job_string(options, "MoveOriginatorAet")
    if "MoveOriginatorID" not in options:
        return None
    number = options["MoveOriginatorID"]
    if isinstance(number, bool) or not isinstance(number, int):
        raise fields.bad_type()
    if not 0 <= number <= 0xFFFF:
        raise OrthancError(3, "Parameter out of range", 400)
    return (local_aet if aet is None else aet), number


async def instances_below(archive, resources: list[str]) -> list[str]:
    """Every instance under the given resource IDs (any level), in order; an unknown ID is Orthanc's 404."""
    instance_ids: list[str] = []
    for public_id in resources:
        try:
            level = await run_in_threadpool(archive.level_of, public_id)
        except UnknownResource:
            raise unknown_resource() from None  # Orthanc gives no details here
        instance_ids += await run_in_threadpool(archive.instance_ids_below, level, public_id)
    return instance_ids


async def store(request: Request) -> Response:
    """POST /modalities/{id}/store: C-STORE the instances of the given resources, each as stored, as a
    DicomModalityStore job (synchronous unless asked otherwise)."""
    resources, options = store_request(*await fields.read_json(request))
    archive = archive_of(request)
    instance_ids = await instances_below(archive, resources)
    synchronous = jobs.is_synchronous(options)
    permissive = fields.boolean(options, "Permissive", False)
    level = jobs.priority(options)
    requested_aet, seconds = fields.job_string(options, "LocalAet"), fields.timeout(options)
    storage_commitment = options.get("StorageCommitment", False)
    if not isinstance(storage_commitment, bool):
        raise fields.bad_type()
    _, modality = fields.modality_named(request)
    call = fields.for_call(modality, requested_aet, seconds)
    local_aet = fields.local_aet(request, call)
    originator = _move_originator(options, local_aet)
    fields.remote(request)  # no DICOM client: refused before any job starts
    if storage_commitment and not synchronous:
        raise Unsupported("Storage commitment of an asynchronous C-STORE (\"StorageCommitment\" with "
                          "\"Asynchronous\") is not supported")
    job = DicomModalityStoreJob.request(archive, call, instance_ids, resources, local_aet, originator,
                                        bool(permissive))
    if not synchronous:
        return jobs.job_submitted(jobs.engine_of(request).submit(job, level))
    body = await jobs.engine_of(request).run_and_wait(job, level)
    if storage_commitment:  # the report arrives later: GET /storage-commitment/{uid}
        body["StorageCommitmentTransactionUID"] = await commitment.commit_instances(request, call, instance_ids)
    return json_response(body)


# -- C-MOVE and C-GET by tags ---------------------------------------------------------------------------------------
def _retrieve_request(body: Any, default_encoding: str) -> tuple[Level, list, dict]:
    """``{"Level": ..., "Resources": [{tag: value}...], ...}`` of /move and /get (parsed by ``fields.read_json``):
    the level and identifiers."""
    malformed = BadFormat("Must provide a JSON body containing fields Resources and Level")
    if not isinstance(body, dict) or "Resources" not in body or "Level" not in body or \
            not isinstance(body["Resources"], list):
        raise malformed
    level = dicom_query.parse_level(body["Level"], malformed)
    identifiers = []
    for resource in body["Resources"]:
        if not isinstance(resource, dict):
            raise _bad_file_format()
        values: dict[int, str] = {}
        for key, text in resource.items():
            tag = dicom_query.parse_tag(key)
            if tag is None:
                # Orthanc answers 500 here; a client's mistake deserves a 4xx, with Orthanc's code kept
                raise OrthancError(27, "Unknown DICOM tag", 400)
            if not isinstance(text, str):
                raise _bad_file_format()
            values[tag] = text
        identifiers.append(dicom_query.retrieve_identifier(level, values, default_encoding))
    return level, identifiers, body


async def move(request: Request) -> Response:
    """POST /modalities/{id}/move: C-MOVE to ``TargetAet`` (default: this server). Orthanc 1.10 runs it
    synchronously whatever ``Asynchronous`` says, and answers ``{}``."""
    config = request.app.state.config
    level, identifiers, body = _retrieve_request((await fields.read_json(request))[1],
                                                 archive_of(request).settings.default_encoding)
    target = fields.job_string(body, "TargetAet")
    requested_aet, seconds = fields.job_string(body, "LocalAet"), fields.timeout(body)
    _, modality = fields.modality_named(request)
    call = fields.for_call(modality, requested_aet, seconds)
    await run_in_threadpool(fields.remote(request).move, call, dicom_query.QR_LEVELS[level], identifiers,
                            config.DicomAet if target is None else target)
    return json_response({})


async def get(request: Request) -> Response:
    """POST /modalities/{id}/get: C-GET, storing what arrives (Orthanc added this route in 1.12.6; pacsbox takes
    the /move body without ``TargetAet`` and runs it as a DicomGetScu job, as Orthanc does)."""
    level, identifiers, body = _retrieve_request((await fields.read_json(request))[1],
                                                 archive_of(request).settings.default_encoding)
    synchronous = jobs.is_synchronous(body)
    requested_aet, seconds = fields.job_string(body, "LocalAet"), fields.timeout(body)
    _, modality = fields.modality_named(request)
    call = fields.for_call(modality, requested_aet, seconds)
    fields.remote(request)
    content = {"Description": "REST API", "LocalAet": fields.local_aet(request, call),
               "Query": [dicom_query.render(dicom_query.subset(identifier, _GET_REPORT_KEYS), "short")
                         for identifier in identifiers],
               "RemoteAet": modality.aet}
    job = RetrieveJob(archive_of(request), "DicomGetScu", call, dicom_query.QR_LEVELS[level], identifiers, content)
    return await jobs.run_job(request, job, {**body, "Synchronous": synchronous})


async def unsupported(request: Request, feature: str) -> Response:
    """Routes of Orthanc's /modalities that pacsbox does not implement."""
    raise Unsupported(f"{feature} is not supported by pacsbox")
