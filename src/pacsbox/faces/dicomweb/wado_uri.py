"""WADO-URI (PS3.18 9): ``GET /wado?requestType=WADO&studyUID=...&seriesUID=...&objectUID=...&contentType=...``.

``application/dicom`` sends the stored file; ``image/jpeg`` (the default) and ``image/png`` render the first frame,
rescaled and windowed by the first WindowCenter/WindowWidth (else stretched from minimum to maximum), MONOCHROME1
inverted, colour as stored. As the Orthanc DICOMweb plugin: a request without ``requestType=WADO`` or
``objectUID``, or naming an object that is not in the study or series it gives, is a 404; another content type
a 400. The plugin labels its
default JPEG answer ``image/png``; pacsbox says ``image/jpeg``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive, FindQuery
from ...core.errors import UnknownResource
from ...core.ids import Level
from ..http_common import stored_file_response
from .errors import bad_request, unknown_resource

_RENDERED = {"image/jpeg": "JPEG", "image/png": "PNG"}


async def retrieve(request: Request) -> Response:
    params = request.query_params
    object_uid = params.get("objectUID", "")
    if params.get("requestType") != "WADO" or not object_uid:
        raise unknown_resource("WADO-URI needs requestType=WADO and objectUID")
    content_type = params.get("contentType", "image/jpeg").split(",")[0].strip().lower() or "image/jpeg"
    if content_type not in _RENDERED and content_type != "application/dicom":
        raise bad_request(f'WADO-URI: Unsupported content type: "{content_type}"')
    archive: Archive = request.app.state.archive
    query = {"0008,0018": object_uid}
    if params.get("studyUID"):
        query["0020,000d"] = params["studyUID"]
    if params.get("seriesUID"):
        query["0020,000e"] = params["seriesUID"]
    rows = await run_in_threadpool(archive.find, FindQuery(Level.INSTANCE, query, case_sensitive=True, limit=1))
    if not rows:
        raise unknown_resource(f"WADO-URI: no instance {object_uid}")
    instance_id = rows[0].public_id
    if content_type == "application/dicom":
        path = await run_in_threadpool(archive.instance_path, instance_id)
        return await stored_file_response(path, "application/dicom",
                                          lambda: UnknownResource(f"Unknown instance: {instance_id}"))
    image = await run_in_threadpool(render, archive, instance_id, _RENDERED[content_type])
    return Response(image, media_type=content_type)


def render(archive: Archive, instance_id: str, image_format: str) -> bytes:
    """The first frame of an instance as an 8-bit JPEG or PNG."""
    dataset = archive.instance_dataset(instance_id)
    if "TransferSyntaxUID" not in dataset.file_meta:  # a bare data set: the syntax it was read in
        dataset.file_meta.TransferSyntaxUID = archive.metadata(Level.INSTANCE, instance_id).get(
            "TransferSyntax", "1.2.840.10008.1.2")
    if "PixelData" not in dataset:
        raise bad_request("WADO-URI: the instance has no pixel data to render")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for data it cannot decode
        raise bad_request(f"WADO-URI: cannot decode the pixel data: {error}") from None
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[0]
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3 and photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    else:
        values = pixels.astype(np.float64) * _number(dataset, "RescaleSlope", 1.0) + _number(
            dataset, "RescaleIntercept", 0.0)
        center, width = _number(dataset, "WindowCenter", None), _number(dataset, "WindowWidth", None)
        if center is not None and width is not None and width > 0:
            low, high = center - width / 2, center + width / 2
            values = np.clip(values, low, high)
        else:
            low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        if photometric == "MONOCHROME1":
            scaled = 255.0 - scaled
        image = Image.fromarray(np.floor(scaled).astype(np.uint8), "L")
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def _number(dataset, keyword: str, default):
    """The first value of a numeric attribute, or ``default`` when absent or not a number."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
