"""The /tools routes that read and change run-time settings: default-encoding, accepted-transfer-syntaxes,
unknown-sop-class-accepted, metrics and the log levels.

Bodies, answers and errors follow Orthanc 1.10.1 (measured: tests/faces/orthanc/test_tools_differential.py).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.settings import encoding_name
from .errors import OrthancError, out_of_range
from .json import json_response
from .params import archive_of

_BODY_LIMIT = 16 * 1024  # a setting's body: the longest meaningful one (every transfer syntax listed) is ~1.5 KB


async def small_body(request: Request) -> str:
    """The body of a settings request as text, refused past 16 KiB before it is read whole (413)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _BODY_LIMIT:
            raise OrthancError(8, "Bad request", 413, f"The body of this request is limited to {_BODY_LIMIT} bytes")
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def plain_text(text: str) -> Response:
    """Orthanc's text answers: ``text/plain`` without a charset (Starlette would add one)."""
    return Response(text.encode("utf-8"), headers={"Content-Type": "text/plain"})


# -- default-encoding -------------------------------------------------------------------------------------------


async def get_default_encoding(request: Request) -> Response:
    return plain_text(archive_of(request).settings.default_encoding)


async def put_default_encoding(request: Request) -> Response:
    """The new encoding's name, as Orthanc writes it (the body's letter case does not matter)."""
    text = await small_body(request)
    if encoding_name(text) is None:
        raise out_of_range()
    return plain_text(archive_of(request).settings.set_default_encoding(text))


# -- accepted-transfer-syntaxes ---------------------------------------------------------------------------------


async def get_accepted_transfer_syntaxes(request: Request) -> Response:
    return json_response(list(archive_of(request).settings.accepted_transfer_syntaxes))


async def put_accepted_transfer_syntaxes(request: Request) -> Response:
    """A JSON array of patterns, a JSON string, or a body that is not JSON at all (taken as one pattern)."""
    patterns = _patterns(await small_body(request))
    # compiling a few thousand patterns takes seconds: not on the event loop
    accepted = await run_in_threadpool(archive_of(request).settings.set_accepted_transfer_syntaxes, patterns)
    return json_response(list(accepted))


def _patterns(text: str) -> list[str]:
    """Orthanc reads the body with JsonCpp, which stops at the end of the first value (``1.2.840...`` is the
    number 1.2, refused); a body that does not parse at all is one pattern (``*``)."""
    stripped = text.strip()
    try:
        value: Any = json.loads(stripped)
    except ValueError:
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped)
        except ValueError:
            return [text]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _bad_file_format()


def _bad_file_format(details: str | None = None) -> OrthancError:
    return OrthancError(15, "Bad file format", 400, details)


# -- Boolean settings -----------------------------------------------------------------------------------------


def _boolean_text(value: bool) -> Response:
    return plain_text("1" if value else "0")


async def _boolean_body(request: Request) -> bool:
    """Orthanc's SerializationToolbox::ParseBoolean: ``1``/``true`` or ``0``/``false``."""
    text = (await small_body(request)).strip()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise _bad_file_format("Boolean value expected")


async def get_unknown_sop_class_accepted(request: Request) -> Response:
    return _boolean_text(archive_of(request).settings.unknown_sop_class_accepted)


async def put_unknown_sop_class_accepted(request: Request) -> Response:
    archive_of(request).settings.unknown_sop_class_accepted = await _boolean_body(request)
    return plain_text("")


async def get_metrics(request: Request) -> Response:
    return _boolean_text(archive_of(request).settings.metrics_enabled)


async def put_metrics(request: Request) -> Response:
    archive_of(request).settings.metrics_enabled = await _boolean_body(request)
    return plain_text("")


# -- log levels ---------------------------------------------------------------------------------------------------

# Orthanc 1.10.1's log categories, as the pacsbox loggers that write what each stands for.
LOG_CATEGORIES = {
    "generic": ("pacsbox",),
    "plugins": ("pacsbox.plugins",),
    "http": ("pacsbox.http",),
    "sqlite": ("pacsbox.index",),
    "dicom": ("pacsbox.dimse", "pynetdicom"),
    "jobs": ("pacsbox.jobs",),
    "lua": ("pacsbox.lua",),
}
_LEVELS = {"default": logging.WARNING, "verbose": logging.INFO, "trace": logging.DEBUG}
_NAMES = {level: name for name, level in _LEVELS.items()}
_MAIN = "pacsbox.log_level"  # where the main level is kept on the application's state


class _OrthancFormatter(logging.Formatter):
    """Orthanc's glog-like lines: ``I1207 02:16:55.976524 pacsbox.dimse] message``."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime

        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%m%d %H:%M:%S.%f")
        return f"{record.levelname[:1]}{stamp} {record.name}] {record.getMessage()}"


_HANDLER = logging.StreamHandler(sys.stderr)
_HANDLER.setFormatter(_OrthancFormatter())


def _ensure_shown(logger: logging.Logger) -> None:
    """Lower levels need a handler of their own: Python's last-resort one prints warnings only, and pynetdicom's
    logger has a null handler."""
    category_root = logging.getLogger(logger.name.split(".")[0])
    if _HANDLER not in category_root.handlers:
        category_root.addHandler(_HANDLER)
        category_root.propagate = False  # the records are printed once, here


def _set_category(category: str, level: int) -> None:
    for name in LOG_CATEGORIES[category]:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if level < logging.WARNING:
            _ensure_shown(logger)


async def _verbosity(request: Request) -> int:
    text = await small_body(request)
    if text not in _LEVELS:
        raise out_of_range(f'Verbosity can be "default", "verbose" or "trace": {text}')
    return _LEVELS[text]


def _log_level_holder(request: Request) -> object:
    """Where the main level is kept: on the server (loggers are the process's, so it outlives /tools/reset, as in
    Orthanc), else on the application."""
    control = getattr(request.app.state, "control", None)
    return control if control is not None else request.app.state


async def get_log_level(request: Request) -> Response:
    return plain_text(getattr(_log_level_holder(request), "log_level", "default"))


async def put_log_level(request: Request) -> Response:
    """The main level sets every category, as in Orthanc; it is what GET answers until the next PUT."""
    level = await _verbosity(request)
    for category in LOG_CATEGORIES:
        _set_category(category, level)
    _log_level_holder(request).log_level = _NAMES[level]
    return plain_text("")


async def get_category_level(request: Request, category: str) -> Response:
    level = logging.getLogger(LOG_CATEGORIES[category][0]).level
    return plain_text(_NAMES.get(level, "default"))


async def put_category_level(request: Request, category: str) -> Response:
    _set_category(category, await _verbosity(request))
    return plain_text("")
