"""Orthanc-compatible JSON renderings of DICOM data sets.

Mirrors what the real Orthanc 1.10.1 (Debian, DCMTK 3.6.7) answers, checked
against it by ``tests/core/test_dicom_json.py``:

* ``render_tags(ds, form)`` with form "full" / "simplify" / "short": GET /instances/{id}/tags,
  ``?simplify`` (= /simplified-tags) and ``?short``;
* ``render_header(file_meta, form)``: GET .../header;
* ``content_lookup``: GET /instances/{id}/content/{path...}.

What Orthanc does (and this module reproduces):

* keys are lowercase "gggg,eeee" in tag order; "Type" is "String" (binary
  numbers too, as decimal strings joined by "\\"; FL/FD with 17 significant
  digits), "Sequence" (a list of item dicts), "Null" (OB OW OF OD OL OV UN SV
  UV, PixelData, empty binary numbers) or "TooLong" (more than 256 UTF-8 bytes,
  numbers included); simplify/short give null for the last two;
* strings keep DCMTK's in-memory form: trailing spaces trimmed (UI: all
  whitespace and trailing NULs removed), except odd-length values, which DCMTK
  pads with a NUL first; the value is cut at its first NUL (C string);
* only the first value of an AT is shown; the top-level (fffc,fffc) and
  everything after the top-level PixelData are left out;
* names follow DCMTK: "RETIRED_" prefix, "PrivateCreator", "Unknown Tag &
  Data", "GenericGroupLength"...; private data elements get a "PrivateCreator"
  key when their block has a non-empty creator (not on sequences); simplify
  keeps the last of duplicate names;
* the top-level character set applies everywhere (see ``_make_decoder``);
* /header is the file meta group decoded as ASCII, without binary, private or
  unknown elements, and without length limit.

Values come from the raw bytes pydicom keeps for elements it has not
converted; converted elements are re-encoded with pydicom's writer first.

Deliberate divergences: names come from pydicom's dictionary (DCMTK 3.6.7's
lacks ~190 recent tags and nine recent retirements), and DCMTK's private
dictionary is not emulated: private data elements are "Unknown Tag & Data"
and, in implicit VR, UN (null), as Orthanc does for unknown creators.
"""

from __future__ import annotations

import array
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    import pydicom
    from pydicom.dataelem import DataElement, RawDataElement


Form = Literal["full", "simplify", "short"]

MAX_STRING_LENGTH = 256  # ORTHANC_MAXIMUM_TAG_LENGTH
UNKNOWN_TAG_NAME = "Unknown Tag & Data"
PIXEL_DATA = 0x7FE00010
TRAILING_PADDING = 0xFFFCFFFC
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_REPRESENTATION = 0x00280103
UNDEFINED_LENGTH = 0xFFFFFFFF

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
                      "UC", "UI", "UR", "UT"})
NUMBER_VRS = MappingProxyType({"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"})
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})  # the VRs pydicom encodes
_WORD_SIZE = MappingProxyType({**dict.fromkeys(("US", "SS", "OW", "AT"), 2),
                               **dict.fromkeys(("UL", "SL", "FL", "OF", "OL"), 4),
                               **dict.fromkeys(("FD", "OD", "SV", "UV", "OV"), 8)})
