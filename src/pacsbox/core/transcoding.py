"""Transcoding instances to another transfer syntax, for Orthanc's ``Transcode`` (modify, anonymize, ...).

Orthanc 1.10.1 transcodes with DCMTK's built-in codecs: to the uncompressed syntaxes (implicit and explicit little
endian, explicit big endian, deflated), JPEG baseline (8-bit images), JPEG extended (up to 12 bits), JPEG lossless
(processes 14 and 14 SV1) and JPEG-LS (lossless and near-lossless); not to JPEG 2000, RLE or the video syntaxes
(measured: a modify job then keeps the original syntax, an instance-level modify answers 500).

pacsbox encodes with pydicom: the uncompressed syntaxes itself, JPEG-LS through pyjpegls (pacsbox's
``compression`` extra), JPEG baseline through Pillow, marking the result as DCMTK marks a lossy compression (a new
SOPInstanceUID, the predecessor in SourceImageSequence, ImageType DERIVED, LossyImageCompression...), JPEG lossless
and JPEG extended (12-bit lossy) with pacsbox's own encoders (``core.jpeg_lossless``, ``core.jpeg_extended``):
every syntax Orthanc writes. What an encoder cannot take (colour or signed pixels in JPEG extended) is refused as
not implemented rather than silently left as it was. Decoding a
compressed source goes through pydicom's decoders (Pillow, pyjpegls, pylibjpeg), as DICOMweb's transcoding does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import BadFormat, Unsupported

if TYPE_CHECKING:  # pydicom loads with the first transcoding, not with the server (cold start)
    from pydicom.dataset import Dataset

# Transfer syntax UIDs (PS3.6 Table A-1), as plain strings: implicit, explicit, explicit big endian, deflated
IMPLICIT_LITTLE, EXPLICIT_LITTLE, EXPLICIT_BIG, DEFLATED = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")
UNCOMPRESSED = frozenset({IMPLICIT_LITTLE, EXPLICIT_LITTLE, EXPLICIT_BIG, DEFLATED})
JPEG_BASELINE, JPEG_EXTENDED = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
JPEG_LS = frozenset({JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS})
#: What the real Orthanc 1.10.1 can write (JPEG baseline needs 8 bits stored, JPEG extended at most 12).
ORTHANC_TARGETS = UNCOMPRESSED | JPEG_LOSSLESS | JPEG_LS | {JPEG_BASELINE, JPEG_EXTENDED}
#: Of these, what pacsbox writes: all (JPEG baseline through Pillow, a runtime dependency; JPEG extended and
#: lossless with its own encoders; JPEG-LS through pyjpegls)
PACSBOX_TARGETS = ORTHANC_TARGETS
#: The IJG quality of a lossy JPEG (Orthanc's DicomLossyJpegQuality, 90 by default)
JPEG_QUALITY = 90
#: The error bound of near-lossless JPEG-LS (what Orthanc's DCMTK uses, as its DerivationDescription says)
NEAR = 2


class CannotTranscode(Exception):
    """Orthanc could not transcode this instance either (a modify job then keeps its syntax)."""


def check_target(uid: str) -> str:
    """A ``Transcode`` value, checked before any work starts: a transfer syntax UID Orthanc knows (BadFormat with
    its message otherwise), and not one that Orthanc writes but pacsbox cannot (Unsupported, naming it)."""
    from pydicom.uid import UID

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


def transcode(dataset: Dataset, target: str, *, new_uid_when_lossy: bool = True) -> None:
    """Rewrite ``dataset`` (with its file meta) in ``target``. CannotTranscode where Orthanc fails too; Unsupported
    where Orthanc succeeds but pacsbox has no encoder. A lossy compression gives the instance a new SOPInstanceUID
    unless ``new_uid_when_lossy`` is false (Orthanc's modification jobs, whose instances have new UIDs already:
    the instance then names itself as its predecessor, as DCMTK writes it there)."""
    from pydicom.uid import UID

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
    new_uid = new_uid_when_lossy
    if target == JPEG_BASELINE:
        _jpeg_baseline(dataset, new_uid)
        return
    if target in JPEG_LOSSLESS:
        _jpeg_lossless(dataset, target)
        return
    if target == JPEG_EXTENDED:
        _jpeg_extended(dataset, new_uid)
        return
    if target in JPEG_LS and has_pixels:
        try:
            near = target == JPEG_LS_NEAR_LOSSLESS
            uncompressed = _uncompressed_size(dataset)
            dataset.compress(target, generate_instance_uid=False, **({"jls_error": NEAR} if near else {}))
        except RuntimeError as error:  # the encoder's plugin is missing or refuses these pixels
            raise Unsupported(f"Transcoding to {UID(target).name} needs pacsbox's 'compression' extra "
                              f"(pip install 'pacsbox[compression]'): {error}") from None
        except Exception as error:  # pixels the encoder does not take (bit depth, colour space)
            raise CannotTranscode(f"Cannot encode {UID(target).name}: {error}") from None
        if near:
            ratio = _ratio(uncompressed, _frames(dataset))
            _mark_lossy(dataset, "ISO_14495_1", ratio,
                        f"near lossless JPEG-LS compression, factor {ratio} (NEAR={NEAR})", new_uid)
        return
    if has_pixels and target == EXPLICIT_BIG:
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


def _jpeg_baseline(dataset: Dataset, new_uid: bool) -> None:
    """8-bit pixels as JPEG baseline (IJG quality 90, colour as YCbCr 4:2:2), with the attributes DCMTK's lossy
    codecs add (PS3.3 C.7.6.1.1.5 and C.7.6.1.1.2): the compressed instance is a new one, derived from the old."""
    import io

    import numpy
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom and its plugins raise many types for pixels they cannot read
        raise CannotTranscode(f"Cannot read the pixels: {error}") from None
    colour = int(dataset.get("SamplesPerPixel", 1) or 1) == 3
    frames = pixels if int(dataset.get("NumberOfFrames", 1) or 1) > 1 else pixels[numpy.newaxis]
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(numpy.ascontiguousarray(frame, dtype=numpy.uint8), "RGB" if colour else "L").save(
            buffer, "JPEG", quality=JPEG_QUALITY, subsampling=1)  # 1: 4:2:2, as DCMTK writes YBR_FULL_422
        encoded.append(buffer.getvalue())
    ratio = _ratio(frames.size, encoded)
    dataset.PixelData = encapsulate(encoded)
    dataset["PixelData"].VR = "OB"
    if colour:
        dataset.PhotometricInterpretation, dataset.PlanarConfiguration = "YBR_FULL_422", 0
    _mark_lossy(dataset, "ISO_10918_1", ratio,
                f"Lossy compression with JPEG baseline, IJG quality factor {JPEG_QUALITY}, compression ratio {ratio}",
                new_uid)
    dataset.file_meta.TransferSyntaxUID = UID(JPEG_BASELINE)


def _jpeg_lossless(dataset: Dataset, target: str) -> None:
    """Native pixels as JPEG lossless (process 14, first-order prediction: valid for both .57 and .70)."""
    import numpy
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    from .jpeg_lossless import encode_frame

    try:
        pixels = dataset.pixel_array
        precision = int(dataset.BitsStored)
    except Exception as error:  # pydicom and its plugins raise many types for pixels they cannot read
        raise CannotTranscode(f"Cannot read the pixels: {error}") from None
    colour = int(dataset.get("SamplesPerPixel", 1) or 1) > 1
    single = int(dataset.get("NumberOfFrames", 1) or 1) == 1
    frames = pixels[numpy.newaxis] if single else pixels
    if colour and str(dataset.get("PhotometricInterpretation", "")).startswith("YBR"):
        raise CannotTranscode("JPEG lossless of YBR pixels")  # (pydicom gives them as RGB: not lossless)
    predictor = 1 if target == "1.2.840.10008.1.2.4.70" else 6  # (DCMTK's choices)
    uncompressed = _uncompressed_size(dataset)
    try:
        encoded = [encode_frame(frame, precision, predictor) for frame in frames]
    except ValueError as error:
        raise CannotTranscode(str(error)) from None
    dataset.PixelData = encapsulate(encoded)
    dataset["PixelData"].VR = "OB"
    if colour:
        dataset.PlanarConfiguration = 0
    dataset.DerivationDescription = (f"Lossless JPEG compression, selection value {predictor}, point transform 0, "
                                     f"compression ratio {_ratio(uncompressed, encoded)}")
    dataset.file_meta.TransferSyntaxUID = UID(target)


def _jpeg_extended(dataset: Dataset, new_uid: bool) -> None:
    """Grey unsigned pixels of up to 12 bits as JPEG extended sequential (lossy, IJG quality 90), marked lossy."""
    import numpy
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    from .jpeg_extended import QUALITY, encode_frame

    if int(dataset.get("SamplesPerPixel", 1) or 1) != 1 or int(dataset.get("PixelRepresentation", 0) or 0):
        raise Unsupported("Transcoding colour or signed pixels to JPEG Extended: pacsbox's encoder takes unsigned "
                          "grey pixels only")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom and its plugins raise many types for pixels they cannot read
        raise CannotTranscode(f"Cannot read the pixels: {error}") from None
    precision = 8 if int(dataset.BitsStored) <= 8 else 12
    frames = pixels[numpy.newaxis] if int(dataset.get("NumberOfFrames", 1) or 1) == 1 else pixels
    uncompressed = _uncompressed_size(dataset)
    encoded = [encode_frame(frame, precision) for frame in frames]
    ratio = _ratio(uncompressed, encoded)
    dataset.PixelData = encapsulate(encoded)
    dataset["PixelData"].VR = "OB"
    _mark_lossy(dataset, "ISO_10918_1", ratio, f"Lossy compression with JPEG extended sequential {precision} bit, "
                f"IJG quality factor {QUALITY}, compression ratio {ratio}", new_uid)
    dataset.file_meta.TransferSyntaxUID = UID(JPEG_EXTENDED)


def _uncompressed_size(dataset: Dataset) -> int:
    return (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1) or 1)
            * int(dataset.get("NumberOfFrames", 1) or 1) * (int(dataset.BitsAllocated) // 8 or 1))


def _frames(dataset: Dataset) -> list[bytes]:
    from pydicom.encaps import generate_frames

    return list(generate_frames(dataset.PixelData, number_of_frames=int(dataset.get("NumberOfFrames", 1) or 1)))


def _ratio(uncompressed: int, frames: list[bytes]) -> str:
    """DCMTK's compression ratio: uncompressed over compressed bytes, five significant digits."""
    return f"{uncompressed / max(1, sum(map(len, frames))):.5g}"


