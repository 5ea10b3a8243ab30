"""Orthanc-compatible JSON renderings of DICOM data sets.

Everything here mirrors what the real Orthanc 1.10.1 (Debian, DCMTK 3.6.7)
answers, checked against it by ``tests/core/test_dicom_json.py``:

* ``tags_full``        GET /instances/{id}/tags
* ``tags_simplified``  GET /instances/{id}/tags?simplify  (= /simplified-tags)
* ``tags_short``       GET /instances/{id}/tags?short
* ``header_full`` / ``header_simplified`` / ``header_short``  GET /instances/{id}/header[?simplify|?short]
* ``content_lookup``   GET /instances/{id}/content/{path...}

Values are rendered from the *raw bytes* pydicom keeps for every element it
has not converted yet, reproducing DCMTK's in-memory normalisation (rather
than pydicom's), then converted to Unicode the way Orthanc does.  Elements
pydicom has already converted are re-encoded with pydicom's writer first,
so both paths share one implementation.

Known, deliberate divergences: tag names come from pydicom's dictionary
(Orthanc uses DCMTK's, which lacks ~190 recent tags and does not know nine
recently retired ones), and DCMTK's private dictionary is not emulated:
every private data element is "Unknown Tag & Data", and in implicit-VR files
its VR is UN (so its value is null), as Orthanc does for unknown creators.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import pydicom
from pydicom.charset import convert_encodings, decode_bytes, python_encoding
from pydicom.datadict import get_entry, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

Form = Literal["full", "simplify", "short"]

# ORTHANC_MAXIMUM_TAG_LENGTH: longer values (counted in UTF-8 bytes, after
# conversion) become {"Type": "TooLong", "Value": null} -- null in simplify/short.
MAX_STRING_LENGTH = 256
UNKNOWN_TAG_NAME = "Unknown Tag & Data"  # DCMTK's name for tags it cannot name
PIXEL_DATA = 0x7FE00010
TRAILING_PADDING = 0xFFFCFFFC
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_REPRESENTATION = 0x00280103
UNDEFINED_LENGTH = 0xFFFFFFFF

TEXT_VRS = frozenset(
    "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
# Binary numbers are shown as decimal strings joined by "\\" (struct code).
NUMBER_VRS = MappingProxyType(
    {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"})
# Everything else (OB OW OF OD OL OV UN, and SV/UV that Orthanc 1.10 cannot
# convert) is {"Type": "Null", "Value": null} (DicomToJsonFlags_ConvertBinaryToNull).
_ASCII_DROP = bytes(b for b in range(256) if not (b == 0x0A or 0x20 <= b <= 0x7E))
_WHITESPACE = b" \t\n\v\f\r"
# Orthanc names its "main DICOM tags" itself; only this one differs from DCMTK.
_ORTHANC_NAMES = MappingProxyType({0x00101000: "OtherPatientIDs"})


class ContentNotFound(Exception):
    """/content path that Orthanc answers with 404 and an empty body."""

    http_status = 404


class UnknownDicomTag(ContentNotFound):
    """A path component that is neither "gggg-eeee"/"gggg,eeee"/"ggggeeee"
    nor a DCMTK tag name.  Orthanc answers 500 with a JSON body whose
    "Message" and "OrthancError" are "Unknown DICOM tag" ("OrthancStatus": 27)."""

    http_status = 500
    orthanc_status = 27


@dataclass(frozen=True)
class ContentResult:
    """Answer of ``content_lookup``: either a listing or a raw value.

    ``listing`` (not None) -> 200, ``application/json; charset=utf-8``, body is
    the JSON array of these strings.  Otherwise ``body`` -> 200,
    ``application/octet-stream`` (possibly empty)."""

    listing: tuple[str, ...] | None = None
    body: bytes = b""

    @property
    def media_type(self) -> str:
        if self.listing is not None:
            return "application/json; charset=utf-8"
        return "application/octet-stream"


# ---------------------------------------------------------------- decoding --

def _ascii(raw: bytes) -> str:
    # Toolbox::ConvertToAscii keeps printable ASCII and "\n" only.
    return raw.translate(None, _ASCII_DROP).decode("ascii")


def _utf8_skip(raw: bytes) -> str:
    """boost::locale utf_to_utf(..., skip): a malformed sequence is dropped
    together with the byte that broke it (Python's "ignore" keeps that byte)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    out, i, n = [], 0, len(raw)
    while i < n:
        lead = raw[i]
        i += 1
        if lead < 0x80:
            out.append(chr(lead))
            continue
        trail = 1 if 0xC2 <= lead < 0xE0 else 2 if 0xE0 <= lead < 0xF0 else 3 if 0xF0 <= lead <= 0xF4 else 0
        if not trail:
            continue
        code, ok = lead & ((1 << (6 - trail)) - 1), True
        for _ in range(trail):
            if i >= n or raw[i] & 0xC0 != 0x80:
                ok, i = False, min(i + 1, n)
                break
            code = (code << 6) | (raw[i] & 0x3F)
            i += 1
        width = 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        if ok and width == trail + 1 and code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            out.append(chr(code))
    return "".join(out)


def _make_decoder(terms: list[str]) -> tuple[Callable[[bytes], str], list[str]]:
    """Decoder for a Specific Character Set, plus pydicom codec names."""
    if not terms or terms == [""]:
        terms = ["ISO_IR 100"]  # no/empty (0008,0005): DefaultEncoding = Latin1
    py = convert_encodings(list(terms))
    if len(terms) > 1:  # ISO 2022 code extensions; on failure Orthanc goes ASCII
        def decode(raw: bytes) -> str:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    return decode_bytes(raw, py, set())
            except (UnicodeError, LookupError, ValueError, UserWarning):
                return _ascii(raw)
        return decode, py
    term = terms[0]
    if term == "ISO_IR 192":
        return _utf8_skip, py
    codec = python_encoding.get(term)
    if term in ("ISO_IR 6", "ISO 2022 IR 6") or codec is None:
        return _ascii, py  # unsupported values also fall back to ASCII
    return (lambda raw: raw.decode(codec, "ignore")), py


@dataclass(frozen=True)
class _Ctx:
    decode: Callable[[bytes], str]
    encodings: list[str]          # pydicom codecs, to re-encode converted elements
    little_endian: bool
    max_length: int               # 0 = unlimited
    header: bool                  # DicomToJsonFlags_None: drop binary/private/unknown


def _tags_ctx(ds: pydicom.Dataset) -> _Ctx:
    # Orthanc applies the top-level character set to nested items too,
    # ignoring any (0008,0005) inside them.
    raw = _raw_bytes(ds, SPECIFIC_CHARACTER_SET, None)
    terms = [] if raw is None else [t.strip(" ") for t in _ascii(raw).split("\\")]
    decode, py = _make_decoder(terms)
    little = getattr(ds, "original_encoding", (None, None))[1]
    if little is None:
        little = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") != "1.2.840.10008.1.2.2"
    return _Ctx(decode, py, bool(little), MAX_STRING_LENGTH, False)


# ----------------------------------------------------------------- elements --

def tag_name(tag: int) -> str:
    """The "Name" Orthanc shows for a tag (DCMTK naming: RETIRED_ prefix)."""
    group, element = tag >> 16, tag & 0xFFFF
    if tag in _ORTHANC_NAMES:
        return _ORTHANC_NAMES[tag]
    if group & 1:
        if element == 0:
            return "PrivateGroupLength"
        return "PrivateCreator" if 0x10 <= element <= 0xFF else UNKNOWN_TAG_NAME
    try:
        _vr, _vm, _desc, retired, keyword = get_entry(tag)
    except KeyError:
        return "GenericGroupLength" if element == 0 else UNKNOWN_TAG_NAME
    if not keyword:
        return UNKNOWN_TAG_NAME
    return "RETIRED_" + keyword if retired == "Retired" else keyword


def _dictionary_vr(tag: int, pixel_rep: int) -> str:
    """VR DCMTK assumes when the file does not say (implicit VR, UN)."""
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0:
        return "UL"
    if group & 1:
        return "LO" if 0x10 <= element <= 0xFF else "UN"
    try:
        vr = get_entry(tag)[0]
    except KeyError:
        return "UN"
    if " or " in vr:  # DCMTK "xs": signedness from PixelRepresentation
        vr = "OW" if "OW" in vr else ("SS" if pixel_rep == 1 else "US")
    return vr


def _raw_bytes(ds: pydicom.Dataset, tag: int, ctx: _Ctx | None) -> bytes | None:
    """Value bytes as DCMTK holds them (None if the tag is absent): the file's
    bytes, an odd length being padded with a NUL (even for text VRs, so such
    values escape the trimming of trailing spaces)."""
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement) and isinstance(elem.value, (bytes, bytearray, type(None))):
        value = bytes(elem.value or b"")
        return value + b"\0" if len(value) % 2 else value
    if not isinstance(elem, DataElement):
        elem = ds[tag]
    if " or " in elem.VR:
        elem = DataElement(elem.tag, _dictionary_vr(tag, 0), elem.value)
    fp = DicomBytesIO()
    fp.is_little_endian = ctx.little_endian if ctx else True
    fp.is_implicit_VR = True  # implicit header is always 8 bytes long
    write_data_element(fp, elem, ctx.encodings if ctx else None)
    return fp.getvalue()[8:]


