"""WADO-URI (PS3.18 9): ``GET /wado?requestType=WADO&studyUID=...&seriesUID=...&objectUID=...&contentType=...``.

``application/dicom`` sends the stored file; ``image/jpeg`` (the default) and ``image/png`` render the first frame
(``render.py``, the face's one renderer). As the Orthanc DICOMweb plugin: a request without ``requestType=WADO`` or
``objectUID``, or naming an object that is not in the study or series it gives, is a 404; another content type
a 400. The plugin labels its default JPEG answer ``image/png``; pacsbox says ``image/jpeg``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive, FindQuery
from ...core.errors import UnknownResource
from ...core.ids import Level
from ..http_common import stored_file_response
from .errors import bad_request, unknown_resource
from .render import FORMATS, render


async def retrieve(request: Request) -> Response:
    params = request.query_params
    object_uid = params.get("objectUID", "")
    if params.get("requestType") != "WADO" or not object_uid:
        raise unknown_resource("WADO-URI needs requestType=WADO and objectUID")
    content_type = params.get("contentType", "image/jpeg").split(",")[0].strip().lower() or "image/jpeg"
    if content_type not in FORMATS and content_type != "application/dicom":
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
    image = await run_in_threadpool(render, archive, instance_id, FORMATS[content_type])
    return Response(image, media_type=content_type)
