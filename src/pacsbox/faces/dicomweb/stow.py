"""STOW-RS (PS3.18 10.5): ``POST /studies`` and ``/studies/{study}`` with a ``multipart/related;
type="application/dicom"`` body, answered with the Store Instances Response Module (PS3.18 Table 10.5.3-1).

The body is streamed to a spool (bounded by MaximumUploadSize) and split into parts on disk. As the Orthanc DICOMweb
plugin does: parts of another type are skipped, an instance of another study than the one in the path fails with
FailureReason 0x0110, a part that is not DICOM makes the answer a 400 (what was stored stays). Where PS3.18 is
explicit, it wins over the plugin: some stored and some failed is 202 (the plugin answers 409), nothing stored
because of conflicts 409, and a body without any part (a broken boundary) 400 (the plugin answers 200, empty).
"""

from __future__ import annotations

import errno
import functools
import io
import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import IN_MEMORY_LIMIT, Archive, Origin
from ...core.dicom import ENCODINGS, read_dataset
from ...core.errors import InvalidDicom, StorageFull
from ..http_common import spool_body
from .answers import plain_attribute, without_empty_value
from .errors import too_large, unsupported_media_type
from .multipart import Part, close_parts, media_type_of, read_parts
from .qido import DICOM_JSON, base_url, model_of
from .xml import DICOM_XML, native_model

PROCESSING_FAILURE = 0x0110  # PS3.4 Annex GG.4-1; what the plugin gives for a study mismatch
_STUDY_UID_TAG = 0x0020000D


async def store(request: Request) -> Response:
    """POST /studies[/{study}]."""
    kind, options = media_type_of(request.headers.get("content-type", ""))
    boundary = options.get("boundary", "")
    if kind != "multipart/related" or options.get("type", "").strip().lower() != "application/dicom" or not boundary:
        raise unsupported_media_type('STOW-RS takes multipart/related; type="application/dicom" with a boundary')
    model = model_of(request)
    config = request.app.state.config
    spool = await spool_body(request, config.MaximumUploadSize, too_large)
    try:
        parts = await run_in_threadpool(read_parts, spool, boundary)
    finally:
        spool.close()
    origin = Origin("RestApi", remote_ip=request.client.host if request.client else "",
                    http_username=getattr(request.state, "user", "") or "")
    try:
        outcome = await run_in_threadpool(_store_parts, request.app.state.archive, parts, origin,
                                          request.path_params.get("study"))
    finally:
        close_parts(parts)
    answer = outcome.answer(base_url(request), ENCODINGS.get(config.DefaultEncoding, "ISO_IR 100"))
    if model == "xml":  # one document, as the plugin answers (PS3.18 10.5.3)
        return Response(native_model(answer), status_code=outcome.status, media_type=DICOM_XML)
    return Response(json.dumps(answer), status_code=outcome.status, media_type=DICOM_JSON)


class StoreOutcome:
    """What happened to each part: the Store Instances Response Module and its status."""

    def __init__(self, expected_study: str | None) -> None:
        self.expected_study = expected_study
        self.stored: list[tuple[str, str, str, str]] = []  # SOP class, study, series, SOP instance
        self.failed: list[tuple[str, str, int]] = []  # SOP class, SOP instance, FailureReason
        self.not_dicom = 0

    @property
    def status(self) -> int:
        if self.not_dicom:
            return 400
        if self.failed:
            return 202 if self.stored else 409
        return 200

    def answer(self, base: str, character_set: str) -> dict:
        """The Store Instances Response Module (PS3.18 10.5.3) in DICOM JSON, its attributes in the plugin's order,
        written as pydicom's ``to_json_dict`` writes them (``tests/faces/dicomweb/test_stow_answer.py``)."""
        module = {"00080005": plain_attribute("CS", [character_set])}
        if self.stored:  # the study's URL only once something of it is stored, as the plugin answers
            module["00081190"] = plain_attribute("UR", [f"{base}/studies/{self.expected_study or self.stored[0][1]}"])
        module["00081198"] = without_empty_value({"vr": "SQ", "Value": [
            {"00081150": plain_attribute("UI", [sop_class]), "00081155": plain_attribute("UI", [sop_instance]),
             "00081197": {"vr": "US", "Value": [reason]}}
            for sop_class, sop_instance, reason in self.failed]})
        module["00081199"] = without_empty_value({"vr": "SQ", "Value": [
            {"00081150": plain_attribute("UI", [sop_class]), "00081155": plain_attribute("UI", [sop_instance]),
             "00081190": plain_attribute(
                 "UR", [f"{base}/studies/{study_uid}/series/{series_uid}/instances/{sop_instance}"])}
            for sop_class, study_uid, series_uid, sop_instance in self.stored]})
        return module


def _store_parts(archive: Archive, parts: list[Part], origin: Origin, expected_study: str | None) -> StoreOutcome:
    outcome = StoreOutcome(expected_study)
    for part in parts:
        if part.media_type != "application/dicom":
            continue  # the plugin skips parts of another type
        try:
            _store_one(archive, part, origin, outcome)
        except InvalidDicom:
            outcome.not_dicom += 1
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise StorageFull("The storage area is full") from None
            raise
    return outcome


def _store_one(archive: Archive, part: Part, origin: Origin, outcome: StoreOutcome) -> None:
    size = part.content.seek(0, io.SEEK_END)
    part.content.seek(0)
    if size <= IN_MEMORY_LIMIT:  # read whole, as storing it would: parsed once, by the archive's own reader
        data = part.content.read()
        parsed = archive.parse(data)
        sop_class, sop_instance, study, series = (parsed.sop_class_uid, parsed.sop_uid, parsed.study_uid,
                                                  parsed.series_uid)
        store = functools.partial(archive.store, data, origin, parsed=parsed)
    else:
        dataset = read_dataset(part.content)  # large values stay on disk (deferred)
        sop_class, sop_instance, study, series = (
            str(dataset.get(keyword, "") or "")
            for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"))
        store = functools.partial(archive.store, part.content, origin)  # (the archive reads it from its start)
    if outcome.expected_study is not None and study != outcome.expected_study:
        outcome.failed.append((sop_class, sop_instance, PROCESSING_FAILURE))
        return
    store()
    outcome.stored.append((sop_class, study, series, sop_instance))
