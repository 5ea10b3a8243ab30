"""Reading DICOM bytes into what the index needs: identifiers, Orthanc's main tags per level, ingest facts."""

from __future__ import annotations

import functools
import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, BinaryIO

from .dicom_nesting import (
    EXPLICIT_VR_LENGTH_32,
    MAX_SEQUENCE_DEPTH,
    VR_NAMES,
    TruncatedSequence,
    deepest_sequence,
    top_level_elements,
)
from .errors import InvalidDicom
from .ids import Level, resource_ids

if TYPE_CHECKING:  # pydicom loads with the first DICOM read, not with the server (cold start)
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset


@functools.cache
def _pydicom() -> SimpleNamespace:
    """The pydicom names the readers use, imported by the first read: pydicom is no part of a server's start, and a
    cached call costs a twentieth of an ``import`` statement in a function (these run for every instance)."""
    from pydicom.charset import convert_encodings, decode_bytes
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

    return SimpleNamespace(convert_encodings=convert_encodings, decode_bytes=decode_bytes,
                           RawDataElement=RawDataElement, Dataset=Dataset, BaseTag=BaseTag)

# Orthanc 1.10's main DICOM tags (database schema 6), per level: the tags it copies into its index and shows
# as MainDicomTags. Order is irrelevant: Orthanc renders them as a key-sorted JSON object.
MAIN_TAGS: dict[Level, dict[int, str]] = {
    Level.PATIENT: {
        0x00100010: "PatientName",
        0x00100020: "PatientID",
        0x00100030: "PatientBirthDate",
        0x00100040: "PatientSex",
        0x00101000: "OtherPatientIDs",
    },
    Level.STUDY: {
        0x00080020: "StudyDate",
        0x00080030: "StudyTime",
        0x00200010: "StudyID",
        0x00081030: "StudyDescription",
        0x00080050: "AccessionNumber",
        0x0020000D: "StudyInstanceUID",
        0x00321060: "RequestedProcedureDescription",
        0x00080080: "InstitutionName",
        0x00321032: "RequestingPhysician",
        0x00080090: "ReferringPhysicianName",
    },
    Level.SERIES: {
        0x00080070: "Manufacturer",
        0x00080060: "Modality",
        0x00080021: "SeriesDate",
        0x0008103E: "SeriesDescription",
        0x0020000E: "SeriesInstanceUID",
        0x00200011: "SeriesNumber",
        0x00080031: "SeriesTime",
        0x00081010: "StationName",
        0x00180015: "BodyPartExamined",
        0x00180024: "SequenceName",
        0x00181030: "ProtocolName",
        0x00181090: "CardiacNumberOfImages",
        0x00201002: "ImagesInAcquisition",
        0x00200105: "NumberOfTemporalPositions",
        0x00540081: "NumberOfSlices",
        0x00540101: "NumberOfTimeSlices",
        0x00200037: "ImageOrientationPatient",
        0x00541000: "SeriesType",
        0x00081070: "OperatorsName",
        0x00400254: "PerformedProcedureStepDescription",
        0x00181400: "AcquisitionDeviceProcessingDescription",
        0x00180010: "ContrastBolusAgent",
    },
    Level.INSTANCE: {
        0x00080012: "InstanceCreationDate",
        0x00080013: "InstanceCreationTime",
        0x00200012: "AcquisitionNumber",
        0x00541330: "ImageIndex",
        0x00200013: "InstanceNumber",
        0x00280008: "NumberOfFrames",
        0x00200100: "TemporalPositionIdentifier",
        0x00080018: "SOPInstanceUID",
        0x00200032: "ImagePositionPatient",
        0x00204000: "ImageComments",
        0x00200037: "ImageOrientationPatient",
    },
}

