"""Orthanc's image arithmetic on decoded frames: its pixel formats, ``preview``, ``image-uint8/16``/``int16``,
``rendered`` (window, rescale, resize), and the PNG, JPEG, PAM, NumPy and MATLAB encodings, as Orthanc 1.10.1
computes them (its ``DicomImageDecoder``, ``ImageProcessing`` and ``NumpyWriter``, checked against the real server in
tests/faces/orthanc/test_images.py). Pure functions of numpy arrays: no I/O, no request.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core import pixels
from ...core.errors import BadFormat, Unsupported

if TYPE_CHECKING:
    import numpy
    from pydicom.dataset import Dataset

GREY8, GREY16, SIGNED16, GREY32, RGB24, FLOAT32 = ("Grayscale8", "Grayscale16", "SignedGrayscale16", "Grayscale32",
                                                   "RGB24", "Float32")
#: NumPy's type description of each format (NumpyWriter): little endian throughout
NUMPY_TYPES = {GREY8: "<u1", GREY16: "<u2", SIGNED16: "<i2", GREY32: "<u4", RGB24: "<u1", FLOAT32: "<f4"}
#: The extraction modes of /image-uint8, /image-uint16 and /image-int16
TRUNCATIONS = {"image-uint8": GREY8, "image-uint16": GREY16, "image-int16": SIGNED16}
_DTYPES = {GREY8: "uint8", GREY16: "uint16", SIGNED16: "int16", GREY32: "uint32", RGB24: "uint8",
           FLOAT32: "float32"}
#: zlib level of the PNG answers: 1 encodes a 512 x 512 preview about six times faster than libpng's default (6),
#: for a file about a sixth larger; the pixels are the same and the bytes travel over loopback.
PNG_LEVEL = 1
_RANGES = {GREY8: (0, 255), GREY16: (0, 65535), SIGNED16: (-32768, 32767)}


@dataclass
class Frame:
    """A decoded frame in one of Orthanc's pixel formats: (rows, columns) or (rows, columns, 3) for RGB24."""

    array: numpy.ndarray
    format: str


def orthanc_frame(dataset: Dataset, index: int) -> Frame:
    """Frame ``index`` (from 0) decoded into the pixel format Orthanc gives it (DicomImageInformation::
    ExtractPixelFormat): 8-bit palette colour and 8-bit colour as RGB24; greyscale by bits and sign; one-bit
    frames as 0 and 255. Anything else is Unsupported, as Orthanc cannot decode it either. Worker thread only."""
    import numpy as np

    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    bits_stored = pixels.integer(dataset, "BitsStored", 0)
    bits_allocated = pixels.integer(dataset, "BitsAllocated", 0)
    signed = pixels.integer(dataset, "PixelRepresentation", 0) == 1
    samples = pixels.integer(dataset, "SamplesPerPixel", 1)
    if photometric == "PALETTE COLOR" and not (samples == 1 and bits_stored == 8 and not signed):
        raise Unsupported(f"Cannot decode a palette colour image of {bits_stored} bits")
    array = pixels.decode_frame(dataset, index)
    if array.ndim == 3:
        if photometric == "PALETTE COLOR" and array.dtype != np.uint8:  # 16-bit tables: their high byte
            return Frame((array >> 8).astype(np.uint8), RGB24)
        if array.dtype != np.uint8 or array.shape[2] != 3:
            raise Unsupported(f"Cannot decode a colour image of {bits_stored} bits per sample")
        return Frame(array, RGB24)
    if bits_allocated == 1:
        return Frame((array != 0).astype(np.uint8) * np.uint8(255), GREY8)
    if bits_stored == 8 and not signed:
        return Frame(array.astype(np.uint8, copy=False), GREY8)
    if bits_allocated == 16:
        return Frame(array.astype(np.int16 if signed else np.uint16, copy=False), SIGNED16 if signed else GREY16)
    if bits_allocated == 32 and not signed:
        return Frame(array.astype(np.uint32, copy=False), GREY32)
    raise Unsupported(f"Cannot decode a {'signed' if signed else 'unsigned'} {bits_allocated}-bit image "
                      f"({photometric})")