def _mark_lossy(dataset: Dataset, method: str, ratio: str, description: str, new_uid: bool) -> None:
    """What DCMTK's lossy codecs add (PS3.3 C.7.6.1.1.5 and C.7.6.1.1.2): the compressed instance is a new one,
    derived from the old, which its SourceImageSequence names."""
    from pydicom.dataset import Dataset as Item
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    image_type = list(dataset.get("ImageType", []) or [])
    dataset.ImageType = ["DERIVED", *image_type[1:]] if len(image_type) > 1 else "DERIVED"
    dataset.DerivationDescription = description
    source = Item()
    source.ReferencedSOPClassUID = dataset.get("SOPClassUID", "")
    source.ReferencedSOPInstanceUID = str(dataset.get("SOPInstanceUID", ""))
    source.PurposeOfReferenceCodeSequence = Sequence([_code("121320", "Uncompressed predecessor")])
    dataset.SourceImageSequence = Sequence([*dataset.get("SourceImageSequence", []), source])
    dataset.DerivationCodeSequence = Sequence([_code("113040", "Lossy Compression")])
    dataset.LossyImageCompression, dataset.LossyImageCompressionRatio = "01", ratio
    dataset.LossyImageCompressionMethod = method
    if new_uid:
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()


def _code(value: str, meaning: str) -> Dataset:
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code