_ASCII_DROP = bytes(b for b in range(256) if not (b == 0x0A or 0x20 <= b <= 0x7E))
_WHITESPACE = b" \t\n\v\f\r"
# Orthanc names its "main DICOM tags" itself; only this one differs from DCMTK.
_ORTHANC_NAMES = MappingProxyType({0x00101000: "OtherPatientIDs"})
# Orthanc's GetDicomEncoding(): supported terms (case-insensitive) as Python
# codecs; any other non-empty term makes Orthanc fall back to ASCII.
_CODECS = MappingProxyType({
    "ISO_IR 6": "ascii", "ISO_IR 646": "ascii", "ISO 2022 IR 6": "ascii", "ISO_IR 192": "utf-8",
    **{f"{prefix} {number}": codec for number, codec in [
        ("100", "latin_1"), ("101", "iso8859_2"), ("109", "iso8859_3"), ("110", "iso8859_4"),
        ("148", "iso8859_9"), ("144", "iso8859_5"), ("127", "iso8859_6"), ("126", "iso8859_7"),
        ("138", "iso8859_8"), ("166", "tis_620"), ("13", "shift_jis")]
       for prefix in ("ISO_IR", "ISO 2022 IR")},
    "GB18030": "gb18030", "GBK": "gb18030", "ISO 2022 IR 149": "cp949",
    "ISO 2022 IR 87": "iso2022_jp", "ISO 2022 IR 58": "gb2312",
})
# Orthanc's DefaultEncoding names (decoding text without SpecificCharacterSet), as the codec of the defined term
# each stands for; Windows1251 has none (Orthanc decodes it with iconv's WINDOWS-1251).
DEFAULT_ENCODING_CODECS = MappingProxyType({
    "Ascii": "ascii", "Utf8": "utf-8", "Latin1": "latin_1", "Latin2": "iso8859_2", "Latin3": "iso8859_3",
    "Latin4": "iso8859_4", "Latin5": "iso8859_9", "Cyrillic": "iso8859_5", "Windows1251": "cp1251",
    "Arabic": "iso8859_6", "Greek": "iso8859_7", "Hebrew": "iso8859_8", "Thai": "tis_620", "Japanese": "shift_jis",
    "Chinese": "gb18030", "JapaneseKanji": "iso2022_jp", "Korean": "cp949", "SimplifiedChinese": "gb2312",
})
# Where iconv differs from Python's codec: its SHIFT-JIS maps the single-byte
# half to JIS X 0201 (yen sign, overline); its TIS-620 has no C1 controls.
# (Its CP949 also differs on a few invalid pairs; not emulated.)
_FIXUPS = MappingProxyType({
    "shift_jis": MappingProxyType({ord("\\"): "\u00a5", ord("~"): "\u203e"}),
    "tis_620": MappingProxyType(dict.fromkeys(range(0x80, 0xA0))),
})
_ISO2022_ESCAPE = re.compile("\x1b[\x20-\x2f]{1,3}[\x30-\x7e]")


class ContentNotFound(Exception):
    """A /content path Orthanc answers with 404 and an empty body."""

    http_status = 404


class UnknownDicomTag(ContentNotFound):
    """A path component that is neither "gggg-eeee", "gggg,eeee", "ggggeeee"
    nor a tag name: Orthanc answers 500 with a JSON error whose "Message" and
    "OrthancError" are "Unknown DICOM tag" and "OrthancStatus" is 27."""

    http_status = 500
    orthanc_status = 27


@dataclass(frozen=True)
class ContentResult:
    """What ``content_lookup`` found: a ``listing`` (200, JSON array of these
    strings) or, when ``listing`` is None, a raw ``body`` (200, possibly empty)."""

    listing: tuple[str, ...] | None = None
    body: bytes = b""

    @property
    def media_type(self) -> str:
        """The Content-Type Orthanc sends."""
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
        lead, i = raw[i], i + 1
        if lead < 0x80:
            out.append(chr(lead))
            continue
        trail = 1 if 0xC2 <= lead < 0xE0 else 2 if 0xE0 <= lead < 0xF0 else 3 if 0xF0 <= lead <= 0xF4 else 0
        code, ok = lead & ((1 << (6 - trail)) - 1), trail > 0
        for _ in range(trail):
            if i >= n or raw[i] & 0xC0 != 0x80:
                ok, i = False, min(i + 1, n)
                break
            code, i = (code << 6) | (raw[i] & 0x3F), i + 1
        width = 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        if ok and width == trail + 1 and code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            out.append(chr(code))
    return "".join(out)


