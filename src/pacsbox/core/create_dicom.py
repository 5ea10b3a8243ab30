"""New DICOM instances built from JSON tag values, images and PDFs: Orthanc's /tools/create-dicom in domain terms.

Follows what the real Orthanc 1.10.1 writes (checked by tests/faces/orthanc/test_create_dicom.py): generated
PatientID (a UUID) and study, series and instance UIDs; the patient, study and series module tags of a parent
resource copied from one of its instances; the creation dates and times in UTC; the requested tags (keywords or
``gggg,eeee``, sequences as lists of objects) encoded in the instance's character set, the characters it cannot
hold dropped; the content (PNG, JPEG, PDF, raw bytes) embedded by ``core.embed_content``. Values are encoded here,
to the bytes DCMTK writes, and kept as raw elements, so pydicom writes them untouched.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import enum
import io
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .archive import Archive, Origin, StoreResult
from .dicom import ENCODINGS
from .dicom_json import UnknownDicomTag, parse_tag
from .dicom_nesting import MAX_SEQUENCE_DEPTH
from .errors import ArchiveError, BadFormat, BadRequest, OutOfRange, UnknownResource
from .ids import Level

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.dataset import Dataset

SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PIXEL_DATA = 0x7FE00010
ENCAPSULATED_DOCUMENT = 0x00420011
BINARY_URI_PREFIX = "data:application/octet-stream;base64,"
# What DCMTK writes as MediaStorageSOPClassUID when the data set has no SOPClassUID (UID_PrivateGenericFileSOPClass):
# the real Orthanc's files carry it, and /header shows it.
GENERIC_FILE_SOP_CLASS = "1.2.276.0.7230010.3.1.0.1"

# Tags a request may set although the new instance already has them (Orthanc's InjectTags): the generated PatientID
# and the dates and times of creation. Anything else already there (UIDs, inherited modules) needs "Force".
_OVERRIDABLE = frozenset({0x00100020, 0x00080022, 0x00080032, 0x00080023, 0x00080033, 0x00080012, 0x00080013,
                          0x00080021, 0x00080031, 0x00080020, 0x00080030})

_TEXT_PADDED_WITH_NUL = frozenset({"UI"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_INTEGERS = {"US": (16, False), "SS": (16, True), "UL": (32, False), "SL": (32, True), "UV": (64, False),
             "SV": (64, True)}
_FLOATS = {"FL": "<f", "FD": "<d"}
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DATA_URI = re.compile(r"data:([^;,]+);base64,([A-Za-z0-9+/=]*)", re.ASCII)


class Refusal(enum.Enum):
    """Why a create request is refused, in Orthanc's terms (the Orthanc face maps each to its error code)."""

    OVERRIDE_TAG = "Trying to override a value inherited from a parent module"
    USE_CONTENT = 'Use "Content" to inject an image into a new DICOM instance'
    NO_PAYLOAD = "No payload is present for one instance in the series"
    USE_DATA_URI = "The payload of the DICOM instance must be specified according to Data URI scheme"
    BAD_PARENT = "Trying to attach a new DICOM instance to an inexistent resource"
    PARENT_IS_INSTANCE = "Trying to attach a new DICOM instance to an instance (must be a series, study or patient)"
    NOT_STRING = "Only string values are supported when creating DICOM instances"
    BAD_TYPE = "Bad type for a parameter"


class CreateRefused(BadRequest):
    """A create request that cannot be honoured, for one of the reasons of :class:`Refusal`."""

    def __init__(self, reason: Refusal, details: str | None = None) -> None:
        super().__init__(details)
        self.reason = reason


# Orthanc accepts these terms for SpecificCharacterSet and writes its own spelling of each (GetDicomEncoding, then
# GetDicomSpecificCharacterSet): the ISO 2022 forms of the single-byte sets become their ISO_IR names.
_SINGLE_BYTE = ("6", "100", "101", "109", "110", "148", "144", "127", "126", "138", "166", "13")
CANONICAL_CHARSETS: dict[str, str] = {
    **{term: term for term in ENCODINGS.values()},
    **{f"ISO 2022 IR {n}": f"ISO_IR {n}" for n in _SINGLE_BYTE},
    "GBK": "GB18030",
    "ISO 2022 IR 58": "ISO 2022 IR 58",
}


def canonical_charset(term: str) -> str | None:
    """The SpecificCharacterSet Orthanc writes for ``term``, or None when it does not know the term."""
    return CANONICAL_CHARSETS.get(term)


def charset_of_encoding(name: str) -> str:
    """The SpecificCharacterSet of one of Orthanc's DefaultEncoding names (``Latin1`` → ``ISO_IR 100``)."""
    return ENCODINGS.get(name, "ISO_IR 100")


