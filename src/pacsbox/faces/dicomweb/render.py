"""The face's one pixel renderer: a frame of a stored instance as an 8-bit JPEG or PNG, for WADO-URI and for the
WADO-RS ``rendered`` and ``thumbnail`` resources (PS3.18 8.3.5, 10.4.1.1.3-4).

Pixels are decoded by pydicom, rescaled (RescaleSlope/Intercept), windowed by the request's ``window`` or else by
the first WindowCenter/WindowWidth (WADO-URI) or stretched from the frame's minimum to maximum (WADO-RS, as the plugin
renders it), MONOCHROME1 inverted, colour as stored
(YBR converted to RGB). numpy and Pillow are imported only when an image is rendered: a server that never renders
never loads them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core import pixels as core_pixels
from ...core.archive import Archive
from ...core.ids import Level
from .errors import bad_request, out_of_range

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

#: Largest side of a rendered image a request may ask for. A bigger viewport is refused with 400 (not clamped: a
#: client asking for 70000 pixels has a bug worth seeing); the Orthanc plugin 1.7 dies on such a request.
MAX_SIDE = 4096
#: Side of the square a thumbnail fits in when no viewport is given (PS3.18 leaves the size to the server).
THUMBNAIL_SIDE = 128
#: JPEG quality when the request names none (Orthanc's default).
DEFAULT_QUALITY = 90
#: a number of a request: ASCII digits only (``str.isdigit`` takes "²", which ``int`` refuses), and few of them
_SMALL_NUMBER = re.compile(r"[0-9]{1,9}")
WINDOW_FUNCTIONS = ("linear", "linear-exact", "sigmoid")
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


@dataclass(frozen=True)
class RenderOptions:
    """The presentation a request asks for (PS3.18 8.3.5.1): all optional."""

    #: (width, height) of the answer; a None side keeps the source's.
    viewport: tuple[int | None, int | None] | None = None
    #: (x, y, width, height) of the source region the viewport shows.
    region: tuple[float, float, float, float] | None = None
    #: (center, width, function) in rescaled (modality) values.
    window: tuple[float, float, str] | None = None
    quality: int = DEFAULT_QUALITY
    #: the plugin's WADO-RS rendering (True) or its WADO-URI rendering (False). WADO-RS: without ``window`` the
    #: frame (or region) is stretched from its minimum to its maximum, levels are rounded, a viewport is filled by
    #: the image fitted inside it (aspect kept, centred, black around). WADO-URI: the first WindowCenter/WindowWidth
    #: of the data set, levels truncated.
    rest: bool = False
    #: fit into THUMBNAIL_SIDE (aspect kept, never enlarged) when no viewport is given
    thumbnail: bool = False


def small_number(text: str) -> bool:
    """Whether ``text`` is a non-negative integer of at most 9 ASCII digits."""
    return _SMALL_NUMBER.fullmatch(text) is not None


def parse_options(params, thumbnail: bool = False) -> RenderOptions:
    """The ``viewport``, ``window`` and ``quality`` query parameters, checked (400 with the plugin's messages)."""
    viewport = region = window = None
    if "viewport" in params:
        viewport, region = _viewport(params["viewport"])
    if "window" in params and not thumbnail:  # PS3.18 10.4.1.1.4: a thumbnail takes only viewport
        window = _window(params["window"])
    quality = DEFAULT_QUALITY
    if "quality" in params and not thumbnail:
        text = params["quality"].strip()
        if not (small_number(text) and 1 <= int(text) <= 100):
            raise out_of_range(f'The value of "quality" in WADO-RS Retrieve Rendered Transaction must be between '
                               f"1 and 100, found: {params['quality'][:64]}")
        quality = int(text)
    return RenderOptions(viewport, region, window, quality, rest=True, thumbnail=thumbnail)


def _viewport(text: str):
    parts = text.split(",")
    if len(parts) not in (2, 6):
        raise out_of_range('The number arguments to "viewport" in WADO-RS Retrieve Rendered Transaction must be '
                           "2 or 6")
    sides: list[int | None] = []
    for part in parts[:2]:
        part = part.strip()
        if not part:
            sides.append(None)  # as the plugin: an empty side keeps the source's
            continue
        if not small_number(part) or not 1 <= int(part) <= MAX_SIDE:
            raise out_of_range(f"The viewport sides must be integers from 1 to {MAX_SIDE}, found: {text[:64]}")
        sides.append(int(part))
    region = None
    if len(parts) == 6:
        try:
            numbers = tuple(float(part) for part in parts[2:])
        except ValueError:
            raise out_of_range(f"The viewport region must be numbers, found: {text[:64]}") from None
        if not all(math.isfinite(n) for n in numbers) or numbers[0] < 0 or numbers[1] < 0 or (
                numbers[2] <= 0 or numbers[3] <= 0):
            raise out_of_range(f"The viewport region must be a non-empty area inside the image (flipping with "
                               f"negative sizes is not supported), found: {text[:64]}")
        region = numbers
    return (sides[0], sides[1]), region


def _window(text: str) -> tuple[float, float, str]:
    parts = text.split(",")
    if len(parts) != 3:
        raise out_of_range('The number arguments to "window" in WADO-RS Retrieve Rendered Transaction must be 3')
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        center = width = math.nan
    if not (math.isfinite(center) and math.isfinite(width)):
        raise out_of_range('The first and second arguments to "window" in WADO-RS Retrieve Rendered Transaction '
                           f"must be floats: {text[:64]}")
    function = parts[2].strip().lower()
    if function not in WINDOW_FUNCTIONS:
        raise out_of_range('The third argument to "window" in WADO-RS Retrieve Rendered Transaction must be '
                           f"linear, linear-exact or sigmoid: {parts[2][:64]}")
    return center, width, function


def render(archive: Archive, instance_id: str, image_format: str, frame: int = 1,
           options: RenderOptions | None = None) -> bytes:
    """Frame ``frame`` (from 1) of an instance as JPEG or PNG bytes (``image_format`` is Pillow's name)."""
    dataset = archive.instance_dataset(instance_id)
    if "TransferSyntaxUID" not in dataset.file_meta:  # a bare data set: the syntax it was read in
        dataset.file_meta.TransferSyntaxUID = archive.metadata(Level.INSTANCE, instance_id).get(
            "TransferSyntax", "1.2.840.10008.1.2")
    if "PixelData" not in dataset:
        raise bad_request("The instance has no pixel data to render")
    if not 1 <= frame <= frame_count(dataset):
        raise out_of_range(f"Inexistent frame index in this image: {frame}")
    return encode(render_image(dataset, frame, options or RenderOptions()), image_format,
                  (options or RenderOptions()).quality)


def render_image(dataset: Dataset, frame: int, options: RenderOptions):
    """The frame as a Pillow image ("L" or "RGB"), windowed, cropped and scaled."""
    import numpy as np
    from PIL import Image

    pixels = core_pixels.decode_frame(dataset, frame - 1, palette=False)  # (YBR as RGB, as pydicom decodes)
    if options.region is not None:  # cropped before windowing: the plugin stretches the region's own range
        x, y, width, height = options.region
        if x + width > pixels.shape[1] or y + height > pixels.shape[0]:
            raise out_of_range(f"The viewport region lies outside the {pixels.shape[1]}x{pixels.shape[0]} image")
        pixels = pixels[round(y): round(y + height), round(x): round(x + width)]
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3 and photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    else:
        values = pixels.astype(np.float64) * _number(dataset, "RescaleSlope", 1.0) + _number(
            dataset, "RescaleIntercept", 0.0)
        scaled = _windowed(values, dataset, options.window, options.rest)
        if photometric == "MONOCHROME1":
            scaled = 255.0 - scaled
        levels = np.floor(np.clip(scaled, 0, 255) + (0.5 if options.rest else 0.0))
        image = Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8), "L")
    return _framed(image, options)


