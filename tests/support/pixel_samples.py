"""Instances for the pixel tests: one per transfer syntax and photometric interpretation of the sample data, and the
colour, inverted, palette and broken variants derived from them (built here with pydicom and Pillow).

Each sample is a :class:`Sample`: the DICOM file pacsbox stores and, where the real Orthanc 1.10.1 cannot decode
that file (JPEG 2000: Orthanc's core has no decoder for it), the same pixels in Explicit VR Little Endian, generated
before compression, for Orthanc to decode instead (``reference``).
"""

from __future__ import annotations

import copy
import functools
import io
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from pacsbox.datasets import builder, compressed, ct, registry
from pacsbox.datasets.model import Options

EXPLICIT = "1.2.840.10008.1.2.1"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


@dataclass(frozen=True)
class Sample:
    """A file to store in both servers; ``reference`` is what the real Orthanc decodes instead, when it cannot."""

    name: str
    data: bytes
    lossy: bool = False
    reference: bytes | None = None

    @property
    def for_orthanc(self) -> bytes:
        return self.reference or self.data


def encode(ds: Dataset, syntax: str | None = None) -> bytes:
    if syntax:
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _renamed(ds: Dataset, label: str) -> Dataset:
    """A copy with its own SOP instance and series (so both servers keep it apart from its source)."""
    copied = copy.deepcopy(ds)
    copied.SOPInstanceUID = generate_uid(None, ["pacsbox-pixels", label, str(ds.SOPInstanceUID)])
    copied.SeriesInstanceUID = generate_uid(None, ["pacsbox-pixels-series", label])
    copied.file_meta.MediaStorageSOPInstanceUID = copied.SOPInstanceUID
    return copied


def _first(name: str, predicate) -> bytes:
    for session in registry.sessions(name):
        for item in session.files:
            if item.path.endswith(".dcm") and predicate(read(item.data)):
                return item.data
    raise LookupError(f"no matching file in data set {name}")


def _uncompressed_twins() -> dict[str, bytes]:
    """The first slice of each series of the ``compressed`` data set before it was compressed, by series number (as
    datasets.compressed builds them)."""
    options = registry.get("compressed").resolve(0, "small")
    assert isinstance(options, Options)
    namespace = ("compressed",)
    patient = builder.Patient("CMP0001", "Phantom^Compressed", "19810709", "F", weight=66.0, size=1.70,
                              comments=builder.labels_comment(compressed.PROJECT, "CMP0001", "CMP0001_CT01"))
    study = builder.Study(patient, builder.uid(0, *namespace, "study"), "20240705", "154500",
                          "CT ABDOMEN COMPRESSED", "A" + builder.uid(0, *namespace, "accession")[-7:])
    from pacsbox.datasets import phantoms

    stack = phantoms.Stack(64, 64, (5.625, 5.625), 3, 25.0, orientation=builder.AXIAL, centre=(0.0, 10.0, 40.0))
    twins = {}
    for number, description, _, _ in compressed.SERIES:
        spec = ct.CtSeries(number, description, "B30f", stack, 10.0, 95.0 + number)
        twins[str(number)] = ct.series_files(study, spec, options, "CMP0001_CT01", namespace)[0].data
    return twins


