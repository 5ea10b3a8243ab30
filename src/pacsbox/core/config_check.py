"""Every key of a configuration checked when it is read, with all mistakes reported at once (issue 22).

The checks are derived from the annotations of :class:`~pacsbox.core.config.Config`: a ``bool`` field takes a
JSON boolean only (``"false"`` is a mistake, not a truthy string), an ``int`` field an integer that is not a
boolean, a ``float`` field a number, a ``Mapping[str, X]`` an object of ``X``, a ``tuple[str, ...]`` a list of
strings, a union any of its members. Numbers are non-negative unless ``RANGES`` says otherwise; ``RULES`` adds what
a type cannot say (an AE title's characters, a modality entry). A key added to ``Config`` is checked by its type
with no change here. Unknown keys are warnings (with the nearest known key), never errors: Orthanc accepts them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

# (lowest, highest) of numeric keys whose range is not "0 or more"; highest None: no upper bound
RANGES: dict[str, tuple[float, float | None]] = {
    "HttpPort": (0, 65535), "DicomPort": (0, 65535),
    "DicomScpTimeout": (0, None), "DicomScuTimeout": (1, None),
    "MaximumUploadSize": (1, None), "MaximumRequestBodySize": (1, None), "HttpMaximumHeaderSize": (1, None),
    "HttpMaximumHeaderCount": (1, None), "HttpMaximumUrlLength": (1, None), "HttpHeaderTimeout": (1, None),
    "HttpRequestTimeout": (1, None), "HttpKeepAliveTimeout": (1, None), "HttpMaximumConnections": (1, None),
    "XnatSessionTimeout": (1, None), "XnatMaximumSessions": (1, None), "DicomMaximumDatasetSize": (1, None),
    "DicomMaximumConnections": (1, None), "DicomMaximumAssociations": (1, None),
    "LuaMaximumExecutionTime": (0.001, None), "LuaMaximumOutputSize": (1, None),
    "LuaMaximumMemory": (1024 * 1024, None),
}
_SECONDS = re.compile(r"(Timeout|Period|Age|Time)$")  # keys whose number is a duration, said so in messages

# An AE title (DICOM PS3.5 6.2, VR AE): 1-16 characters of the default repertoire, no backslash, no control
# characters, not only spaces (leading and trailing spaces are not significant).
_AET = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
AET_EXPECTED = "an AE title: 1-16 characters, letters, digits, spaces and punctuation except backslash, not all spaces"


@dataclass(frozen=True)
class Problem:
    """One mistake: where (``DicomWeb.Cors.MaxAge``), what was expected, and the value found."""

    path: str
    expected: str
    value: Any

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {_show(self.value)}"


class ConfigError(ValueError):
    """The configuration has mistakes; ``problems`` lists every one, the message says them all."""

    def __init__(self, problems: list[Problem], source: str = "the configuration") -> None:
        self.problems = problems
        self.source = source
        count = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source} has {count}:\n" + "\n".join(f"  {problem}" for problem in problems))


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            tuple: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    if isinstance(value, Mapping):
        kind = "an object"
    return f"{text[:80]}{'...' if len(text) > 80 else ''} ({kind})"


# -- types -------------------------------------------------------------------------------------------------
Check = Callable[[str, Any], list[Problem]]


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false (a JSON boolean)"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is Any:
        return "any value"
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(choice) for choice in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe(member) for member in typing.get_args(hint)))
    if origin in (tuple, list, Sequence):
        member = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return "a list" if member is Any else f"a list of {_plural(_describe(member))}"
    if origin is not None and issubclass(origin, Mapping):
        value = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return "an object" if value is Any else f"an object whose values are {_plural(_describe(value))}"
    return getattr(hint, "__name__", str(hint))


def _plural(text: str) -> str:
    for single, many in (("a string", "strings"), ("an integer", "integers"), ("a number", "numbers"),
                         ("true or false (a JSON boolean)", "booleans")):
        text = text.replace(single, many)
    return text


def _matches(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the JSON shape of type ``hint`` (deep: lists and objects check their members)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(member, value) for member in typing.get_args(hint))
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        arguments = typing.get_args(hint) or (str, Any)
        return isinstance(value, Mapping) and all(
            isinstance(key, str) and _matches(arguments[1], item) for key, item in value.items())
    if origin in (tuple, list, Sequence):
        member = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return isinstance(value, (list, tuple)) and all(_matches(member, item) for item in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a type this checker does not know: left to the code that uses it


def _numeric(hint: Any) -> bool:
    return hint in (int, float)


# -- rules beyond types ------------------------------------------------------------------------------------
def _aet(path: str, value: Any) -> list[Problem]:
    if isinstance(value, str) and not (_AET.fullmatch(value) and value.strip()):
        return [Problem(path, AET_EXPECTED, value)]
    return []


def _modalities(path: str, value: Any) -> list[Problem]:
    from .errors import ArchiveError
    from .modalities import _EXPECTED, parse_modality

    problems = []
    for name, entry in value.items():
        try:
            parse_modality(name, entry)
        except ArchiveError as error:  # the parser's own errors (Orthanc's), said per entry
            detail = getattr(error, "details", None) or _EXPECTED.removeprefix("expected ")
            problems.append(Problem(f"{path}.{name}", detail, entry))
            continue
        aet = entry[0] if isinstance(entry, list) else entry.get("AET")
        problems += _aet(f"{path}.{name}.AET", aet)
    return problems


def _peers(path: str, value: Any) -> list[Problem]:
    from .errors import ArchiveError
    from .peers import parse_peer

    problems = []
    for name, entry in value.items():
        try:
            parse_peer(entry)
        except ArchiveError as error:
            detail = getattr(error, "details", None) or 'a URL, or ["URL", "user", "password"], or an object with Url'
            problems.append(Problem(f"{path}.{name}", detail, entry))
    return problems


def _user_metadata(path: str, value: Any) -> list[Problem]:
    return [Problem(f"{path}.{name}", "an integer from 1024 to 65535", index) for name, index in value.items()
            if not (isinstance(index, int) and not isinstance(index, bool) and 1024 <= index <= 65535)]


_DICOMWEB_KEYS: dict[str, Any] = {"Enable": bool, "Root": str, "EnableWado": bool, "WadoRoot": str,
                                  "Cors": Mapping[str, Any], "Servers": Mapping[str, Any]}


def _dicomweb(path: str, value: Any) -> list[Problem]:
    return [Problem(f"{path}.{key}", _describe(hint), value[key]) for key, hint in _DICOMWEB_KEYS.items()
            if key in value and not _matches(hint, value[key])]


# key -> a check run after the type matched (it sees a value of the right type)
RULES: dict[str, Check] = {"DicomAet": _aet, "DicomModalities": _modalities, "OrthancPeers": _peers,
                           "UserMetadata": _user_metadata, "DicomWeb": _dicomweb}


# key -> what a value of the wrong type is told (instead of the bare type)
EXPECTED: dict[str, str] = {"DicomAet": AET_EXPECTED}


def _number_expected(key: str, hint: Any) -> str:
    lowest, highest = RANGES.get(key, (0, None))
    if key.endswith("Port") and hint is int:
        return f"a port number from {lowest:g} to {highest:g} (0 picks a free one)"
    kind = ("a whole number" if hint is int else "a number") + (" of seconds" if _SECONDS.search(key) else "")
    return f"{kind} from {lowest:g} to {highest:g}" if highest is not None else f"{kind}, at least {lowest:g}"


# -- the checker -------------------------------------------------------------------------------------------
@functools.cache
def field_types() -> dict[str, Any]:
    """Each ``Config`` key and its annotated type (read once)."""
    from .config import Config

    hints = typing.get_type_hints(Config)
    return {item.name: hints[item.name] for item in fields(Config)}


def check_key(key: str, value: Any) -> list[Problem]:
    """The mistakes of one known key's value (none for an unknown key)."""
    hint = field_types().get(key)
    if hint is None:
        return []
    numeric = _numeric(hint) or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                                 and isinstance(value, (int, float)) and not isinstance(value, bool))
    if not _matches(hint, value):
        return [Problem(key, EXPECTED.get(key) or (_number_expected(key, hint) if _numeric(hint) else
                                                   _describe(hint)), value)]
    if numeric:
        lowest, highest = RANGES.get(key, (0, None))
        if value < lowest or (highest is not None and value > highest):
            return [Problem(key, _number_expected(key, hint), value)]
    rule = RULES.get(key)
    return rule(key, value) if rule else []


