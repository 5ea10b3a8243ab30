"""Pixel data of stored instances: frames as stored and decoded, for every face that shows pixels.

Decoding is pydicom's (PS3.5 section 8 and annex A): native and deflated data by pydicom itself, RLE by pydicom,
JPEG baseline and JPEG 2000 through Pillow, JPEG-LS through pyjpegls, JPEG lossless through GDCM (python-gdcm) and
the rest through pylibjpeg (pacsbox's ``compression`` extra). Palette colour is looked up (PS3.3 C.7.6.3.1.5),
YBR converted to RGB.

Every value of the header is hostile: a frame is decoded only after the pixels it announces are checked against
``MAX_DECODED_BYTES`` and against what the file holds, in a worker thread (never on the event loop), at most
``CONCURRENT_DECODES`` at a time across the faces. numpy is imported only when a frame is decoded.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import BadFormat, BadRequest, InexistentItem, Unsupported

if TYPE_CHECKING:  # pydicom and numpy load with the first frame, not with the server (cold start)
    import numpy
    from pydicom.dataset import Dataset

#: Pixels one decode (a frame, or the frames of one request) may produce; a larger header is refused undecoded.
MAX_DECODED_BYTES = 256 * 1024 * 1024
#: Decodes running at once, whatever the number of requests and faces: each may hold MAX_DECODED_BYTES.
CONCURRENT_DECODES = 2
decoding = threading.BoundedSemaphore(CONCURRENT_DECODES)
_holding = threading.local()


@contextmanager
def decode_slot() -> Iterator[None]:
    """One of the CONCURRENT_DECODES slots for the calling thread, for a whole decode-transform-encode (the frames
    and images it holds count against the slot); re-entered by decode_frame without taking a second one."""
    if getattr(_holding, "depth", 0):
        _holding.depth += 1
        try:
            yield
        finally:
            _holding.depth -= 1
        return
    with decoding:
        _holding.depth = 1
        try:
            yield
        finally:
            _holding.depth = 0

#: JPEG-LS transfer syntaxes: CharLS (pyjpegls) spends about ten seconds of CPU failing on any broken stream, so a
#: stream without its start and end markers is refused before it is handed over.
JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
IMPLICIT_LITTLE = "1.2.840.10008.1.2"


class PixelTooLarge(BadFormat):
    """A frame (or a set of frames) whose header announces more pixels than pacsbox decodes at once."""


def transfer_syntax(dataset: Dataset) -> str:
    meta = getattr(dataset, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", IMPLICIT_LITTLE)) if meta is not None else IMPLICIT_LITTLE


def is_encapsulated(syntax: str) -> bool:
    """Whether pixel data stored in ``syntax`` is encapsulated (compressed)."""
    from pydicom.uid import UID

    return UID(syntax).is_compressed


def frame_count(dataset: Dataset) -> int:
    """NumberOfFrames, read as 1 when absent or not a positive integer (a hostile value is never trusted)."""
    try:
        return max(1, int(dataset.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def number(dataset: Dataset, keyword: str, default: Any) -> Any:
    """The first value of a numeric attribute, or ``default`` when absent or not a finite number."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) else default


def decoded_size(dataset: Dataset, frames: int | None = None) -> int:
    """Bytes the header announces for ``frames`` decoded frames (all by default); BadFormat when unreadable."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        bits = int(dataset.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        raise BadRequest("The pixel data has no readable Rows, Columns or BitsAllocated") from None
    if min(rows, columns, samples, bits) < 1:
        raise BadRequest("The pixel data has an empty dimension")
    count = frame_count(dataset) if frames is None else frames
    return rows * columns * samples * count * max(bits, 8) // 8


def check_budget(total: int, what: str = "The request") -> None:
    """PixelTooLarge when ``total`` bytes of pixels exceed MAX_DECODED_BYTES."""
    if total > MAX_DECODED_BYTES:
        raise PixelTooLarge(f"{what} would decode {total} bytes of pixels, over pacsbox's {MAX_DECODED_BYTES}-byte "
                            "limit")


def check_frame(dataset: Dataset, index: int) -> int:
    """The number of frames, after checking that the instance has pixels and a frame ``index`` (from 0)."""
    if "PixelData" not in dataset:
        raise Unsupported("The instance has no pixel data")
    count = frame_count(dataset)
    if not 0 <= index < count:
        raise InexistentItem(f"Inexistent frame index in this image: {index}")
    return count


def native_frame_size(dataset: Dataset) -> int:
    """Bytes of one frame of native (uncompressed) pixel data; 1-bit frames are packed (PS3.5 8.1.1)."""
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bits = int(dataset.BitsAllocated)
    return (rows * columns * samples * bits + 7) // 8


def stored_frames(dataset: Dataset, numbers: list[int]) -> list[bytes]:
    """Frames ``numbers`` (from 1) of encapsulated pixel data, each frame's bitstream as stored."""
    from pydicom.encaps import get_frame

    count = frame_count(dataset)
    data = dataset.PixelData
    try:
        return [get_frame(data, number - 1, number_of_frames=count) for number in numbers]
    except Exception as error:  # a broken basic offset table or fragment structure
        raise BadRequest(f"Cannot split the encapsulated pixel data into frames: {error}") from None


