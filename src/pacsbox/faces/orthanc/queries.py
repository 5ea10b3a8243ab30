"""Query/retrieve through REST: POST /modalities/{id}/query (C-FIND) makes a query kept under /queries/{id},
whose answers can be read, refined (query-studies/series/instances) and retrieved (C-MOVE).

Follows Orthanc 1.10.1 (the Orthanc Book, "Performing Query/Retrieve (C-Find) and Find with REST"), checked
against it by tests/faces/orthanc/test_queries.py. Queries live in the application's state, the latest 100 of
them (Orthanc's default ``QueryRetrieveSize``).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...core.errors import BadFormat
from ...core.ids import Level
from ...core.modalities import Modality
from . import dicom_query, jobs
from . import scu_params as fields
from .errors import OrthancError, unknown_resource
from .job_types import RetrieveJob
from .json import json_response
from .params import archive_of, flag

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

QUERY_RETRIEVE_SIZE = 100  # Orthanc's default: older queries are forgotten
# What GET /queries/{id}/answers/{n} lists below "content" and "retrieve" (Orthanc 1.10.1 names the route to
# the studies "query-study" there, while the route itself is "query-studies").
_CHILD_LEVEL_OPERATIONS = {Level.PATIENT: ["query-study", "query-series", "query-instances"],
                           Level.STUDY: ["query-series", "query-instances"], Level.SERIES: ["query-instances"],
                           Level.INSTANCE: []}


@dataclass
class RemoteQuery:
    """One C-FIND made through REST: where it went, what it asked, what came back (as Orthanc keeps answers)."""

    modality_name: str
    modality: Modality  # with the call's LocalAet and Timeout, reused to retrieve the answers
    level: Level
    query: dict[int, str]
    normalize: bool
    answers: list[Dataset] = field(default_factory=list)


class QueryStore:
    """The queries of one application, the latest ``capacity`` of them."""

    def __init__(self, capacity: int = QUERY_RETRIEVE_SIZE) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, RemoteQuery] = OrderedDict()

    def add(self, query: RemoteQuery) -> str:
        query_id = str(uuid.uuid4())
        with self._lock:
            self._queries[query_id] = query
            while len(self._queries) > self._capacity:
                self._queries.popitem(last=False)
        return query_id

    def get(self, query_id: str) -> RemoteQuery:
        with self._lock:
            found = self._queries.get(query_id)
        if found is None:
            raise unknown_resource()
        return found

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._queries)

    def remove(self, query_id: str) -> None:
        with self._lock:
            self._queries.pop(query_id, None)


def _store_of(request: Request) -> QueryStore:
    # Created on first use; handlers run on the event loop's thread, so this check-then-set does not race.
    state = request.app.state
    if not hasattr(state, "queries"):
        state.queries = QueryStore()
    return state.queries


def _form(request: Request) -> str:
    return "simplify" if flag(request, "simplify") else "short" if flag(request, "short") else "full"


def _query_path(query_id: str) -> dict[str, str]:
    return {"ID": query_id, "Path": f"/queries/{query_id}"}


async def _run(request: Request, name: str, modality: Modality, level: Level, query: dict[int, str],
               normalize: bool) -> Response:
    """C-FIND, keep the answers, answer the new query's ID."""
    encoding = archive_of(request).settings.default_encoding  # as PUT /tools/default-encoding left it
    sent = await run_in_threadpool(archive_of(request).events.filter_outgoing_find, query, modality.aet)
    identifier = dicom_query.find_identifier(level, sent, normalize=normalize, manufacturer=modality.manufacturer,
                                             default_encoding=encoding)
    answers = await run_in_threadpool(fields.remote(request).find, modality, dicom_query.QR_LEVELS[level],
                                      identifier)
    kept = [dicom_query.answer_as_orthanc_keeps_it(answer, encoding) for answer in answers]
    query_id = _store_of(request).add(RemoteQuery(name, modality, level, query, normalize, kept))
    return json_response(_query_path(query_id))


async def create(request: Request) -> Response:
    """POST /modalities/{id}/query ``{"Level": ..., "Query": {...}, "Normalize", "LocalAet", "Timeout"}``."""
    _, body = await fields.read_json(request)
    if not isinstance(body, dict):
        raise BadFormat("Must provide a JSON object")
    level = dicom_query.parse_level(body.get("Level"), BadFormat("The JSON body must contain field Level"))
    query: dict[int, str] = {}
    if "Query" in body:
        if not isinstance(body["Query"], dict):
            raise BadFormat("The field Query must contain a JSON object")
        query = dicom_query.parse_tag_map(
            body["Query"], BadFormat("Associative array of DICOM tags to strings expected in field: Query"))
    normalize = body.get("Normalize", True)
    if not isinstance(normalize, bool):
        raise BadFormat("The field Normalize must contain a Boolean")
    requested_aet = body.get("LocalAet")
    if requested_aet is not None and not isinstance(requested_aet, str):
        raise BadFormat("The field LocalAet must contain a string")
    seconds = fields.timeout(body)
    name, modality = fields.modality_named(request)
    return await _run(request, name, fields.for_call(modality, requested_aet, seconds), level, query, normalize)


# -- reading a query ----------------------------------------------------------------------------------------------
async def list_queries(request: Request) -> Response:
    return json_response(_store_of(request).ids())


async def operations(request: Request) -> Response:
    _store_of(request).get(request.path_params["id"])
    return json_response(["answers", "level", "modality", "query", "retrieve"])


