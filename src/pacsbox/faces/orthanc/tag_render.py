"""GET /instances/{id}/tags (and ``?simplify``, ``?short``) written straight from a stored file's bytes.

``render_tags`` (``core.dicom_json``) walks a pydicom data set into dicts that ``dumps`` then writes: for a small
image, most of a /tags request's time. For the common file (Part 10, little endian, undeflated: what
``scan_part10`` reads) this walks the fast reader's raw top-level elements once and writes Orthanc's JSON as it
goes: per-tag names, VRs and key texts are looked up once per process (bounded caches), text values are decoded
and escaped inline, and no dict is built. The rules are ``core.dicom_json``'s, reused where they are not on the
common path: a sequence's items are walked by ``_walk`` (on the same pydicom data set ``read_elements`` would
make) and written by the same JSON writer, a number or binary element by ``_leaf``; any file the fast reader
leaves to pydicom takes the old path whole. The answer is byte for byte the old path's
(``tests/faces/orthanc/test_tag_render.py`` compares both over generated and hostile files, every form).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import TYPE_CHECKING

from ...core import dicom_json as rules
from ...core.dicom import _pydicom, read_elements, scan_part10
from .json import _write, dumps

if TYPE_CHECKING:
    from pydicom import Dataset

_SEQUENCE, _NULL, _STRING = "Sequence", "Null", "String"
# the struct code and size of each VR whose value is binary numbers shown as text (AT: a pair of words)
_NUMBER_CODES = {**{vr: (code, struct.calcsize(code)) for vr, code in rules.NUMBER_VRS.items()}, "AT": ("HH", 4)}


@functools.lru_cache(maxsize=8192)
def _facts(tag: int, vr: str | None, pixel_rep: int, undefined: bool) -> tuple[str, bool, str, str, str, str]:
    """What an element's rendering needs besides its value, looked up once per kind of element: the VR as DCMTK
    sees it and whether its strings get normalised (``_vr``), the start of its ``full`` node up to the Name, its
    ``short`` key, its name, and its name as JSON (the ``simplify`` key)."""
    shown_vr, normalise = _vr(tag, vr, pixel_rep, undefined)
    name = rules.tag_name(tag)
    key = f'"{tag >> 16:04x},{tag & 0xFFFF:04x}": '
    return shown_vr, normalise, f'{key}{{\n      "Name": {encode_basestring(name)}', key, name, encode_basestring(name)


def _vr(tag: int, vr: str | None, pixel_rep: int, undefined: bool) -> tuple[str, bool]:
    """``core.dicom_json._vr_of`` for an element with this tag, VR and kind of length (it depends on nothing else):
    (the VR as DCMTK sees it, whether its strings get normalised)."""
    normalise = True
    if vr is None or " or " in vr:
        vr = rules._dictionary_vr(tag, pixel_rep)
    elif vr == "UN" and not (tag >> 16) & 1 and rules._dictionary_vr(tag, pixel_rep) != "UN":
        vr, normalise = rules._dictionary_vr(tag, pixel_rep), False  # bytes left untouched (see _vr_of)
    if vr == "UN" and undefined:
        vr = "SQ"
    return vr, normalise


def render_tags_json(data: bytes, form: str, default_encoding: str = "Latin1", *,
                     plain_only: bool = False) -> bytes | None:
    """``dumps(render_tags(read_elements(data), form, default_encoding))``, byte for byte, faster. ``plain_only``:
    None instead of the old path's answer for a file the fast reader leaves to pydicom (the caller renders it
    elsewhere: pydicom's time for a big endian or a deflated file is not bounded by its size)."""
    scanned = scan_part10(data, plain=True)
    charset = None if scanned is None else scanned[1].get(rules.SPECIFIC_CHARACTER_SET)
    if scanned is None or (charset is not None and b"\0" in (charset[2] or b"").rstrip(b"\0 ")):
        if plain_only:
            return None
        return dumps(rules.render_tags(read_elements(data), form, default_encoding))  # type: ignore[arg-type]
    elements = scanned[1]
    decode = rules._make_decoder(None if charset is None else rules._ascii(bytes(charset[2] or b"")),
                                 default_encoding)
    pixel_rep = 0
    if rules.PIXEL_REPRESENTATION in elements:
        raw = bytes(elements[rules.PIXEL_REPRESENTATION][2] or b"")
        pixel_rep = int.from_bytes((raw + b"\0" if len(raw) % 2 else raw)[:2], "little")
    text_vrs, whitespace, limit = rules.TEXT_VRS, rules._WHITESPACE, rules.MAX_STRING_LENGTH
    full, short = form == "full", form == "short"
    facts, undefined_length = _facts, rules.UNDEFINED_LENGTH
    parts: list[str] = []
    named: dict[str, str] = {}
    dataset = None
    for tag in sorted(elements):
        if tag == rules.TRAILING_PADDING:
            continue
        elem_vr, length, raw = elements[tag]
        vr, normalise, head, key, name, name_json = facts(tag, elem_vr, pixel_rep, length == undefined_length)
        creator = None
        if vr == "SQ":
            if dataset is None:  # the data set read_elements makes, whose items pydicom parses
                scanned = scan_part10(data)
                assert scanned is not None  # the same bytes, scanned plain a moment ago
                dataset = _pydicom().Dataset({element.tag: element for element in scanned[1].values()})
            kind, value = _SEQUENCE, _sequence(dataset, tag, form, decode, pixel_rep)
        else:
            if len(raw) % 2:
                raw += b"\0"
            kind = _STRING
            if vr in text_vrs:
                if normalise:
                    raw = raw.translate(None, whitespace).rstrip(b"\0") if vr == "UI" else raw.rstrip(b" ")
                text = decode(raw.split(b"\0", 1)[0])
            elif vr in _NUMBER_CODES:
                code, size = _NUMBER_CODES[vr]
                count = len(raw) // size
                if count == 0:
                    kind = _NULL  # unlike empty strings, which are ""
                elif vr == "AT":
                    first, second = struct.unpack_from("<HH", raw)
                    text = f"{first:04x},{second:04x}"
                elif vr in ("FL", "FD"):  # boost::lexical_cast<std::string>(double): 17 significant digits
                    text = "\\".join([f"{v:.17g}" for v in struct.unpack_from(f"<{count}{code}", raw)])
                else:
                    text = "\\".join(map(str, struct.unpack_from(f"<{count}{code}", raw)))
            else:
                kind = _NULL  # DicomToJsonFlags_ConvertBinaryToNull
            if kind is _NULL:
                value = "null"
            elif len(text) * 4 > limit and len(text.encode()) > limit:
                kind, value = "TooLong", "null"
            else:
                value = encode_basestring(text)
            group, element = tag >> 16, tag & 0xFFFF
            if full and group & 1 and element >= 0x1000:
                owner = elements.get((group << 16) | (element >> 8))
                if owner is not None:
                    raw = owner[2] or b""
                    raw = (raw + b"\0" if len(raw) % 2 else raw).rstrip(b" ")
                    creator = decode(raw.split(b"\0", 1)[0])
        if full:
            if creator:
                parts.append(f'{head},\n      "PrivateCreator": {encode_basestring(creator)},\n'
                             f'      "Type": "{kind}",\n      "Value": {value}\n   }}')
            else:
                parts.append(f'{head},\n      "Type": "{kind}",\n      "Value": {value}\n   }}')
        elif short:
            parts.append(key + value)
        else:
            named[name] = f"{name_json}: {value}"  # the last of duplicate names wins
        if tag == rules.PIXEL_DATA:
            break  # DicomToJsonFlags_StopAfterPixelData
    if not full and not short:
        parts = [named[name] for name in sorted(named)]
    if not parts:
        return b"{}"
    return ("{\n   " + ",\n   ".join(parts) + "\n}").encode("utf-8")


def _sequence(dataset: Dataset, tag: int, form: str, decode: Callable[[bytes], str], pixel_rep: int) -> str:
    """A sequence's value, written at its place in the answer: its items walked by ``core.dicom_json``."""
    ctx = rules._Ctx(decode, rules.MAX_STRING_LENGTH, False)
    items = [rules._walk(item, ctx, form, False, pixel_rep)  # type: ignore[arg-type]
             for item in rules._items(dataset, tag)]
    written: list[str] = []
    _write(items, "      " if form == "full" else "   ", written)
    return "".join(written)