def _colour_jpeg() -> bytes:
    """Two YBR_FULL_422 JPEG baseline frames (Pillow writes RGB as 4:2:2 YCbCr)."""
    from PIL import Image

    ds = _renamed(read(_first("compressed", lambda d: d.file_meta.TransferSyntaxUID == JPEGBaseline8Bit)), "ybr")
    ramp = np.arange(64, dtype=np.uint8) * 4
    streams = []
    for shift in (0, 80):
        rgb = np.stack([np.add.outer(ramp, ramp * 0) + shift, np.add.outer(ramp * 0, ramp),
                        255 - np.add.outer(ramp, ramp) // 2], axis=-1).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buffer, "JPEG", quality=95, subsampling=1)
        streams.append(buffer.getvalue())
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.Rows, ds.Columns, ds.NumberOfFrames = 64, 64, 2
    ds.PixelData = encapsulate(streams)
    ds["PixelData"].VR = "OB"
    return encode(ds, JPEGBaseline8Bit)


def _rgb(ct_data: bytes) -> bytes:
    ds = _renamed(read(ct_data), "rgb")
    grey = (ds.pixel_array.astype(np.int32) >> 4).astype(np.uint8)
    rgb = np.stack([grey, 255 - grey, np.roll(grey, 7, axis=1)], axis=-1)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PixelData = rgb.tobytes()
    ds["PixelData"].VR = "OB"
    return encode(ds, EXPLICIT)


def _monochrome1(ct_data: bytes) -> bytes:
    ds = _renamed(read(ct_data), "mono1")
    ds.PhotometricInterpretation = "MONOCHROME1"
    return encode(ds, EXPLICIT)


def _palette(ct_data: bytes) -> bytes:
    ds = _renamed(read(ct_data), "palette")
    index = (ds.pixel_array.astype(np.int32) >> 4).astype(np.uint8)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    levels = np.arange(256, dtype=np.uint16)
    for colour, values in (("Red", levels * 257), ("Green", (255 - levels) * 257), ("Blue", (levels // 2) * 257)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"
        setattr(ds, f"{colour}PaletteColorLookupTableData", values.astype("<u2").tobytes())
    ds.PixelData = index.tobytes()
    ds["PixelData"].VR = "OB"
    return encode(ds, EXPLICIT)


def _jpeg_lossless(ct_data: bytes) -> bytes | None:
    """The CT slice in JPEG Lossless, process 14, selection value 1, encoded by dcmtk's dcmcjpeg (no Python
    encoder writes it); None without dcmtk."""
    import tempfile
    from pathlib import Path

    from tests.support import dcmtk

    if not dcmtk.have_dcmtk():
        return None
    with tempfile.TemporaryDirectory(prefix="pacsbox-jpeg-lossless-") as folder:
        source, target = Path(folder) / "in.dcm", Path(folder) / "out.dcm"
        source.write_bytes(encode(_renamed(read(ct_data), "jpeg-lossless"), EXPLICIT))
        finished = dcmtk.run("dcmcjpeg", "--encode-lossless-sv1", source, target)
        if finished.returncode != 0:
            raise RuntimeError(f"dcmcjpeg failed: {finished.stderr}")
        return target.read_bytes()


def corrupt_jpeg() -> bytes:
    """A JPEG baseline instance whose stream is cut after its headers (no scan data, no end marker)."""
    ds = _renamed(read(_first("compressed", lambda d: d.file_meta.TransferSyntaxUID == JPEGBaseline8Bit)), "broken")
    from pydicom.encaps import get_frame

    stream = get_frame(ds.PixelData, 0, number_of_frames=1)
    start_of_scan = stream.index(b"\xff\xda")
    ds.PixelData = encapsulate([stream[:start_of_scan + 20]])
    ds["PixelData"].VR = "OB"
    return encode(ds, JPEGBaseline8Bit)


def huge_frame() -> bytes:
    """An instance announcing 65535 x 65535 16-bit pixels in three frames (24 GB), holding 8 bytes."""
    ds = _renamed(read(_first("ct-study", lambda d: True)), "huge")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 3
    ds.PixelData = b"\0" * 8
    return encode(ds, EXPLICIT)


def series_of(name: str, data: bytes) -> list[bytes]:
    """Every file of data set ``name`` in the series of ``data``, reversed (so that storing order is no help)."""
    series = read(data).SeriesInstanceUID
    found = [item.data for session in registry.sessions(name) for item in session.files
             if item.path.endswith(".dcm") and read(item.data).SeriesInstanceUID == series]
    return found[::-1]


def structured_report() -> bytes:
    """The measurement report of the ``sr-seg`` data set: no pixel data at all."""
    return _first("sr-seg", lambda d: d.Modality == "SR")


def lying_frames() -> bytes:
    """A one-frame JPEG baseline instance announcing a billion frames."""
    ds = _renamed(read(_first("compressed", lambda d: d.file_meta.TransferSyntaxUID == JPEGBaseline8Bit)), "lying")
    ds.NumberOfFrames = 1_000_000_000
    return encode(ds, JPEGBaseline8Bit)


@functools.cache  # two test modules build their parameters from it at collection, in every xdist worker
def samples() -> tuple[Sample, ...]:
    """Every transfer syntax and photometric interpretation of the sample data, and the derived colour ones (the
    samples are frozen, the answer a tuple: one shared answer)."""
    chosen: list[Sample] = []
    twins = _uncompressed_twins()
    seen: set[str] = set()
    for session in registry.sessions("compressed"):
        for item in session.files:
            ds = read(item.data)
            syntax = str(ds.file_meta.TransferSyntaxUID)
            if syntax in seen:
                continue
            seen.add(syntax)
            reference = None
            if syntax == J2K_LOSSLESS:  # renamed: Orthanc stores it beside the compressed file
                reference = encode(_renamed(read(twins[str(ds.SeriesNumber)]), "twin"))
            chosen.append(Sample(f"compressed-{ds.file_meta.TransferSyntaxUID.keyword or syntax}", item.data,
                                 lossy=syntax == str(JPEGBaseline8Bit), reference=reference))
    ct_data = _first("ct-study", lambda d: d.Rows == d.Columns == 64)
    chosen += [
        Sample("ct", ct_data),
        Sample("pet-signed", _first("pet-ct", lambda d: d.Modality == "PT")),
        Sample("mr-multiframe", _first("multiframe", lambda d: True)),
        Sample("seg-1bit", _first("sr-seg", lambda d: d.Modality == "SEG")),
        Sample("implicit", encode(_renamed(read(ct_data), "implicit"), "1.2.840.10008.1.2")),
        Sample("monochrome1", _monochrome1(ct_data)),
        Sample("rgb", _rgb(_first("ct-study", lambda d: d.Rows != d.Columns))),  # not square: rows and columns
        Sample("palette", _palette(ct_data)),
        Sample("ybr-jpeg", _colour_jpeg(), lossy=True),
    ]
    lossless_jpeg = _jpeg_lossless(ct_data)
    if lossless_jpeg is not None:
        chosen.append(Sample("jpeg-lossless", lossless_jpeg))
    return tuple(chosen)


__all__ = [
    "ExplicitVRLittleEndian",
    "Sample",
    "corrupt_jpeg",
    "encode",
    "huge_frame",
    "lying_frames",
    "read",
    "samples",
    "series_of",
    "structured_report",
]
