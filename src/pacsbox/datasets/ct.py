"""A synthetic CT study: one patient, a localizer and an axial series of a water-cylinder phantom."""

from __future__ import annotations

import array
import hashlib
import io
import math
import random
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_UID_ROOT = "1.2.826.0.1.3680043.10.1137.9."  # below pacsbox's UID root: recognisably synthetic


def _uid(seed: int, *parts: object) -> str:
    digits = str(int(hashlib.sha256(repr((seed, *parts)).encode()).hexdigest(), 16))
    return (_UID_ROOT + digits)[:64].rstrip(".")


def _phantom(size: int, slice_index: int, rng: random.Random) -> bytes:
    """A water cylinder (0 HU) with a denser insert, in air, as stored values (rescale intercept -1024)."""
    pixels = array.array("H", bytes(2 * size * size))
    centre, radius = size / 2, size * 0.42
    insert_x, insert_radius = size * 0.62, size * (0.08 + 0.01 * math.sin(slice_index / 3))
    for row in range(size):
        for column in range(size):
            distance = math.hypot(row - centre, column - centre)
            value = 0 if distance > radius else 1024 + rng.randint(-8, 8)
            if math.hypot(row - centre, column - insert_x) < insert_radius:
                value = 1024 + 300
            pixels[row * size + column] = value
    return pixels.tobytes()


def ct_study(*, seed: int = 0, slices: int = 8, size: int = 64, patient_id: str = "PACSBOX-CT-001",
             patient_name: str = "Phantom^Water") -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, DICOM Part 10 bytes)`` for a small CT study; same seed, same bytes."""
    rng = random.Random(seed)
    study_uid, series_uid = _uid(seed, "study"), _uid(seed, "series", 2)
    for index in range(1, slices + 1):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = _uid(seed, "instance", index)
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
        ds.StudyTime = ds.SeriesTime = "093000"
        ds.AccessionNumber = f"ACC{seed:05d}"
        ds.Modality = "CT"
        ds.Manufacturer = "pacsbox"
        ds.InstitutionName = "pacsbox synthetic hospital"
        ds.ReferringPhysicianName = "Referrer^Rita"
        ds.StudyDescription = "CT phantom"
        ds.SeriesDescription = "Axial 5mm"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.BodyPartExamined = "PHANTOM"
        ds.SliceThickness = "5"
        ds.KVP = "120"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.InstanceNumber = index
        ds.ImagePositionPatient = ["-160", "-160", str(5 * (index - 1))]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = _uid(seed, "frame")
        ds.SliceLocation = str(5 * (index - 1))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = [f"{320 / size:g}", f"{320 / size:g}"]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        ds.PixelData = _phantom(size, index, rng)
        ds["PixelData"].VR = "OW"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        yield f"ct-study/{index:03d}.dcm", buffer.getvalue()