def _make_decoder(specific_character_set: str | None, default_encoding: str = "Latin1") -> Callable[[bytes], str]:
    """Toolbox::ConvertToUtf8 after FromDcmtkBridge::DetectEncoding: the first
    non-empty term decodes the whole value (no real ISO 2022 switching), no
    term means DefaultEncoding (Latin1 unless changed); with several terms, escape sequences
    are removed afterwards (except in ASCII, which returns early)."""
    terms = [] if specific_character_set is None else specific_character_set.split("\\")
    term = next((t.strip(" ").upper() for t in terms if t.strip(" ")), None)
    codec = DEFAULT_ENCODING_CODECS.get(default_encoding, "latin_1") if term is None else _CODECS.get(term, "ascii")
    if codec == "ascii":
        return _ascii

    def convert(raw: bytes) -> str:
        if codec == "utf-8":
            text = _utf8_skip(raw)
        else:
            text = raw.decode(codec, "ignore")  # boost::locale::conv::skip
            if codec in _FIXUPS:
                text = text.translate(_FIXUPS[codec])
        return _ISO2022_ESCAPE.sub("", text) if len(terms) > 1 else text
    return convert


@dataclass(frozen=True)
class _Ctx:
    decode: Callable[[bytes], str]
    max_length: int  # 0: unlimited
    header: bool     # DicomToJsonFlags_None: skip binary, private, unknown


def _tags_ctx(ds: pydicom.Dataset, default_encoding: str = "Latin1") -> _Ctx:
    # The top-level character set also applies inside items (Orthanc ignores
    # their own (0008,0005)).  pydicom converts this element when reading.
    elem, value = ds.get_item(SPECIFIC_CHARACTER_SET), None
    if isinstance(elem, tuple):
        value = _ascii(bytes(elem.value or b""))
    elif elem is not None:
        value = elem.value if isinstance(elem.value, str) else "\\".join(elem.value or ())
    return _Ctx(_make_decoder(value, default_encoding), MAX_STRING_LENGTH, False)


# ----------------------------------------------------------------- elements --

# pydicom's RawDataElement is a NamedTuple, its converted DataElement no tuple: ``isinstance(elem, tuple)`` tells
# them apart without importing pydicom in the loop over elements (tests/test_lazy_imports.py checks it stays true)

def tag_name(tag: int) -> str:
    """The "Name" Orthanc shows for a tag."""
    group, element = tag >> 16, tag & 0xFFFF
    if tag in _ORTHANC_NAMES:
        return _ORTHANC_NAMES[tag]
    if group & 1:
        if element == 0:
            return "PrivateGroupLength"
        return "PrivateCreator" if 0x10 <= element <= 0xFF else UNKNOWN_TAG_NAME
    entry = _entry(tag)
    if entry is None:
        return "GenericGroupLength" if element == 0 else UNKNOWN_TAG_NAME
    _vr, _vm, _desc, retired, keyword = entry
    if not keyword:
        return UNKNOWN_TAG_NAME
    return "RETIRED_" + keyword if retired == "Retired" else keyword


def _entry(tag: int) -> tuple[str, str, str, str, str] | None:
    # A plain dict lookup first: get_entry() is slow, but knows repeating groups.
    entry = (_DICTIONARY or _load_dictionary()).get(tag)
    if entry is None:
        from pydicom.datadict import get_entry

        try:
            entry = get_entry(tag)
        except KeyError:
            return None
    return entry


_DICTIONARY: dict[int, tuple[str, str, str, str, str]] = {}  # pydicom's, bound by the first element rendered


def _load_dictionary() -> dict[int, tuple[str, str, str, str, str]]:
    """pydicom's data dictionary, imported with the first element rendered (not with the server)."""
    global _DICTIONARY
    from pydicom.datadict import DicomDictionary

    _DICTIONARY = DicomDictionary
    return DicomDictionary


def _dictionary_vr(tag: int, pixel_rep: int) -> str:
    """The VR DCMTK uses when the file has none (implicit VR) or says UN."""
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0:
        return "UL"
    if group & 1:
        return "LO" if 0x10 <= element <= 0xFF else "UN"
    entry = _entry(tag)
    if entry is None:
        return "UN"
    vr = entry[0]
    if " or " in vr:  # DCMTK "xs" takes its signedness from PixelRepresentation
        vr = "OW" if "OW" in vr else ("SS" if pixel_rep == 1 else "US")
    return vr


