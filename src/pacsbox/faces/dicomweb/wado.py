"""WADO-RS (PS3.18 10.4): studies, series and instances as stored, their metadata in DICOM JSON with BulkDataURIs,
bulk data, and frames.

Instances and frames are sent as stored or decompressed to Explicit VR Little Endian (``transcode``); compressing to
another syntax is a 406. The Orthanc DICOMweb plugin answers 400 to a media type it cannot produce (and compresses
on request); PS3.18 8.7.5 says 406 Not Acceptable, which pacsbox answers.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...core.archive import Archive, FindQuery
from ...core.errors import UnknownResource
from ...core.ids import Level
from ...core.index_rows import ResourceRow
from ..answer_cache import AnswerCache
from . import multipart, transcode
from .answers import json_of
from .errors import DicomWebError, bad_format, bad_request, not_acceptable, out_of_range
from .negotiation import MediaRange, accepted
from .qido import DICOM_JSON, base_url, model_of, model_response

if TYPE_CHECKING:  # pydicom loads on the first retrieval, not at start-up
    from pydicom.dataset import Dataset

_UID_KEYS = ("0020,000d", "0020,000e", "0008,0018")
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
EXPLICIT_LITTLE = transcode.EXPLICIT_LITTLE


def inexistent(level: Level, uid: str) -> DicomWebError:
    return DicomWebError(404, 7, "Accessing an inexistent item",
                         f"Accessing an inexistent {level.title.lower()} with WADO-RS: {uid}")


def instance_ids(archive: Archive, request: Request, level: Level) -> list[str]:
    """The archive IDs of the instances a WADO-RS path names (404 when its study, series or instance is absent)."""
    return [row.public_id for row in instance_rows(archive, request, level)]


def instance_rows(archive: Archive, request: Request, level: Level) -> list[ResourceRow]:
    """The instances a WADO-RS path names (404 when its study, series or instance is absent)."""
    uids = [request.path_params[name] for name in ("study", "series", "instance")[: level]]
    query = dict(zip(_UID_KEYS, uids, strict=False))
    for depth in range(1, level + 1):  # name the first level that is missing, as the plugin does
        partial = dict(list(query.items())[:depth])
        if not archive.find(FindQuery(Level(depth), partial, case_sensitive=True, limit=1)):
            raise inexistent(Level(depth), uids[depth - 1])
    rows = archive.find(FindQuery(Level.INSTANCE, query, case_sensitive=True))
    if not rows:
        raise inexistent(level, uids[-1])
    return rows


async def retrieve(request: Request, level: Level) -> Response:
    """GET a study, series or instance: ``multipart/related; type="application/dicom"``, each file as stored or,
    when the Accept asks for Explicit VR Little Endian (its default, PS3.18 8.7.3.5.2), rewritten in it."""
    archive: Archive = request.app.state.archive
    ids = await run_in_threadpool(instance_ids, archive, request, level)
    ranges = accepted(request.headers.get("accept"))
    syntaxes = [archive.metadata(Level.INSTANCE, i).get("TransferSyntax", "") for i in ids]
    plan = _retrieval_plan(ranges, syntaxes)
    if plan is None:
        stored = ", ".join(sorted(set(syntaxes)))
        raise not_acceptable("pacsbox sends instances in multipart/related; type=\"application/dicom\" as stored "
                             "(transfer-syntax=*) or decompressed to Explicit VR Little Endian "
                             f"(transfer-syntax={EXPLICIT_LITTLE}), never compressed to another syntax; "
                             f"the stored transfer syntaxes: {stored}")
    rewritten = {instance_id: syntax for instance_id, syntax, rewrite in zip(ids, syntaxes, plan, strict=True)
                 if rewrite}
    for syntax in set(rewritten.values()):
        if transcode.needs_decoding(syntax):
            transcode.check_decoder(syntax)

    def open_all() -> list:
        sizes = {}
        for instance_id, syntax in rewritten.items():
            if transcode.needs_decoding(syntax):
                try:
                    sizes[instance_id] = transcode.header_size(archive.instance_path(instance_id))
                except (FileNotFoundError, UnknownResource):  # deleted since the lookup: not part of the answer
                    continue
        eager = sum(sizes.values()) <= transcode.MAX_DECODED_BYTES  # else one at a time, while streaming
        handles: list = []
        for instance_id in ids:
            try:
                if instance_id not in rewritten:
                    handles.append(open(archive.instance_path(instance_id), "rb"))
                elif eager:
                    handles.append(_rewritten(archive, instance_id, rewritten[instance_id]))
                else:
                    handles.append(functools.partial(_rewritten, archive, instance_id, rewritten[instance_id]))
            except (FileNotFoundError, UnknownResource):  # deleted since the lookup: not part of the answer
                continue
        return handles

    handles = await run_in_threadpool(open_all)
    boundary = multipart.new_boundary()
    media_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(multipart.stream_files(boundary, "application/dicom", handles), media_type=media_type)


def _rewritten(archive: Archive, instance_id: str, syntax: str) -> io.BytesIO:
    return io.BytesIO(transcode.explicit_little_file(archive.instance_dataset(instance_id), syntax))


def _retrieval_plan(ranges: list[MediaRange], syntaxes: list[str]) -> list[bool] | None:
    """For the first range that all instances can be sent in, whether each is rewritten in Explicit VR Little
    Endian (True) or sent as stored (False); None when no range can be met."""
    for entry in ranges:
        if not entry.takes("application/dicom"):
            continue
        wanted = entry.transfer_syntax
        if wanted == "*":
            return [False] * len(syntaxes)
        if wanted == "":  # the default, Explicit VR Little Endian (big endian files stay as stored)
            return [s != EXPLICIT_LITTLE and transcode.can_rewrite(s) for s in syntaxes]
        if wanted == EXPLICIT_LITTLE and all(transcode.can_rewrite(s) for s in syntaxes):
            return [s != EXPLICIT_LITTLE for s in syntaxes]
        if all(s == wanted for s in syntaxes):
            return [False] * len(syntaxes)
    return None


async def metadata(request: Request, level: Level) -> Response:
    """GET .../metadata: every instance's data set in DICOM JSON, binary values as BulkDataURIs. In JSON, each
    instance's part is kept by its stored file's UUID and the URL root (``faces.answer_cache``): a viewer opening a
    study again is answered without reading a file."""
    model = model_of(request)
    archive: Archive = request.app.state.archive
    rows = await run_in_threadpool(instance_rows, archive, request, level)
    root = base_url(request)
    cache: AnswerCache = request.app.state.metadata_answers

    def render_one(instance_id: str) -> dict | None:
        try:
            dataset = archive.instance_dataset(instance_id)
        except UnknownResource:
            return None
        url = (f"{root}/studies/{dataset.get('StudyInstanceUID', '')}/series/"
               f"{dataset.get('SeriesInstanceUID', '')}/instances/{dataset.get('SOPInstanceUID', '')}")
        return metadata_json(dataset, url)

    def render() -> list[dict]:
        return [answer for row in rows if (answer := render_one(row.public_id)) is not None]

    def render_json() -> bytes:
        # json.dumps of a list joins its items' own dumps with ", ": the same bytes, assembled from kept parts
        parts = []
        for row in rows:
            key = (row.file_uuid, root)
            part = cache.get(key) if row.file_uuid else None
            if part is None:
                answer = render_one(row.public_id)
                if answer is None:
                    continue
                part = json.dumps(answer).encode()
                if row.file_uuid:
                    cache.put(key, part)
            parts.append(part)
        return b"[" + b", ".join(parts) + b"]"

    if model != "xml":
        return Response(await run_in_threadpool(render_json), media_type=DICOM_JSON)
    return model_response(await run_in_threadpool(render), model)


METADATA_CACHE_BYTES = 64 * 1024 * 1024  # instances' DICOM JSON kept (~4 KB each for a small image)


def metadata_json(dataset: Dataset, instance_url: str) -> dict:
    """A data set's DICOM JSON, each binary value replaced by its BulkDataURI (``.../bulk/{tag}[/{item}/{tag}]``)."""
    return _walk(dataset, f"{instance_url}/bulk")