async def delete(request: Request) -> Response:
    """DELETE /queries/{id}: forgotten; an unknown ID is not an error, as in Orthanc."""
    _store_of(request).remove(request.path_params["id"])
    return PlainTextResponse("")


async def level(request: Request) -> Response:
    return PlainTextResponse(_store_of(request).get(request.path_params["id"]).level.title)


async def modality(request: Request) -> Response:
    return PlainTextResponse(_store_of(request).get(request.path_params["id"]).modality_name)


async def original_query(request: Request) -> Response:
    """GET /queries/{id}/query: the query as the client gave it (before normalization)."""
    query = _store_of(request).get(request.path_params["id"]).query
    return json_response(dicom_query.render_map(query, _form(request)))


async def answers(request: Request) -> Response:
    """GET /queries/{id}/answers: the indexes, or with ``expand`` the answers themselves."""
    found = _store_of(request).get(request.path_params["id"])
    if flag(request, "expand"):
        form = _form(request)
        return json_response([dicom_query.render(answer, form) for answer in found.answers])
    return json_response([str(index) for index in range(len(found.answers))])


def _answer(request: Request) -> tuple[RemoteQuery, int]:
    found = _store_of(request).get(request.path_params["id"])
    text = request.path_params["index"]
    if not re.fullmatch(r"[+-]?[0-9]+", text):  # boost::lexical_cast, as Orthanc parses it
        raise OrthancError(5, "Bad type for a parameter", 400, "Syntax error in some user-supplied data")
    index = int(text)
    if not 0 <= index < len(found.answers):
        raise OrthancError(3, "Parameter out of range", 400)
    return found, index


async def answer_operations(request: Request) -> Response:
    found, _ = _answer(request)
    return json_response(["content", "retrieve", *_CHILD_LEVEL_OPERATIONS[found.level]])


async def answer_content(request: Request) -> Response:
    found, index = _answer(request)
    return json_response(dicom_query.render(found.answers[index], _form(request)))


async def child_query(request: Request, target: Level) -> Response:
    """POST /queries/{id}/answers/{n}/query-{studies,series,instances}: a new query below one answer, with the
    answer's unique keys (those a C-MOVE of it would use) added to ``Query``."""
    found, index = _answer(request)
    if target <= found.level:
        raise unknown_resource()  # Orthanc has no such route below this level
    _, body = await fields.read_json(request)
    if not isinstance(body, dict):
        raise BadFormat("Must provide a JSON object")
    keys = dicom_query.RETRIEVE_KEYS[found.level]
    query = {tag: text for tag, text in dicom_query.text_values(found.answers[index]).items() if tag in keys}
    if "Query" in body:
        query.update(dicom_query.parse_tag_map(
            body["Query"], BadFormat("Associative array of DICOM tags to strings expected in field: Query")))
    seconds = fields.timeout(body)
    return await _run(request, found.modality_name, fields.for_call(found.modality, seconds=seconds), target,
                      query, found.normalize)


# -- retrieving answers (C-MOVE) ----------------------------------------------------------------------------------
def _retrieve_options(raw: bytes, body: Any, default_aet: str) -> tuple[str, int | None, str]:
    """The target AET, timeout and report format of a retrieve: the target as plain text, or a JSON object
    ``{"TargetAet", "Timeout", "Synchronous", "Full", "Simplify"}`` (``body``, parsed by ``fields.read_json``)."""
    if body is fields.NOT_JSON:
        return raw.decode("utf-8", "replace").strip() or default_aet, None, "short"
    if not isinstance(body, dict):
        # Orthanc 1.10.1 fails with an internal error on such bodies; pacsbox says what it expects instead
        raise BadFormat("The body must be a target AET as plain text, or a JSON object")
    target = fields.job_string(body, "TargetAet")
    form = "full" if fields.boolean(body, "Full", False) else \
        "simplify" if fields.boolean(body, "Simplify", False) else "short"
    return default_aet if target is None else target, fields.job_timeout(body), form


async def _retrieve(request: Request, found: RemoteQuery, selected: list[Dataset]) -> Response:
    """C-MOVE the selected answers as a DicomMoveScu job (synchronous unless the JSON body asks otherwise)."""
    config = request.app.state.config
    raw, body = await fields.read_json(request)
    target, seconds, form = _retrieve_options(raw, body, config.DicomAet)
    options = body if isinstance(body, dict) else {}
    synchronous = jobs.is_synchronous(options)
    call = fields.for_call(found.modality, seconds=seconds)
    identifiers = [dicom_query.retrieve_identifier(found.level, dicom_query.text_values(answer),
                                                   archive_of(request).settings.default_encoding)
                   for answer in selected]
    fields.remote(request)
    report = [dicom_query.render(dicom_query.subset(answer, dicom_query.RETRIEVE_REPORT_KEYS), form)
              for answer in selected]
    content = {"Description": "REST API", "LocalAet": fields.local_aet(request, call), "Query": report,
               "RemoteAet": found.modality.aet}
    job = RetrieveJob(archive_of(request), "DicomMoveScu", call, dicom_query.QR_LEVELS[found.level], identifiers,
                      content, target)
    return await jobs.run_job(request, job, {**options, "Synchronous": synchronous})


async def retrieve_answer(request: Request) -> Response:
    """POST /queries/{id}/answers/{n}/retrieve: C-MOVE one answer."""
    found, index = _answer(request)
    return await _retrieve(request, found, [found.answers[index]])


async def retrieve_all(request: Request) -> Response:
    """POST /queries/{id}/retrieve: C-MOVE every answer, on one association."""
    found = _store_of(request).get(request.path_params["id"])
    return await _retrieve(request, found, list(found.answers))
