"""Deterministic DICOM generators for pacsbox's test suites.

Everything here is synthesised with pydicom: no downloads, no third-party sample files.  The same
call always yields the same bytes (fixed dates, UIDs derived by hashing, fixed file meta,
fixed zip timestamps), so differential tests can compare pacsbox with the real Orthanc on
identical input and snapshot IDs.

Main entry points:

* :func:`make_dataset` -- one plausible image object (patient/study/series/instance main tags,
  small 16-bit pixel data).
* :func:`to_bytes` -- DICOM Part 10 bytes (preamble + file meta), or a bare dataset without meta.
* :func:`uid` -- deterministic UIDs under :data:`UID_ROOT`.
* :func:`standard_corpus` -- the named files most tests upload (see its docstring).
* :func:`corpus_counts` -- patient/study/series/instance counts of a list of files.
* :func:`zip_of` -- an in-memory, deterministic zip archive.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = [
    "CT_IMAGE_STORAGE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MR_IMAGE_STORAGE",
    "MULTIFRAME_GRAYSCALE_WORD_SC_STORAGE",
    "SECONDARY_CAPTURE_STORAGE",
    "UID_ROOT",
    "corpus_counts",
    "make_dataset",
    "standard_corpus",
    "to_bytes",
    "uid",
    "zip_of",
]

#: Made-up UID root of every UID generated here (at most 64 characters in total are produced).
UID_ROOT = "1.2.826.0.1.3680043.10.1137."

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_GRAYSCALE_WORD_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.3"

#: Written in every file meta header so the bytes do not depend on the pydicom version.
IMPLEMENTATION_CLASS_UID = UID_ROOT + "1"
IMPLEMENTATION_VERSION_NAME = "PACSBOX_TESTGEN"

_SOP_CLASS_BY_MODALITY = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}

_UNCOMPRESSED_SYNTAXES = {
    ImplicitVRLittleEndian: (True, True),  # (implicit_vr, little_endian)
    ExplicitVRLittleEndian: (False, True),
    DeflatedExplicitVRLittleEndian: (False, True),
}


def uid(*parts: object) -> str:
    """Return a deterministic UID under :data:`UID_ROOT` derived from ``parts``.

    The parts are converted with ``str`` and hashed (SHA-256); the same parts always give the
    same UID, different parts practically never collide.  The result is at most 64 characters,
    each component without leading zeros, so it is a valid UI value.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    room = 64 - len(UID_ROOT)  # 36 digits
    number = int.from_bytes(digest, "big") % (10 ** (room - 1))
    # Prefix with "9" so the component never starts with 0 and always has the same length.
    return UID_ROOT + "9" + str(number).zfill(room - 1)


def _pixel_bytes(rows: int, cols: int, frames: int, seed: int) -> bytes:
    """Deterministic little-endian 12-bit-in-16 pixel values for ``frames`` frames."""
    values = [
        (((r * cols + c) * 37 + seed * 101 + f * 997) % 4096)
        for f in range(frames)
        for r in range(rows)
        for c in range(cols)
    ]
    return struct.pack(f"<{len(values)}H", *values)


def _set_extra(ds: Dataset, extra: Mapping[Any, Any]) -> None:
    """Apply caller-supplied elements (see :func:`make_dataset`)."""
    for key, value in extra.items():
        if isinstance(key, str):
            if value is None:
                if key in ds:
                    delattr(ds, key)
            elif isinstance(value, DataElement):
                ds[value.tag] = value
            else:
                setattr(ds, key, value)
            continue
        tag = key if isinstance(key, BaseTag) else Tag(key)
        if value is None:
            if tag in ds:
                del ds[tag]
        elif isinstance(value, DataElement):
            ds[tag] = value
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            ds.add_new(tag, value[0], value[1])
        else:
            raise TypeError(f"extra[{key!r}]: give (VR, value) or a DataElement for a numeric tag")


