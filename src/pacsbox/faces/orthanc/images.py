"""Orthanc's image routes on instances and frames: ``preview``, ``rendered``, ``image-uint8/16``, ``image-int16``,
``matlab``, ``numpy`` (also on series), ``frames/{n}/raw`` and ``raw.gz``, and the ``frames/{n}`` listing.

Each answers as Orthanc 1.10.1 does, failures included, and they differ by route there: the image routes (preview,
rendered, image-*) answer an empty 404 for a frame that is not a number or not in the instance, an unknown instance,
an unacceptable Accept or an argument out of range, and an empty 415 for anything they cannot decode or encode;
``raw``, ``matlab`` and ``numpy`` answer Orthanc's JSON errors. Decoding and encoding run in a worker thread
(core.pixels bounds them in number and size); a rendered size whose pixels would exceed the decode budget is refused
as an argument out of range (the real Orthanc dies of a width of a million).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import re
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core import errors as core
from ...core import pixels
from ...core.frame_index import FrameLayouts
from ...core.ids import Level
from ...core.slices import CannotOrderSlices, order_slices
from . import image_render as ir
from .errors import OrthancError, out_of_range
from .params import archive_of

_FRAME = re.compile(r"[+-]?[0-9]{1,20}")
_UINT32_MAX = 2**32 - 1
#: Media types Orthanc's content negotiation offers for an image, in its order of registration.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/x-portable-arbitrarymap")
#: The children of /instances/{id}/frames/{n}, as Orthanc lists them (its route tree, sorted).
FRAME_CHILDREN = ["image-int16", "image-uint16", "image-uint8", "matlab", "numpy", "preview", "raw", "raw.gz",
                  "rendered"]
_RAW_TYPES = {"1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.90": "image/jp2",
              "1.2.840.10008.1.2.4.91": "image/jp2"}


class _Silent(Exception):
    """An image route's failure that Orthanc answers with an empty body and this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _frame_index(text: str) -> int | None:
    """A frame number as Orthanc's lexical_cast<unsigned int> reads it: None when not a number; a negative number
    wraps around to a (nonexistent) large index."""
    if not _FRAME.fullmatch(text):
        return None
    value = int(text)
    if abs(value) > _UINT32_MAX:
        return None
    return value if value >= 0 else _UINT32_MAX


