"""/jobs routes and the Synchronous/Asynchronous answer of every route that runs a job (``core.jobs``).

Bodies, statuses and errors follow Orthanc 1.10.1, measured against it (tests/faces/orthanc/test_jobs.py):

* ``GET /jobs`` lists the IDs sorted, ``?expand`` (present, whatever its value) the jobs; ``GET /jobs/{id}`` of an
  unknown job is a 404 with an empty body.
* ``POST /jobs/{id}/pause|cancel`` answer ``{}`` (``application/json``) for every known job, finished or not;
  ``resume`` of a job that is not paused and ``resubmit`` of one that has not failed are a 400 with an empty body,
  as is every action on an unknown job.
* ``GET /jobs/{id}/{key}`` serves an output (the zip of an asynchronous archive under ``archive``); an unknown job
  or key is a 404 "Job has no such output: {key}".
* A job's error shows as ``ErrorCode``/``ErrorDescription``/``ErrorDetails``, Orthanc's code of the core error.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...core.errors import BadFormat, InexistentItem
from ...core.jobs import Job, JobInfo, JobsEngine
from .errors import translate
from .json import dumps, json_response
from .params import archive_of


def engine_of(request: Request) -> JobsEngine:
    """The jobs engine of the archive this face serves (wired by ``core.assembly.open_archive``)."""
    return archive_of(request).jobs


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


def job_json(info: JobInfo) -> dict[str, Any]:
    """Orthanc's description of a job (GET /jobs/{id})."""
    error = None if info.error is None else translate(info.error)
    body: dict[str, Any] = {
        "Content": info.content, "CreationTime": info.creation_time, "EffectiveRuntime": info.effective_runtime,
        "ErrorCode": 0 if error is None else error.code,
        "ErrorDescription": "Success" if error is None else error.message,
        "ErrorDetails": "" if error is None else (error.details or ""),
        "ID": info.id, "Priority": info.priority, "Progress": info.progress, "State": info.state,
        "Timestamp": _now(), "Type": info.job_type,
    }
    if info.completion_time is not None:
        body["CompletionTime"] = info.completion_time
    return body


# -- what a job route reads from its body -------------------------------------------------------------------------
def is_synchronous(options: Any, default: bool = True) -> bool:
    """Orthanc's choice: ``Synchronous`` when given, else the opposite of ``Asynchronous``, else ``default``; a
    value that is not a Boolean is "Bad file format"."""
    if not isinstance(options, dict):
        return default
    for key in ("Synchronous", "Asynchronous"):
        if key in options and not isinstance(options[key], bool):
            raise BadFormat(f"Boolean value expected in field: {key}")
    if "Synchronous" in options:
        return options["Synchronous"]
    if "Asynchronous" in options:
        return not options["Asynchronous"]
    return default


def priority(options: Any) -> int:
    """The ``Priority`` of a job (0 by default; higher runs first)."""
    if not isinstance(options, dict) or "Priority" not in options:
        return 0
    value = options["Priority"]
    if isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31:
        raise BadFormat("Integer value expected in field: Priority")
    return value


def job_submitted(job_id: str) -> Response:
    """The answer of an asynchronous job route."""
    return json_response({"ID": job_id, "Path": f"/jobs/{job_id}"})


async def run_job(request: Request, job: Job, options: Any, *, default_synchronous: bool = True) -> Response:
    """Run ``job`` as the request asks: synchronously (its answer, or its error in Orthanc's body), or in the
    background (its ID and path)."""
    jobs = engine_of(request)
    level = priority(options)
    if not is_synchronous(options, default_synchronous):
        return job_submitted(jobs.submit(job, level))
    return json_response(await jobs.run_and_wait(job, level))


# -- the routes ---------------------------------------------------------------------------------------------------
async def list_jobs(request: Request) -> Response:
    jobs = engine_of(request)
    if "expand" in request.query_params:  # hundreds of jobs: rendered off the event loop, which keeps answering
        body = await run_in_threadpool(lambda: dumps([job_json(info) for info in jobs.infos()]))
        return Response(body, media_type="application/json; charset=utf-8")  # as json_response
    return json_response(jobs.ids())


async def get_job(request: Request) -> Response:
    try:
        info = engine_of(request).info(request.path_params["id"])
    except InexistentItem:
        return Response(status_code=404)  # Orthanc: an empty 404
    return json_response(job_json(info))


async def act(request: Request, action: str) -> Response:
    """POST /jobs/{id}/pause|cancel|resume|resubmit."""
    done = getattr(engine_of(request), action)(request.path_params["id"])
    if not done:
        return Response(status_code=400)  # Orthanc: an empty 400 (its log says why)
    return Response(b"{}", media_type="application/json")


async def output(request: Request) -> Response:
    """GET /jobs/{id}/{key}: an output of a job, streamed from where the engine keeps it."""
    key = request.path_params["key"]
    found = engine_of(request).output(request.path_params["id"], key)  # InexistentItem: Orthanc's 404
    try:
        handle = await run_in_threadpool(found.open)
    except FileNotFoundError:  # the job left the history (JobsHistorySize) meanwhile
        raise InexistentItem(f"Job has no such output: {key}") from None
    size = await run_in_threadpool(lambda: os.fstat(handle.fileno()).st_size if found.path else found.size)

    def chunks():
        while data := handle.read(1024 * 1024):
            yield data

    headers = {"Content-Length": str(size)}
    if found.filename:
        headers["Content-Disposition"] = f'filename="{found.filename}"'
    return StreamingResponse(chunks(), media_type=found.mime, headers=headers, background=BackgroundTask(handle.close))
