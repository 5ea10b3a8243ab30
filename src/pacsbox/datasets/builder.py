"""Building blocks of the generated DICOM objects: UIDs, the modules every image shares, Part 10 encoding.

The module attributes follow PS3.3 (Patient C.7.1.1, General Study C.7.2.1, Patient Study C.7.2.2, General
Series C.7.3.1, Frame of Reference C.7.4.1, General Equipment C.7.5.1, General Image C.7.6.1, Image Plane
C.7.6.2, Image Pixel C.7.6.3, SOP Common C.12.1). Nothing here reads a clock: the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian

from .model import DataFile

if TYPE_CHECKING:
    import numpy as np

#: Root of every generated UID: below the root pacsbox's test data uses, so such UIDs are recognisably synthetic.
UID_ROOT = "1.2.826.0.1.3680043.10.1137.9."
#: Written in every file meta header, so the bytes do not depend on the pydicom version (PS3.10 7.1).
IMPLEMENTATION_CLASS_UID = UID_ROOT + "0"
IMPLEMENTATION_VERSION_NAME = "PACSBOX_DATA"
_ENCODINGS = ["iso8859"]  # Python's codec for ISO_IR 100, the Specific Character Set every object declares

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def uid(seed: int, *parts: object) -> str:
    """A UID derived from the seed and ``parts`` (SHA-256): stable, and distinct for distinct inputs."""
    digits = str(int(hashlib.sha256(repr((seed, *parts)).encode()).hexdigest(), 16))
    return (UID_ROOT + digits)[:64]


def ds_value(number: float) -> str:
    """A number as a Decimal String (PS3.5 6.2: at most 16 characters)."""
    text = f"{number:.6g}"
    return text if len(text) <= 16 else f"{number:.8e}"[:16]


@dataclass(frozen=True)
class Patient:
    """Patient module values; ``comments`` go to Patient Comments (0010,4000), where XNAT reads its labels."""

    id: str
    name: str
    birth_date: str
    sex: str
    weight: float = 70.0
    size: float = 1.75
    comments: str = ""


@dataclass(frozen=True)
class Study:
    """General Study module values, plus the patient's age at the study."""

    patient: Patient
    uid: str
    date: str
    time: str
    description: str
    accession: str
    study_id: str = "1"
    referring: str = "Referrer^Rita"
    age: str = ""


@dataclass(frozen=True)
class Equipment:
    """General Equipment module values."""

    manufacturer: str
    model: str
    software: str
    station: str
    serial: str
    institution: str = "Pacsbox Imaging Centre"
    department: str = "Radiology"


@dataclass(frozen=True)
class Series:
    """General Series and Frame of Reference values shared by the instances of one series."""

    study: Study
    equipment: Equipment
    uid: str
    number: int
    description: str
    modality: str
    time: str
    frame_of_reference: str
    protocol: str = ""
    body_part: str = ""
    position: str = "HFS"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A Code Sequence item (PS3.3 8.8): Code Value, Coding Scheme Designator, Code Meaning."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def labels_comment(project: str, subject: str, session: str) -> str:
    """Patient Comments in the form XNAT reads labels from ("How XNAT scans DICOM to map to
    project/subject/session")."""
    return f"Project:{project} Subject:{subject} Session:{session}"


def at(date: str, time: str, seconds: float) -> tuple[str, str]:
    """(DA, TM) of ``seconds`` after ``date`` ``time`` (TM with microseconds, PS3.5 6.2)."""
    start = datetime.strptime(date + time[:6], "%Y%m%d%H%M%S")
    moment = start + timedelta(seconds=seconds)
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S.%f")


def age_at(birth_date: str, date: str) -> str:
    """Patient's Age (AS, PS3.5 6.2) at ``date``."""
    years = int(date[:4]) - int(birth_date[:4]) - (date[4:] < birth_date[4:])
    return f"{years:03d}Y"


def shared(series: Series, sop_class: str) -> Dataset:
    """The modules every instance of ``series`` shares, up to the General Image module (no per-instance values)."""
    study, patient, equipment = series.study, series.study.patient, series.equipment
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceCreationDate = study.date
    ds.InstanceCreationTime = study.time
    ds.SOPClassUID = sop_class
    ds.StudyDate, ds.StudyTime = study.date, study.time
    ds.SeriesDate, ds.SeriesTime = at(study.date, series.time, 0)
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = equipment.manufacturer
    ds.InstitutionName = equipment.institution
    ds.ReferringPhysicianName = study.referring
    ds.StationName = equipment.station
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.InstitutionalDepartmentName = equipment.department
    ds.ManufacturerModelName = equipment.model
    ds.PatientName = patient.name
    ds.PatientID = patient.id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = study.age or age_at(patient.birth_date, study.date)
    ds.PatientSize = ds_value(patient.size)
    ds.PatientWeight = ds_value(patient.weight)
    if patient.comments:
        ds.PatientComments = patient.comments
    if series.body_part:
        ds.BodyPartExamined = series.body_part
    ds.DeviceSerialNumber = equipment.serial
    ds.SoftwareVersions = equipment.software
    if series.protocol:
        ds.ProtocolName = series.protocol
    ds.PatientPosition = series.position
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    return ds


