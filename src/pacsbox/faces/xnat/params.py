"""Reading XNAT's query parameters and request bodies."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.requests import Request

from ...core.archive import Archive, Origin
from ..http_common import spool_body as spooled
from .errors import XnatError

# A field path with its type in front: xnat:subjectData/label, xnat:mrSessionData/fields/field[name=x]/field
_TYPED_PATH = re.compile(r"^(?P<type>[A-Za-z][\w-]*:[A-Za-z][\w-]*)/(?P<path>.+)$")


def archive_of(request: Request) -> Archive:
    return request.app.state.archive


def flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean parameter; XNAT clients send true/True/1 (and xnatpy's bools as strings)."""
    value = _get(request, name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off"):
        return False
    raise XnatError(400, f"The parameter {name} must be true or false, not {value!r}")


def text(request: Request, name: str, default: str = "") -> str:
    value = _get(request, name)
    return default if value is None else value


def _get(request: Request, name: str) -> str | None:
    """A parameter by name, case-insensitively (XNAT's query parameters are case-insensitive)."""
    params = request.query_params
    if name in params:
        return params[name]
    lowered = name.lower()
    return next((value for key, value in params.multi_items() if key.lower() == lowered), None)


def response_format(request: Request, default: str = "json") -> str:
    return text(request, "format", default).lower() or default


def field_updates(request: Request, shortcuts: Mapping[str, str]) -> dict[str, str]:
    """Field paths to set from the query: ``<xsiType>/<path>=value`` (xnatpy, ``req_format=qs``) and XNAT's
    plain shortcuts (``?gender=male``), each relative to the object."""
    updates: dict[str, str] = {}
    for key, value in query_items(request):
        match = _TYPED_PATH.match(key)
        if match:
            updates[match["path"]] = value
        elif key in shortcuts:
            updates[shortcuts[key]] = value
    return updates


def query_items(request: Request) -> list[tuple[str, str]]:
    """The query's parameters, splitting each at its first ``=`` outside brackets: a client that leaves
    ``[@xsi:type=xnat:demographicData]`` unencoded still sets the field it names."""
    items = []
    for part in request.url.query.split("&"):
        if not part:
            continue
        depth, cut = 0, len(part)
        for position, char in enumerate(part):
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif char == "=" and depth <= 0:
                cut = position
                break
        items.append((unquote_plus(part[:cut]), unquote_plus(part[cut + 1:])))
    return items


def origin_of(request: Request) -> Origin:
    return Origin("RestApi", remote_ip=request.client.host if request.client else "",
                  http_username=getattr(request.state, "user", "") or "")


async def spool_body(request: Request) -> tempfile.SpooledTemporaryFile:
    """The request body in a spooled temporary file, within MaximumUploadSize (413)."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise XnatError(415, "Multipart uploads are not supported by pacsbox: send the file as the raw request body"
                             " (PUT, or POST with inbody=true)")
    return await spooled(request, request.app.state.config.MaximumUploadSize,
                         lambda limit: XnatError(413, f"The request body exceeds MaximumUploadSize ({limit} bytes)"))
