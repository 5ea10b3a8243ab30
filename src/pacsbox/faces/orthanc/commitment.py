"""Storage commitment SCU routes: ``POST /modalities/{id}/storage-commitment``, ``GET /storage-commitment/{id}``,
``POST /storage-commitment/{id}/remove``, with Orthanc 1.10.1's bodies, answers and errors (measured against it by
tests/faces/dimse/test_storage_commitment.py)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.commitment import Reference
from ...core.errors import ArchiveError, BadFormat, UnknownResource
from ...core.ids import Level
from . import scu_params as fields
from .errors import OrthancError, unknown_resource
from .json import json_response
from .params import archive_of


def _instances(body: Any) -> list[tuple[str, str]]:
    """``DicomInstances``: ``[class, instance]`` pairs or ``{"SOPClassUID", "SOPInstanceUID"}`` objects."""
    value = body["DicomInstances"]
    if not isinstance(value, list):
        raise BadFormat('The "DicomInstances" field must provide an array of DICOM instances')
    found = []
    for entry in value:
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry):
            found.append((entry[0], entry[1]))
        elif isinstance(entry, dict) and isinstance(entry.get("SOPClassUID"), str) and \
                isinstance(entry.get("SOPInstanceUID"), str):
            found.append((entry["SOPClassUID"], entry["SOPInstanceUID"]))
        elif isinstance(entry, dict):
            raise BadFormat("An instance entry must provide the SOPClassUID and SOPInstanceUID fields")
        else:
            raise BadFormat("An instance entry must provide an array with 2 strings: SOP Class UID and SOP "
                            "Instance UID")
    return found


def _resources(archive, value: Any) -> list[tuple[str, str]]:
    """``Resources``: Orthanc IDs (any level), each instance below as (class, instance UID)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadFormat('The "Resources" field must provide an array of Orthanc identifiers')
    found = []
    for public_id in value:
        try:
            level = archive.level_of(public_id)
        except UnknownResource:
            raise unknown_resource() from None
        for instance_id in archive.instance_ids_below(level, public_id):
            instance = archive.resource(Level.INSTANCE, instance_id)
            found.append((archive.metadata(Level.INSTANCE, instance_id).get("SopClassUid", ""),
                          instance.main_tags.get("SOPInstanceUID", "")))
    return found


async def request_commitment(request: Request) -> Response:
    """POST /modalities/{id}/storage-commitment: N-ACTION to the modality; the report is pending until its
    N-EVENT-REPORT reaches this server's SCP."""
    _, body = await fields.read_json(request)
    if not isinstance(body, dict):
        raise BadFormat("Must provide a JSON object with a list of resources")
    if "DicomInstances" not in body and "Resources" not in body:
        raise BadFormat('Empty storage commitment request, one of these fields is mandatory: "Resources" or '
                        '"DicomInstances"')
    archive = archive_of(request)
    pairs = _instances(body) if "DicomInstances" in body else []
    if "Resources" in body:
        pairs += await run_in_threadpool(_resources, archive, body["Resources"])
    _, modality = fields.modality_named(request)
    call = fields.for_call(modality, seconds=fields.timeout(body))
    transaction_uid = await _request(request, call, [Reference(sop_class, sop_instance)
                                                    for sop_class, sop_instance in pairs])
    return json_response({"ID": transaction_uid, "Path": f"/storage-commitment/{transaction_uid}"})


async def commit_instances(request: Request, modality, instance_ids: list[str]) -> str:
    """Ask ``modality`` to commit archived instances (``POST /modalities/{id}/store`` with
    ``"StorageCommitment": true``); the transaction UID."""
    archive = archive_of(request)
    pairs = []
    for instance_id in instance_ids:
        row = await run_in_threadpool(archive.resource, Level.INSTANCE, instance_id)
        metadata = await run_in_threadpool(archive.metadata, Level.INSTANCE, instance_id)
        pairs.append(Reference(metadata.get("SopClassUid", ""), row.main_tags.get("SOPInstanceUID", "")))
    return await _request(request, modality, pairs)


async def _request(request: Request, modality, references: list[Reference]) -> str:
    transaction_uid = f"2.25.{uuid.uuid4().int}"  # PS3.5 B.2, as Orthanc makes them
    archive_of(request).commitments.open(transaction_uid, modality.aet)
    await run_in_threadpool(fields.remote(request).storage_commitment, modality, transaction_uid, references)
    return transaction_uid


async def report(request: Request) -> Response:
    """GET /storage-commitment/{id}: the report (Pending until the N-EVENT-REPORT arrives)."""
    return json_response(archive_of(request).commitments.get(request.path_params["id"]).to_json())


async def remove(request: Request) -> Response:
    """POST /storage-commitment/{id}/remove: delete the committed instances from this server, once the remote
    committed all of them."""
    archive = archive_of(request)
    uid = request.path_params["id"]
    found = archive.commitments.get(uid)
    if found.status != "Success":
        state = "failure in" if found.status == "Failure" else "a pending"
        raise OrthancError(6, "Bad sequence of calls", 500,
                           f"Cannot remove DICOM instances after {state} storage commitment transaction: {uid}")
    await run_in_threadpool(_remove, archive, [r.sop_instance_uid for r in found.references])
    return json_response({})


def _remove(archive, sop_instance_uids: list[str]) -> None:
    for uid in sop_instance_uids:
        for level, public_id in archive.lookup(uid):
            if level == Level.INSTANCE:
                with contextlib.suppress(ArchiveError):  # deleted meanwhile
                    archive.delete(Level.INSTANCE, public_id)