def make_dataset(
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    modality: str = "CT",
    series_number: int = 1,
    instance_number: int = 1,
    sop_class_uid: str | None = None,
    charset: str | None = None,
    extra: dict[Any, Any] | None = None,
    rows: int = 8,
    cols: int = 8,
) -> Dataset:
    """Build a small but plausible image object.

    All of Orthanc's main DICOM tags are filled at every level (PatientBirthDate, PatientSex,
    StudyDate/Time, StudyID, AccessionNumber, StudyDescription, ReferringPhysicianName,
    InstitutionName, SeriesDate/Time, SeriesDescription, BodyPartExamined, ProtocolName,
    Manufacturer, StationName, ImageOrientationPatient, ImagePositionPatient, InstanceNumber,
    AcquisitionNumber, InstanceCreationDate/Time, SliceThickness, ...), with values that depend
    only on the arguments.  Pixel data is ``rows`` x ``cols`` MONOCHROME2, 16 bits allocated /
    12 stored, unsigned.

    Args:
        patient_id, patient_name, study_uid, series_uid, sop_uid: identity of the object.
        modality: ``"CT"``, ``"MR"``, or anything else (then Secondary Capture by default).
        series_number, instance_number: SeriesNumber / InstanceNumber (the instance number also
            drives ImagePositionPatient, SliceLocation and the pixel pattern).
        sop_class_uid: overrides the SOP class chosen from the modality (CT/MR Image Storage).
        charset: SpecificCharacterSet (e.g. ``"ISO_IR 100"``, ``"ISO_IR 192"``); text is
            encoded with it when the dataset is written.
        extra: elements to add, replace or (value ``None``) delete, applied last.  Keys are
            keywords (``{"StudyDescription": "x"}``) or numeric tags; a numeric tag needs a
            ``(VR, value)`` tuple or a ``DataElement`` (``{0x00091001: ("LO", "x")}``).  If it sets
            ``NumberOfFrames`` and not ``PixelData``, pixel data is generated for every frame.
        rows, cols: image size.

    Returns:
        A ``pydicom.Dataset`` without file meta (see :func:`to_bytes`).
    """
    modality = modality.upper()
    if sop_class_uid is None:
        sop_class_uid = _SOP_CLASS_BY_MODALITY.get(modality, SECONDARY_CAPTURE_STORAGE)
    extra = dict(extra or {})

    # Values derived from the study/series identity, so every instance of a series agrees.
    study_key = int(hashlib.sha256(study_uid.encode()).hexdigest()[:8], 16)
    day = 1 + study_key % 28
    month = 1 + (study_key // 28) % 12
    study_date = f"2023{month:02d}{day:02d}"
    study_hour = 8 + study_key % 10
    study_time = f"{study_hour:02d}{study_key % 60:02d}{(study_key // 60) % 60:02d}"
    series_time = f"{study_hour:02d}{(study_key % 50) + series_number:02d}00"
    acquisition_time = f"{study_hour:02d}{(study_key % 50) + series_number:02d}{instance_number % 60:02d}"
    slice_thickness = 2.5 if modality == "CT" else 5.0
    z = -100.0 + slice_thickness * (instance_number - 1)

    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = study_date
    ds.InstanceCreationTime = acquisition_time
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = study_time
    ds.SeriesTime = series_time
    ds.AcquisitionTime = acquisition_time
    ds.ContentTime = acquisition_time
    ds.AccessionNumber = f"ACC{study_key % 100000:05d}"
    ds.Modality = modality
    ds.Manufacturer = "PACSBOX Imaging"
    ds.InstitutionName = "Pacsbox General Hospital"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StationName = f"{modality}STATION1"
    ds.StudyDescription = f"{modality} study {study_key % 1000}"
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.OperatorsName = "Operator^Otto"
    ds.ManufacturerModelName = f"Testgen {modality} 3000"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = f"19{50 + len(patient_id) * 3 % 50:02d}0{1 + len(patient_name) % 9}15"
    ds.PatientSex = "MFO"[len(patient_name) % 3]
    ds.PatientAge = "045Y"
    ds.PatientWeight = "72.5"
    ds.BodyPartExamined = "HEAD" if modality == "MR" else "CHEST"
    ds.SliceThickness = f"{slice_thickness:g}"
    if modality == "CT":
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
    elif modality == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.MagneticFieldStrength = "1.5"
        ds.SequenceName = "se2d1"
    ds.SoftwareVersions = "1.0"
    ds.ProtocolName = f"{modality} protocol {series_number}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = f"{study_key % 10000}"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [-120.0, -120.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.FrameOfReferenceUID = uid("frame-of-reference", study_uid)
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z:g}"
    ds.ImageComments = f"synthetic image {instance_number}"
    ds.RequestedProcedureDescription = f"{modality} examination"

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    if modality == "CT":
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"

    frames = int(extra.get("NumberOfFrames", 1) or 1)
    if "PixelData" not in extra:
        ds.PixelData = _pixel_bytes(rows, cols, frames, instance_number)
        ds["PixelData"].VR = "OW"

    _set_extra(ds, extra)
    return ds


