"""An instance holding every attribute of pydicom's data dictionary (and a private block, and a sequence item
holding identifying attributes in every sequence), to see what an anonymization does to each."""

from __future__ import annotations

import io

import pydicom
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

IDENTIFIERS = {0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00100020, 0x7FE00010, 0x00080005}
_VALUES = {"AE": "AETITLE", "AS": "045Y", "CS": "VALUE", "DA": "20200101", "DS": "1.5", "DT": "20200101120000",
           "IS": "7", "LO": "Long value", "LT": "Long text", "PN": "Person^Name", "SH": "Short", "ST": "Short text",
           "TM": "120000", "UC": "Unlimited", "UR": "http://host/path", "UT": "Text", "US": 7, "SS": 7, "UL": 7,
           "SL": 7, "FL": 1.5, "FD": 1.5, "AT": 0x00100010, "OB": b"\x01\x02", "OW": b"\x01\x02",
           "OF": b"\x00\x00\x80\x3f", "OD": b"\x00" * 8, "OL": b"\x00" * 4, "OV": b"\x00" * 8, "SV": 7, "UV": 7,
           "UN": b"\x01\x02"}


def _item() -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodeMeaning = "CV", "Meaning"
    item.PatientName, item.AccessionNumber, item.InstitutionName = "Nested^Name", "ACCN", "Nested Hospital"
    item.ReferencedSOPInstanceUID = "1.2.3.4.100"
    item.add_new(0x00090010, "LO", "NESTED CREATOR")
    item.add_new(0x00091001, "LO", "nested private")
    return item


def every_tag_dataset() -> Dataset:
    """Every public attribute (no repeating groups, no file meta or command groups) with a value of its VR."""
    dataset = Dataset()
    for tag, entry in DicomDictionary.items():
        if tag >> 16 in (0x0000, 0x0002, 0xFFFE) or tag in IDENTIFIERS or tag & 0xFFFF == 0:
            continue
        vr = entry[0].split(" or ")[0]
        if vr == "SQ":
            dataset.add(DataElement(tag, vr, Sequence([_item()])))
        elif vr in _VALUES:
            value = f"1.2.3.4.5.{tag & 0xFFFF}" if vr == "UI" else _VALUES[vr]
            dataset.add(DataElement(tag, vr, value))
        elif vr == "UI":
            dataset.add(DataElement(tag, vr, f"1.2.3.4.5.{tag & 0xFFFF}"))
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID, dataset.StudyInstanceUID = "1.2.3.4.100", "1.2.3.4.101"
    dataset.SeriesInstanceUID, dataset.PatientID = "1.2.3.4.102", "EVERY-TAG"
    dataset.add_new(0x00090010, "LO", "PROBE CREATOR")
    dataset.add_new(0x00091001, "LO", "private value")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = dataset.SOPClassUID, dataset.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    return dataset


def every_tag_file() -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, every_tag_dataset(), enforce_file_format=True)
    return buffer.getvalue()


def actions(before: Dataset, after: Dataset) -> dict[int, str]:
    """What happened to each top-level attribute: X removed, Z emptied, C changed (unlisted: kept)."""
    done = {}
    for element in before:
        tag = int(element.tag)
        if tag not in after:
            done[tag] = "X"
        elif element.VR == "SQ":
            if len(after[tag].value) == 0 and len(element.value):
                done[tag] = "Z"
        elif after[tag].value in (None, "", b"") and element.value not in (None, "", b""):
            done[tag] = "Z"
        elif after[tag].value != element.value:
            done[tag] = "C"
    return done