def _shift_scale(values: numpy.ndarray, offset: float, scaling: float, target: str, use_round: bool):
    """ImageProcessing::ShiftScale: ``(x + offset) * scaling`` in single precision, saturated to ``target``."""
    import numpy as np

    a = np.float32(scaling)
    b = np.float32(np.float32(offset) * a)
    with np.errstate(invalid="ignore", over="ignore"):
        result = values.astype(np.float32) * a + b
        low, high = _RANGES[target]
        result = np.where(np.isnan(result), np.float32(low), result)
        result = np.clip(result, low, high)
        result = np.where(result >= 0, np.floor(result + 0.5), np.ceil(result - 0.5)) if use_round else np.floor(
            result)
    return result.astype(_DTYPES[target])


def preview(frame: Frame, invert: bool) -> Frame:
    """/preview: colour as it is; greyscale stretched from its minimum to its maximum to 0..255 (rounded), then
    inverted for MONOCHROME1 (DicomImageDecoder::PreviewDecodedImage)."""
    import numpy as np

    if frame.format == RGB24:
        return frame
    low, high = int(frame.array.min()), int(frame.array.max())
    if low == high:
        grey = np.zeros(frame.array.shape, np.uint8)
    else:
        grey = _shift_scale(frame.array, -low, 255.0 / (high - low), GREY8, use_round=True)
    return Frame(np.uint8(255) - grey if invert else grey, GREY8)


def truncate(frame: Frame, target: str) -> Frame:
    """/image-uint8, /image-uint16, /image-int16: greyscale values saturated to the target type; colour frames are
    refused (Orthanc: "not implemented")."""
    import numpy as np

    if frame.format == RGB24:
        raise Unsupported("Cannot convert a colour image to greyscale")
    low, high = _RANGES[target]
    return Frame(np.clip(frame.array, low, high).astype(_DTYPES[target]), target)


@dataclass(frozen=True)
class Presentation:
    """The arguments of /rendered: window (in rescaled values), target size (0 keeps the source's), smoothing."""

    window_center: float | None = None
    window_width: float | None = None
    width: int = 0
    height: int = 0
    smooth: bool = False


def target_size(frame: Frame, presentation: Presentation) -> tuple[int, int]:
    """(width, height) of a rendered frame: the ratio fitting both sides asked for, or the one side asked for."""
    rows, columns = frame.array.shape[:2]
    ratio = 1.0
    if presentation.width and presentation.height:
        ratio = min(presentation.width / columns, presentation.height / rows)
    elif presentation.width:
        ratio = presentation.width / columns
    elif presentation.height:
        ratio = presentation.height / rows
    return _round_half_away(ratio * columns), _round_half_away(ratio * rows)