def to_bytes(
    ds: Dataset,
    *,
    with_meta: bool = True,
    implicit_vr: bool | None = None,
    transfer_syntax: str | None = None,
) -> bytes:
    """Encode ``ds`` (which is not modified).

    With ``with_meta=True`` (default) the result is a DICOM Part 10 file: 128-byte zero
    preamble, ``DICM``, and a file meta group with fixed implementation class UID/version name,
    in Explicit VR Little Endian unless ``implicit_vr=True`` or ``transfer_syntax`` says
    otherwise.

    With ``with_meta=False`` the result is a bare dataset (no preamble, no meta) as old scanners
    wrote, in Implicit VR Little Endian unless ``implicit_vr=False`` or ``transfer_syntax`` says
    otherwise.

    ``transfer_syntax`` (a UID) wins over ``implicit_vr``; only Implicit/Explicit VR Little Endian
    and Deflated Explicit VR Little Endian are supported (no compression, no big endian), a
    deflated dataset needs the meta header.
    """
    if transfer_syntax is None:
        if implicit_vr is None:
            implicit_vr = not with_meta
        transfer_syntax = ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian
    transfer_syntax = pydicom.uid.UID(transfer_syntax)
    if transfer_syntax not in _UNCOMPRESSED_SYNTAXES:
        raise ValueError(f"unsupported transfer syntax {transfer_syntax}: only uncompressed little endian")
    if transfer_syntax == DeflatedExplicitVRLittleEndian and not with_meta:
        raise ValueError("a deflated dataset needs the file meta header")
    implicit, little = _UNCOMPRESSED_SYNTAXES[transfer_syntax]

    out = Dataset()
    out.update(ds)  # shallow copy of the elements; ds keeps its own file_meta/preamble
    buf = io.BytesIO()
    if with_meta:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = transfer_syntax
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        out.file_meta = meta
        out.preamble = b"\x00" * 128
        pydicom.dcmwrite(buf, out, enforce_file_format=True)
    else:
        pydicom.dcmwrite(buf, out, implicit_vr=implicit, little_endian=little)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# The standard corpus
# --------------------------------------------------------------------------------------------


def _series(
    files: list[tuple[str, bytes]],
    prefix: str,
    count: int,
    *,
    patient_id: str,
    patient_name: str,
    study_key: str,
    series_number: int,
    modality: str,
    charset: str | None = None,
    extra: dict[Any, Any] | None = None,
    implicit_vr: bool | None = None,
) -> None:
    study_uid = uid("study", patient_id, study_key)
    series_uid = uid("series", patient_id, study_key, series_number)
    for i in range(1, count + 1):
        ds = make_dataset(
            patient_id=patient_id,
            patient_name=patient_name,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=uid("instance", patient_id, study_key, series_number, i),
            modality=modality,
            series_number=series_number,
            instance_number=i,
            charset=charset,
            extra=extra,
        )
        files.append((f"{prefix}/{i}.dcm", to_bytes(ds, implicit_vr=implicit_vr)))


