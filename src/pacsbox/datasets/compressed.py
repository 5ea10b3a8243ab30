"""One CT study whose series use the compressed transfer syntaxes archives meet most (PS3.5 section 8 and annex A).

- JPEG Baseline (1.2.840.10008.1.2.4.50): 8-bit key images encoded by Pillow, encapsulated by pydicom;
- RLE Lossless (1.2.840.10008.1.2.5): pydicom's own encoder;
- JPEG-LS Lossless (1.2.840.10008.1.2.4.80): pyjpegls (CharLS);
- JPEG 2000 Lossless (1.2.840.10008.1.2.4.90): pylibjpeg-openjpeg (OpenJPEG);
- Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99): zlib, through pydicom.

The encoders other than pydicom's come with pacsbox's ``compression`` extra.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator

import numpy as np
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from . import builder as b
from . import ct
from . import phantoms as ph
from .model import DataFile, MissingExtra, Options, Session

PROJECT = "COMPRESSED"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
#: Import name -> distribution of each encoder the data set needs beyond pydicom.
ENCODERS = {"PIL": "Pillow", "jpeg_ls": "pyjpegls", "pylibjpeg": "pylibjpeg", "openjpeg": "pylibjpeg-openjpeg"}
#: (series number, description, transfer syntax, pydicom encoding plugin or "" when encoded here)
SERIES = (
    (2, "RLE Lossless", RLELossless, "pydicom"),
    (3, "JPEG-LS Lossless", JPEGLSLossless, "pyjpegls"),
    (4, "JPEG 2000 Lossless", JPEG2000Lossless, "pylibjpeg"),
    (5, "Deflated Explicit VR LE", DeflatedExplicitVRLittleEndian, ""),
)


def check_encoders() -> None:
    """Raise :class:`MissingExtra`, naming what to install, when an encoder is missing."""
    missing = []
    for module, distribution in ENCODERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise MissingExtra(f"The 'compressed' data set needs the encoders of pacsbox's 'compression' extra "
                           f"(missing: {', '.join(missing)}): pip install 'pacsbox[compression]'")


def jpeg_baseline(frame: np.ndarray, quality: int = 90) -> bytes:
    """An 8-bit greyscale frame as an ISO 10918-1 baseline stream (Pillow), without the JFIF APP0 segment:
    DICOM does not need it (PS3.5 A.4.1), and some readers choke on it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8), mode="L").save(buffer, "JPEG", quality=quality, optimize=False)
    stream = buffer.getvalue()
    if stream[2:4] == b"\xff\xe0":  # APP0 right after SOI: skip its length-prefixed body
        length = int.from_bytes(stream[4:6], "big")
        stream = stream[:2] + stream[4 + length:]
    return stream


def _key_images(study: b.Study, options: Options, folder: str, namespace: tuple[object, ...],
                stack: ph.Stack) -> list[DataFile]:
    """Secondary Capture key images (soft-tissue window, 8 bits) in JPEG Baseline."""
    series = b.Series(study, ct.SOMATOM, b.uid(options.seed, *namespace, "series", 1), 1, "Key images (JPEG)",
                      "CT", b.at(study.date, study.time, 400)[1], b.uid(options.seed, *namespace, "frame"),
                      body_part="ABDOMEN")
    rng = ph.rng_for(options.seed, *namespace, 1)
    files = []
    for k in range(stack.slices):
        number = k + 1
        ds = b.base(series, SECONDARY_CAPTURE_STORAGE, b.uid(options.seed, *namespace, 1, number), number, 400.0)
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"
        ds.PatientOrientation = ["L", "P"]  # an axial image's row and column directions (PS3.3 C.7.6.1.1.1)
        hounsfield = ph.image(stack.points(k), ph.ABDOMEN, ct.HOUNSFIELD, rng, 10.0, -1024, 3071)
        frame = np.clip((hounsfield - (40 - 200)) * 255.0 / 400.0, 0, 255).astype(np.uint8)  # W 400, L 40
        stream = jpeg_baseline(frame)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = frame.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = b.ds_value(frame.size / len(stream))
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([stream])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        files.append(b.data_file(series, number, ds, folder, JPEGBaseline8Bit))
    return files


def compressed(options: Options) -> Iterator[Session]:
    """The ``compressed`` data set: one study, one series per transfer syntax."""
    check_encoders()
    seed, namespace = options.seed, ("compressed",)
    subject, label = "CMP0001", "CMP0001_CT01"
    patient = b.Patient(subject, "Phantom^Compressed", "19810709", "F", weight=66.0, size=1.70,
                        comments=b.labels_comment(PROJECT, subject, label))
    study = b.Study(patient, b.uid(seed, *namespace, "study"), "20240705", "154500", "CT ABDOMEN COMPRESSED",
                    "A" + b.uid(seed, *namespace, "accession")[-7:])
    stack = ph.Stack(*options.pick((64, 64, (5.625, 5.625), 3, 25.0), (512, 512, (0.703125, 0.703125), 24, 5.0)),
                     orientation=b.AXIAL, centre=(0.0, 10.0, 40.0))
    files = _key_images(study, options, label, namespace, stack)
    for number, description, syntax, plugin in SERIES:
        spec = ct.CtSeries(number, description, "B30f", stack, 10.0, 95.0 + number)
        for item in ct.series_files(study, spec, options, label, namespace):
            ds = dcmread(io.BytesIO(item.data))
            if plugin:
                ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
            files.append(DataFile(item.path, b.encode(ds, syntax)))
    yield Session(tuple(files), PROJECT, subject, label)
