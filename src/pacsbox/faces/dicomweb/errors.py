"""DICOMweb errors in the body the Orthanc DICOMweb plugin answers with: Orthanc's JSON error body, mapped once from
the core's errors."""

from __future__ import annotations

import errno
import json

from starlette.requests import Request
from starlette.responses import Response

from ...core import errors as core
from ..http_common import orthanc_error_body


class DicomWebError(Exception):
    """A failure in Orthanc's terms: its status number and message, and the HTTP status of PS3.18 to answer."""

    def __init__(self, http_status: int, code: int, message: str, details: str | None = None) -> None:
        super().__init__(details or message)
        self.http_status, self.code, self.message, self.details = http_status, code, message, details


def bad_request(details: str | None = None) -> DicomWebError:
    return DicomWebError(400, 8, "Bad request", details)


def bad_format(details: str | None = None) -> DicomWebError:
    return DicomWebError(400, 15, "Bad file format", details)


def out_of_range(details: str | None = None) -> DicomWebError:
    return DicomWebError(400, 3, "Parameter out of range", details)


def unknown_resource(details: str | None = None) -> DicomWebError:
    return DicomWebError(404, 17, "Unknown resource", details)


def not_acceptable(details: str | None = None) -> DicomWebError:
    return DicomWebError(406, 3, "Parameter out of range", details)


def unsupported_media_type(details: str | None = None) -> DicomWebError:
    return DicomWebError(415, 3000, "Unsupported media type", details)


def too_large(limit: int) -> DicomWebError:
    return DicomWebError(413, 8, "Bad request", f"The body exceeds MaximumUploadSize ({limit} bytes)")


def translate(error: Exception) -> DicomWebError:
    """The DICOMweb answer to a core error (PS3.18 8.7.3 status codes)."""
    if isinstance(error, DicomWebError):
        return error
    details = getattr(error, "details", None) or (str(error) or None)
    if isinstance(error, (core.UnknownResource, core.InexistentItem)):
        return unknown_resource(details)
    if isinstance(error, (core.InvalidDicom, core.BadFormat)):
        return bad_format(details)
    if isinstance(error, core.BadRequest):
        return bad_request(details)
    if isinstance(error, core.OutOfRange):
        return out_of_range(details)
    if isinstance(error, core.Unsupported):
        return DicomWebError(501, 2, "Not implemented yet", details)
    if isinstance(error, core.TooLarge):
        return DicomWebError(413, 8, "Bad request", details)
    if isinstance(error, core.StorageFull):
        return DicomWebError(507, 19, "The file storage is full", details)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:  # a spool or the storage area ran out of disk
        return DicomWebError(507, 19, "The file storage is full", "No space left on device")
    if isinstance(error, core.Conflict):
        return DicomWebError(409, 8, "Bad request", details)
    return DicomWebError(500, -1, "Internal error", details or type(error).__name__)


def error_response(request: Request, error: Exception) -> Response:
    """The JSON error body Orthanc gives for a failing plugin route."""
    failure = translate(error)
    body = orthanc_error_body(request.method, request.url.path, failure.http_status, failure.code, failure.message,
                              failure.details)
    return Response(json.dumps(body, indent=3), status_code=failure.http_status, media_type="application/json")
