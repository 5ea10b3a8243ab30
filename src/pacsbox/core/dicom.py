"""Reading DICOM bytes into what the index needs: identifiers, Orthanc's main tags per level, ingest facts."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from .errors import InvalidDicom
from .ids import Level, resource_ids

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

    dataset: Dataset
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    main_tags: dict[Level, dict[str, str]] = field(default_factory=dict)
    pixel_data_offset: int | None = None

    @property
    def ids(self) -> tuple[str, str, str, str]:
        """Public IDs of the patient, study, series and instance."""
        return resource_ids(self.patient_id, self.study_uid, self.series_uid, self.sop_uid)

    @property
    def index_in_series(self) -> int | None:
        """Orthanc's IndexInSeries: InstanceNumber, else ImageIndex, when one is an integer."""
        for keyword in ("InstanceNumber", "ImageIndex"):
            text = self.main_tags[Level.INSTANCE].get(keyword, "")
            try:
                return int(text)
            except ValueError:
                continue
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
    try:
        dataset = pydicom.dcmread(stream, force=True, defer_size=defer)
    except Exception as error:  # pydicom raises many types for corrupt input
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): {error}") from None
    _check_complete(dataset, size)
    return dataset


def parse_instance(data: bytes | memoryview | BinaryIO, default_encoding: str = "Latin1") -> ParsedInstance:
    """Read an instance and extract its identifiers and main tags; InvalidDicom when it is not storable."""
    dataset = read_dataset(data)
    size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else data.seek(0, io.SEEK_END)
    encodings = dataset_encodings(dataset, default_encoding)
    main = {level: _main_tags_of(dataset, tags, encodings) for level, tags in MAIN_TAGS.items()}
    uids = {k: main_value(main, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    missing = [keyword for keyword, value in uids.items() if not value]
    if missing:
        raise InvalidDicom(
            f"Cannot parse an invalid DICOM file (size: {size} bytes): missing {', '.join(missing)}"
        )
    meta = getattr(dataset, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        # A bare dataset is read as pydicom guessed it; Orthanc reports implicit little endian for these.
        transfer_syntax = "1.2.840.10008.1.2" if dataset.is_implicit_VR else "1.2.840.10008.1.2.1"
    sop_class = _string_value(dataset, 0x00080016, encodings) or (
        str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    )
    return ParsedInstance(
        pixel_data_offset=_pixel_data_offset(dataset) if meta is not None and len(meta) else None,
        dataset=dataset,
        patient_id=main[Level.PATIENT].get("PatientID", ""),
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=sop_class,
        transfer_syntax_uid=transfer_syntax,
        main_tags=main,
    )


def main_value(main: dict[Level, dict[str, str]], keyword: str) -> str:
    """A main tag's value, whatever its level."""
    for tags in main.values():
        if keyword in tags:
            return tags[keyword]
    return ""


def dataset_encodings(dataset: Dataset, default_encoding: str = "Latin1") -> list[str]:
    """Python codecs to decode text with: from SpecificCharacterSet, else from Orthanc's DefaultEncoding."""
    return convert_encodings(_character_sets(dataset, default_encoding))


def _character_sets(dataset: Dataset, default_encoding: str) -> list[str]:
    raw = dataset.get_item(0x00080005)
    if raw is not None and raw.value:
        value = raw.value
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        terms = [t.strip() for t in (text.split("\\") if isinstance(text, str) else list(text))]
        if any(terms):
            return [t or "ISO_IR 6" for t in terms]
    return [ENCODINGS.get(default_encoding, "ISO_IR 100")]


def _main_tags_of(dataset: Dataset, tags: dict[int, str], encodings: list[str]) -> dict[str, str]:
    found = {}
    for tag, keyword in tags.items():
        value = _string_value(dataset, tag, encodings)
        if value is not None:
            found[keyword] = value
    return found


def _string_value(dataset: Dataset, tag: int, encodings: list[str]) -> str | None:
    """A top-level element as Orthanc's index holds it: the decoded string, padding removed; None if absent."""
    element = dataset.get_item(tag)
    if element is None:
        return None
    if not isinstance(element, RawDataElement):
        value = element.value
        return "" if value is None else str(value)
    if element.VR in _BINARY_VRS:
        # Orthanc keeps no binary value among main tags; none of its main tags is binary in practice.
        return None
    raw = element.value or b""
    if element.VR in _TEXT_VRS or element.VR is None:
        text = decode_bytes(raw, encodings, {"^", "=", "\\"})
    else:
        text = raw.decode("ascii", "replace")
    return text.rstrip(" \x00").lstrip(" ") if element.VR not in ("LT", "ST", "UT") else text.rstrip(" \x00")


def _pixel_data_offset(dataset: Dataset) -> int | None:
    """Where the PixelData element starts in the file (Orthanc's PixelDataOffset metadata)."""
    element = dataset.get_item(0x7FE00010)
    if not isinstance(element, RawDataElement):
        return None
    header = 8 if element.is_implicit_VR else 12  # tag + VR + reserved + 4-byte length for OB/OW
    return element.value_tell - header


def _check_complete(dataset: Dataset, size: int) -> None:
    """Reject files cut short: pydicom keeps the bytes that were there without noticing the missing ones."""
    last = dataset.get_item(next(reversed(dataset.keys()))) if len(dataset) else None
    meta = getattr(dataset, "file_meta", None)
    # Positions in a deflated dataset count inflated bytes, so only the value's own length can be checked there.
    deflated = meta is not None and meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2.1.99"
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF and (
        (not deflated and last.value_tell + last.length > size)
        or (last.value is not None and len(last.value) < last.length)
    ):
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes): the file is truncated")


def tag_from_text(text: str) -> int | None:
    """A tag given as a keyword (``PatientName``) or as ``0010,0010``/``0010-0010``/``00100010``."""
    candidate = text.strip()
    hexits = candidate.replace(",", "").replace("-", "")
    if len(hexits) == 8 and all(c in "0123456789abcdefABCDEF" for c in hexits):
        return int(hexits, 16)
    try:
        return int(Tag(candidate))
    except (ValueError, TypeError):
        return None