def now_dicom() -> tuple[str, str]:
    """Today's date and the time in UTC, as Orthanc stamps new instances (``HHMMSS.000000``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S") + ".000000"


def decode_data_uri(text: str) -> tuple[str, bytes] | None:
    """``(lower-case MIME type, payload)`` of a base64 data URI, or None when ``text`` is not one."""
    match = _DATA_URI.fullmatch(text)
    if match is None:
        return None
    try:
        return match.group(1).lower(), base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None


def _dictionary_vr(tag: int) -> str:
    import pydicom

    if tag >> 16 & 1:
        return "LO" if 0x10 <= (tag & 0xFFFF) <= 0xFF else "UN"  # private creator, or unknown private data
    try:
        vr = pydicom.datadict.dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]  # "US or SS", "OB or OW": DCMTK creates the first


def _tag_text(tag: int) -> str:
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def _out_of_range(tag: int, text: str) -> BadFormat:
    return BadFormat(f"While creating a DICOM instance, tag ({_tag_text(tag)}) has out-of-range value: \"{text}\"")


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


class Draft:
    """The elements of an instance being built, encoded as they will be written, in one character set."""

    def __init__(self, charset: str | None) -> None:
        self.elements: dict[int, RawDataElement | DataElement] = {}
        self.codec = "latin_1"
        self.set_charset(charset)

    def set_charset(self, charset: str | None) -> None:
        """Write ``charset`` as SpecificCharacterSet (None: keep the default Latin-1 without writing it)."""
        from pydicom.charset import python_encoding

        if charset is not None:
            self.codec = python_encoding.get(charset, "latin_1")
            self.put_text(SPECIFIC_CHARACTER_SET, charset)

    def has(self, tag: int) -> bool:
        return tag in self.elements

    def text(self, tag: int) -> str | None:
        from pydicom.dataelem import RawDataElement

        element = self.elements.get(tag)
        if isinstance(element, RawDataElement):
            return bytes(element.value).rstrip(b"\x00 ").decode(self.codec, "replace")
        return None

    def copy(self) -> Draft:
        twin = Draft(None)
        twin.elements, twin.codec = dict(self.elements), self.codec
        return twin

    def put_bytes(self, tag: int, vr: str, value: bytes) -> None:
        self.elements[tag] = _raw(tag, vr, value + b"\x00" if len(value) % 2 else value)

    def put_text(self, tag: int, text: str, *, decode_binary: bool = False) -> None:
        """Orthanc's ReplacePlainString (and Replace with a string): ``text`` converted to the tag's VR."""
        if tag & 0xFFFF == 0:  # group lengths are the writer's business
            return
        self.elements[tag] = self._element(tag, text, decode_binary)

    def set_if_absent(self, tag: int, text: str) -> None:
        if tag not in self.elements:
            self.put_text(tag, text)

    def put_json(self, tag: int, value: Any, decode_binary: bool, depth: int = 0) -> None:
        """Orthanc's Replace with a JSON value: a string, null (an empty element), or a list of objects (a
        sequence)."""
        from pydicom.dataelem import DataElement
        from pydicom.sequence import Sequence

        if tag & 0xFFFF == 0:
            return
        if isinstance(value, str):
            self.elements[tag] = self._element(tag, value, decode_binary)
        elif value is None:
            vr = _dictionary_vr(tag)
            self.elements[tag] = DataElement(tag, "SQ", Sequence()) if vr == "SQ" else _raw(tag, vr, b"")
        elif isinstance(value, list) and _dictionary_vr(tag) == "SQ":
            if depth >= MAX_SEQUENCE_DEPTH:
                raise BadRequest(f"Sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels")
            items = []
            for entry in value:
                if not isinstance(entry, dict):
                    raise CreateRefused(Refusal.BAD_TYPE)
                item = Draft(None)
                item.codec = self.codec
                for name in sorted(entry):
                    item.put_json(tag_of(name), entry[name], decode_binary, depth + 1)
                items.append(item.dataset())
            self.elements[tag] = DataElement(tag, "SQ", Sequence(items))
        else:
            raise CreateRefused(Refusal.BAD_TYPE, f"Bad Parameter type for tag {_tag_text(tag)}")

    def _element(self, tag: int, text: str, decode_binary: bool) -> RawDataElement | DataElement:
        vr = _dictionary_vr(tag)
        if decode_binary and text.startswith(BINARY_URI_PREFIX):
            decoded = decode_data_uri(text)
            if decoded is None:
                raise BadFormat(f"Bad data URI for tag {_tag_text(tag)}")
            value = decoded[1]
        elif vr == "SQ":
            raise _out_of_range(tag, text)
        elif vr in _INTEGERS:
            value = _integer(tag, vr, text)
        elif vr in _FLOATS:
            try:
                value = struct.pack(_FLOATS[vr], float(text))
            except (ValueError, OverflowError):
                raise _out_of_range(tag, text) from None
        elif vr == "AT":
            target = tag_of(text)
            value = struct.pack("<HH", target >> 16, target & 0xFFFF)
        else:
            value = text.encode(self.codec, "ignore")  # what the character set cannot hold is dropped
        if len(value) % 2:
            value += b"\x00" if vr in _TEXT_PADDED_WITH_NUL or vr in _BINARY_VRS else b" "
        return _raw(tag, vr, value)

    def dataset(self) -> Dataset:
        from pydicom.dataset import Dataset

        dataset = Dataset()
        for tag in sorted(self.elements):
            dataset[tag] = self.elements[tag]
        return dataset

    def part10(self) -> bytes:
        """The instance as a DICOM file in explicit VR little endian."""
        import pydicom
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        dataset = self.dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = self.text(SOP_CLASS_UID) or GENERIC_FILE_SOP_CLASS
        meta.MediaStorageSOPInstanceUID = self.text(SOP_INSTANCE_UID) or ""
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.file_meta = meta
        buffer = io.BytesIO()
        try:
            pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
        except Exception as error:  # a value pydicom cannot write is the request's fault, never a 500
            raise BadRequest(f"Cannot write the new DICOM instance: {error}") from None
        return buffer.getvalue()


def _integer(tag: int, vr: str, text: str) -> bytes:
    bits, signed = _INTEGERS[vr]
    if not _INTEGER_TEXT.fullmatch(text):
        raise _out_of_range(tag, text)
    number = int(text)
    if signed and not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
        raise _out_of_range(tag, text)
    if not signed:
        if not -(1 << bits) < number < 1 << bits:
            raise _out_of_range(tag, text)
        number &= (1 << bits) - 1  # a negative number wraps, as boost::lexical_cast does
    return number.to_bytes(bits // 8, "little", signed=signed)


def tag_of(name: str) -> int:
    """A request's tag name (keyword or ``gggg,eeee``); "Unknown DICOM tag" when neither."""
    try:
        return parse_tag(name)
    except UnknownDicomTag:
        raise OutOfRange(f"Unknown DICOM tag: {name!r}") from None