def _vr_of(ds: pydicom.Dataset, tag: int, pixel_rep: int) -> tuple[str, bool, bool]:
    """(VR as DCMTK sees it, little endian?, normalise strings?)."""
    elem = ds.get_item(tag, keep_deferred=True)
    if isinstance(elem, RawDataElement):
        vr, little = elem.VR, elem.is_little_endian
        undefined = elem.length == UNDEFINED_LENGTH
    else:
        vr, little, undefined = elem.VR, None, bool(elem.is_undefined_length)
    normalise = True
    if vr is None:
        vr = _dictionary_vr(tag, pixel_rep)
    elif vr == "UN" and not (tag >> 16) & 1 and _dictionary_vr(tag, pixel_rep) != "UN":
        # Explicit UN for a known public tag: DCMTK switches to the dictionary
        # VR but keeps the value bytes untouched (trailing spaces remain).
        vr, normalise = _dictionary_vr(tag, pixel_rep), False
    elif " or " in vr:
        vr = _dictionary_vr(tag, pixel_rep)
    if vr == "UN" and undefined:
        vr = "SQ"  # undefined-length UN is an implicit-VR sequence
    return vr, True if little is None else little, normalise


def _normalise(vr: str, raw: bytes) -> bytes:
    """DCMTK's in-memory string: trailing spaces removed; for UI every
    whitespace character and the trailing NUL padding removed."""
    if vr == "UI":
        return raw.translate(None, _WHITESPACE).rstrip(b"\0")
    return raw.rstrip(b" ")


