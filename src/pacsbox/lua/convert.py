"""Values between Lua and JSON as Orthanc's Lua engine converts them (ParseJson, DumpJson, tables of tags).

Measured on Orthanc 1.10.1: ParseJson makes every number a float (``8042.0``) and drops nulls; DumpJson writes a
table whose keys are exactly 1..n (or none) as an array, anything else as an object; a string that Lua can read
as a number (``"20230607"``, ``" 3 "``, ``"0x10"``) is written as that number, unless ``keepStrings`` asks for
strings, which also turns numbers into their Lua text; an integral number is written without a fraction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lupa loads with the first Lua state, not with the server (cold start)
    from lupa import lua53 as lupa

_MAX_DEPTH = 200  # nesting of tables converted to JSON (and of JSON parsed into tables)


class ConversionError(ValueError):
    """A Lua value that has no JSON form (a function, a cyclic table, nesting past the limit)."""


def as_text(value: Any) -> str:
    """A Lua string (bytes, with the runtime's encoding=None) as Python text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class Converter:
    """Conversions bound to one Lua runtime (its ``tonumber``/``tostring`` and its table constructor)."""

    def __init__(self, runtime: lupa.LuaRuntime) -> None:
        from lupa import lua53

        self.runtime = runtime
        self._lua_type: Callable[[Any], str | None] = lua53.lua_type
        self._tonumber: Callable[[Any], Any] = runtime.eval("tonumber")
        self._tostring: Callable[[Any], Any] = runtime.eval("tostring")
        self._ipairs_length: Callable[[Any], Any] = runtime.eval(
            "function(t) local n = 0 for _ in pairs(t) do n = n + 1 end"
            " for i = 1, n do if rawget(t, i) == nil then return -1 end end return n end")

    # -- Python/JSON -> Lua -------------------------------------------------------------------------------
    def to_lua(self, value: Any, *, floats: bool = True, depth: int = 0) -> Any:
        """A JSON-like Python value as a Lua value; every number a float, as Orthanc pushes JSON numbers."""
        if depth > _MAX_DEPTH:
            raise ConversionError("JSON nested too deeply")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return float(value) if floats else value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        table = self.runtime.table()
        if isinstance(value, dict):
            for key, item in value.items():
                if item is not None:  # Lua tables hold no nil: Orthanc drops null members
                    table[str(key).encode("utf-8")] = self.to_lua(item, floats=floats, depth=depth + 1)
            return table
        if isinstance(value, (list, tuple)):
            for position, item in enumerate(value, start=1):
                table[position] = self.to_lua(item, floats=floats, depth=depth + 1)
            return table
        return str(value).encode("utf-8")

    def parse_json(self, text: Any) -> Any:
        """ParseJson: a Lua value from JSON text, nil when the text is not JSON."""
        try:
            value = json.loads(as_text(text))
        except (ValueError, RecursionError):
            return None
        return self.to_lua(value, floats=True)

    # -- Lua -> Python/JSON -------------------------------------------------------------------------------
    def to_python(self, value: Any, keep_strings: bool = False, depth: int = 0, seen: frozenset = frozenset()) -> Any:
        """A Lua value as a JSON-ready Python value, with Orthanc's number and array rules."""
        if depth > _MAX_DEPTH:
            raise ConversionError("table nested too deeply for JSON")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return as_text(self._tostring(value)) if keep_strings else _json_number(value)
        if isinstance(value, bytes):
            if keep_strings:
                return as_text(value)
            number = self._tonumber(value)
            return _json_number(number) if number is not None else as_text(value)
        if self._lua_type(value) != "table":
            raise ConversionError(f"cannot convert a Lua {self._lua_type(value) or 'Python object'} to JSON")
        identity = id(value)
        if identity in seen:
            raise ConversionError("cannot convert a cyclic table to JSON")
        seen = seen | {identity}
        length = self._ipairs_length(value)
        if length >= 0:
            return [self.to_python(value[i], keep_strings, depth + 1, seen) for i in range(1, length + 1)]
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = as_text(key) if isinstance(key, bytes) else as_text(self._tostring(key))
            result[name] = self.to_python(item, keep_strings, depth + 1, seen)
        return result

    def dump_json(self, value: Any, keep_strings: Any = False) -> bytes:
        """DumpJson: compact JSON text of a Lua value."""
        return write_json(self.to_python(value, bool(keep_strings))).encode("utf-8")


def _json_number(number: Any) -> Any:
    """Integral numbers without a fraction (``2.0`` -> ``2``), as Orthanc writes them; others as floats."""
    if isinstance(number, float) and number.is_integer() and -(2**63) <= number < 2**63:
        return int(number)
    return number


def write_json(value: Any) -> str:
    """Compact JSON with jsoncpp's numbers: floats with 17 significant digits (``0.10000000000000001``,
    ``1e+20``), integers as integers."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "null" if math.isnan(value) or math.isinf(value) else f"{value:.17g}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(write_json(item) for item in value) + "]"
    return "{" + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{write_json(item)}"
                          for key, item in sorted(value.items())) + "}"
