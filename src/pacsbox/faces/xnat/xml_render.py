"""Single objects as XNAT's XML (``GET <uri>?format=xml``): what pyxnat reads attributes, custom variables and
``xpath`` from. The document is built from the object's JSON form (``items``) and the served schema: a field the
type declares as an attribute becomes one, every other field an element, nested by its path."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

from .schemas import DATA_TYPES

XNAT = "http://nrg.wustl.edu/xnat"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ElementTree.register_namespace("xnat", XNAT)
ElementTree.register_namespace("xsi", XSI)
_TEXT_KEYS = ("field", "addField")  # the keys of list items that are the element's text (custom variables)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # what a field path part must be to name an element
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # characters XML cannot hold


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _tag(name: str) -> str:
    return f"{{{XNAT}}}{name}"


def _element_at(parent: ElementTree.Element, path: list[str]) -> ElementTree.Element:
    """The element at ``path`` below ``parent``, created where missing."""
    node = parent
    for name in path:
        found = node.find(_tag(name))
        node = found if found is not None else ElementTree.SubElement(node, _tag(name))
    return node


def _fill(element: ElementTree.Element, xsi_type: str, item: dict[str, Any]) -> None:
    data_type = DATA_TYPES.get(xsi_type)
    attributes = data_type.attributes if data_type else frozenset({"ID", "label", "project"})
    order = list(data_type.fields) if data_type else []
    fields = item.get("data_fields", {})
    for path in sorted(fields, key=lambda p: order.index(p) if p in order else len(order)):
        value = fields[path]
        if value is None or value == "":
            continue
        parts = path.split("/")
        if not all(_NAME.match(part) for part in parts):
            continue  # a client's field path that cannot name XML elements is left out of the document
        if path in attributes:
            _element_at(element, parts[:-1]).set(parts[-1], _text(value))
        else:
            _element_at(element, parts).text = _text(value)
    for child in item.get("children", []):
        parts = child["field"].split("/")
        if not all(_NAME.match(part) for part in parts):
            continue
        container = _element_at(element, parts[:-1])
        for entry in child["items"]:
            node = ElementTree.SubElement(container, _tag(parts[-1]))
            entry_type = entry.get("meta", {}).get("xsi:type", "")
            if entry_type in DATA_TYPES:  # a nested object of a type (demographics, a scan): its own fields
                node.set(f"{{{XSI}}}type", entry_type)
                _fill(node, entry_type, entry)
                continue
            for key, value in entry.get("data_fields", {}).items():  # a list entry: name=".." and its text
                if key in _TEXT_KEYS or key == parts[-1]:
                    node.text = _text(value)
                elif _NAME.match(key):
                    node.set(key, _text(value))


def object_xml(body: dict[str, Any]) -> bytes:
    """The XML document of one object from its JSON form (``{"items": [item]}``)."""
    item = body["items"][0]
    xsi_type = item["meta"]["xsi:type"]
    data_type = DATA_TYPES.get(xsi_type)
    name = data_type.element if data_type and data_type.element else xsi_type.split(":", 1)[-1]
    root = ElementTree.Element(_tag(name))
    root.set(f"{{{XSI}}}type", xsi_type)
    _fill(root, xsi_type, item)
    return ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)