def _is_undefined_length(elem: DataElement | RawDataElement) -> bool:
    if isinstance(elem, tuple):
        return elem.length == UNDEFINED_LENGTH
    return bool(elem.is_undefined_length)


def _vr_of(tag: int, elem: DataElement | RawDataElement, pixel_rep: int) -> tuple[str, bool]:
    """(VR as DCMTK sees it, whether its strings get normalised)."""
    vr, normalise = elem.VR, True
    if vr is None or " or " in vr:
        vr = _dictionary_vr(tag, pixel_rep)
    elif vr == "UN" and not (tag >> 16) & 1 and _dictionary_vr(tag, pixel_rep) != "UN":
        # Explicit UN for a known public tag: DCMTK switches to the dictionary
        # VR but leaves the bytes untouched (trailing spaces stay).
        vr, normalise = _dictionary_vr(tag, pixel_rep), False
    if vr == "UN" and _is_undefined_length(elem):
        vr = "SQ"  # an undefined-length UN is an implicit-VR sequence
    return vr, normalise


def _raw_bytes(ds: pydicom.Dataset, tag: int, elem: DataElement | RawDataElement | None) -> bytes:
    """The value as DCMTK holds it: the file's bytes, odd lengths padded with
    a NUL, in little endian (Orthanc answers /content so even for big endian
    files)."""
    if elem is None or (isinstance(elem, tuple) and elem.value is None and elem.length):
        elem = ds.get_item(tag)  # loads a deferred value
    if isinstance(elem, tuple) and isinstance(elem.value, (bytes, bytearray, type(None))):
        value = bytes(elem.value or b"")
        if len(value) % 2:
            value += b"\0"
        size = _WORD_SIZE.get(elem.VR)
        if not elem.is_little_endian and size:
            words = array.array({2: "H", 4: "I", 8: "Q"}[size], value[:len(value) // size * size])
            words.byteswap()
            value = words.tobytes()
        return value
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    if not isinstance(elem, DataElement):
        elem = ds[tag]
    if " or " in elem.VR:
        elem = DataElement(elem.tag, _dictionary_vr(tag, 0), elem.value)
    encodings = None
    if elem.VR in _CHARSET_VRS:  # re-encode with the charset pydicom decoded with
        charset = getattr(ds, "_character_set", None)
        encodings = [charset] if isinstance(charset, str) else list(charset or ()) or None
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True  # header: always 8 bytes
    write_data_element(fp, elem, encodings)
    return fp.getvalue()[8:]


def _items(ds: pydicom.Dataset, tag: int) -> list[pydicom.Dataset]:
    """The items of a sequence (parsed by pydicom; their elements stay raw)."""
    return list(ds[tag].value or ())


def _normalise(vr: str, raw: bytes) -> bytes:
    """DCMTK's in-memory string (for padded bytes from ``_raw_bytes``)."""
    if vr == "UI":
        return raw.translate(None, _WHITESPACE).rstrip(b"\0")
    return raw.rstrip(b" ")


def _leaf(ds: pydicom.Dataset, tag: int, elem: DataElement | RawDataElement, vr: str,
          normalise: bool, ctx: _Ctx) -> tuple[str, str | None]:
    """(Type, Value) of a non-sequence element."""
    if vr in TEXT_VRS:
        raw = _raw_bytes(ds, tag, elem)
        if normalise:
            raw = _normalise(vr, raw)
        text = ctx.decode(raw.split(b"\0", 1)[0])  # Orthanc copies a C string
    elif vr in NUMBER_VRS or vr == "AT":
        raw, code = _raw_bytes(ds, tag, elem), NUMBER_VRS.get(vr, "HH")
        count = len(raw) // struct.calcsize(code)
        if count == 0:
            return "Null", None  # unlike empty strings, which are ""
        values = struct.unpack("<" + code * count, raw[:count * struct.calcsize(code)])
        if vr == "AT":
            return "String", f"{values[0]:04x},{values[1]:04x}"
        # floats as boost::lexical_cast<std::string>(double) writes them: 17 significant digits
        text = "\\".join(f"{v:.17g}" if vr in ("FL", "FD") else str(v) for v in values)
    else:
        return "Null", None  # DicomToJsonFlags_ConvertBinaryToNull
    if ctx.max_length and len(text) * 4 > ctx.max_length and len(text.encode()) > ctx.max_length:
        return "TooLong", None
    return "String", text


def _walk(ds: pydicom.Dataset, ctx: _Ctx, form: Form, top: bool, pixel_rep: int) -> dict[str, Any]:
    """FromDcmtkBridge::DatasetToJson for one data set or sequence item."""
    out: dict[str, Any] = {}
    # Dataset.items() gives the elements without converting them; int keys
    # make the lookups below much cheaper than pydicom's BaseTag ones.
    elems = {int(tag): elem for tag, elem in ds.items()}
    if PIXEL_REPRESENTATION in elems:
        raw = _raw_bytes(ds, PIXEL_REPRESENTATION, elems[PIXEL_REPRESENTATION])
        pixel_rep = int.from_bytes(raw[:2], "little")
    for tag in sorted(elems):
        if top and tag == TRAILING_PADDING:
            continue
        group, element, elem = tag >> 16, tag & 0xFFFF, elems[tag]
        vr, normalise = _vr_of(tag, elem, pixel_rep)
        name = tag_name(tag)
        if ctx.header and (group & 1 or name == UNKNOWN_TAG_NAME
                           or (vr not in TEXT_VRS and vr not in NUMBER_VRS and vr not in ("AT", "SQ"))):
            continue
        creator = None
        if vr == "SQ":
            kind, value = "Sequence", [_walk(item, ctx, form, False, pixel_rep) for item in _items(ds, tag)]
        else:
            kind, value = _leaf(ds, tag, elem, vr, normalise, ctx)
            owner = (group << 16) | (element >> 8)
            if group & 1 and element >= 0x1000 and owner in elems:
                raw = _normalise("LO", _raw_bytes(ds, owner, elems[owner]))
                creator = ctx.decode(raw.split(b"\0", 1)[0])
        if form == "full":
            node: dict[str, Any] = {"Name": name}
            if creator:
                node["PrivateCreator"] = creator
            node["Type"], node["Value"] = kind, value
            out[f"{group:04x},{element:04x}"] = node
        elif form == "short":
            out[f"{group:04x},{element:04x}"] = value
        else:
            out[name] = value  # the last of duplicate names wins
        if top and tag == PIXEL_DATA:
            break  # DicomToJsonFlags_StopAfterPixelData
    return dict(sorted(out.items())) if form == "simplify" else out


def render_tags(ds: pydicom.Dataset, form: Form = "full", default_encoding: str = "Latin1") -> dict[str, Any]:
    """GET /instances/{id}/tags in one of the forms "full", "simplify", "short"; text of a data set without
    SpecificCharacterSet is decoded with ``default_encoding`` (Orthanc's name: ``Latin1``, ``Utf8``...)."""
    return _walk(ds, _tags_ctx(ds, default_encoding), form, True, 0)


def render_header(file_meta: pydicom.Dataset, form: Form = "full") -> dict[str, Any]:
    """GET /instances/{id}/header in one of the forms "full", "simplify", "short"."""
    return _walk(file_meta, _Ctx(_ascii, 0, True), form, False, 0)


def parse_tag(text: str) -> int:
    """FromDcmtkBridge::ParseTag: "gggg-eeee", "gggg,eeee", "ggggeeee" (any
    case) or a DCMTK-style name ("RETIRED_" prefix for retired tags)."""
    from pydicom.datadict import tag_for_keyword

    digits = text[:4] + text[5:] if len(text) == 9 and text[4] in "-," else text
    if len(digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in digits):
        return int(digits, 16)
    retired = text.startswith("RETIRED_")
    tag = tag_for_keyword(text[8:] if retired else text)
    if tag is None or (_entry(tag)[3] == "Retired") != retired:
        raise UnknownDicomTag(text)
    return tag


def _parse_index(text: str, bits: int) -> int | None:
    """boost::lexical_cast to an unsigned integer: a "+" or "-" sign is
    accepted and negatives wrap around; None if the cast fails."""
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or int(digits) >= 1 << bits:
        return None
    return (-int(digits)) % (1 << bits) if text[0] == "-" else int(digits)


def _pixel_data(ds: pydicom.Dataset, block: str | None) -> ContentResult:
    """Top-level PixelData: native data is the single block "0", encapsulated
    data lists its items (basic offset table included)."""
    from pydicom.encaps import generate_fragments

    if PIXEL_DATA not in ds:
        raise ContentNotFound(block)
    if not _is_undefined_length(ds.get_item(PIXEL_DATA, keep_deferred=True)):
        if block is None:
            return ContentResult(listing=("0",))
        if _parse_index(block, 64) != 0:
            raise ContentNotFound(block)
        return ContentResult(body=_raw_bytes(ds, PIXEL_DATA, None))
    items = list(generate_fragments(_raw_bytes(ds, PIXEL_DATA, None)))
    if block is None:
        return ContentResult(listing=tuple(map(str, range(len(items)))))
    index = _parse_index(block, 32)
    if index is None or index >= len(items):
        raise ContentNotFound(block)
    return ContentResult(body=items[index])


def content_lookup(ds: pydicom.Dataset, path: Sequence[str]) -> ContentResult:
    """GET /instances/{id}/content/{path...} (ParsedDicomFile::SendPathValue).

    Empty components are ignored, like Orthanc does with the URI.

    * ``[]`` lists every top-level tag as "gggg-eeee" (lowercase), including
      those after PixelData and (fffc,fffc);
    * ``[tag]`` gives the value bytes (little endian; strings normalised as
      for /tags and padded back to an even length with a space, NUL for UI),
      or for a sequence lists its items "0", "1", ...;
    * ``[seq, i, ...]`` walks into item i ("-1": the last one); a path of even
      length lists the tags of the item reached;
    * ``["7fe0-0010"]`` and ``["7fe0-0010", block]``: see ``_pixel_data``.

    Raises ``ContentNotFound`` (404, empty body) for absent tags, bad or
    out-of-range indexes and walks into non-sequences, ``UnknownDicomTag``
    (its ``http_status`` is 500) for unparsable tags.
    """
    parts = [p for p in path if p]
    if len(parts) in (1, 2) and parse_tag(parts[0]) == PIXEL_DATA:
        return _pixel_data(ds, parts[1] if len(parts) == 2 else None)
    current = ds
    for pos in range(0, len(parts) - 1, 2):
        index = _parse_index(parts[pos + 1], 64)
        if index is None:
            raise ContentNotFound(parts[pos + 1])
        tag = parse_tag(parts[pos])
        elem = current.get_item(tag, keep_deferred=True)
        if elem is None or _vr_of(tag, elem, 0)[0] != "SQ":
            raise ContentNotFound(parts[pos])
        items = _items(current, tag)
        index = index - (1 << 64) if index >= 1 << 63 else index  # DCMTK: signed long
        if index == -1 and items:
            index = len(items) - 1
        if not 0 <= index < len(items):
            raise ContentNotFound(parts[pos + 1])
        current = items[index]
    if len(parts) % 2 == 0:
        return ContentResult(listing=tuple(f"{t >> 16:04x}-{t & 0xFFFF:04x}" for t in sorted(current.keys())))
    tag = parse_tag(parts[-1])
    elem = current.get_item(tag, keep_deferred=True)
    if elem is None:
        raise ContentNotFound(parts[-1])
    vr, normalise = _vr_of(tag, elem, 0)
    if vr == "SQ":
        return ContentResult(listing=tuple(map(str, range(len(_items(current, tag))))))
    raw = _raw_bytes(current, tag, elem)
    if vr in TEXT_VRS and normalise:
        raw = _normalise(vr, raw)
        if len(raw) % 2:
            raw += b"\0" if vr == "UI" else b" "
    return ContentResult(body=raw)
