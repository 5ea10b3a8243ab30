"""Transcoding instances to another transfer syntax, for Orthanc's ``Transcode`` (modify, anonymize, ...).

Orthanc 1.10.1 transcodes with DCMTK's built-in codecs: to the uncompressed syntaxes (implicit and explicit little
endian, explicit big endian, deflated), JPEG baseline (8-bit images), JPEG extended (up to 12 bits), JPEG lossless
(processes 14 and 14 SV1) and JPEG-LS (lossless and near-lossless); not to JPEG 2000, RLE or the video syntaxes
(measured: a modify job then keeps the original syntax, an instance-level modify answers 500).

pacsbox encodes with pydicom: the uncompressed syntaxes itself, JPEG-LS through pyjpegls (pacsbox's
``compression`` extra). JPEG baseline, extended and lossless have no encoder in pydicom's plugins: those targets,
which Orthanc produces, are refused as not implemented rather than silently left as they were. Decoding a
compressed source goes through pydicom's decoders (Pillow, pyjpegls, pylibjpeg), as DICOMweb's transcoding does.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from .errors import BadFormat, Unsupported

UNCOMPRESSED = frozenset({str(ImplicitVRLittleEndian), str(ExplicitVRLittleEndian), str(ExplicitVRBigEndian),
                          str(DeflatedExplicitVRLittleEndian)})
JPEG_BASELINE, JPEG_EXTENDED = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_LS = frozenset({str(JPEGLSLossless), str(JPEGLSNearLossless)})
#: What the real Orthanc 1.10.1 can write (JPEG baseline needs 8 bits stored, JPEG extended at most 12).
ORTHANC_TARGETS = UNCOMPRESSED | JPEG_LOSSLESS | JPEG_LS | {JPEG_BASELINE, JPEG_EXTENDED}
#: Of these, what pacsbox writes.
PACSBOX_TARGETS = UNCOMPRESSED | JPEG_LS


class CannotTranscode(Exception):
    """Orthanc could not transcode this instance either (a modify job then keeps its syntax)."""


def check_target(uid: str) -> str:
    """A ``Transcode`` value, checked before any work starts: a transfer syntax UID Orthanc knows (BadFormat with
    its message otherwise), and not one that Orthanc writes but pacsbox cannot (Unsupported, naming it)."""
    if not UID(uid).is_transfer_syntax:
        raise BadFormat(f"Unknown transfer syntax UID: {uid}")
    if uid in ORTHANC_TARGETS and uid not in PACSBOX_TARGETS:
        raise Unsupported(f"Transcoding to {UID(uid).name} ({uid}): pydicom has no encoder for it")
    if uid in JPEG_LS:
        from pydicom.pixels import get_encoder

        if not get_encoder(UID(uid)).is_available:
            raise Unsupported(f"Transcoding to {UID(uid).name} needs pacsbox's 'compression' extra "
                              "(pip install 'pacsbox[compression]')")
    return uid


def transcode(dataset: Dataset, target: str) -> None:
    """Rewrite ``dataset`` (with its file meta) in ``target``. CannotTranscode where Orthanc fails too; Unsupported
    where Orthanc succeeds but pacsbox has no encoder."""
    source = str(dataset.file_meta.TransferSyntaxUID)
    if source == target:
        return
    if target not in ORTHANC_TARGETS or not _orthanc_accepts(dataset, target):
        raise CannotTranscode(f"Cannot transcode to transfer syntax: {target}")
    if target not in PACSBOX_TARGETS:
        raise Unsupported(f"Transcoding to {UID(target).name} ({target}): pydicom has no encoder for it")
    has_pixels = "PixelData" in dataset
    if has_pixels and UID(source).is_compressed:
        try:
            dataset.decompress(generate_instance_uid=False)
        except Exception as error:  # pydicom and its plugins raise many types for what they cannot decode
            raise CannotTranscode(f"Cannot decode {UID(source).name}: {error}") from None
    if target in JPEG_LS and has_pixels:
        try:
            options = {"jls_error": 2} if target == str(JPEGLSNearLossless) else {}
            dataset.compress(target, generate_instance_uid=False, **options)
        except RuntimeError as error:  # the encoder's plugin is missing or refuses these pixels
            raise Unsupported(f"Transcoding to {UID(target).name} needs pacsbox's 'compression' extra "
                              f"(pip install 'pacsbox[compression]'): {error}") from None
        except Exception as error:  # pixels the encoder does not take (bit depth, colour space)
            raise CannotTranscode(f"Cannot encode {UID(target).name}: {error}") from None
        return
    if has_pixels and target == str(ExplicitVRBigEndian):
        _swap_words(dataset)
    dataset.file_meta.TransferSyntaxUID = UID(target)


def _orthanc_accepts(dataset: Dataset, target: str) -> bool:
    """DCMTK's limits: JPEG baseline takes 8 bits stored, JPEG extended at most 12; every JPEG needs pixels."""
    if target in UNCOMPRESSED:
        return True
    if "PixelData" not in dataset:
        return False
    bits = int(dataset.get("BitsStored", 0) or 0)
    if target == JPEG_BASELINE:
        return bits == 8
    if target == JPEG_EXTENDED:
        return bits <= 12
    return True


def _swap_words(dataset: Dataset) -> None:
    """Native pixel data written big endian: 16-bit words swapped (pydicom writes bytes values as they are)."""
    element = dataset["PixelData"]
    if int(dataset.get("BitsAllocated", 8) or 8) > 8 and isinstance(element.value, bytes):
        import numpy

        element.value = numpy.frombuffer(element.value, dtype="<u2").astype(">u2").tobytes()
        element.VR = "OW"
