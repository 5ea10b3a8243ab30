"""pacsbox's JPEG lossless and JPEG extended encoders, decoded by DCMTK's dcmdjpeg (the decoder the real Orthanc
uses): lossless gives back every sample, extended stays within a few levels, at every bit depth and edge case."""

from __future__ import annotations

import shutil
import subprocess

import numpy
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate

from pacsbox.core import jpeg_extended, jpeg_lossless

pytestmark = pytest.mark.skipif(shutil.which("dcmdjpeg") is None, reason="needs dcmtk's dcmdjpeg")
RANDOM = numpy.random.default_rng(7)


def _decoded(tmp_path, frame: numpy.ndarray, bits: int, syntax: str, stream: bytes) -> numpy.ndarray:
    dataset = Dataset()
    dataset.SOPClassUID, dataset.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4"
    dataset.Rows, dataset.Columns = frame.shape[:2]
    dataset.SamplesPerPixel = 1 if frame.ndim == 2 else frame.shape[2]
    dataset.PhotometricInterpretation = "MONOCHROME2" if frame.ndim == 2 else "RGB"
    if frame.ndim == 3:
        dataset.PlanarConfiguration = 0
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = (16 if bits > 8 else 8), bits, bits - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate([stream])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.file_meta.MediaStorageSOPClassUID, dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3", "1.2.3.4"
    dataset.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    done = subprocess.run(["dcmdjpeg", str(tmp_path / "in.dcm"), str(tmp_path / "out.dcm")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return pydicom.dcmread(tmp_path / "out.dcm").pixel_array.astype(numpy.int64)


FRAMES = {
    "random 16-bit": (RANDOM.integers(0, 1 << 16, size=(31, 17)), 16),
    "random 12-bit": (RANDOM.integers(0, 1 << 12, size=(64, 48)), 12),
    "half range jumps": (numpy.tile([0, 32768], (4, 4)), 16),
    "flat": (numpy.full((9, 9), 1000), 12),
    "ramp 8-bit": (numpy.arange(256).reshape(16, 16), 8),
    "colour": (RANDOM.integers(0, 256, size=(20, 30, 3)), 8),
}


@pytest.mark.parametrize("predictor", [1, 6])
@pytest.mark.parametrize("name", list(FRAMES))
def test_lossless_gives_back_every_sample(tmp_path, name, predictor):
    frame, bits = FRAMES[name]
    stream = jpeg_lossless.encode_frame(frame, bits, predictor)
    syntax = "1.2.840.10008.1.2.4.70" if predictor == 1 else "1.2.840.10008.1.2.4.57"
    assert numpy.array_equal(_decoded(tmp_path, frame, bits, syntax, stream), frame)


@pytest.mark.parametrize("name", ["random 12-bit", "flat", "ramp 8-bit"])
def test_extended_stays_close(tmp_path, name):
    frame, bits = FRAMES[name]
    stream = jpeg_extended.encode_frame(frame, 8 if bits <= 8 else 12)
    decoded = _decoded(tmp_path, frame, bits, "1.2.840.10008.1.2.4.51", stream)
    assert numpy.abs(decoded - frame).mean() < (1 << bits) / 500
    smooth = (2000 + 1500 * numpy.sin(numpy.arange(48) / 7.0)[None, :] * numpy.ones((64, 1))).astype(numpy.int64)
    assert numpy.abs(_decoded(tmp_path, smooth, 12, "1.2.840.10008.1.2.4.51",
                              jpeg_extended.encode_frame(smooth, 12)) - smooth).max() < 16