def _sequence_heavy() -> Dataset:
    """An object with nested sequences (two deep) and a private block."""
    patient_id = "PBX-SEQ"
    study_key = "sequences"
    ref_class = CT_IMAGE_STORAGE

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = meaning
        return item

    referenced = Sequence()
    for i in range(1, 3):
        item = Dataset()
        item.ReferencedSOPClassUID = ref_class
        item.ReferencedSOPInstanceUID = uid("instance", patient_id, study_key, "reference", i)
        referenced.append(item)

    procedure = code("CTCHEST", "L", "CT Chest")
    procedure.EquivalentCodeSequence = Sequence([code("24627-2", "LN", "CT Chest")])
    procedure.EquivalentCodeSequence[0].ContextIdentifier = "7151"
    procedure.EquivalentCodeSequence[0].MappingResource = "DCMR"

    request = Dataset()
    request.RequestedProcedureID = "RP-1"
    request.ScheduledProcedureStepID = "SPS-1"
    request.ScheduledProtocolCodeSequence = Sequence(
        [code("P1", "99PACSBOX", "Protocol one"), code("P2", "99PACSBOX", "Protocol two")]
    )

    empty_request = Dataset()  # an item without elements
    extra: dict[Any, Any] = {
        "ReferencedImageSequence": referenced,
        "ProcedureCodeSequence": Sequence([procedure]),
        "RequestAttributesSequence": Sequence([request, empty_request]),
        "ReferencedStudySequence": Sequence(),  # present but empty
        "ImageComments": "sequence-heavy object",
    }
    ds = make_dataset(
        patient_id=patient_id,
        patient_name="Sequence^Sam",
        study_uid=uid("study", patient_id, study_key),
        series_uid=uid("series", patient_id, study_key, 1),
        sop_uid=uid("instance", patient_id, study_key, 1, 1),
        modality="CT",
        extra=extra,
    )
    block = ds.private_block(0x0009, "PACSBOX TEST", create=True)
    block.add_new(0x01, "LO", "private text")
    block.add_new(0x02, "US", 42)
    block.add_new(0x03, "DS", ["1.5", "2.5"])
    private_item = Dataset()
    private_item.CodeValue = "PRIV"
    private_item.CodingSchemeDesignator = "99PACSBOX"
    private_item.CodeMeaning = "Private item"
    block.add_new(0x04, "SQ", Sequence([private_item]))
    return ds


