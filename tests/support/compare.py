"""Helpers to compare pacsbox's answers with the real Orthanc's.

* :func:`normalize` replaces the values of volatile keys (timestamps, storage UUIDs, sizes,
  versions, ports) with a placeholder and sorts lists whose order Orthanc does not define (lists
  of Orthanc IDs, expanded resources carrying an ``ID``).
* :func:`assert_same` compares two JSON-like values exactly (as ``json.dumps(sort_keys=True)``,
  so ``1`` vs ``"1"`` vs ``1.0`` and ``True`` vs ``1`` differ) and fails with a unified diff.
* :func:`assert_equivalent` = normalize both, then :func:`assert_same`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_IGNORE_KEYS",
    "ORTHANC_ID_RE",
    "PLACEHOLDER",
    "assert_equivalent",
    "assert_same",
    "diff",
    "is_orthanc_id",
    "is_volatile_key",
    "normalize",
    "orthanc_id",
    "to_json",
]

#: What volatile values are replaced with.
PLACEHOLDER = "<volatile>"

#: Keys whose values differ between two correct servers.  An entry ending with ``*`` is a prefix
#: (``"TotalDiskSize*"`` matches ``TotalDiskSize`` and ``TotalDiskSizeMB``).
DEFAULT_IGNORE_KEYS: frozenset[str] = frozenset(
    {
        # timestamps
        "LastUpdate",
        "ReceptionDate",
        "Date",
        "CreationTime",
        "CompletionTime",
        "EffectiveRuntime",
        "Timestamp",
        # storage identity
        "FileUuid",
        "Uuid",
        # sizes (pacsbox may store/compress differently)
        "FileSize",
        "TotalDiskSize*",
        "TotalUncompressedSize*",
        "DiskSize*",
        "UncompressedSize*",
        "CompressedSize*",
        # server identity / build
        "ApiVersion",
        "Version",
        "DatabaseVersion",
        "HttpPort",
        "DicomPort",
    }
)

#: Orthanc resource identifiers: SHA-1 of the DICOM identifiers, as 5 groups of 8 hex digits.
ORTHANC_ID_RE = re.compile(r"^[0-9a-f]{8}(?:-[0-9a-f]{8}){4}$")


def orthanc_id(*parts: str) -> str:
    """The ID Orthanc gives a resource: SHA-1 of its identifiers joined by ``|``, as 5 groups of 8 hex digits.

    Written here without pacsbox's code, so that tests check the server against an independent computation.
    """
    digest = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def is_orthanc_id(value: object) -> bool:
    """True for a string shaped like an Orthanc resource ID (``xxxxxxxx-...-xxxxxxxx``)."""
    return isinstance(value, str) and ORTHANC_ID_RE.match(value) is not None


def is_volatile_key(key: str, ignore_keys: Iterable[str] = DEFAULT_IGNORE_KEYS) -> bool:
    """True when ``key`` is in ``ignore_keys`` or matches one of its ``prefix*`` entries."""
    for pattern in ignore_keys:
        if pattern.endswith("*"):
            if key.startswith(pattern[:-1]):
                return True
        elif key == pattern:
            return True
    return False


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def _is_unordered(items: list[Any]) -> bool:
    """Lists Orthanc returns in no defined order: IDs, or expanded resources with an ``ID``."""
    if not items:
        return False
    if all(is_orthanc_id(x) for x in items):
        return True
    return all(isinstance(x, dict) and is_orthanc_id(x.get("ID")) for x in items)


def normalize(
    obj: Any,
    *,
    ignore_keys: Iterable[str] = DEFAULT_IGNORE_KEYS,
    placeholder: Any = PLACEHOLDER,
    sort_id_lists: bool = True,
    unordered_keys: Iterable[str] = (),
) -> Any:
    """Return a normalized deep copy of the JSON-like ``obj`` (dicts, lists, scalars).

    Args:
        ignore_keys: dict keys whose values are replaced by ``placeholder`` wherever they occur
            (the key itself stays, so a missing key is still a difference).  Entries ending with
            ``*`` are prefixes.  Default :data:`DEFAULT_IGNORE_KEYS`; extend it with
            ``DEFAULT_IGNORE_KEYS | {"ID"}``, or pass ``frozenset()`` to keep everything.
        placeholder: the replacement value.
        sort_id_lists: sort lists of Orthanc IDs, and lists of dicts that all carry an Orthanc
            ``"ID"`` (sorted by it) -- Orthanc does not define the order of ``/patients``,
            ``Studies``, ``Series``, ``Instances``, ``?expand`` answers, ...
        unordered_keys: dict keys whose list values are sorted whatever they contain (by their
            canonical JSON).

    Tuples are treated as lists.  Other values are returned unchanged.
    """
    ignore = frozenset(ignore_keys)
    unordered = frozenset(unordered_keys)

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            return {
                k: (placeholder if isinstance(k, str) and is_volatile_key(k, ignore) else walk(v, k))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [walk(v, None) for v in value]
            if key is not None and key in unordered:
                return sorted(items, key=_sort_key)
            if sort_id_lists and _is_unordered(items):
                if isinstance(items[0], dict):
                    return sorted(items, key=lambda d: (d["ID"], _sort_key(d)))
                return sorted(items)
            return items
        return value

    return walk(obj, None)


def to_json(obj: Any) -> str:
    """Canonical text of ``obj``: ``json.dumps(sort_keys=True, indent=1, ensure_ascii=False)``."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, default=repr)


def diff(ours: Any, reference: Any, *, max_lines: int = 400) -> str:
    """Unified diff from the reference (Orthanc) to ours (pacsbox); ``""`` when identical."""
    a = to_json(reference).splitlines()
    b = to_json(ours).splitlines()
    lines = list(difflib.unified_diff(a, b, fromfile="orthanc (reference)", tofile="pacsbox", lineterm=""))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more diff lines)"]
    return "\n".join(lines)


def assert_same(ours: Any, reference: Any, *, context: str = "") -> None:
    """Fail with a readable diff unless ``ours`` and ``reference`` serialize identically.

    The comparison is on ``json.dumps(sort_keys=True)``, so dict order does not matter but JSON
    types do.  Values are compared as given: call :func:`normalize` first (or use
    :func:`assert_equivalent`) to ignore volatile keys.
    """
    if to_json(ours) == to_json(reference):
        return
    header = f"{context}: " if context else ""
    raise AssertionError(f"{header}pacsbox differs from Orthanc\n{diff(ours, reference)}")


def assert_equivalent(
    ours: Any,
    reference: Any,
    *,
    context: str = "",
    ignore_keys: Iterable[str] = DEFAULT_IGNORE_KEYS,
    unordered_keys: Iterable[str] = (),
) -> None:
    """:func:`normalize` both values (same options), then :func:`assert_same`."""
    opts: dict[str, Any] = {
        "ignore_keys": frozenset(ignore_keys),
        "unordered_keys": frozenset(unordered_keys),
    }
    assert_same(normalize(ours, **opts), normalize(reference, **opts), context=context)
