"""A new instance's content: a PNG or JPEG image as uncompressed pixel data, a PDF as an Encapsulated PDF, raw bytes.

Follows Orthanc 1.10.1's ParsedDicomFile::EmbedContent: 8-bit grayscale is MONOCHROME2 with 8 bits, 16-bit
grayscale MONOCHROME2 with 16 bits, colour RGB with 8 bits, interleaved (the alpha channel of RGBA dropped), pixels
stored little endian in explicit VR (OW). Images are decoded by Pillow, imported here only, as this is its one use at
run time. PNG colour types Orthanc does not embed (palette, grey with alpha, fewer than 8 bits, 16-bit colour) are
refused, as the real one refuses them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .errors import BadFormat, OutOfRange, TooLarge, Unsupported

if TYPE_CHECKING:
    from .create_dicom import Draft

PDF_MIME = "application/pdf"
ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
MAX_PIXEL_BYTES = 1024**3  # one frame held in memory while it is encoded; a decompression bomb stops here
_MAX_SIDE = 0xFFFF  # Rows and Columns are US
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# MIME types Orthanc knows but cannot embed (it answers "Not implemented yet"); any other type is out of range
_KNOWN_MIME_TYPES = frozenset({
    "application/dicom", "application/json", "application/xml", "text/xml", "text/plain", "image/jp2",
    "application/dicom+json", "application/dicom+xml", "multipart/related", "text/css", "text/html",
    "application/javascript", "image/gif", "application/zip", "image/svg+xml", "image/webp", "font/woff",
    "font/woff2", "application/x-font-woff", "text/csv", "image/x-icon", "image/x-portable-arbitrarymap",
})

# tags, as numbers
_SAMPLES_PER_PIXEL, _PHOTOMETRIC, _PLANAR = 0x00280002, 0x00280004, 0x00280006
_ROWS, _COLUMNS = 0x00280010, 0x00280011
_BITS_ALLOCATED, _BITS_STORED, _HIGH_BIT, _PIXEL_REPRESENTATION = 0x00280100, 0x00280101, 0x00280102, 0x00280103
_PIXEL_DATA = 0x7FE00010


def embed_content(draft: Draft, mime: str, payload: bytes, max_pixel_bytes: int = MAX_PIXEL_BYTES) -> None:
    """Put ``payload`` (of MIME type ``mime``, lower case) in ``draft``, with the tags describing it."""
    if mime == "image/png":
        _embed_pixels(draft, *_decode_png(payload, max_pixel_bytes))
    elif mime == "image/jpeg":
        _embed_pixels(draft, *_decode_jpeg(payload, max_pixel_bytes))
    elif mime == PDF_MIME:
        _embed_pdf(draft, payload)
    elif mime == "application/octet-stream":
        draft.put_bytes(_PIXEL_DATA, "OW", payload)  # raw pixel data, described by the request's own tags
    elif mime in _KNOWN_MIME_TYPES:
        raise Unsupported(f"Unsupported MIME type for the content of a new DICOM file: {mime}")
    else:
        raise OutOfRange(f"Unknown MIME type: {mime}")


def _embed_pdf(draft: Draft, document: bytes) -> None:
    if not document.startswith(b"%PDF-"):
        raise BadFormat("Not a PDF file")
    draft.put_text(0x00420012, PDF_MIME)  # MIMETypeOfEncapsulatedDocument
    draft.put_bytes(0x00420011, "OB", document)  # EncapsulatedDocument, a NUL added to an odd length
    draft.put_text(0x00080016, ENCAPSULATED_PDF_STORAGE)  # 1.10.1 replaces a requested SOPClassUID
    draft.set_if_absent(0x00080060, "OT")  # Modality (always "OT" before Orthanc 1.9.8)
    draft.set_if_absent(0x00080064, "WSD")  # ConversionType: workstation


def _check_size(width: int, height: int, channels: int, depth: int, limit: int) -> None:
    if width > _MAX_SIDE or height > _MAX_SIDE:
        raise BadFormat(f"An image of {width}x{height} pixels does not fit DICOM's Rows and Columns")
    if width * height * channels * depth > limit:
        raise TooLarge(f"An image of {width}x{height} pixels is over the limit of {limit} bytes of pixel data")


def _decode_png(data: bytes, limit: int) -> tuple[int, int, int, int, bytes]:
    """``(width, height, channels, bytes per sample, little-endian samples)`` of a PNG Orthanc can embed."""
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise BadFormat()
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 6: 4}.get(colour_type)
    if channels is None or bit_depth not in (8, 16) or (bit_depth == 16 and channels != 1):
        raise Unsupported(f"PNG images of colour type {colour_type} with {bit_depth} bits per sample")
    _check_size(width, height, channels, bit_depth // 8, limit)
    pixels = _pillow_pixels(data, "PNG")
    if bit_depth == 16:
        return width, height, 1, 2, pixels.astype("<u2").tobytes()
    return width, height, min(channels, 3), 1, pixels[..., :3].tobytes() if channels == 4 else pixels.tobytes()


def _decode_jpeg(data: bytes, limit: int) -> tuple[int, int, int, int, bytes]:
    image = _open(data, "JPEG", "Error during JPEG decoding")
    channels = {"L": 1, "RGB": 3}.get(image.mode)
    if channels is None:
        raise Unsupported(f"JPEG images in the {image.mode} colour space")
    _check_size(image.width, image.height, channels, 1, limit)
    return image.width, image.height, channels, 1, _pillow_pixels(data, "JPEG").tobytes()


def _open(data: bytes, kind: str, message: str | None = None):
    import io

    from PIL import Image  # Pillow: imported by the one request that needs it

    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Exception as error:  # Pillow raises many types for a corrupt file
        raise BadFormat(f"{message}: {error}" if message else None) from None
    return image


def _pillow_pixels(data: bytes, kind: str):
    import numpy

    image = _open(data, kind, "Error during JPEG decoding" if kind == "JPEG" else None)
    try:
        image.load()
        return numpy.asarray(image)
    except Exception as error:  # truncated or corrupt image data
        raise BadFormat(f"Error during JPEG decoding: {error}" if kind == "JPEG" else None) from None


def _embed_pixels(draft: Draft, width: int, height: int, channels: int, depth: int, pixels: bytes) -> None:
    """Orthanc's ConfigureTagsForUncompressedImage, then the pixel data."""
    draft.put_text(_COLUMNS, str(width))
    draft.put_text(_ROWS, str(height))
    draft.put_text(_SAMPLES_PER_PIXEL, "1")
    draft.put_text(_PIXEL_REPRESENTATION, "0")
    bits = str(8 * depth)
    if channels == 1:
        draft.set_if_absent(_PHOTOMETRIC, "MONOCHROME2")
    else:
        draft.put_text(_PHOTOMETRIC, "RGB")
        draft.put_text(_SAMPLES_PER_PIXEL, "3")
        draft.put_text(_PLANAR, "0")  # interleaved
    draft.put_text(_BITS_ALLOCATED, bits)
    draft.put_text(_BITS_STORED, bits)
    draft.put_text(_HIGH_BIT, str(8 * depth - 1))
    draft.put_bytes(_PIXEL_DATA, "OW", pixels)
