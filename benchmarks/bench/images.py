"""Files for the image measures: 512 x 512 CT slices (12 bits in 16, HU + 1024) uncompressed, and the same slices
in JPEG-LS Lossless (CharLS through pyjpegls), made once before any clock starts.

The slices are a smooth phantom (a body ellipse, organs, bone) with noise, so that a compressor has real work and
the stretch of /preview a real range. Both servers decode JPEG-LS with CharLS (pacsbox through pyjpegls, Orthanc
through DCMTK's copy), so the compressed measure compares the request paths around the same codec.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless

from .corpus import CT_IMAGE_STORAGE, UID_ROOT

#: Side of each slice: a CT reconstruction matrix.
SIDE = 512
#: Lot-like number keeping these UIDs apart from the corpus's.
IMAGE_KIND = 9


def _uid(kind: int, number: int) -> str:
    return f"{UID_ROOT}{IMAGE_KIND}.{kind}.1{number:06d}"


def _phantom(number: int) -> np.ndarray:
    rng = np.random.default_rng(number)
    y, x = np.mgrid[-1:1:SIDE * 1j, -1:1:SIDE * 1j]
    hounsfield = np.full((SIDE, SIDE), -1000.0)
    hounsfield[(x / 0.85) ** 2 + (y / 0.65) ** 2 < 1] = 40
    hounsfield[((x - 0.3) / 0.25) ** 2 + ((y + 0.1) / 0.2) ** 2 < 1] = 100 + number
    hounsfield[(x / 0.08) ** 2 + ((y - 0.45) / 0.08) ** 2 < 1] = 800
    hounsfield += rng.normal(0, 12, hounsfield.shape)
    return np.clip(hounsfield + 1024, 0, 4095).astype(np.uint16)


def _slice(number: int, series: int, syntax: str) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(series, number)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = _uid(0, 0), _uid(10 + series, 0)
    ds.PatientID, ds.PatientName, ds.Modality = "BENCHIMG", "Bench^Images", "CT"
    ds.SeriesNumber, ds.InstanceNumber = series, number + 1
    ds.ImagePositionPatient = [0, 0, 5 * number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = "1", "-1024", "40", "400"
    ds.PixelData = _phantom(number).tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if syntax == JPEGLSLossless:
        ds.compress(JPEGLSLossless, encoding_plugin="pyjpegls", generate_instance_uid=False)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def image_files(count: int) -> dict[str, list[bytes]]:
    """``count`` slices in each encoding: ``ct`` (Explicit VR Little Endian) and ``jpegls`` (JPEG-LS Lossless)."""
    return {"ct": [_slice(number, 1, ExplicitVRLittleEndian) for number in range(count)],
            "jpegls": [_slice(number, 2, JPEGLSLossless) for number in range(count)]}
