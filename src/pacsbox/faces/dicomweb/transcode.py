"""Transcoding where asked and possible (PS3.18 8.7.3): compressed, deflated and implicit VR instances rewritten in
Explicit VR Little Endian, and frames as stored or decompressed.

pacsbox decompresses but never compresses: a compressed syntax other than the stored one stays 406. Decoding is
pydicom's: JPEG baseline and JPEG 2000 through Pillow (a runtime dependency), JPEG-LS through pyjpegls and the rest
through pylibjpeg, which come with pacsbox's ``compression`` extra; a decoder that is missing is a 406 naming it.

Every decode runs in a worker thread (never on the event loop), at most ``CONCURRENT_DECODES`` at a time. An
instance (or the frames of one request) decoding to more than ``MAX_DECODED_BYTES`` is refused before anything is
decoded; a study or series whose instances decode to more than that together is decoded one instance at a time while
it streams (a bitstream that fails to decode then cuts the answer short, since its status is sent already).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ...core import pixels
from ...core.errors import Unsupported
from .errors import bad_request, not_acceptable

if TYPE_CHECKING:  # pydicom loads on the first transcoding, not at start-up
    from pydicom.dataset import Dataset

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"  # Explicit VR Little Endian
#: Pixels one instance, or the frames of one request, may decode to (the core's limit, shared by every face).
MAX_DECODED_BYTES = pixels.MAX_DECODED_BYTES
CONCURRENT_DECODES = pixels.CONCURRENT_DECODES
frame_count = pixels.frame_count
decoded_size = pixels.decoded_size
stored_frames = pixels.stored_frames

#: Media type of a frame in each compressed transfer syntax (PS3.18 table 8.7.3-5), as the plugin labels them.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
#: The syntax a frame media type means when the Accept names none (PS3.18 table 8.7.3-5).
FRAME_DEFAULT_SYNTAX = {
    "application/octet-stream": EXPLICIT_LITTLE, "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80", "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92", "image/dicom-rle": "1.2.840.10008.1.2.5",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
}
#: Stored syntaxes pacsbox rewrites in Explicit VR Little Endian (big endian is not among them: it stays as stored).
_REWRITABLE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99")  # Implicit VR Little Endian, Deflated Explicit


def needs_decoding(syntax: str) -> bool:
    """Whether the pixel data stored in ``syntax`` is encapsulated (compressed)."""
    return pixels.is_encapsulated(syntax)


def can_rewrite(syntax: str) -> bool:
    """Whether an instance stored in ``syntax`` can be sent in Explicit VR Little Endian."""
    return syntax == EXPLICIT_LITTLE or syntax in _REWRITABLE or needs_decoding(syntax)


def check_decoder(syntax: str) -> None:
    """406 naming what to install when pydicom has no decoder for ``syntax`` here."""
    try:
        pixels.check_decoder(syntax)
    except Unsupported as error:
        raise not_acceptable(f"{error.details}: served only as stored (transfer-syntax=*)") from None


def header_size(path) -> int:
    """Bytes of decoded pixels the header of the file at ``path`` announces, each capped by MAX_DECODED_BYTES
    (406 beyond): read without the pixel data."""
    from pydicom import dcmread

    try:
        header = dcmread(path, stop_before_pixels=True, force=True)
    except Exception as error:  # pydicom raises many types for a file it cannot parse
        raise bad_request(f"Cannot read the stored instance: {error}") from None
    size = decoded_size(header)
    check_budget(size)
    return size


def check_budget(total: int) -> None:
    if total > MAX_DECODED_BYTES:
        raise not_acceptable(f"Transcoding would decode {total} bytes of pixels, over pacsbox's {MAX_DECODED_BYTES}"
                             "-byte limit per request: ask for the stored transfer syntax (transfer-syntax=*)")


def explicit_little_file(dataset: Dataset, syntax: str) -> bytes:
    """The instance as a DICOM file in Explicit VR Little Endian: pixels decompressed (YBR converted to RGB, as
    pydicom does), everything else kept. Runs in a worker thread."""
    from pydicom.uid import UID

    with pixels.decoding:
        if needs_decoding(syntax):
            check_budget(decoded_size(dataset))
            pixels.check_markers(dataset, syntax)
            try:
                dataset.decompress(as_rgb=True, generate_instance_uid=False,  # the plugin keeps it too
                                   decoding_plugin=pixels.decoding_plugin(syntax))
            except Exception as error:  # pydicom and its plugins raise many types for data they cannot decode
                raise bad_request(f"Cannot decode the pixel data ({UID(syntax).name}): {error}") from None
        dataset.file_meta.TransferSyntaxUID = UID(EXPLICIT_LITTLE)
        buffer = io.BytesIO()
        try:
            dataset.save_as(buffer, enforce_file_format=True)
        except Exception as error:  # a data set pydicom read but cannot write again in another encoding
            raise bad_request(f"Cannot write the instance in Explicit VR Little Endian: {error}") from None
        return buffer.getvalue()


def decoded_frames(dataset: Dataset, syntax: str, numbers: list[int]) -> list[bytes]:
    """Frames ``numbers`` (from 1) decoded, as Explicit VR Little Endian pixel bytes (colour interleaved, YBR as
    RGB). Runs in a worker thread."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    decoder = get_decoder(UID(syntax))
    pixels.check_markers(dataset, syntax, numbers)
    frames = []
    with pixels.decoding:
        for number in numbers:
            try:
                array, _ = decoder.as_array(dataset, index=number - 1, as_rgb=True,
                                            decoding_plugin=pixels.decoding_plugin(syntax))
            except Exception as error:  # pydicom and its plugins raise many types for data they cannot decode
                raise bad_request(f"Cannot decode frame {number} ({UID(syntax).name}): {error}") from None
            frames.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return frames