def _boolean(request: Request, name: str, default: bool) -> bool:
    """Orthanc's GET Boolean arguments: ``true``/``1``/empty or ``false``/``0``, nothing else."""
    text = request.query_params.get(name)
    if text is None:
        return default
    if text in ("", "true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise out_of_range(f'Expected a Boolean for GET argument "{name}", found: {text[:64]}')


def _negotiate(accept: str | None) -> str | None:
    """Orthanc's HttpContentNegociation over IMAGE_TYPES: the most specific match, then the highest quality, the
    first on ties; None when nothing matches (case matters, as in Orthanc)."""
    best: tuple[int, float] | None = None
    chosen = None
    for media_range in (accept if accept is not None else "*/*").split(","):
        parameters = media_range.split(";")
        kind, _, subtype = parameters[0].partition("/")
        kind, subtype = kind.strip(), subtype.strip()
        if not _:
            continue
        quality = 1.0
        for parameter in parameters[1:]:
            key, equals, value = parameter.partition("=")
            if equals and key.strip() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 1.0
        level = 0 if (kind, subtype) == ("*", "*") else 1 if subtype == "*" else 2
        for media in IMAGE_TYPES:
            offered_kind, offered_subtype = media.split("/")
            if kind in ("*", offered_kind) and subtype in ("*", offered_subtype) and (
                    best is None or (level, quality) > best):
                best, chosen = (level, quality), media
    return chosen


def _quality(request: Request) -> int:
    text = request.query_params.get("quality")
    if text is None:
        return 90
    if len(text) > 3 or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 100:
        raise _Silent(415)  # Orthanc: a bad request inside the image handler
    return int(text)


def _encode(frame: ir.Frame, media: str, quality: int) -> bytes:
    if media == "image/png":
        return ir.encode_png(frame)
    if media == "image/jpeg":
        return ir.encode_jpeg(frame, quality)
    return ir.encode_pam(frame)


def _presentation(request: Request) -> ir.Presentation:
    """/rendered's arguments; Orthanc refuses a bad one as out of range (which the route answers as an empty
    404)."""
    query = request.query_params

    def number(name: str) -> float | None:
        if name not in query:
            return None
        text = query[name]
        try:
            value = float(text)
        except ValueError:
            raise _Silent(404) from None
        if math.isinf(value) and "inf" not in text.lower():  # "1e400": beyond a float, which Orthanc refuses
            raise _Silent(404)
        return value

    def side(name: str) -> int:
        text = query.get(name)
        if text is None:
            return 0
        text = text.strip()
        if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > 2**31 - 1:
            raise _Silent(404)  # not an int, or negative
        return int(text)

    smooth_text = query.get("smooth")
    if smooth_text is not None and smooth_text not in ("", "true", "1", "false", "0"):
        raise _Silent(415)
    return ir.Presentation(number("window-center"), number("window-width"), side("width"), side("height"),
                           smooth_text in ("", "true", "1"))


async def image(request: Request, kind: str) -> Response:
    """GET /instances/{id}[/frames/{frame}]/{kind}: a frame as PNG, JPEG or PAM (``kind``: preview, rendered,
    image-uint8, image-uint16, image-int16), or the bare status Orthanc answers for what it cannot render."""
    try:
        index = _frame_index(request.path_params.get("frame", "0"))
        if index is None:
            raise _Silent(404)
        quality = _quality(request)
        presentation = _presentation(request) if kind == "rendered" else None
        media = _negotiate(request.headers.get("accept"))
        archive, instance_id = archive_of(request), request.path_params["id"]
        body = await _decoding(request, _render, archive, instance_id, index, kind, presentation, media, quality)
    except _Silent as silent:
        return Response(status_code=silent.status)
    except (core.UnknownResource, core.InexistentItem):
        return Response(status_code=404)
    except Exception:  # whatever cannot be decoded or encoded (pydicom, its plugins, Pillow): Orthanc's 415
        return Response(status_code=415)
    return Response(body, media_type=media)


def _render(archive, instance_id: str, index: int, kind: str, presentation: ir.Presentation | None,
            media: str | None, quality: int) -> bytes:
    dataset = archive.instance_dataset(instance_id)
    frame = ir.orthanc_frame(dataset, index)
    if kind == "preview":
        photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
        frame = ir.preview(frame, photometric == "MONOCHROME1")
    elif kind == "rendered":
        assert presentation is not None
        width, height = ir.target_size(frame, presentation)
        if width * height * 4 > pixels.MAX_DECODED_BYTES:  # up to 3 bytes a pixel (RGB), and the encoder's copy
            raise _Silent(404)
        frame = ir.rendered(frame, dataset, presentation)
    else:
        frame = ir.truncate(frame, ir.TRUNCATIONS[kind])
    if media is None:  # negotiated after decoding, as Orthanc: a broken frame is a 415 whatever the Accept
        raise _Silent(404)
    return _encode(frame, media, quality)


def _image_failure(error: core.ArchiveError) -> OrthancError:
    """What /matlab, /numpy and /raw answer for a frame they cannot decode: Orthanc's errors for the same."""
    if isinstance(error, core.Unsupported):
        return OrthancError(2, "Not implemented yet", 500, error.details)
    if isinstance(error, core.InexistentItem):
        return out_of_range()
    if isinstance(error, (core.BadRequest, core.BadFormat)):
        return OrthancError(15, "Bad file format", 400, error.details)
    raise error


def _in_slot(function, *args):
    """``function`` holding one of core.pixels' decode slots throughout: what it decodes, transforms and encodes is
    in memory at most CONCURRENT_DECODES times over, whatever the number of requests and faces."""
    with pixels.decode_slot():
        return function(*args)


async def _decoding(request: Request, function, *args):
    """``function`` in a worker thread holding a decode slot; requests wait for their turn on the event loop (an
    asyncio semaphore of the application), not in a worker thread that other routes need."""
    state = request.app.state
    if getattr(state, "image_slots", None) is None:
        state.image_slots = asyncio.Semaphore(pixels.CONCURRENT_DECODES)
    async with state.image_slots:
        return await run_in_threadpool(_in_slot, function, *args)


async def _in_thread(request: Request, function, *args, decodes: bool = True):
    try:
        if decodes:
            return await _decoding(request, function, *args)
        return await run_in_threadpool(function, *args)
    except (core.Unsupported, core.InexistentItem, core.BadRequest) as error:
        raise _image_failure(error) from None


async def matlab(request: Request) -> Response:
    index = _frame_index(request.path_params.get("frame", "0"))
    if index is None:
        return Response(status_code=404)
    archive, instance_id = archive_of(request), request.path_params["id"]

    def text() -> str:
        dataset = archive.instance_dataset(instance_id)
        pixels.check_frame(dataset, index)
        pixels.check_budget(pixels.decoded_size(dataset, 1) * 8, "The MATLAB text of the frame")  # ~8 characters
        return ir.matlab(ir.orthanc_frame(dataset, index))                                          # a value

    return Response(await _in_thread(request, text), headers={"Content-Type": "text/plain"})  # no charset, as Orthanc


async def raw(request: Request, compressed: bool = False) -> Response:
    index = _frame_index(request.path_params["frame"])
    if index is None:
        return Response(status_code=404)
    archive, instance_id = archive_of(request), request.path_params["id"]

    layouts = _frame_layouts(request)

    def frame() -> tuple[bytes, str]:
        file_uuid = archive.instance_file_uuid(instance_id)
        try:  # the frame's bytes alone are read, where the file's layout is known
            path = archive.store_area.path_of(file_uuid)
            layout = layouts.layout(file_uuid, path)
            if layout is None:
                dataset = archive.instance_dataset(instance_id)
                data, syntax = pixels.raw_frame(dataset, index), pixels.transfer_syntax(dataset)
            else:
                data, syntax = layout.read(path, index), layout.syntax
        except FileNotFoundError:  # deleted since the lookup
            raise core.UnknownResource(f"Unknown instance: {instance_id}") from None
        if compressed:
            return gzip.compress(data, 6), "application/gzip"
        return data, _RAW_TYPES.get(syntax, "application/octet-stream")

    body, media = await _in_thread(request, frame, decodes=False)
    return Response(body, media_type=media)


def _frame_layouts(request: Request) -> FrameLayouts:
    """The application's table of frame layouts (made on first use)."""
    state = request.app.state
    if getattr(state, "frame_layouts", None) is None:
        state.frame_layouts = FrameLayouts()
    return state.frame_layouts


async def raw_gz(request: Request) -> Response:
    return await raw(request, compressed=True)


async def frame_children(request: Request) -> Response:
    from .json import json_response

    return json_response(FRAME_CHILDREN)


def _numpy_frame_index(request: Request) -> int:
    index = _frame_index(request.path_params["frame"])
    if index is None or (index == _UINT32_MAX and request.path_params["frame"].startswith("-")):
        raise out_of_range('Expected an unsigned integer for the "frame" argument')
    return index


async def numpy_frame(request: Request) -> Response:
    index = _numpy_frame_index(request)
    return await _numpy(request, [(request.path_params["id"], [index])], depth=0)


async def numpy_instance(request: Request) -> Response:
    return await _numpy(request, [(request.path_params["id"], None)], depth=None)


async def numpy_series(request: Request) -> Response:
    """The slices of a series in Orthanc's order (core.slices, as /ordered-slices), frames of each in turn."""
    archive, series_id = archive_of(request), request.path_params["id"]

    def order() -> list[tuple[str, Sequence[int]]]:
        series = archive.resource(Level.SERIES, series_id)
        rows = archive.related(Level.SERIES, series_id, Level.INSTANCE)
        for row in rows:
            _frames_of(row)  # a hostile NumberOfFrames is refused before it sizes anything
        return [(one.instance_id, range(one.frames)) for one in order_slices(series, rows).slices]

    try:
        selection = await run_in_threadpool(order)
    except CannotOrderSlices as error:  # (Orthanc answers 500, as for /ordered-slices)
        raise OrthancError(2040, "Unable to order the slices of the series", 500, error.details) from None
    return await _numpy(request, selection, depth=sum(len(frames) for _, frames in selection))


async def _numpy(request: Request, selection: list[tuple[str, Sequence[int] | None]], depth: int | None) -> Response:
    """``selection``: (instance, frame indexes or None for all of them); ``depth`` 0 for a lone 2D frame, None for
    the frame count of the one instance."""
    compress = _boolean(request, "compress", False)
    rescale = _boolean(request, "rescale", True)
    archive = archive_of(request)

    def build() -> bytes:
        writer: ir.NumpyWriter | None = None
        spent = 0
        for instance_id, indexes in selection:
            dataset = archive.instance_dataset(instance_id)
            if indexes is None:
                indexes = range(pixels.frame_count(dataset))
            # the whole instance's share first: a hostile NumberOfFrames is refused before any frame is decoded
            pixels.check_frame(dataset, 0)  # (pixel data there at all)
            pixels.check_budget(spent + len(indexes) * _array_bytes(dataset, rescale), "The array")
            if writer is None:
                writer = ir.NumpyWriter(len(indexes) if depth is None else depth, rescale)
            for index in indexes:
                pixels.check_frame(dataset, index)
                spent += _array_bytes(dataset, rescale)
                pixels.check_budget(spent, "The array")
                slope, intercept = ir.rescale_of(dataset, index)
                writer.add(ir.orthanc_frame(dataset, index), slope, intercept)
        if writer is None or not writer.chunks:
            raise core.BadFormat("Empty series")
        return writer.answer(compress)

    return Response(await _in_thread(request, build), media_type="application/octet-stream")


def _array_bytes(dataset, rescale: bool) -> int:
    """Bytes one frame adds to a NumPy answer: float32 when rescaled greyscale, else the decoded samples."""
    decoded = pixels.decoded_size(dataset, 1)
    if rescale and pixels.integer(dataset, "SamplesPerPixel", 1) == 1:
        return pixels.integer(dataset, "Rows") * pixels.integer(dataset, "Columns") * 4
    return decoded


def _frames_of(row) -> int:
    """NumberOfFrames of an instance's main tags; BadFormat when more than its file could hold (a frame takes at least
    a byte), so that a hostile value never sizes anything."""
    try:
        count = max(1, int(row.main_tags.get("NumberOfFrames", "1") or 1))
    except ValueError:
        return 1
    if row.file_size is not None and count > row.file_size:
        raise core.BadFormat(f"NumberOfFrames ({count}) exceeds what the file of {row.public_id} holds")
    return count