@dataclass(frozen=True)
class Inherited:
    """What a new instance takes from its parent: the parent's level and its modules' tags, as strings (None for
    an empty element), and the parent's character set."""

    level_name: str  # "Patient", "Study" or "Series"
    values: Mapping[int, str | None]
    charset: str | None


def new_draft(charset: str | None, inherited: Inherited | None) -> Draft:
    """A fresh instance: generated identifiers, then the parent's modules (Orthanc's CreateDicomV2 order)."""
    from pydicom.uid import generate_uid

    draft = Draft(None)
    draft.put_text(0x00100020, str(uuid.uuid4()))
    draft.put_text(0x0020000D, generate_uid())
    draft.put_text(0x0020000E, generate_uid())
    draft.put_text(SOP_INSTANCE_UID, generate_uid())
    draft.set_charset(charset)
    if inherited is not None:
        if inherited.charset is not None:
            draft.set_charset(inherited.charset)
        for tag, value in sorted(inherited.values.items()):
            draft.put_text(tag, value or "")
    return draft


def stamp_dates(draft: Draft, parent_level: str | None) -> None:
    """Creation, acquisition and content dates; series and study dates when the new instance starts them."""
    date, time = now_dicom()
    for date_tag, time_tag in ((0x00080022, 0x00080032), (0x00080023, 0x00080033), (0x00080012, 0x00080013)):
        draft.put_text(date_tag, date)
        draft.put_text(time_tag, time)
    if parent_level in (None, "Patient", "Study"):
        draft.put_text(0x00080021, date)
        draft.put_text(0x00080031, time)
    if parent_level in (None, "Patient"):
        draft.put_text(0x00080020, date)
        draft.put_text(0x00080030, time)