def _windowed(values, dataset: Dataset, window: tuple[float, float, str] | None, stretch: bool):
    """Modality values mapped to 0..255 (PS3.3 C.11.2.1.2 for an explicit window)."""
    import numpy as np

    if window is not None:
        center, width, function = window
        if function == "linear":  # PS3.3 C.11.2.1.2.1: width at least 1
            width = max(width, 1.0)
            return np.clip(((values - (center - 0.5)) / max(width - 1, 1e-9) + 0.5) * 255.0, 0, 255)
        width = max(width, 1e-9)
        if function == "linear-exact":  # C.11.2.1.3.2
            return np.clip(((values - center) / width + 0.5) * 255.0, 0, 255)
        return 255.0 / (1.0 + np.exp(np.clip(-4.0 * (values - center) / width, -700, 700)))  # C.11.2.1.3.1
    center, width = (None, None) if stretch else (_number(dataset, "WindowCenter", None),
                                                  _number(dataset, "WindowWidth", None))
    if center is not None and width is not None and width > 0:
        low, high = center - width / 2, center + width / 2
        values = np.clip(values, low, high)
    else:
        low, high = float(values.min()), float(values.max())
    return (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)


def _framed(image, options: RenderOptions):
    """The image scaled to its viewport (or to a thumbnail's size)."""
    from PIL import Image

    if options.viewport is not None:
        width, height = options.viewport
        size = (width or image.width, height or image.height)
    elif options.thumbnail and max(image.size) > THUMBNAIL_SIDE:
        size = (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    else:
        return image
    if size == image.size:
        return image
    if not options.rest:
        return image.resize(size, Image.Resampling.BILINEAR)
    scale = min(size[0] / image.width, size[1] / image.height)
    fitted = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                          Image.Resampling.NEAREST)
    if options.thumbnail and options.viewport is None:
        return fitted
    canvas = Image.new(image.mode, size)
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


encode = core_pixels.encode_image
_number = core_pixels.number
frame_count = core_pixels.frame_count