def _leaf(ds: pydicom.Dataset, tag: int, vr: str, little: bool, normalise: bool,
          ctx: _Ctx) -> tuple[str, str | None]:
    """("String" | "Null" | "TooLong", value) for a non-sequence element."""
    if vr in TEXT_VRS:
        raw = _raw_bytes(ds, tag, ctx) or b""
        if normalise:
            raw = _normalise(vr, raw)
        # Orthanc copies DCMTK's value as a C string: it stops at the first NUL.
        text = ctx.decode(raw.split(b"\0", 1)[0])
    elif vr in NUMBER_VRS or vr == "AT":
        raw = _raw_bytes(ds, tag, ctx) or b""
        code = NUMBER_VRS.get(vr, "HH")
        count = len(raw) // struct.calcsize(code)
        if count == 0:
            return "Null", None  # empty binary number: null, unlike empty strings
        values = struct.unpack(("<" if little else ">") + code * count, raw[:count * struct.calcsize(code)])
        if vr == "AT":  # only the first attribute tag is shown
            return "String", "%04x,%04x" % values[:2]
        if vr in ("FL", "FD"):  # boost::lexical_cast<std::string>(double)
            text = "\\".join("%.17g" % v for v in values)
        else:
            text = "\\".join(map(str, values))
    else:
        return "Null", None
    # The length limit applies to the converted string, numbers included.
    if ctx.max_length and len(text) * 4 > ctx.max_length and len(text.encode()) > ctx.max_length:
        return "TooLong", None
    return "String", text


