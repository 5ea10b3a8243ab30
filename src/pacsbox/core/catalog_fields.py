"""The fields of an XNAT object, set by XNAT's field paths (``demographics[@xsi:type=...]/gender``).

An object's fields are kept as ``{"data": {name: value}, "children": {field: {"xsi_type", "key", "items"}}}``:
plain paths (``name``, ``PI/firstname``) are data fields; a path through ``field[@xsi:type=T]`` sets a field
of the nested object of type T (XNAT's demographics); a path through ``field[key=value]`` sets a field of
the list item whose ``key`` is ``value`` (XNAT's custom variables, ``fields/field[name=x]/field``). Paths are
relative to the object: the face removes the leading ``xnat:subjectData/``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from .errors import BadRequest

NULL = "NULL"  # XNAT's value for "remove this field"
_SEGMENT = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<selector>[^\]]*)\]$")


def empty_fields() -> dict[str, Any]:
    return {"data": {}, "children": {}}


def _segments(path: str) -> list[str]:
    """Split a path on the slashes outside brackets."""
    parts, depth, current = [], 0, []
    for char in path:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "/" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part]


def apply_updates(fields: Mapping[str, Any], updates: Mapping[str, str], root_type: str) -> dict[str, Any]:
    """A copy of ``fields`` with every path of ``updates`` set (or removed, for the value ``NULL``)."""
    result = copy.deepcopy(dict(fields)) if fields else empty_fields()
    result.setdefault("data", {})
    result.setdefault("children", {})
    for path, value in updates.items():
        _apply(result, path, value, root_type)
    return result


def _apply(fields: dict[str, Any], path: str, value: str, root_type: str) -> None:
    segments = _segments(path)
    if not segments:
        raise BadRequest(f"Empty field path {path!r}")
    for position, segment in enumerate(segments):
        match = _SEGMENT.match(segment)
        if match is None:
            continue
        prefix = "/".join([*segments[:position], match["name"]])
        rest = "/".join(segments[position + 1:])
        if not rest:
            raise BadRequest(f"Field path {path!r} names an object, not one of its fields")
        _apply_child(fields, prefix, match["selector"], rest, value, root_type)
        return
    data = fields["data"]
    if value == NULL:
        data.pop(path, None)
    else:
        data["/".join(segments)] = value


def _apply_child(fields: dict[str, Any], field: str, selector: str, rest: str, value: str, root_type: str) -> None:
    children = fields["children"]
    selector = selector.strip()
    if selector.startswith("@xsi:type="):
        xsi_type = selector.split("=", 1)[1].strip()
        child = children.setdefault(field, {"xsi_type": xsi_type, "key": None, "items": [{}]})
        child["xsi_type"] = xsi_type
        item = child["items"][0]
    elif "=" in selector:
        key, wanted = (part.strip() for part in selector.split("=", 1))
        leaf = field.rsplit("/", 1)[-1]
        child = children.setdefault(field, {"xsi_type": f"{root_type}_{leaf}", "key": key, "items": []})
        item = next((entry for entry in child["items"] if entry.get(key) == wanted), None)
        if item is None:
            if value == NULL:
                return
            item = {key: wanted}
            child["items"].append(item)
    elif selector.isdigit() and int(selector) >= 1:
        leaf = field.rsplit("/", 1)[-1]
        child = children.setdefault(field, {"xsi_type": f"{root_type}_{leaf}", "key": None, "items": []})
        while len(child["items"]) < int(selector):
            child["items"].append({})
        item = child["items"][int(selector) - 1]
    else:
        raise BadRequest(f"Unsupported field selector [{selector}] in {field!r}")
    if value == NULL:
        item.pop(rest, None)
        if child["key"] is not None and set(item) <= {child["key"]}:
            child["items"].remove(item)
    else:
        item[rest] = value
    if not any(child["items"]):
        del children[field]
