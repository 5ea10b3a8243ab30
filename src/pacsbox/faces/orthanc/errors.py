"""Orthanc's error body, built in one place from the core's errors and from the face's own checks.

Shape and codes follow Orthanc's ``ErrorCode`` enumeration and its HTTP mapping
(``{HttpError, HttpStatus, Message, Method, OrthancError, OrthancStatus, Uri, Details}``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ...core import errors as core
from ...core.attachments import BadAttachmentNumber, RevisionMismatch
from ...core.storage import is_disk_full
from ..http_common import orthanc_error_body
from .json import json_response


class OrthancError(Exception):
    """An error in Orthanc's terms: its status number, its message and the HTTP status it maps to."""

    def __init__(self, code: int, message: str, http_status: int, details: str | None = None) -> None:
        super().__init__(details or message)
        self.code, self.message, self.http_status, self.details = code, message, http_status, details


def bad_request(details: str) -> OrthancError:
    return OrthancError(8, "Bad request", 400, details)


def bad_type(details: str) -> OrthancError:
    return OrthancError(5, "Bad type for a parameter", 400, details)


def out_of_range(details: str | None = None) -> OrthancError:
    return OrthancError(3, "Parameter out of range", 400, details)


def unknown_resource(details: str | None = None) -> OrthancError:
    return OrthancError(17, "Unknown resource", 404, details)


def inexistent_item(details: str | None = None) -> OrthancError:
    return OrthancError(7, "Accessing an inexistent item", 404, details)


def unauthorized() -> OrthancError:
    return OrthancError(29, "Bad credentials were provided to an HTTP request", 401)


def translate(error: Exception) -> OrthancError:
    """Map a core error (or a face error) to Orthanc's code, message and HTTP status."""
    if isinstance(error, OrthancError):
        return error
    details = getattr(error, "details", None) or (str(error) or None)
    if isinstance(error, core.UnknownResource):
        return unknown_resource(details)
    if isinstance(error, BadAttachmentNumber):
        return bad_type(details)
    if isinstance(error, RevisionMismatch):
        return OrthancError(43, "A bad revision number was provided, which might indicate conflict between multiple "
                            "writers", 409, details)
    if isinstance(error, core.InexistentItem):
        return inexistent_item(details)
    if isinstance(error, core.InvalidDicom):
        return OrthancError(15, "Bad file format", 400, details)
    if isinstance(error, core.BadFormat):
        return OrthancError(15, "Bad file format", 400, details)
    if isinstance(error, core.BadRequest):
        return bad_request(details or "Bad request")
    if isinstance(error, core.OutOfRange):
        if details and details.startswith("Unknown DICOM tag"):
            # Orthanc answers 500 for this; a client mistake deserves a 4xx, with Orthanc's code kept.
            return OrthancError(27, "Unknown DICOM tag", 400, details)
        return out_of_range(details)
    if isinstance(error, core.Unsupported):
        return OrthancError(2, "Not implemented yet", 501, details)
    if isinstance(error, core.TooLarge):
        return OrthancError(8, "Bad request", 413, details)
    if isinstance(error, core.NetworkError):
        return _network_error(error, details)
    if isinstance(error, core.StorageFull) or is_disk_full(error):
        # Orthanc's code for a full storage area (its quota, MaximumStorageSize), with HTTP 507; on a full disk the
        # real Orthanc 1.10.1 answers 500 "Cannot write to file" instead, which tells a client nothing it can act on
        return OrthancError(19, "The file storage is full", 507, details)
    if isinstance(error, core.PluginFailure):
        return OrthancError(1, "Error encountered within the plugin engine", 500)
    if isinstance(error, core.JobCanceled):
        return OrthancError(37, "This job was canceled", 500, error.details)  # Orthanc gives no details
    if isinstance(error, core.ScriptError):
        if not error.lua_message:
            return OrthancError(-1, "Internal error", 500, details)
        return OrthancError(2031, "Cannot execute a Lua command", 500, details)
    if isinstance(error, PermissionError):
        return OrthancError(-1, "Forbidden", 403, details)
    return OrthancError(-1, "Internal error", 500, details or type(error).__name__)


def _network_error(error: Exception, details: str | None) -> OrthancError:
    """A failed exchange with a remote modality; Orthanc reports these from its SCU jobs, always with HTTP 500."""
    if isinstance(error, core.NoPresentationContext):
        return OrthancError(2015, "DicomUserConnection: No acceptable presentation context for modality", 500,
                            details)
    if isinstance(error, core.CannotTranscode):
        return OrthancError(2, "Not implemented yet", 500, details)
    return OrthancError(9, "Error in the network protocol", 500, details)


def error_response(request: Request, error: Exception, headers: dict[str, str] | None = None) -> Response:
    """Orthanc's JSON error body for ``error``."""
    orthanc = translate(error)
    body = orthanc_error_body(request.method, request.url.path, orthanc.http_status, orthanc.code, orthanc.message,
                              orthanc.details)
    return json_response(body, status_code=orthanc.http_status, headers=headers)