def inject_tags(draft: Draft, tags: Mapping[str, Any], *, decode_binary: bool, force: bool) -> None:
    """The requested tags, in the order of their names (Orthanc's JSON objects are sorted maps)."""
    from .embed_content import embed_content

    for name in sorted(tags):
        tag = tag_of(name)
        if tag == SPECIFIC_CHARACTER_SET or tag >> 16 == 0x0002:  # set from the request up front; file meta
            continue
        if not force and tag not in _OVERRIDABLE and draft.has(tag):
            raise CreateRefused(Refusal.OVERRIDE_TAG, name)
        if tag == PIXEL_DATA:
            raise CreateRefused(Refusal.USE_CONTENT)
        value = tags[name]
        if tag == ENCAPSULATED_DOCUMENT and decode_binary and isinstance(value, str):
            decoded = decode_data_uri(value)
            if decoded is not None:
                embed_content(draft, *decoded)
                continue
        draft.put_json(tag, value, decode_binary)


# -- the requests ---------------------------------------------------------------------------------------------------
# Module tags a new instance takes from its parent, per level of the parent and its ancestors (DICOM PS3.3 2011, as
# Orthanc lists them: Patient Module C.7-1, General Study Module C.7-3, General Series Module C.7-5).
MODULE_TAGS: dict[str, frozenset[int]] = {
    "Patient": frozenset({
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00081120, 0x00100032, 0x00101000, 0x00101002,
        0x00101001, 0x00102160, 0x00104000, 0x00102201, 0x00102202, 0x00102292, 0x00102293, 0x00102294,
        0x00102297, 0x00102298, 0x00102299, 0x00120062, 0x00120063, 0x00120064, 0x00100021, 0x00100024}),
    "Study": frozenset({
        0x0020000D, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050, 0x00080051,
        0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00321034, 0x00081110, 0x00081032,
        0x00401012}),
    "Series": frozenset({
        0x00080060, 0x0020000E, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050, 0x00081052,
        0x00181030, 0x0008103E, 0x0008103F, 0x00081070, 0x00081072, 0x00081111, 0x00081250, 0x00180015,
        0x00185100, 0x00280108, 0x00290109, 0x00400275, 0x00102210, 0x00400253, 0x00400244, 0x00400245,
        0x00400254, 0x00400260, 0x00400280}),
}
_ANCESTRY = {"Patient": ("Patient",), "Study": ("Study", "Patient"), "Series": ("Series", "Study", "Patient")}


def inherited_tags(level_name: str, sibling: Dataset, default_charset: str) -> Inherited:
    """The module tags of a parent at ``level_name`` and of its ancestors, read from one of its instances as
    Orthanc reads them: its tags in JSON, where only strings and empty values are copied (sequences, binary values
    and values over 256 bytes are not)."""
    from .dicom_json import render_tags

    tags = render_tags(sibling, "full")
    charset = None
    if "0008,0005" in tags:
        entry = tags["0008,0005"]
        value = entry.get("Value") if entry.get("Type") == "String" else None
        # an unknown character set falls back to the default encoding, as Orthanc's warning says
        charset = (canonical_charset(value) if isinstance(value, str) else None) or default_charset
    wanted = frozenset().union(*(MODULE_TAGS[level] for level in _ANCESTRY[level_name]))
    values: dict[int, str | None] = {}
    for tag in wanted:
        entry = tags.get(_tag_text(tag))
        if entry is None or entry.get("Type") not in ("String", "Null"):
            continue
        values[tag] = entry["Value"] if entry["Type"] == "String" else None
    return Inherited(level_name, values, charset)


@dataclass(frozen=True)
class CreateRequest:
    """A create request whose fields have the right types (the face checks them): Orthanc's CreateDicomV2."""

    tags: Mapping[str, Any]
    content: Any = None  # a data URI, a list of them (or of {"Content", "Tags"} objects) for a series, or None
    force: bool = False
    decode_binary: bool = True  # InterpretBinaryTags
    charset: str = "ISO_IR 100"  # SpecificCharacterSet, already checked and canonical
    inherited: Inherited | None = None
    max_pixel_bytes: int = 1024**3


def build_instance(request: CreateRequest) -> Draft:
    """The new instance, before any series is made of it (Orthanc: everything up to "Content" being a list)."""
    from .embed_content import embed_content

    parent_level = request.inherited.level_name if request.inherited else None
    draft = new_draft(request.charset, request.inherited)
    stamp_dates(draft, parent_level)
    inject_tags(draft, request.tags, decode_binary=request.decode_binary, force=request.force)
    if isinstance(request.content, str):
        decoded = decode_data_uri(request.content)
        if decoded is None:
            raise BadFormat()
        embed_content(draft, *decoded, request.max_pixel_bytes)
    elif request.content is not None and not isinstance(request.content, list):
        raise CreateRefused(Refusal.USE_DATA_URI)
    return draft