def _walk(ds: pydicom.Dataset, ctx: _Ctx, form: Form, top: bool, pixel_rep: int) -> dict[str, Any]:
    """Orthanc's DatasetToJson for one data set or sequence item."""
    out: dict[str, Any] = {}
    own = _raw_bytes(ds, PIXEL_REPRESENTATION, ctx)
    if own and len(own) >= 2:
        pixel_rep = struct.unpack("<H" if ctx.little_endian else ">H", own[:2])[0]
    for tag in sorted(ds.keys()):
        tag = int(tag)
        if top and tag == TRAILING_PADDING:
            continue  # never part of /tags
        group, element = tag >> 16, tag & 0xFFFF
        vr, little, normalise = _vr_of(ds, tag, pixel_rep)
        name = tag_name(tag)
        if ctx.header and (group & 1 or vr not in TEXT_VRS and vr not in NUMBER_VRS
                           and vr not in ("AT", "SQ") or (name == UNKNOWN_TAG_NAME)):
            continue
        creator = None
        if vr == "SQ":
            kind = "Sequence"
            value: Any = [_walk(item, ctx, form, False, pixel_rep) for item in ds[tag].value]
        else:
            kind, value = _leaf(ds, tag, vr, little, normalise, ctx)
            if group & 1 and element >= 0x1000:  # private data element (not SQ)
                owner = (group << 16) | (element >> 8)
                if owner in ds:
                    creator = ctx.decode(_normalise("LO", _raw_bytes(ds, owner, ctx) or b"").split(b"\0")[0])
        if form == "full":
            node = {"Name": name}
            if creator:
                node["PrivateCreator"] = creator
            node["Type"], node["Value"] = kind, value
            out["%04x,%04x" % (group, element)] = node
        elif form == "short":
            out["%04x,%04x" % (group, element)] = value
        else:  # simplify: keyed by name, later duplicates overwrite earlier ones
            out[name] = value
        if top and tag == PIXEL_DATA:
            break  # DicomToJsonFlags_StopAfterPixelData
    return dict(sorted(out.items())) if form == "simplify" else out


def render_tags(ds: pydicom.Dataset, form: Form = "full") -> dict[str, Any]:
    """/instances/{id}/tags in the given form ("full", "simplify", "short")."""
    return _walk(ds, _tags_ctx(ds), form, True, 0)


def render_header(file_meta: pydicom.Dataset, form: Form = "full") -> dict[str, Any]:
    """/instances/{id}/header: the file meta group as ASCII, without binary
    (e.g. FileMetaInformationVersion), private or unknown elements, and
    without any length limit."""
    ctx = _Ctx(_ascii, ["iso8859"], True, 0, True)
    return _walk(file_meta, ctx, form, False, 0)