# Orthanc's names of DefaultEncoding values, mapped to the DICOM defined terms pydicom decodes.
ENCODINGS = {
    "Ascii": "ISO_IR 6",
    "Utf8": "ISO_IR 192",
    "Latin1": "ISO_IR 100",
    "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109",
    "Latin4": "ISO_IR 110",
    "Latin5": "ISO_IR 148",
    "Cyrillic": "ISO_IR 144",
    "Windows1251": "ISO_IR 144",
    "Arabic": "ISO_IR 127",
    "Greek": "ISO_IR 126",
    "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166",
    "Japanese": "ISO_IR 13",
    "Chinese": "GB18030",
    "Korean": "ISO 2022 IR 149",
    "JapaneseKanji": "ISO 2022 IR 87",
    "SimplifiedChinese": "GB18030",
}

_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "US", "SS", "UL", "SL", "FL", "FD", "AT",
                         "UV", "SV"})


@dataclass
class ParsedInstance:
    """One DICOM instance read from bytes: everything the index stores about it."""

    make_dataset: Callable[[], Dataset]  # the data set, as pydicom sees it: see ``dataset``
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    main_tags: dict[Level, dict[str, str]] = field(default_factory=dict)
    pixel_data_offset: int | None = None

    @functools.cached_property
    def dataset(self) -> Dataset:
        """The data set as pydicom sees it, made on first use: storing a file needs only what the fast reader
        found (identifiers, main tags), and most stores never ask for it (a Lua filter or the XNAT catalog do)."""
        return self.make_dataset()

    @functools.cached_property
    def ids(self) -> tuple[str, str, str, str]:
        """Public IDs of the patient, study, series and instance (four SHA-1s: computed once)."""
        return resource_ids(self.patient_id, self.study_uid, self.series_uid, self.sop_uid)

    @property
    def index_in_series(self) -> int | None:
        """Orthanc's IndexInSeries: InstanceNumber, else ImageIndex, when one is an integer (that the index's
        64-bit column can hold: an IS of 20 digits is no index)."""
        for keyword in ("InstanceNumber", "ImageIndex"):
            text = self.main_tags[Level.INSTANCE].get(keyword, "")
            try:
                number = int(text)
            except ValueError:
                continue
            if -(2**63) <= number < 2**63:
                return number
        return None


