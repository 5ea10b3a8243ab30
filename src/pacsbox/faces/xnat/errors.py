"""XNAT's error responses, built in one place from the core's errors: a status and a plain-text message.

XNAT answers errors with Tomcat's HTML pages; pacsbox answers the same statuses with the message as plain text
(clients only read the status, and xnatpy and pyxnat treat any body starting with ``<html>`` as a failure).
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from ...core import errors as core
from ...core.storage import is_disk_full


class XnatError(Exception):
    """An error the face itself finds (bad parameter, unknown route), with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def status_and_message(error: Exception) -> tuple[int, str]:
    """The HTTP status and text for any error a handler lets escape."""
    if isinstance(error, XnatError):
        return error.status, error.message
    details = getattr(error, "details", None) or str(error) or type(error).__name__
    for kind, status in (
        (core.UnknownResource, 404),
        (core.InexistentItem, 404),
        (core.InvalidDicom, 400),
        (core.BadRequest, 400),
        (core.OutOfRange, 400),
        (core.Conflict, 409),
        (core.TooLarge, 413),
        (core.Unsupported, 501),
        (core.StorageFull, 507),
        (PermissionError, 403),
    ):
        if isinstance(error, kind):
            return status, details
    if is_disk_full(error):  # a write the core did not translate (a catalog file): the disk is full all the same
        return 507, f"The storage area has no room left: {details}"
    return 500, f"Internal error: {details}"


def error_response(error: Exception, headers: dict[str, str] | None = None) -> Response:
    status, message = status_and_message(error)
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)