def series_drafts(base: Draft, request: CreateRequest):
    """One instance per item of ``request.content`` (a non-empty list), made one at a time: each shares the
    base's series and carries the item's own tags and content, numbered from 1."""
    from pydicom.uid import generate_uid

    from .embed_content import embed_content

    items = request.content
    base.put_text(0x00201002, str(len(items)))  # ImagesInAcquisition
    base.put_text(0x00200105, "1")  # NumberOfTemporalPositions
    for index, item in enumerate(items, start=1):
        draft = base.copy()
        draft.put_text(SOP_INSTANCE_UID, generate_uid())
        payload = item
        if isinstance(item, dict):
            if "Content" not in item:
                raise CreateRefused(Refusal.NO_PAYLOAD)
            payload = item["Content"]
            if "Tags" in item:
                if not isinstance(item["Tags"], dict):
                    raise BadRequest("Tags field is not an array")
                inject_tags(draft, item["Tags"], decode_binary=request.decode_binary, force=request.force)
        if not isinstance(payload, str):
            raise CreateRefused(Refusal.USE_DATA_URI)
        decoded = decode_data_uri(payload)
        if decoded is None:
            raise BadFormat()
        embed_content(draft, *decoded, request.max_pixel_bytes)
        draft.put_text(0x00200013, str(index))  # InstanceNumber
        draft.put_text(0x00541330, str(index))  # ImageIndex
        yield draft


def build_legacy(fields: Mapping[str, Any], default_charset: str = "ISO_IR 100",
                 max_pixel_bytes: int = 1024**3) -> Draft:
    """Orthanc 0.9.3's request (no "Tags"): ``{name: string}``, PixelData as a data URI, no dates, no character
    set written (values are encoded in the default one)."""
    from pydicom.charset import python_encoding

    from .embed_content import embed_content

    draft = new_draft(None, None)
    draft.codec = python_encoding.get(default_charset, "latin_1")
    for name in sorted(fields):
        value = fields[name]
        if not isinstance(value, str):
            raise CreateRefused(Refusal.NOT_STRING)
        tag = tag_of(name)
        if tag == PIXEL_DATA:
            decoded = decode_data_uri(value)
            if decoded is None:
                raise BadFormat()
            embed_content(draft, *decoded, max_pixel_bytes)
        elif tag >> 16 != 0x0002:
            draft.put_text(tag, value)
    return draft


# -- through the archive --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreatedSeries:
    """A series made of a list of contents."""

    series_id: str


def inherited_from(archive: Archive, parent_id: str) -> Inherited:
    """What a new instance attached to ``parent_id`` (a patient, study or series) takes from it."""
    try:
        level = archive.level_of(parent_id)
    except UnknownResource:
        raise CreateRefused(Refusal.BAD_PARENT) from None
    if level == Level.INSTANCE:
        raise CreateRefused(Refusal.PARENT_IS_INSTANCE)
    try:
        sibling = archive.instance_dataset(archive.instance_ids_below(level, parent_id)[0])
    except (UnknownResource, IndexError):  # deleted by another request meanwhile
        raise CreateRefused(Refusal.BAD_PARENT) from None
    return inherited_tags(level.title, sibling, charset_of_encoding(archive.settings.default_encoding))


def create(archive: Archive, request: CreateRequest, origin: Origin) -> StoreResult | CreatedSeries:
    """Build and store a new instance, or a new series when the content is a non-empty list; a series that fails
    half-way is deleted again (the instances stored so far with it)."""
    draft = build_instance(request)
    if not (isinstance(request.content, list) and request.content):
        return archive.store(draft.part10(), origin)
    stored: StoreResult | None = None
    try:
        for instance in series_drafts(draft, request):
            stored = archive.store(instance.part10(), origin)
    except ArchiveError as error:
        if stored is None:
            # Orthanc looks up the series of the instance stored last to delete it, finds none, and answers that
            # (404 "Unknown resource") instead of the error itself
            raise UnknownResource(f"The series failed at its first instance: {error.details or error}") from None
        with contextlib.suppress(UnknownResource):
            archive.delete(Level.SERIES, stored.series_id)
        raise
    except Exception:
        if stored is not None:
            with contextlib.suppress(UnknownResource):
                archive.delete(Level.SERIES, stored.series_id)
        raise
    assert stored is not None
    return CreatedSeries(stored.series_id)


def create_legacy(archive: Archive, fields: Mapping[str, Any], origin: Origin) -> StoreResult:
    """Store the instance of a request without "Tags" (Orthanc <= 0.9.3's form)."""
    default_charset = charset_of_encoding(archive.settings.default_encoding)
    return archive.store(build_legacy(fields, default_charset).part10(), origin)