def read_dataset(source: bytes | memoryview | BinaryIO) -> Dataset:
    """Parse DICOM (Part 10, or a bare dataset in implicit or explicit VR); InvalidDicom if impossible.

    A file object is read with values over 1 MiB deferred, so that large uploads never sit whole in memory.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream, size, defer = io.BytesIO(source), len(source), None
    else:
        stream, size, defer = source, source.seek(0, io.SEEK_END), 1024 * 1024
        source.seek(0)
    import pydicom

    try:
        dataset = pydicom.dcmread(stream, force=True, defer_size=defer)
        if defer is not None and _is_deflated(dataset):
            # pydicom inflates a deflated data set into memory whole, and a deferred value would be read back
            # from the compressed file: read it again without deferring (values, and truncation, are then seen)
            stream.seek(0)
            dataset = pydicom.dcmread(stream, force=True)
    except Exception as error:  # pydicom raises many types for corrupt input
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): {error}") from None
    _check_complete(dataset, size)
    return dataset


def read_elements(data: bytes) -> Dataset:
    """A stored file's data set for rendering its elements (/tags and its forms): the top-level elements read by
    ``scan_part10`` (a fifth of pydicom's time for a small file), raw as pydicom would keep them, without the file
    meta group; any file the fast reader leaves to pydicom is read by ``read_dataset``."""
    scanned = scan_part10(data)
    if scanned is None or _nul_in_character_set(scanned[1]):
        return read_dataset(data)
    return _pydicom().Dataset({element.tag: element for element in scanned[1].values()})


def _nul_in_character_set(elements: dict[int, RawDataElement]) -> bool:
    """A NUL inside SpecificCharacterSet: pydicom refuses it, and reading stored files must say what it says."""
    return b"\x00" in (getattr(elements.get(0x00080005), "value", None) or b"").rstrip(b"\x00 ")


def parse_instance(data: bytes | memoryview | BinaryIO, default_encoding: str = "Latin1") -> ParsedInstance:
    """Read an instance and extract its identifiers and main tags; InvalidDicom when it is not storable.

    A Part 10 file in a little endian syntax, undeflated, is read by ``scan_part10``; anything else, or anything it
    does not recognise, by pydicom (which reports what is wrong with a broken file).
    """
    pydicom = _pydicom()
    in_memory = isinstance(data, (bytes, bytearray, memoryview))
    scanned = scan_part10(data) if in_memory else None
    if scanned is not None and _nul_in_character_set(scanned[1]):
        scanned = None  # pydicom, which reads stored files back, refuses it
    if scanned is not None:
        meta, elements = scanned

        def make_dataset() -> Dataset:
            return pydicom.Dataset({element.tag: element for element in elements.values()})

        get = elements.get
    else:
        dataset = read_dataset(data)
        make_dataset = functools.partial(_given, dataset)
        meta = getattr(dataset, "file_meta", None)
        # keep_deferred: pydicom reads an empty value as None, like a deferred one, and would convert it (raising
        # whatever it raises for a corrupt VR); a value past the deferral size is no main tag either
        get = functools.partial(dataset.get_item, keep_deferred=True)
    size = len(data) if in_memory else data.seek(0, io.SEEK_END)
    try:
        depth = deepest_sequence(elements.values() if scanned is not None else top_level_elements(dataset))
    except TruncatedSequence as error:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): {error}") from None
    if depth > MAX_SEQUENCE_DEPTH:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): sequences nested deeper than"
                           f" {MAX_SEQUENCE_DEPTH} levels")
    encodings = pydicom.convert_encodings(_character_sets(get(0x00080005), default_encoding))
    main = {level: _main_tags_of(get, tags, encodings) for level, tags in MAIN_TAGS.items()}
    uids = {k: main_value(main, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    missing = [keyword for keyword, value in uids.items() if not value]
    if missing:
        raise InvalidDicom(
            f"Cannot parse an invalid DICOM file (size: {size} bytes): missing {', '.join(missing)}"
        )
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        # A bare dataset is read as pydicom guessed it; Orthanc reports implicit little endian for these.
        transfer_syntax = "1.2.840.10008.1.2" if make_dataset().is_implicit_VR else "1.2.840.10008.1.2.1"
    sop_class = _string_value(get(0x00080016), encodings) or (
        str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    )
    return ParsedInstance(
        # (a deflated file has no offset to give: its pixels lie inside the deflated stream; Orthanc records none)
        pixel_data_offset=(_pixel_data_offset(get(0x7FE00010)) if meta is not None and len(meta)
                           and transfer_syntax != "1.2.840.10008.1.2.1.99" else None),
        make_dataset=make_dataset,
        patient_id=main[Level.PATIENT].get("PatientID", ""),
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=sop_class,
        transfer_syntax_uid=transfer_syntax,
        main_tags=main,
    )


def _given(dataset: Dataset) -> Dataset:
    return dataset


def main_value(main: dict[Level, dict[str, str]], keyword: str) -> str:
    """A main tag's value, whatever its level."""
    for tags in main.values():
        if keyword in tags:
            return tags[keyword]
    return ""


def dataset_encodings(dataset: Dataset, default_encoding: str = "Latin1") -> list[str]:
    """Python codecs to decode text with: from SpecificCharacterSet, else from Orthanc's DefaultEncoding."""
    return _pydicom().convert_encodings(_character_sets(dataset.get_item(0x00080005), default_encoding))


def _character_sets(raw, default_encoding: str) -> list[str]:
    if raw is not None and raw.value:
        value = raw.value
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        # a term ends at a NUL, as in DCMTK (Python's codec lookup raises ValueError on an embedded NUL)
        values = text.split("\\") if isinstance(text, str) else list(text)
        terms = [str(t).partition("\x00")[0].strip() for t in values]
        if any(terms):
            return [t or "ISO_IR 6" for t in terms]
    return [ENCODINGS.get(default_encoding, "ISO_IR 100")]


def _main_tags_of(get, tags: dict[int, str], encodings: list[str]) -> dict[str, str]:
    found = {}
    for tag, keyword in tags.items():
        element = get(tag)
        if element is not None:
            value = _string_value(element, encodings)
            if value is not None:
                found[keyword] = value
    return found


# How DCMTK, and so Orthanc 1.10, cleans a value (checked against the real Orthanc, see tests/fuzz): UI is cut at its
# first NUL, then loses leading and trailing spaces value by value, as do IS and DS values that are numbers; LO and SH
# lose trailing spaces value by value; everything else (PN, CS, DA, TM, LT, an IS that is no number, ...) the trailing
# spaces of the whole value; then the value ends at its first NUL (a C string). Leading spaces of a PatientID stay:
# they are part of the patient's Orthanc ID.
_STRIP_EACH_VALUE = frozenset({"LO", "SH"})
_NUMBER = {"IS": re.compile(r"[+-]?[0-9]+"), "DS": re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")}


def _string_value(element, encodings: list[str]) -> str | None:
    """A top-level element as Orthanc's index holds it: the decoded string, padding removed; None if absent."""
    if element is None:
        return None
    if not isinstance(element, tuple):  # a DataElement pydicom converted (its RawDataElement is a NamedTuple)
        from pydicom.multival import MultiValue

        value = element.value
        if value is None:
            return ""
        return "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value)
    # implicit VR, or a VR that is none (a corrupt header): the dictionary's, as DCMTK reads it
    vr = element.VR if element.VR in _KNOWN_VRS else _dictionary_vr(element.tag)
    if vr in _BINARY_VRS:
        # Orthanc keeps no binary value among main tags; none of its main tags is binary in practice.
        return None
    raw = element.value or b""
    if vr in _TEXT_VRS or vr is None:
        text = _pydicom().decode_bytes(raw, encodings, {"^", "=", "\\"})
    else:
        text = raw.decode("ascii", "replace")
    if vr == "UI":  # NUL is UI's own padding
        text = text.partition("\x00")[0]
    if vr == "UI" or (vr in _NUMBER and all(_NUMBER[vr].fullmatch(v.strip(" ")) for v in text.split("\\"))):
        text = "\\".join(v.strip(" ") for v in text.split("\\")) if "\\" in text else text.strip(" ")
    elif vr in _STRIP_EACH_VALUE and "\\" in text:
        text = "\\".join(v.rstrip(" ") for v in text.split("\\"))
    else:
        text = text.rstrip(" ")
    return text.partition("\x00")[0]  # cleaned whole, then read as a C string: spaces before a NUL stay


@functools.lru_cache(maxsize=256)
def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _pixel_data_offset(element) -> int | None:
    """Where the PixelData element starts in the file (Orthanc's PixelDataOffset metadata)."""
    if not isinstance(element, tuple):  # a converted DataElement, not pydicom's RawDataElement (a NamedTuple)
        return None
    header = 8 if element.is_implicit_VR else 12  # tag + VR + reserved + 4-byte length for OB/OW
    return element.value_tell - header


# -- the fast reader of Part 10 files ------------------------------------------------------------------------------
_TAG_LENGTH = struct.Struct("<HHI")  # implicit VR element header, and every item or delimiter header
_EXPLICIT = struct.Struct("<HH2sH")  # explicit VR element header with a 2-byte length
_LENGTH32 = struct.Struct("<I")
_LONG_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_VR_NAMES = {vr.encode(): vr for vr in VR_NAMES}
_KNOWN_VRS = frozenset(_VR_NAMES.values())
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class _NotPlain(Exception):
    """Something the fast reader leaves to pydicom."""


def scan_part10(data: bytes | bytearray | memoryview, *, plain: bool = False,
                ) -> tuple[dict[str, str], dict[int, RawDataElement]] | None:
    """The file meta values and the top-level elements (by tag) of a Part 10 file, raw, as pydicom reads them.

    Reading DICOM is walking element headers (PS3.5 7); pydicom does it in a generic loop, ~1 ms for a small
    image. This walks only the top level, skipping nested sequences and encapsulated frames by their items, and
    returns None for anything else than a well-formed file in an undeflated little endian syntax: big endian,
    deflated, no preamble, an unknown VR, a length past the end. ``plain``: the data set's elements as plain
    ``(VR, length, value)`` tuples instead of pydicom's (a quarter of the time, for readers that need no more).
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    try:
        meta_elements, offset = _scan_elements(data, 132, implicit=False, meta=True)
        meta = {keyword: (meta_elements[tag].value or b"").decode("ascii").rstrip("\x00 ")
                for tag, keyword in ((0x00020010, "TransferSyntaxUID"), (0x00020002, "MediaStorageSOPClassUID"))
                if tag in meta_elements}
        implicit = _plain_syntax(meta.get("TransferSyntaxUID", ""))
        if implicit is None:
            return None
        elements, _ = _scan_elements(data, offset, implicit=implicit, meta=False, plain=plain)
    except (_NotPlain, struct.error, UnicodeDecodeError, RecursionError):  # nested too deep: pydicom says so
        return None
    return meta, elements


@functools.lru_cache(maxsize=128)
def _plain_syntax(uid: str) -> bool | None:
    """Whether a transfer syntax is implicit VR, for the little endian undeflated ones; None for the others."""
    from pydicom.uid import UID

    syntax = UID(uid)
    if not syntax.is_transfer_syntax or not syntax.is_little_endian or syntax.is_deflated:
        return None
    return syntax.is_implicit_VR


def _scan_elements(data: bytes, offset: int, *, implicit: bool, meta: bool,
                   plain: bool = False) -> tuple[dict[int, RawDataElement], int]:
    """Top-level elements from ``offset`` to the end or, for the file meta group (always explicit VR, PS3.10 7.1),
    to the first element of another group."""
    pydicom = _pydicom()
    raw_element, base_tag = pydicom.RawDataElement, pydicom.BaseTag
    elements: dict[int, RawDataElement] = {}
    end = len(data)
    while offset < end:
        if implicit:
            group, number, length = _TAG_LENGTH.unpack_from(data, offset)
            vr, start = None, offset + 8
        else:
            group, number, vr_bytes, length = _EXPLICIT.unpack_from(data, offset)
            if meta and group != 0x0002:  # the data set may be in implicit VR
                break
            vr = _VR_NAMES.get(vr_bytes)
            if vr is None:
                raise _NotPlain
            if vr_bytes in _LONG_VRS:
                length = _LENGTH32.unpack_from(data, offset + 8)[0]
                start = offset + 12
            else:
                start = offset + 8
        tag = group << 16 | number
        content_implicit = implicit
        if length == _UNDEFINED:
            if meta or tag == _ITEM_END:
                raise _NotPlain
            if vr == "UN" or (vr is None and tag != 0x7FE00010):
                # PS3.5 6.2.2: an UN of undefined length is a sequence in implicit VR; pydicom reads both as SQ
                vr, content_implicit = "SQ", True
            stop = _skip_items(data, start, implicit=content_implicit)
            value = data[start:stop - 8]  # the items, without the sequence delimiter
        else:
            stop = start + length
            if stop > end:
                raise _NotPlain
            value = data[start:stop]
        elements[tag] = (vr, length, value) if plain else \
            raw_element(base_tag(tag), vr, length, value, start, content_implicit, True)
        offset = stop
    return elements, offset


def _skip_items(data: bytes, offset: int, *, implicit: bool) -> int:
    """Past the sequence delimiter of an undefined-length sequence (or encapsulated pixel data) at ``offset``."""
    while True:
        group, number, length = _TAG_LENGTH.unpack_from(data, offset)
        tag = group << 16 | number
        offset += 8
        if tag == _SEQUENCE_END:
            return offset
        if tag != _ITEM:
            raise _NotPlain
        if length != _UNDEFINED:
            offset += length
            continue
        offset = _skip_nested(data, offset, implicit=implicit)


def _skip_nested(data: bytes, offset: int, *, implicit: bool) -> int:
    """Past the item delimiter of an undefined-length item whose elements start at ``offset``."""
    end = len(data)
    while True:
        group, number, length = _TAG_LENGTH.unpack_from(data, offset)
        if group << 16 | number == _ITEM_END:
            return offset + 8
        vr = None
        if implicit:
            start = offset + 8
        else:
            _, _, vr, length = _EXPLICIT.unpack_from(data, offset)
            if vr not in _VR_NAMES:
                raise _NotPlain
            if vr in _LONG_VRS:
                length = _LENGTH32.unpack_from(data, offset + 8)[0]
                start = offset + 12
            else:
                start = offset + 8
        if length == _UNDEFINED:
            offset = _skip_items(data, start, implicit=implicit or vr == b"UN")
        elif start + length > end:
            raise _NotPlain
        else:
            offset = start + length


def _is_deflated(dataset: Dataset) -> bool:
    meta = getattr(dataset, "file_meta", None)
    return meta is not None and meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.1.99"


def _check_complete(dataset: Dataset, size: int) -> None:
    """Reject files cut short: pydicom keeps the bytes that were there without noticing the missing ones."""
    # keep_deferred: reading a deferred value here would hide a truncation (and convert a corrupt value, raising
    # whatever pydicom raises for it)
    from pydicom.dataelem import RawDataElement

    last = dataset.get_item(next(reversed(dataset.keys())), keep_deferred=True) if len(dataset) else None
    # Positions in a deflated dataset count inflated bytes, so only the value's own length can be checked there.
    deflated = _is_deflated(dataset)
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF and (
        (not deflated and last.value_tell + last.length > size)
        or (last.value is not None and len(last.value) < last.length)
    ):
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): the file is truncated")


PREAMBLE = b"\x00" * 128 + b"DICM"  # PS3.10 7.1
_SHORT_ELEMENT = struct.Struct("<HH2sH")


def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, *, implementation_class_uid: str,
              implementation_version_name: str, source_aet: str) -> bytes:
    """A Part 10 header: preamble, ``DICM`` and the file meta information group (PS3.10 7.1), encoded as pydicom
    writes it (explicit VR little endian; UIs padded with NUL, texts with a space)."""
    def element(number: int, vr: bytes, text: str, pad: bytes) -> bytes:
        value = text.encode("ascii")
        if len(value) % 2:
            value += pad
        return _SHORT_ELEMENT.pack(0x0002, number, vr, len(value)) + value

    body = b"".join((
        b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",  # FileMetaInformationVersion
        element(0x0002, b"UI", sop_class_uid, b"\x00"),
        element(0x0003, b"UI", sop_instance_uid, b"\x00"),
        element(0x0010, b"UI", transfer_syntax_uid, b"\x00"),
        element(0x0012, b"UI", implementation_class_uid, b"\x00"),
        element(0x0013, b"SH", implementation_version_name, b" "),
        element(0x0016, b"AE", source_aet, b" "),
    ))
    return PREAMBLE + _SHORT_ELEMENT.pack(0x0002, 0x0000, b"UL", 4) + struct.pack("<I", len(body)) + body


def tag_from_text(text: str) -> int | None:
    """A tag given as a keyword (``PatientName``) or as ``0010,0010``/``0010-0010``/``00100010``."""
    candidate = text.strip()
    hexits = candidate.replace(",", "").replace("-", "")
    if len(hexits) == 8 and all(c in "0123456789abcdefABCDEF" for c in hexits):
        return int(hexits, 16)
    from pydicom.tag import Tag

    try:
        return int(Tag(candidate))
    except (ValueError, TypeError):
        return None