def raw_frame(dataset: Dataset, index: int) -> bytes:
    """Frame ``index`` (from 0) as stored: its bitstream when encapsulated, else its bytes of the pixel data."""
    count = check_frame(dataset, index)
    if is_encapsulated(transfer_syntax(dataset)):
        return stored_frames(dataset, [index + 1])[0]
    decoded_size(dataset, 1)  # a readable header
    size = native_frame_size(dataset)
    data = dataset.PixelData
    if len(data) < size * count:
        raise BadFormat(f"The pixel data holds {len(data)} bytes, not the {size * count} its header announces")
    if int(dataset.BitsAllocated) == 1 and (size * 8) != int(dataset.Rows) * int(dataset.Columns):
        start_bit = index * int(dataset.Rows) * int(dataset.Columns)  # 1-bit frames need not start on a byte
        return bytes(data[start_bit // 8: (start_bit + int(dataset.Rows) * int(dataset.Columns) + 7) // 8])
    return bytes(data[index * size:(index + 1) * size])


def integer(dataset: Dataset, keyword: str, default: int = 0) -> int:
    """An integer attribute, or ``default`` when absent or not an integer."""
    try:
        return int(dataset.get(keyword, default))
    except (TypeError, ValueError):
        return default


def check_decoder(syntax: str) -> None:
    """Unsupported, naming what to install, when pydicom has no decoder for ``syntax`` here."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    try:
        decoder = get_decoder(UID(syntax))
    except NotImplementedError:
        raise Unsupported(f"pydicom cannot decode {UID(syntax).name} ({syntax})") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise Unsupported(f"Decoding {UID(syntax).name} ({syntax}) needs pacsbox's 'compression' extra "
                          f"(pip install 'pacsbox[compression]'; pydicom says: {missing})")


def decoding_plugin(syntax: str) -> str:
    """The pydicom plugin to decode ``syntax`` with: the first one pydicom offers other than GDCM (pyjpegls for
    JPEG-LS, Pillow for JPEG baseline and JPEG 2000, pydicom itself for RLE), GDCM only where nothing else decodes
    (JPEG lossless, process 14); "" lets pydicom choose."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    try:
        available = list(get_decoder(UID(syntax)).available_plugins)
    except NotImplementedError:
        return ""
    others = [name for name in available if name != "gdcm"]
    return (others or available or [""])[0]


def check_markers(dataset: Dataset, syntax: str, numbers: list[int] | None = None) -> None:
    """BadRequest when a JPEG-LS frame (all, or ``numbers`` from 1) lacks its SOI or EOI marker (a stream cut
    short)."""
    from pydicom.uid import UID

    if syntax not in JPEG_LS:
        return
    for number in numbers or range(1, frame_count(dataset) + 1):
        stream = stored_frames(dataset, [number])[0].rstrip(b"\0")  # (an odd stream is padded to even length)
        if not (stream.startswith(b"\xff\xd8") and stream.endswith(b"\xff\xd9")):
            raise BadRequest(f"Cannot decode frame {number} ({UID(syntax).name}): the stream lacks its start or end "
                             "marker")


def decode_frame(dataset: Dataset, index: int, *, palette: bool = True) -> numpy.ndarray:
    """Frame ``index`` (from 0) decoded: (rows, columns) or (rows, columns, 3) in RGB (YBR converted), palette
    colour looked up when ``palette`` (16-bit tables kept 16-bit). Checks the frame, the budget and the decoder
    first; call it in a worker thread."""
    from pydicom.uid import UID

    syntax = transfer_syntax(dataset)
    check_frame(dataset, index)
    check_budget(decoded_size(dataset, 1), "The frame")
    if is_encapsulated(syntax):
        check_decoder(syntax)
        check_markers(dataset, syntax, [index + 1])
    else:
        needed = native_frame_size(dataset) * frame_count(dataset)
        if len(dataset.PixelData) < needed:
            raise BadFormat(f"The pixel data holds {len(dataset.PixelData)} bytes, not the {needed} its header "
                            "announces")
    from pydicom.pixels import get_decoder

    with decode_slot():
        try:
            array, _ = get_decoder(UID(syntax)).as_array(dataset, index=index, as_rgb=True,
                                                          decoding_plugin=decoding_plugin(syntax))
        except Exception as error:  # pydicom and its plugins raise many types for data they cannot decode
            raise BadFormat(f"Cannot decode frame {index} ({UID(syntax).name}): {error}") from None
        if palette and str(dataset.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            try:
                array = apply_color_lut(array, dataset)
            except Exception as error:  # a missing or malformed lookup table
                raise BadFormat(f"Cannot apply the palette colour lookup table: {error}") from None
    return array


def encode_image(image: Any, image_format: str, quality: int = 90, png_level: int | None = None) -> bytes:
    """A Pillow image as ``image_format`` (Pillow's name: "PNG", "JPEG") bytes; ``png_level`` is zlib's compression
    level of a PNG (Pillow's default, 6, when None)."""
    import io

    out = io.BytesIO()
    if image_format == "JPEG":
        image.save(out, format="JPEG", quality=quality)
    elif image_format == "PNG" and png_level is not None:
        image.save(out, format="PNG", compress_level=png_level)
    else:
        image.save(out, format=image_format)
    return out.getvalue()
