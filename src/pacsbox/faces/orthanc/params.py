"""Reading Orthanc's query arguments and bodies, with its error messages for bad ones."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ...core.archive import Archive
from ...core.ids import Level
from .errors import bad_request, bad_type, out_of_range


def archive_of(request: Request) -> Archive:
    """The archive this face serves (set on the application's state by create_app)."""
    return request.app.state.archive


def flag(request: Request, name: str) -> bool:
    """Orthanc's boolean arguments: present means true, unless given as ``false`` or ``0``."""
    if name not in request.query_params:
        return False
    return request.query_params[name].strip().lower() not in ("false", "0")


_UINT64_MAX = 2**64 - 1


def integer(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_type(f"Argument \"{name}\" should be an integer, not {text!r}") from None
    if value < 0:
        raise out_of_range(f"Argument \"{name}\" must be non-negative")
    return value


def paging(request: Request) -> tuple[int, int | None]:
    """``since`` and ``limit`` of a list: Orthanc requires both or neither."""
    has_since, has_limit = "since" in request.query_params, "limit" in request.query_params
    if has_since != has_limit:
        missing = "limit" if has_since else "since"
        raise bad_request(f"Missing \"{missing}\" argument for GET request against: {request.url.path}")
    if not has_since:
        return 0, None
    since, limit = integer(request, "since", 0), integer(request, "limit", 0)
    if max(since, limit) > _UINT64_MAX:  # Orthanc reads both as 64-bit unsigned integers
        raise bad_type("Syntax error in some user-supplied data")
    return since, limit


_PARSED_ON_LOOP = 64 * 1024  # bytes of JSON parsed on the event loop itself (well under a millisecond)


async def loads(request: Request, raw: bytes) -> Any:
    """``json.loads(raw)``, raising as it does, without stalling other clients on a large body.

    A MiB of JSON takes tens of milliseconds to parse (and holds the GIL throughout): above _PARSED_ON_LOOP bytes
    it is parsed in a worker thread, one body at a time (``app.state.json_parses``), so that the event loop
    answers others between two parses and the memory of parsed bodies is that of one at a time.
    """
    if len(raw) <= _PARSED_ON_LOOP:
        return json.loads(raw)
    async with request.app.state.json_parses:
        return await run_in_threadpool(json.loads, raw)


async def json_body(request: Request, kind: type = dict) -> Any:
    """The request body parsed as JSON of the expected top-level type (object by default)."""
    raw = await request.body()
    try:
        value = await loads(request, raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a 5,000-digit number; nested too deep
        value = None
    if not isinstance(value, kind):
        noun = "object" if kind is dict else "array" if kind is list else "value"
        raise bad_request(f"The body must contain a JSON {noun}")
    return value


def level_of(value: Any) -> Level:
    if not isinstance(value, str):
        raise bad_request("Field \"Level\" should be a string")
    try:
        return Level.parse(value)
    except ValueError:
        raise out_of_range(f"Unknown resource level: {value!r}") from None