def tags_full(ds: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/tags: {"0010,0010": {"Name", "Type", "Value"}, ...}.

    Keys are lowercase "gggg,eeee" in tag order.  "Type" is "String" (text,
    and binary numbers as decimal strings joined by "\\"), "Sequence" (Value
    is a list of item dicts), "TooLong" (> 256 UTF-8 bytes, Value null) or
    "Null" (binary VRs incl. PixelData, empty binary numbers).  Private data
    elements carry "PrivateCreator" when their block has a creator.
    Elements after the top-level PixelData and (fffc,fffc) are omitted."""
    return render_tags(ds, "full")


def tags_simplified(ds: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/tags?simplify and /simplified-tags: {Name: value}."""
    return render_tags(ds, "simplify")


def tags_short(ds: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/tags?short: {"gggg,eeee": value}."""
    return render_tags(ds, "short")


def header_full(file_meta: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/header."""
    return render_header(file_meta, "full")


def header_simplified(file_meta: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/header?simplify."""
    return render_header(file_meta, "simplify")


def header_short(file_meta: pydicom.Dataset) -> dict[str, Any]:
    """GET /instances/{id}/header?short."""
    return render_header(file_meta, "short")


# ------------------------------------------------------------------ content --

def parse_tag(text: str) -> int:
    """FromDcmtkBridge::ParseTag: "gggg-eeee", "gggg,eeee", "ggggeeee" (any
    hex case) or a DCMTK name (retired tags need their "RETIRED_" prefix)."""
    hexdigits = "0123456789abcdefABCDEF"
    if len(text) == 9 and text[4] in "-," and all(c in hexdigits for c in text[:4] + text[5:]):
        return int(text[:4] + text[5:], 16)
    if len(text) == 8 and all(c in hexdigits for c in text):
        return int(text, 16)
    retired = text.startswith("RETIRED_")
    tag = tag_for_keyword(text[8:] if retired else text)
    if tag is None or (get_entry(tag)[3] == "Retired") != retired:
        raise UnknownDicomTag(text)
    return tag


def _parse_index(text: str, bits: int) -> int | None:
    """boost::lexical_cast to an unsigned integer: "+"/"-" sign allowed and
    negatives wrap around; None when the cast fails."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii() or int(digits) >= 1 << bits:
        return None
    value = int(digits)
    return (-value) % (1 << bits) if text[0] == "-" else value


def _listing(ds: pydicom.Dataset) -> ContentResult:
    return ContentResult(listing=tuple("%04x-%04x" % (t >> 16, t & 0xFFFF) for t in sorted(ds.keys())))


def _pixel_data(ds: pydicom.Dataset, block: str | None, ctx: _Ctx) -> ContentResult:
    # Top-level PixelData is special: native data is one block "0",
    # encapsulated data lists its items (basic offset table included).
    if PIXEL_DATA not in ds:
        raise ContentNotFound(block)
    vr, little, _ = _vr_of(ds, PIXEL_DATA, 0)
    raw = _raw_bytes(ds, PIXEL_DATA, ctx) or b""
    elem = ds.get_item(PIXEL_DATA, keep_deferred=True)
    encapsulated = (elem.length if isinstance(elem, RawDataElement) else
                    UNDEFINED_LENGTH * elem.is_undefined_length) == UNDEFINED_LENGTH
    if not encapsulated:
        if block is None:
            return ContentResult(listing=("0",))
        if _parse_index(block, 64) == 0:
            return ContentResult(body=raw)
        raise ContentNotFound(block)
    items = list(generate_fragments(raw, endianness="<" if little else ">"))
    if block is None:
        return ContentResult(listing=tuple(str(i) for i in range(len(items))))
    index = _parse_index(block, 32)
    if index is None or index >= len(items):
        raise ContentNotFound(block)
    return ContentResult(body=items[index])


def content_lookup(ds: pydicom.Dataset, path: Sequence[str]) -> ContentResult:
    """GET /instances/{id}/content/{path...} (ParsedDicomFile::SendPathValue).

    Empty path components are ignored (Orthanc drops them from the URI).

    * ``[]``                -> listing of top-level tags "gggg-eeee" (lowercase),
      every element including those after PixelData and (fffc,fffc);
    * ``[tag]``             -> raw value bytes in the file's byte order (strings
      as DCMTK holds them: see ``_normalise``, re-padded to an even length);
      for a sequence, the listing "0", "1", ... of its items;
    * ``[seq, i, ...]``     -> walks into item i ("-1" means the last item);
      an even-length path lists the tags of the item reached;
    * ``["7fe0-0010"(, block)]`` -> see ``_pixel_data``.

    Raises ``ContentNotFound`` (404, empty body) for absent tags, bad or
    out-of-range indexes, and walking into a non-sequence; ``UnknownDicomTag``
    (a ``ContentNotFound`` with ``http_status`` 500) for unparsable tags.
    """
    parts = [p for p in path if p]
    ctx = _tags_ctx(ds)
    if len(parts) in (1, 2) and parse_tag(parts[0]) == PIXEL_DATA:
        return _pixel_data(ds, parts[1] if len(parts) == 2 else None, ctx)
    current = ds
    for pos in range(len(parts) // 2):
        index = _parse_index(parts[2 * pos + 1], 64)
        if index is None:
            raise ContentNotFound(parts[2 * pos + 1])
        tag = parse_tag(parts[2 * pos])
        if tag not in current or _vr_of(current, tag, 0)[0] != "SQ":
            raise ContentNotFound(parts[2 * pos])
        items = current[tag].value
        index = index - (1 << 64) if index >= 1 << 63 else index  # DCMTK takes a signed long
        if index == -1 and items:
            index = len(items) - 1
        if not 0 <= index < len(items):
            raise ContentNotFound(parts[2 * pos + 1])
        current = items[index]
    if len(parts) % 2 == 0:
        return _listing(current)
    tag = parse_tag(parts[-1])
    if tag not in current:
        raise ContentNotFound(parts[-1])
    vr, _little, normalise = _vr_of(current, tag, 0)
    if vr == "SQ":
        return ContentResult(listing=tuple(str(i) for i in range(len(current[tag].value))))
    raw = _raw_bytes(current, tag, ctx) or b""
    if vr in TEXT_VRS and normalise:
        raw = _normalise(vr, raw)
        if len(raw) % 2:
            raw += b"\0" if vr == "UI" else b" "
    return ContentResult(body=raw)