def _round_half_away(value: float) -> int:
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def rendered(frame: Frame, dataset: Dataset, presentation: Presentation) -> Frame:
    """/rendered: greyscale rescaled and windowed to 8 bits (the data set's first window, else one covering the
    stored bits; the request's window wins), resized (nearest neighbour, smoothed first when asked and shrinking),
    then inverted for MONOCHROME1. The caller checks the target size against the budget first."""
    import numpy as np

    if frame.format != RGB24:
        slope, intercept = 1.0, 0.0
        if "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
            slope = pixels.number(dataset, "RescaleSlope", 1.0)
            intercept = pixels.number(dataset, "RescaleIntercept", 0.0)
        bits = max(1, min(pixels.integer(dataset, "BitsStored", 8), 32))
        width = float(1 << bits) * slope
        center = width / 2.0 + intercept
        if "WindowCenter" in dataset and "WindowWidth" in dataset:
            center = pixels.number(dataset, "WindowCenter", center)
            width = pixels.number(dataset, "WindowWidth", width)
        if presentation.window_center is not None:
            center = presentation.window_center
        if presentation.window_width is not None:
            width = presentation.window_width
        width = max(width, 1.0)  # Orthanc avoids the division by zero so
        if abs(slope) <= 0.1:
            slope = 0.1
        scaling = 255.0 * slope / width
        offset = (intercept - center + width / 2.0) / slope
        frame = Frame(_shift_scale(frame.array, offset, scaling, GREY8, use_round=False), GREY8)
    size = target_size(frame, presentation)
    rows, columns = frame.array.shape[:2]
    if size != (columns, rows):
        source = frame.array
        if presentation.smooth and (size[0] < columns or size[1] < rows):
            source = _gaussian5(source)
        frame = Frame(_resize(source, size), frame.format)
    if frame.format == GREY8 and str(dataset.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        frame = Frame(np.uint8(255) - frame.array, GREY8)  # after smoothing, as Orthanc (it rounds differently)
    return frame


def _gaussian5(values: numpy.ndarray) -> numpy.ndarray:
    """ImageProcessing::SmoothGaussian5x5: the binomial kernel 1 4 6 4 1 along each axis (edges repeated), the
    sum divided by 256 and floored."""
    import numpy as np

    kernel = (1, 4, 6, 4, 1)
    total = values.astype(np.int64)
    for axis in (1, 0):
        padded = np.pad(total, [(2, 2) if a == axis else (0, 0) for a in range(values.ndim)], mode="edge")
        length = values.shape[axis]
        total = sum(kernel[k] * np.take(padded, range(k, k + length), axis=axis) for k in range(5))
    return (total // 256).astype(values.dtype)


def _resize(values: numpy.ndarray, size: tuple[int, int]) -> numpy.ndarray:
    """ImageProcessing::Resize: nearest neighbour, each target pixel's centre looked up in the source (in single
    precision, as Orthanc computes it)."""
    import numpy as np

    width, height = size
    rows, columns = values.shape[:2]

    def lookup(target: int, source: int) -> numpy.ndarray:
        scale = np.float32(source) / np.float32(target)
        positions = np.floor((np.arange(target, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.int64)
        return np.clip(positions, 0, source - 1)

    return values[lookup(height, rows)][:, lookup(width, columns)]


# -- encodings ------------------------------------------------------------------------------------------------------

def encode_png(frame: Frame) -> bytes:
    """PNG: 8-bit grey, 16-bit grey (a signed frame written as its two's complement bits, as Orthanc's PngWriter),
    or RGB."""
    from PIL import Image

    array = frame.array
    if frame.format in (GREY16, SIGNED16):
        image = Image.fromarray(array.view("uint16").astype("<u2"))  # (Pillow: mode I;16)
    elif frame.format in (GREY8, RGB24):
        image = Image.fromarray(array, "RGB" if frame.format == RGB24 else "L")
    else:
        raise Unsupported(f"Cannot write a {frame.format} image as PNG")
    return pixels.encode_image(image, "PNG", png_level=PNG_LEVEL)


def encode_jpeg(frame: Frame, quality: int) -> bytes:
    """JPEG: 8-bit grey or RGB only (Orthanc's JpegWriter)."""
    from PIL import Image

    if frame.format not in (GREY8, RGB24):
        raise Unsupported(f"Cannot write a {frame.format} image as JPEG")
    return pixels.encode_image(Image.fromarray(frame.array, "RGB" if frame.format == RGB24 else "L"), "JPEG",
                               quality)


def encode_pam(frame: Frame) -> bytes:
    """PAM (Netpbm's portable arbitrary map), big-endian samples, as Orthanc's PamWriter."""
    rows, columns = frame.array.shape[:2]
    depth, tuple_type = (3, "RGB") if frame.format == RGB24 else (1, "GRAYSCALE")
    if frame.format in (GREY8, RGB24):
        maximum, data = 255, frame.array.tobytes()
    elif frame.format in (GREY16, SIGNED16):
        maximum, data = 65535, frame.array.view("uint16").astype(">u2").tobytes()
    else:
        raise Unsupported(f"Cannot write a {frame.format} image as PAM")
    header = f"P7\nWIDTH {columns}\nHEIGHT {rows}\nDEPTH {depth}\nMAXVAL {maximum}\nTUPLTYPE {tuple_type}\nENDHDR\n"
    return header.encode("ascii") + data


def matlab(frame: Frame) -> str:
    """ImageAccessor::ToMatlabString: greyscale as ``double([ a b ; c d ])``, RGB as a permuted reshape."""
    if frame.format == RGB24:
        rows, columns = frame.array.shape[:2]
        values = " ".join(map(str, frame.array.reshape(-1).tolist()))
        return f"double(permute(reshape([ {values} ], [ 3 {rows} {columns} ]), [ 3 2 1 ]))"
    lines = [" ".join(map(_matlab_number, row)) for row in frame.array.tolist()]
    return "double([ " + " ; ".join(lines) + " ])"


def _matlab_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class NumpyWriter:
    """Frames gathered into one ``.npy`` array (or an ``.npz`` archive of it), as Orthanc's NumpyWriter: shape
    (depth, rows, columns, channels), or (rows, columns, channels) for one frame without depth; rescaled greyscale
    as float32."""

    def __init__(self, depth: int, rescale: bool) -> None:
        self.depth, self.rescale = depth, rescale
        self.chunks: list[bytes] = []
        self.shape: tuple[int, int] | None = None
        self.format = ""

    def add(self, frame: Frame, slope: float, intercept: float) -> None:
        import numpy as np

        rows, columns = frame.array.shape[:2]
        if self.shape is None:
            self.shape, self.format = (rows, columns), frame.format
        elif self.shape != (rows, columns):
            raise BadFormat("The size of the frames varies across the instance(s)")
        elif self.format != frame.format:
            raise BadFormat("The pixel format of the frames varies across the instance(s)")
        array = frame.array
        if self.rescale and frame.format != RGB24:  # ShiftScale2 into float32 floors too, as for integers
            array = np.floor(array.astype(np.float32) * np.float32(slope) + np.float32(intercept))
        self.chunks.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())

    def answer(self, compress: bool) -> bytes:
        assert self.shape is not None
        rows, columns = self.shape
        kind = FLOAT32 if self.rescale and self.format != RGB24 else self.format
        channels = 3 if self.format == RGB24 else 1
        shape = (f"{self.depth}, " if self.depth else "") + f"{rows},{columns},{channels}"
        header = f"{{'descr': '{NUMPY_TYPES[kind]}', 'fortran_order': False, 'shape': ({shape}), }}"
        padding = -(10 + len(header) + 1) % 64
        header += " " * padding + "\n"
        data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin-1") + b"".join(
            self.chunks)
        if not compress:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("arr_0", data)
        return out.getvalue()


def rescale_of(dataset: Dataset, index: int) -> tuple[float, float]:
    """(slope, intercept) of frame ``index``: the top-level Rescale Slope/Intercept, else the frame's Pixel Value
    Transformation (PS3.3 C.7.6.16.2.9), its shared one, else (1, 0)."""
    if "RescaleSlope" in dataset or "RescaleIntercept" in dataset:
        return pixels.number(dataset, "RescaleSlope", 1.0), pixels.number(dataset, "RescaleIntercept", 0.0)
    for groups, item in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        try:
            transformation = dataset[groups][item].PixelValueTransformationSequence[0]
        except (KeyError, IndexError, AttributeError, TypeError):
            continue
        return (pixels.number(transformation, "RescaleSlope", 1.0),
                pixels.number(transformation, "RescaleIntercept", 0.0))
    return 1.0, 0.0
