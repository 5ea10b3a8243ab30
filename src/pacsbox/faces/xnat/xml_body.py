"""An object's fields from an XML body (``PUT <uri>?inbody=true`` with XNAT's XML, as pyxnat's ``create(xml=...)``
sends): attributes and leaf elements become field paths, custom variables ``fields/field[name=..]``, nested typed
objects ``demographics[@xsi:type=..]/..``. A malformed document is a 400 and nothing changes; nested objects with
their own REST paths (scans of a session, its assessors) are left to their own routes."""

from __future__ import annotations

from xml.etree import ElementTree

from starlette.requests import Request

from .errors import XnatError
from .schemas import DATA_TYPES

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_MAX_BODY = 1024 * 1024  # an object's XML; larger bodies are no object description (413)
_SKIPPED = frozenset({"scans", "assessors", "reconstructions", "experiments", "resources", "sharing", "out", "in"})
_NAMED_LISTS = frozenset({"field", "addParam"})  # list entries keyed by their name attribute


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _type_of(root: ElementTree.Element) -> str | None:
    declared = root.get(_XSI_TYPE)
    if declared:
        return declared
    name = _local(root.tag)
    return next((t.xsi_type for t in DATA_TYPES.values() if t.element == name), None)


def _collect(node: ElementTree.Element, prefix: str, into: dict[str, str], depth: int = 0) -> None:
    if depth > 32:
        raise XnatError(400, "The XML body nests deeper than an XNAT object does")
    for name, value in node.attrib.items():
        if name != _XSI_TYPE and "}" not in name:
            into[prefix + name] = value
    for child in node:
        name = _local(child.tag)
        if not prefix and name in _SKIPPED:
            continue
        if name in _NAMED_LISTS and child.get("name"):
            into[f"{prefix}{name}[name={child.get('name')}]/{'addField' if name == 'addParam' else name}"] = \
                (child.text or "").strip()
        elif child.get(_XSI_TYPE):
            _collect(child, f"{prefix}{name}[@xsi:type={child.get(_XSI_TYPE)}]/", into, depth + 1)
        elif len(child) or any(key != _XSI_TYPE for key in child.attrib):
            if (child.text or "").strip():
                into[prefix + name] = child.text.strip()
            _collect(child, f"{prefix}{name}/", into, depth + 1)
        else:
            into[prefix + name] = (child.text or "").strip()


async def body_updates(request: Request) -> tuple[str | None, dict[str, str]]:
    """The xsi type and the field updates an XML body describes; (None, {}) when the request carries none."""
    content_type = request.headers.get("content-type", "").lower()
    inbody = request.query_params.get("inbody", "").lower() == "true"
    if content_type.startswith("multipart/form-data"):
        body = await _first_part(request)  # pyxnat's create(xml=...) sends the document as a form's file
    elif inbody or "xml" in content_type:
        body = await request.body()
    else:
        return None, {}
    if not body.strip():
        return None, {}
    if len(body) > _MAX_BODY:
        raise XnatError(413, "The XML body is too large for an object description")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:  # also entity expansion and external entities (expat refuses them)
        raise XnatError(400, f"The body is not a well-formed XML document: {error}") from None
    updates: dict[str, str] = {}
    _collect(root, "", updates)
    return _type_of(root), updates


async def _first_part(request: Request) -> bytes:
    """The first file of a multipart form body (within the request body limit the face already applies)."""
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception:  # a malformed multipart body: python-multipart raises several types
        raise XnatError(400, "The multipart body cannot be read") from None
    try:
        for _, value in form.multi_items():
            if not isinstance(value, str):
                return await value.read(_MAX_BODY + 1)
        return b""
    finally:
        await form.close()