def own(series: Series, sop_uid: str, number: int, content_seconds: float = 0.0) -> Dataset:
    """An instance's own identification: SOP Instance UID, Instance Number, Content Date and Time."""
    ds = Dataset()
    ds.SOPInstanceUID = sop_uid
    ds.ContentDate, ds.ContentTime = at(series.study.date, series.time, content_seconds)
    ds.InstanceNumber = number
    return ds


def base(series: Series, sop_class: str, sop_uid: str, number: int, content_seconds: float = 0.0) -> Dataset:
    """A whole instance's common modules (:func:`shared` and :func:`own` together), for one-instance series."""
    ds = shared(series, sop_class)
    ds.update(own(series, sop_uid, number, content_seconds))
    return ds


def plane(ds: Dataset, series: Series, orientation, spacing: tuple[float, float], thickness: float) -> None:
    """The Frame of Reference module and the Image Plane values a stack's slices share."""
    ds.ImageOrientationPatient = [ds_value(value) for value in orientation]
    ds.FrameOfReferenceUID = series.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = ds_value(thickness)
    ds.PixelSpacing = [ds_value(spacing[0]), ds_value(spacing[1])]


def position(ds: Dataset, where, location: float) -> None:
    """A slice's own Image Plane values: Image Position (Patient) and Slice Location."""
    ds.ImagePositionPatient = [ds_value(value) for value in where]
    ds.SliceLocation = ds_value(location)


def pixel_module(ds: Dataset, rows: int, columns: int, bits_stored: int = 12, signed: bool = False) -> None:
    """The Image Pixel module's description of monochrome 16-bit frames."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0


def pixel_data(ds: Dataset, values: np.ndarray, signed: bool = False) -> None:
    """Pixel Data (OW) of one frame or a stack of frames, from integer values."""
    import numpy as np

    dtype = np.dtype("<i2") if signed else np.dtype("<u2")
    ds.PixelData = np.ascontiguousarray(values, dtype=dtype).tobytes()
    ds["PixelData"].VR = "OW"


def pixels(ds: Dataset, values: np.ndarray, bits_stored: int = 12, signed: bool = False) -> None:
    """The whole Image Pixel module of one instance."""
    pixel_module(ds, int(values.shape[-2]), int(values.shape[-1]), bits_stored, signed)
    pixel_data(ds, values, signed)


def _meta(sop_class: str, sop_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def encode(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """DICOM Part 10 bytes: preamble, file meta (PS3.10 7.1) and the dataset in ``transfer_syntax``."""
    ds.file_meta = _meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID), transfer_syntax)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _element(elem) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, elem, _ENCODINGS)
    return buffer.getvalue()


class SeriesEncoder:
    """Part 10 bytes of a series' instances, encoding the elements they share once.

    pydicom spends most of its time building and converting elements; the hundred elements of a series' shared
    modules are the same in every instance, so they are encoded once, and each instance adds its own few.
    The result is byte for byte what ``dcmwrite`` writes for the merged dataset.
    """

    def __init__(self, common: Dataset) -> None:
        self.sop_class = str(common.SOPClassUID)
        self.common = {int(elem.tag): _element(elem) for elem in common}

    def encode(self, instance: Dataset) -> bytes:
        parts = dict(self.common)
        parts.update((int(elem.tag), _element(elem)) for elem in instance)
        meta = DicomBytesIO()
        meta.is_little_endian, meta.is_implicit_VR = True, False
        write_file_meta_info(meta, _meta(self.sop_class, str(instance.SOPInstanceUID), ExplicitVRLittleEndian))
        return b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts[tag] for tag in sorted(parts))

    def file(self, series: Series, instance: Dataset, folder: str = "") -> DataFile:
        """The instance's file at its place in the data set's directory."""
        return DataFile(file_name(series, int(instance.InstanceNumber), folder), self.encode(instance))


def file_name(series: Series, number: int, folder: str = "") -> str:
    """``<folder>/<series number>-<description>/<instance number>.dcm``: one folder per series, as exported."""
    description = "".join(c if c.isalnum() or c in "-_." else "_" for c in series.description).strip("_")
    path = f"{series.number}-{description}/{number:04d}.dcm"
    return f"{folder}/{path}" if folder else path


def data_file(series: Series, number: int, ds: Dataset, folder: str = "",
              transfer_syntax: str = ExplicitVRLittleEndian) -> DataFile:
    """The Part 10 file of ``ds`` at its place in the data set's directory."""
    return DataFile(file_name(series, number, folder), encode(ds, transfer_syntax))
