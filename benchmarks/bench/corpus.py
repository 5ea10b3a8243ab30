"""Generated DICOM files for the benchmark: one template per size, identities patched in place, so 100,000 files
cost well under a second to make and the same lot always yields the same bytes.

A template is written once with pydicom, with placeholder values of the exact length of the real ones (UIDs,
PatientID, PatientName, AccessionNumber, InstanceNumber); each file is the template's header with the
placeholders replaced byte for byte, followed by the unchanged pixel data. Lengths never change, so every length
field of the template stays right. Placeholders are ASCII digits and letters, and the pixel data never holds them
because only the header is searched.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

# A made-up root (under the UK NHS "0.1" test arc used by pacsbox's generators); 28 characters.
UID_ROOT = "1.2.826.0.1.3680043.10.1137."
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

#: Pixel matrix of each size: ``small`` files are about 2 KB like ``benchmarks/rest_ingest.py``'s, ``large``
#: ones about 150 KB (256 x 288, 16 bits), the size the issue asks for.
SIZES = {"small": (16, 16), "large": (256, 288)}


@dataclass(frozen=True)
class Layout:
    """How the n-th instance of a lot maps to series, studies and patients (a small but real hierarchy)."""

    instances_per_series: int = 25
    series_per_study: int = 2
    studies_per_patient: int = 2

    @property
    def instances_per_study(self) -> int:
        return self.instances_per_series * self.series_per_study

    @property
    def instances_per_patient(self) -> int:
        return self.instances_per_study * self.studies_per_patient

    def patient_of(self, index: int) -> int:
        return index // self.instances_per_patient


LAYOUT = Layout()


def _uid(kind: int, lot: int, number: int) -> str:
    # Fixed width (46 characters, even, so no padding): "1" before each counter keeps components free of leading
    # zeros as PS3.5 9.1 requires.
    return f"{UID_ROOT}{kind}.1{lot:05d}.1{number:08d}"


def study_uid(lot: int, study: int) -> str:
    """The StudyInstanceUID of a study of a lot (what the WADO-RS metadata measure asks for)."""
    return _uid(1, lot, study)


def patient_id(lot: int, patient: int) -> str:
    """The PatientID of a patient of a lot (what the query measures look for)."""
    return f"B{lot:04d}P{patient:06d}"


# Placeholders, each the exact length of the value that replaces it and found nowhere else in the header.
_PLACEHOLDERS = {
    "study": _uid(1, 99999, 99999999),
    "series": _uid(2, 99999, 99999999),
    "instance": _uid(3, 99999, 99999999),
    "patient_id": "P" * 12,
    "patient_name": "N" * 18,
    "accession": "Z" * 12,
    "number": "+777",  # IS allows a sign; digits alone would also match inside the UID placeholders
}


def _template(rows: int, cols: int) -> Dataset:
    """A plausible CT image with the placeholders as its identity."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = _PLACEHOLDERS["instance"]
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{prefix}Date", "20240115")
        setattr(ds, f"{prefix}Time", "101500")
    ds.AccessionNumber = _PLACEHOLDERS["accession"]
    ds.Modality = "CT"
    ds.Manufacturer = "PACSBOX Bench"
    ds.InstitutionName = "Benchmark General"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StationName = "CTBENCH1"
    ds.StudyDescription = "CT chest benchmark"
    ds.SeriesDescription = "Axial 2.5 mm"
    ds.ManufacturerModelName = "Bench CT 3000"
    ds.PatientName = _PLACEHOLDERS["patient_name"]
    ds.PatientID = _PLACEHOLDERS["patient_id"]
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "2.5"
    ds.KVP = "120"
    ds.ProtocolName = "CT chest"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = _PLACEHOLDERS["study"]
    ds.SeriesInstanceUID = _PLACEHOLDERS["series"]
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = _PLACEHOLDERS["number"]
    ds.ImagePositionPatient = [-120.0, -120.0, -100.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.FrameOfReferenceUID = f"{UID_ROOT}9.1"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    pixels = (np.arange(rows * cols, dtype=np.uint32) * 37 % 4096).astype("<u2")
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def _part10(ds: Dataset) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = f"{UID_ROOT}9.2"
    meta.ImplementationVersionName = "PACSBOX_BENCH"
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


class Generator:
    """Makes lots of files of one size; a lot is a number that keeps its UIDs apart from every other lot's."""

    def __init__(self, size: str, layout: Layout = LAYOUT) -> None:
        rows, cols = SIZES[size]
        data = _part10(_template(rows, cols))
        pixel_tag = b"\xe0\x7f\x10\x00"  # (7FE0,0010) Pixel Data, little endian: the header ends here
        cut = data.rindex(pixel_tag)
        self.head, self.tail = data[:cut], data[cut:]
        self.layout = layout
        for key, value in self._values(0, 0).items():
            placeholder = _PLACEHOLDERS[key]
            expected = 2 if key == "instance" else 1  # the SOP Instance UID is in the file meta too
            if len(value) != len(placeholder) or self.head.count(placeholder.encode()) != expected:
                raise AssertionError(f"placeholder {placeholder} does not fit the template")

    @property
    def file_size(self) -> int:
        return len(self.head) + len(self.tail)

    def _values(self, lot: int, index: int) -> dict[str, str]:
        layout = self.layout
        patient = layout.patient_of(index)
        study = index // layout.instances_per_study
        return {
            "study": study_uid(lot, study),
            "series": _uid(2, lot, index // layout.instances_per_series),
            "instance": _uid(3, lot, index),
            "patient_id": patient_id(lot, patient),
            "patient_name": f"Bench^B{lot:04d}P{patient:06d}",
            "accession": f"A{lot:04d}{study:07d}",
            "number": f"{index % layout.instances_per_series + 1:04d}",
        }

    def one(self, lot: int, index: int) -> bytes:
        """The ``index``-th file of ``lot``: its own instance, in the series/study/patient the layout says."""
        head = self.head
        for key, value in self._values(lot, index).items():
            head = head.replace(_PLACEHOLDERS[key].encode(), value.encode())
        return head + self.tail

    def lot(self, lot: int, count: int, start: int = 0) -> list[bytes]:
        """Files ``start`` to ``start + count - 1`` of ``lot``."""
        return [self.one(lot, index) for index in range(start, start + count)]
