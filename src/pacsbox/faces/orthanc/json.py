"""JSON answers formatted like Orthanc's (keys sorted, as its JSON library keeps objects)."""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring  # the C function json itself uses (ensure_ascii=False)
from typing import Any

from starlette.responses import Response

_STEP = "   "  # Orthanc's indentation (jsoncpp's StyledWriter: 3 spaces)


class _Unusual(Exception):
    """A value the fast writer leaves to ``json.dumps`` (keys that are not strings, tuples, subclasses...)."""


def dumps(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, indent=3)``, byte for byte.

    With ``indent``, CPython's json runs its pure-Python encoder (a generator per level); the answers here are
    dicts, lists, strings, numbers, booleans and None, which this writes ~2.5 times faster with the same C string
    escaping. Anything else goes to ``json.dumps`` itself, whose output this reproduces exactly
    (``tests/faces/orthanc/test_json_format.py``).
    """
    parts: list[str] = []
    try:
        _write(value, "", parts)
    except (_Unusual, RecursionError):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=3).encode("utf-8")
    return "".join(parts).encode("utf-8")


def _write(value: Any, indent: str, parts: list[str]) -> None:
    # the same tests in the same order as json's encoder (json.encoder._make_iterencode)
    if isinstance(value, str):
        parts.append(encode_basestring(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float) and math.isfinite(value):
        parts.append(float.__repr__(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append("[]")
            return
        inner = indent + _STEP
        separator = "[\n"
        for item in value:
            if type(item) is str:  # the common leaf written here: a call less per value
                parts += (separator, inner, encode_basestring(item))
            else:
                parts += (separator, inner)
                _write(item, inner, parts)
            separator = ",\n"
        parts += ("\n", indent, "]")
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        try:
            keys = sorted(value)
        except TypeError:  # keys of several types: json converts them to strings first
            raise _Unusual from None
        inner = indent + _STEP
        separator = "{\n"
        for key in keys:
            if not isinstance(key, str):
                raise _Unusual  # json converts such keys to strings first, and sorts them after
            item = value[key]
            if type(item) is str:  # the common leaves written here: a call less per value
                parts += (separator, inner, encode_basestring(key), ": ", encode_basestring(item))
            elif item is None:
                parts += (separator, inner, encode_basestring(key), ": null")
            else:
                parts += (separator, inner, encode_basestring(key), ": ")
                _write(item, inner, parts)
            separator = ",\n"
        parts += ("\n", indent, "}")
    else:
        raise _Unusual  # NaN and infinities, and anything json would refuse or ask ``default`` about


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status_code=status_code, headers=headers,
                    media_type="application/json; charset=utf-8")
