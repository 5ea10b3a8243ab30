"""WADO-RS rendered and thumbnail resources (PS3.18 10.4.1.1.3-4): ``.../rendered`` and ``.../thumbnail`` of a
study, series, instance or one frame, as a single ``image/jpeg`` (the default) or ``image/png``.

As the Orthanc DICOMweb plugin 1.7: ``rendered`` of a study or series shows one instance of it (the plugin's choice,
see ``representative``), one frame only (a list of frames is a 400 "Bad file format"), the query parameters
``viewport`` (2 or 6 values), ``window`` (center, width, linear | linear-exact | sigmoid) and ``quality`` (1-100)
with the plugin's messages. Where pacsbox differs: an Accept naming no image type it renders is a 406 (PS3.18
8.7.5; the plugin answers 400), and an Accept listing several types is negotiated (``image/*`` is JPEG); a viewport
side above ``render.MAX_SIDE`` is a 400 (the plugin dies on one, or on a side of 0); ``linear-exact`` follows PS3.3
C.11.2.1.3.2 (the plugin's starts its ramp at the center and saturates half-way). The plugin 1.7 serves no
``thumbnail``; pacsbox follows PS3.18: the rendered image fitted into 128x128 unless a ``viewport`` is given.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive
from ...core.ids import Level
from .errors import bad_format, not_acceptable, out_of_range
from .negotiation import accepted
from .render import FORMATS, parse_options, render, small_number
from .wado import instance_ids


def image_type(header: str | None) -> str:
    """The image media type to answer for an Accept header: the first it names that pacsbox renders."""
    for entry in accepted(header):
        if entry.kind in FORMATS:
            return entry.kind
        if entry.kind in ("*/*", "image/*"):
            return "image/jpeg"
    raise not_acceptable("Rendered resources are served as image/jpeg or image/png only")


def representative(ids: list[str]) -> str:
    """The instance a study or series is rendered by: as the plugin 1.7 picks it (measured), the one whose Orthanc
    ID is the smallest string (pacsbox's IDs are Orthanc's)."""
    return min(ids)


async def rendered(request: Request, level: Level, thumbnail: bool = False) -> Response:
    """GET .../rendered or .../thumbnail of a study, series or instance (its first frame) or of one frame."""
    media_type = image_type(request.headers.get("accept"))
    options = parse_options(request.query_params, thumbnail=thumbnail)
    frame = 1
    if "frames" in request.path_params:
        text = request.path_params["frames"].strip()
        if not small_number(text):
            raise bad_format(f"A rendered frame is one frame number, not {text[:64]!r}")
        frame = int(text)
        if frame < 1:
            raise out_of_range(f"Inexistent frame index in this image: {frame}")
    archive: Archive = request.app.state.archive
    ids = await run_in_threadpool(instance_ids, archive, request, level)
    image = await run_in_threadpool(render, archive, representative(ids), FORMATS[media_type], frame, options)
    return Response(image, media_type=media_type)