def _walk(dataset: Dataset, prefix: str) -> dict:
    from pydicom.dataset import Dataset

    model: dict = {}
    for element in dataset:
        key = f"{element.tag:08X}"
        path = f"{prefix}/{element.tag:08x}"
        if element.VR == "SQ":
            items = [_walk(item, f"{path}/{number}") for number, item in enumerate(element.value or [])]
            model[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
        elif element.VR in _BULK_VRS and not element.is_empty:
            model[key] = {"vr": element.VR, "BulkDataURI": path}
        else:
            single = Dataset()
            single.add(element)
            model.update(json_of(single))
    return model


async def bulk(request: Request) -> Response:
    """GET .../bulk/{tag}[/{item}/{tag}...]: one value's bytes as ``multipart/related;
    type="application/octet-stream"``."""
    archive: Archive = request.app.state.archive
    ids = await run_in_threadpool(instance_ids, archive, request, Level.INSTANCE)
    dataset = await run_in_threadpool(archive.instance_dataset, ids[0])
    element = _element_at(dataset, request.path_params["path"])
    if element is None:
        raise DicomWebError(404, 7, "Accessing an inexistent item", f"No bulk data at {request.path_params['path']}")
    return _octet_parts([_raw_value(element, dataset)])


def _element_at(dataset: Dataset, path: str):
    steps = [step for step in path.split("/") if step]
    current: Dataset = dataset
    for position, step in enumerate(steps):
        if position % 2 == 1:  # an item number
            continue
        try:
            tag = int(step, 16)
        except ValueError:
            return None
        if len(step) != 8 or tag not in current:
            return None
        if position == len(steps) - 1:
            return current.get_item(tag)  # still raw when not yet converted: the bytes as stored
        element = current[tag]
        item = steps[position + 1] if position + 1 < len(steps) else ""
        if element.VR != "SQ" or not item.isascii() or not item.isdigit() or len(item) > 9:
            return None
        index = int(steps[position + 1])
        if index >= len(element.value):
            return None
        current = element.value[index]
    return None


def _raw_value(element, dataset: Dataset) -> bytes:
    """The value's bytes as stored (little endian), without the padding of text, as the plugin sends them."""
    value = element.value
    if not isinstance(value, (bytes, bytearray)):  # converted already: encode it again, implicit VR little endian
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_data_element

        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, True
        write_data_element(buffer, element, dataset._character_set)
        value = buffer.getvalue()[8:]  # after the tag and the 4-byte length
    if element.VR in _BULK_VRS or element.VR is None:
        return bytes(value)
    return bytes(value).rstrip(b"\0" if element.VR == "UI" else b" ")


async def frames(request: Request) -> Response:
    """GET .../frames/{list}: frames as stored (a compressed bitstream, labelled with its media type and transfer
    syntax) or decoded to ``application/octet-stream`` in Explicit VR Little Endian, as the Accept asks (PS3.18
    8.7.3.5.3; ``application/octet-stream`` without a transfer-syntax means decoded)."""
    numbers = _frame_numbers(request.path_params["frames"])
    ranges = accepted(request.headers.get("accept"))
    archive: Archive = request.app.state.archive
    ids = await run_in_threadpool(instance_ids, archive, request, Level.INSTANCE)
    dataset = await run_in_threadpool(archive.instance_dataset, ids[0])
    syntax = archive.metadata(Level.INSTANCE, ids[0]).get("TransferSyntax", "") or "1.2.840.10008.1.2"
    if "PixelData" not in dataset:
        raise bad_request("The instance has no pixel data")
    as_stored = _frames_as_stored(ranges, syntax)
    count = transcode.frame_count(dataset)  # (a hostile NumberOfFrames is read as 1, not a 500)
    if any(number > count for number in numbers):
        raise out_of_range(f"The instance has {count} frames")
    url = base_url(request) + request.url.path.split("/frames/")[0].removeprefix(request.app.state.settings.root)
    extra = [{"Content-Location": f"{url}/frames/{number}"} for number in numbers]
    if as_stored:
        contents = await run_in_threadpool(transcode.stored_frames, dataset, numbers)
        part_type = f"{transcode.FRAME_MEDIA_TYPES[syntax]}; transfer-syntax={syntax}"
    elif transcode.needs_decoding(syntax):
        transcode.check_decoder(syntax)
        frame_size = transcode.decoded_size(dataset) // count
        transcode.check_budget(frame_size * len(numbers))
        contents = await run_in_threadpool(transcode.decoded_frames, dataset, syntax, numbers)
        part_type = f"application/octet-stream; transfer-syntax={EXPLICIT_LITTLE}"
    else:
        pixels = _frame_reader(dataset, syntax)
        contents = [pixels(number) for number in numbers]
        part_type = f"application/octet-stream; transfer-syntax={EXPLICIT_LITTLE}"
    return _octet_parts(contents, part_type, extra)


def _frames_as_stored(ranges: list[MediaRange], syntax: str) -> bool:
    """Whether the first range that can be met takes the frames as stored (True) or decoded (False); 406 when
    none can (pacsbox never compresses), 400 for ``application/octet-stream`` in a compressed syntax, as the
    plugin answers."""
    compressed = transcode.needs_decoding(syntax)
    misnamed = None
    for entry in ranges:
        if entry.kind not in ("*/*", "multipart/*", "multipart/related"):
            continue
        media = entry.part_type if entry.part_type not in ("", "*", "*/*") else "application/octet-stream"
        if media not in transcode.FRAME_DEFAULT_SYNTAX:
            continue
        wanted = entry.transfer_syntax or transcode.FRAME_DEFAULT_SYNTAX[media]
        if media == "application/octet-stream":
            if wanted == "*":
                return compressed
            if wanted == EXPLICIT_LITTLE:
                return False
            misnamed = misnamed or wanted
            continue
        family = transcode.FRAME_DEFAULT_SYNTAX.get(transcode.FRAME_MEDIA_TYPES.get(syntax, ""))
        if compressed and family == transcode.FRAME_DEFAULT_SYNTAX[media] and wanted in ("*", syntax):
            return True
    if misnamed is not None:
        raise bad_request(f"DICOMweb RetrieveFrames: Cannot specify a transfer syntax ({misnamed[:64]}) for default "
                          "Little Endian uncompressed pixel data")
    stored = f'type="{transcode.FRAME_MEDIA_TYPES[syntax]}" or ' if compressed else ""
    raise not_acceptable(f"The frames are stored in {syntax}: pacsbox serves them as stored ({stored}"
                         "transfer-syntax=*) or decoded to application/octet-stream "
                         f"(transfer-syntax={EXPLICIT_LITTLE}), never compressed to another syntax")


def _frame_numbers(text: str) -> list[int]:
    numbers = []
    for item in text.split(","):
        item = item.strip()
        if not item.isascii() or not item.isdigit():  # "²" is a digit to isdigit, not to int
            raise bad_format(f"Frame numbers are positive integers separated by commas, not {text[:64]!r}")
        number = int(item) if len(item) <= 9 else 10**9  # beyond any frame count; int() refuses 4300 digits
        if number < 1:
            raise out_of_range(f"Invalid frame number (must be > 0): {item}")
        numbers.append(number)
    return numbers


def _frame_reader(dataset: Dataset, transfer_syntax: str) -> Callable[[int], bytes]:
    from pydicom.uid import UID

    syntax = UID(transfer_syntax or "1.2.840.10008.1.2")
    if not syntax.is_little_endian:
        raise not_acceptable("Frames of big endian instances are not served: pacsbox does not transcode")
    data = bytes(dataset.PixelData)
    size = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1) or 1) * int(
        dataset.BitsAllocated)
    frame_bytes = size // 8 if size % 8 == 0 else None

    def frame(number: int) -> bytes:
        if frame_bytes is None:  # 1-bit frames are packed across byte boundaries
            raise not_acceptable("Frames of 1-bit images are not served")
        return data[(number - 1) * frame_bytes: number * frame_bytes]

    return frame


def _octet_parts(contents: list[bytes], part_type: str = "application/octet-stream",
                 extra: list[dict[str, str]] | None = None) -> Response:
    boundary = multipart.new_boundary()
    outer_type = part_type.split(";")[0] if extra is None else part_type
    return Response(multipart.whole(boundary, part_type, contents, extra),
                    media_type=f'multipart/related; type="{outer_type}"; boundary={boundary}')
