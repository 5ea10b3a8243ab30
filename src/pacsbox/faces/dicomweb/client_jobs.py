"""The DICOMweb client's STOW-RS and WADO-RS transfers as jobs of the archive's engine (``core.jobs``), as the
Orthanc DICOMweb plugin 1.7 runs them (measured against it):

* Types ``DicomWebStowClient`` and ``DicomWebWadoRetrieveClient``; synchronous requests run as jobs too (listed
  under /jobs), asynchronous ones (``"Asynchronous": true`` or ``"Synchronous": false``) answer
  ``{"ID", "Path": ".././../jobs/{id}"}``; ``Priority`` as for Orthanc's jobs.
* A failed job shows Orthanc's "Error encountered within the plugin engine" (code 1, no details), and its Content
  the plugin's own error: ``FunctionErrorCode`` and ``FunctionErrorDescription``.
* ``Synchronous``, ``Asynchronous`` or ``Priority`` of the wrong type: "Bad file format" without details.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...core.errors import PluginFailure
from ...core.jobs import JobContext
from .errors import bad_format, translate


class ClientJob:
    """One transfer: ``work(content)`` does it, fills the job's Content and returns the synchronous answer."""

    def __init__(self, job_type: str, work: Callable[[dict], dict]) -> None:
        self.job_type, self.work = job_type, work

    def initial_content(self) -> dict:
        return {}

    def run(self, context: JobContext) -> dict:
        try:
            return self.work(context.content)
        except Exception as error:  # the plugin's error goes to the Content; the job fails as a plugin's
            # the error that caused it when there is one (a retrieval answers "plugin engine" for any failure)
            failure = translate(error.__cause__ if isinstance(error.__cause__, Exception) else error)
            context.content.update(FunctionErrorCode=failure.code, FunctionErrorDescription=failure.message)
            if failure.details and failure.details != failure.message:  # the plugin adds what it was told
                context.content["FunctionErrorDetails"] = failure.details
            raise PluginFailure(error) from error


def options(body: Any, synchronous_by_default: bool = True) -> tuple[bool, int]:
    """Whether the request is synchronous (``synchronous_by_default`` when it does not say), and its priority."""
    if not isinstance(body, dict):
        return synchronous_by_default, 0
    for key in ("Synchronous", "Asynchronous"):
        if key in body and not isinstance(body[key], bool):
            raise bad_format()
    priority = body.get("Priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -2**31 <= priority < 2**31:
        raise bad_format()
    if "Synchronous" in body:
        return body["Synchronous"], priority
    if "Asynchronous" in body:
        return not body["Asynchronous"], priority
    return synchronous_by_default, priority


async def run(request: Request, job: ClientJob, body: Any, synchronous_by_default: bool = True) -> Response:
    """Run ``job`` as the request asks: its answer (its failure: the plugin's error), or its ID."""
    synchronous, priority = options(body, synchronous_by_default)
    jobs = request.app.state.archive.jobs
    if not synchronous:
        job_id = jobs.submit(job, priority)
        return _json({"ID": job_id, "Path": f".././../jobs/{job_id}"})
    try:
        return _json(await jobs.run_and_wait(job, priority))
    except PluginFailure as failure:
        raise failure.cause from None


def _json(data: Any) -> Response:
    return Response(json.dumps(data, indent=3), media_type="application/json")