def standard_corpus() -> list[tuple[str, bytes]]:
    """The named files most tests upload.  Same bytes on every call.

    ==========================  =============================================================
    name                        content
    ==========================  =============================================================
    ``ct/1..5.dcm``             patient PBX-001 "Doe^John", CT study, one series of 5 images
    ``mr/s1/1..3.dcm``          same patient, MR study, series 1 (3 images)
    ``mr/s2/1..2.dcm``          same MR study, series 2 (2 images)
    ``mr/s3/1..3.dcm``          same MR study, series 3 (3 images)
    ``p2/a/1..2.dcm``           patient PBX-002 "Smith^Jane", study A (CT, 2 images)
    ``p2/b/1..2.dcm``           same patient, study B (MR, 2 images, Implicit VR with meta)
    ``nometa/1.dcm``            PBX-NOMETA: bare Implicit VR LE dataset, no preamble/meta
    ``charset/latin1.dcm``      PBX-LATIN1 'Müller^Jürgen', SpecificCharacterSet ISO_IR 100
    ``charset/utf8.dcm``        PBX-UTF8 Japanese name, SpecificCharacterSet ISO_IR 192
    ``seq/1.dcm``               PBX-SEQ: nested sequences (two deep), empty items/sequences,
                                private block (0009,"PACSBOX TEST")
    ``multiframe/1.dcm``        PBX-MF: Multi-frame Grayscale Word SC, NumberOfFrames=3
    ==========================  =============================================================

    Totals (see :func:`corpus_counts`): 7 patients, 9 studies, 11 series, 22 instances.
    """
    files: list[tuple[str, bytes]] = []

    john = {"patient_id": "PBX-001", "patient_name": "Doe^John"}
    _series(files, "ct", 5, **john, study_key="ct", series_number=1, modality="CT")
    for number, count in ((1, 3), (2, 2), (3, 3)):
        _series(files, f"mr/s{number}", count, **john, study_key="mr", series_number=number, modality="MR")

    jane = {"patient_id": "PBX-002", "patient_name": "Smith^Jane"}
    _series(files, "p2/a", 2, **jane, study_key="a", series_number=1, modality="CT")
    _series(files, "p2/b", 2, **jane, study_key="b", series_number=1, modality="MR", implicit_vr=True)

    ds = make_dataset(
        patient_id="PBX-NOMETA",
        patient_name="Old^Scanner",
        study_uid=uid("study", "PBX-NOMETA", "old"),
        series_uid=uid("series", "PBX-NOMETA", "old", 1),
        sop_uid=uid("instance", "PBX-NOMETA", "old", 1, 1),
        modality="CT",
    )
    files.append(("nometa/1.dcm", to_bytes(ds, with_meta=False)))

    ds = make_dataset(
        patient_id="PBX-LATIN1",
        patient_name="Müller^Jürgen",
        study_uid=uid("study", "PBX-LATIN1", "latin1"),
        series_uid=uid("series", "PBX-LATIN1", "latin1", 1),
        sop_uid=uid("instance", "PBX-LATIN1", "latin1", 1, 1),
        modality="CT",
        charset="ISO_IR 100",
        extra={
            "StudyDescription": "Thorax café",
            "InstitutionName": "Hôpital Général",
            "ReferringPhysicianName": "Gärtner^Jörg",
        },
    )
    files.append(("charset/latin1.dcm", to_bytes(ds)))

    ds = make_dataset(
        patient_id="PBX-UTF8",
        patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう",
        study_uid=uid("study", "PBX-UTF8", "utf8"),
        series_uid=uid("series", "PBX-UTF8", "utf8", 1),
        sop_uid=uid("instance", "PBX-UTF8", "utf8", 1, 1),
        modality="MR",
        charset="ISO_IR 192",
        extra={
            "StudyDescription": "頭部 MRI",
            "SeriesDescription": "Σειρά 1 αξονική",
            "InstitutionName": "東京病院",
        },
    )
    files.append(("charset/utf8.dcm", to_bytes(ds)))

    files.append(("seq/1.dcm", to_bytes(_sequence_heavy())))

    ds = make_dataset(
        patient_id="PBX-MF",
        patient_name="Frames^Fiona",
        study_uid=uid("study", "PBX-MF", "mf"),
        series_uid=uid("series", "PBX-MF", "mf", 1),
        sop_uid=uid("instance", "PBX-MF", "mf", 1, 1),
        modality="OT",
        sop_class_uid=MULTIFRAME_GRAYSCALE_WORD_SC_STORAGE,
        extra={
            "NumberOfFrames": 3,
            "FrameIncrementPointer": Tag("FrameTime"),
            "FrameTime": "100",
            "ImageType": ["DERIVED", "SECONDARY"],
        },
    )
    files.append(("multiframe/1.dcm", to_bytes(ds)))
    return files


def corpus_counts(files: Iterable[tuple[str, bytes]]) -> dict[str, int]:
    """Count patients (by PatientID, as Orthanc does), studies, series and instances.

    Returns a dict with Orthanc's ``/statistics`` key names: ``CountPatients``,
    ``CountStudies``, ``CountSeries``, ``CountInstances``.
    """
    patients: set[str] = set()
    studies: set[str] = set()
    series: set[str] = set()
    instances: set[str] = set()
    for _name, data in files:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        patients.add(str(ds.PatientID))
        studies.add(str(ds.StudyInstanceUID))
        series.add(str(ds.SeriesInstanceUID))
        instances.add(str(ds.SOPInstanceUID))
    return {
        "CountPatients": len(patients),
        "CountStudies": len(studies),
        "CountSeries": len(series),
        "CountInstances": len(instances),
    }


def zip_of(files: list[tuple[str, bytes]]) -> bytes:
    """Return a zip archive (deflated, fixed 1980-01-01 timestamps) holding ``files``.

    The same input always gives the same bytes.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)
    return buf.getvalue()
