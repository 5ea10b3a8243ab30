"""Reading the bodies of Orthanc's SCU routes (``/modalities/{id}/...``, ``/queries/...``) with Orthanc's messages.

Orthanc reads these fields with different helpers, hence different errors for the same mistake: most wrong types
are "Bad file format" naming the field, some are a bare "Bad type for a parameter" (observed on Orthanc 1.10.1).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.requests import Request

from ...core.errors import BadFormat, Unsupported
from ...core.modalities import Modality, unsigned_field
from .errors import OrthancError
from .params import archive_of, loads

NOT_JSON = object()  # what parse_json answers for a body that is not JSON


async def read_json(request: Request) -> tuple[bytes, Any]:
    """The request body, and the same parsed as JSON (``NOT_JSON`` when it is not); a large body is parsed off
    the event loop (``params.loads``)."""
    raw = await request.body()
    try:
        return raw, await loads(request, raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a 5,000-digit number; nested too deep
        return raw, NOT_JSON


def bad_type() -> OrthancError:
    """Orthanc's "Bad type for a parameter", without details, as its job parameters report a wrong type."""
    return OrthancError(5, "Bad type for a parameter", 400)


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or ``NOT_JSON``."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a 5,000-digit number; nested too deep
        return NOT_JSON


def boolean(body: dict, key: str, default: bool | None = None) -> bool | None:
    if key not in body:
        return default
    if not isinstance(body[key], bool):
        raise BadFormat(f"Boolean value expected in field: {key}")
    return body[key]


def integer(body: dict, key: str) -> int | None:
    if key not in body:
        return None
    if isinstance(body[key], bool) or not isinstance(body[key], int):
        raise BadFormat(f"Integer value expected in field: {key}")
    return body[key]


def timeout(body: dict) -> int | None:
    """The ``Timeout`` field: seconds for this call, overriding the modality's."""
    return unsigned_field(body, "Timeout") if "Timeout" in body else None


def job_timeout(body: dict) -> int | None:
    """The ``Timeout`` of a retrieve job: a wrong type is a bare "Bad type"."""
    if "Timeout" not in body:
        return None
    if isinstance(body["Timeout"], bool) or not isinstance(body["Timeout"], int) or body["Timeout"] < 0:
        raise bad_type()
    return body["Timeout"]


def job_string(body: dict, key: str) -> str | None:
    """A string parameter of a job (``LocalAet``, ``TargetAet``...): a wrong type is a bare "Bad type"."""
    if key not in body:
        return None
    if not isinstance(body[key], str):
        raise bad_type()
    return body[key]


def modality_named(request: Request) -> tuple[str, Modality]:
    """The modality of the URI (``InexistentItem`` if unknown, as Orthanc answers)."""
    name = request.path_params["id"]
    return name, archive_of(request).modalities.get(name)


def for_call(modality: Modality, local_aet: str | None = None, seconds: int | None = None) -> Modality:
    """The modality with this call's options: the request's ``LocalAet`` unless the modality sets its own (the
    Orthanc Book: the request's is ignored then), and the request's ``Timeout``."""
    changes: dict[str, Any] = {}
    if local_aet and not modality.local_aet:
        changes["local_aet"] = local_aet
    if seconds:
        changes["timeout"] = seconds
    return dataclasses.replace(modality, **changes) if changes else modality


def local_aet(request: Request, modality: Modality) -> str:
    """The calling AET used towards a modality (reported as ``LocalAet`` by Orthanc's jobs)."""
    return modality.local_aet or request.app.state.config.DicomAet


def remote(request: Request):
    """The DICOM SCU of the archive (``core.modalities.RemoteDicom``)."""
    client = archive_of(request).remote
    if client is None:
        raise Unsupported("This server has no DICOM client (the DICOM face is not running)")
    return client