def check_values(values: Mapping[str, Any]) -> list[Problem]:
    """Every mistake in the known keys of ``values`` (Orthanc-style keys, as read from a file)."""
    problems: list[Problem] = []
    for key, value in values.items():
        problems += check_key(key, value)
    return problems


def unknown_keys(values: Mapping[str, Any]) -> list[str]:
    """One line per key neither pacsbox nor Orthanc knows, with the nearest known key when there is one."""
    from .config import _ACCEPTED_ORTHANC_KEYS

    known = set(field_types()) | set(_ACCEPTED_ORTHANC_KEYS)
    lines = []
    for key in values:
        if key in known:
            continue
        import difflib  # (only for a key it does not know)

        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75) or [
            name for name in sorted(known) if name.lower() == key.lower()]
        lines.append(f"unknown configuration key {key!r} ignored" + (f" (did you mean {near[0]!r}?)" if near else ""))
    return lines


def check_or_raise(values: Mapping[str, Any], source: str = "the configuration") -> None:
    """Raise :class:`ConfigError` listing every mistake in ``values``."""
    problems = check_values(values)
    if problems:
        raise ConfigError(problems, source)


def read_file(path: Any) -> dict[str, Any]:
    """A configuration file's JSON object (comments allowed); ``ValueError`` naming the file otherwise."""
    from pathlib import Path

    from .config import strip_json_comments

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read the configuration file {path}: {error.strerror or error}") from None
    try:
        values = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the configuration must be a JSON object ({{...}}), not {_show(values)}")
    return values
