"""QIDO-RS (PS3.18 10.6): search for studies, series and instances, answered in DICOM JSON (Annex F).

Matching is the archive's C-FIND matching (single value, UID list, wildcard, range), case-insensitive as the Orthanc
DICOMweb plugin asks Orthanc; ``fuzzymatching`` is accepted and, as in the plugin, does not change matching.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.archive import Archive, FindQuery
from ...core.dicom import tag_from_text
from ...core.errors import ArchiveError
from ...core.ids import Level
from . import multipart
from .answers import AnswerBuilder, returned_tags, vr_of
from .errors import bad_format, not_acceptable
from .negotiation import accepted, model_format
from .xml import DICOM_XML, native_model

DICOM_JSON = "application/dicom+json"
_CONTROL = frozenset({"limit", "offset", "fuzzymatching", "includefield"})
_STUDY_UID, _SERIES_UID = 0x0020000D, 0x0020000E


def parse_search(params: list[tuple[str, str]], level: Level) -> tuple[dict[str, str], list[int], int, int]:
    """The query (keyword or tag → C-FIND value), the tags to return, limit and offset of a search's parameters.

    Unknown attributes are ignored, as the plugin ignores them; a limit or offset that is not a number is a 400.
    """
    query: dict[str, str] = {}
    included: list[int] = []
    limit = offset = 0
    for name, value in params:
        if name in ("limit", "offset"):
            text = value.strip()
            if not text.isascii() or not text.isdigit():  # "²" is a digit to isdigit, not to int
                raise bad_format(f"{name} must be a non-negative integer, not {value[:64]!r}")
            number = int(text) if len(text) <= 18 else 10**18  # int() refuses 4300 digits; SQLite takes 64 bits
            if name == "limit":
                limit = number
            else:
                offset = number
        elif name == "includefield":
            for field in value.split(","):
                tag = tag_from_text(field) if field.strip().lower() != "all" else None
                if tag is not None:
                    included.append(tag)
        elif name not in _CONTROL:
            tag = tag_from_text(name)
            if tag is None:
                continue
            if vr_of(tag) == "UI":
                value = value.replace(",", "\\")  # PS3.18 8.3.4.1: a UID list is comma-separated
            key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
            # a repeated attribute (how dicomweb-client sends a list) is a list of values
            query[key] = f"{query[key]}\\{value}" if key in query else value
            included.append(tag)
    return query, returned_tags(level, included), limit, offset


def base_url(request: Request) -> str:
    """Where this face is served, as the client reached it (the plugin builds RetrieveURL from the Host header)."""
    root = request.app.state.settings.root
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}{root}"


async def search(request: Request, level: Level) -> Response:
    """GET /studies, /series, /instances and their forms under a study or series."""
    model = model_of(request)
    query, tags, limit, offset = parse_search(list(request.query_params.multi_items()), level)
    study, series = request.path_params.get("study"), request.path_params.get("series")
    if study is not None:
        query[f"{_STUDY_UID >> 16:04x},{_STUDY_UID & 0xFFFF:04x}"] = study
    if series is not None:
        query[f"{_SERIES_UID >> 16:04x},{_SERIES_UID & 0xFFFF:04x}"] = series
    archive: Archive = request.app.state.archive
    config = request.app.state.config
    builder = AnswerBuilder(archive, level, tags, config.DefaultEncoding, base_url(request))

    def run() -> list[dict]:
        rows = archive.find(FindQuery(level, query, case_sensitive=False, since=offset, limit=limit))
        answers = []
        for row in rows:
            try:
                answers.append(builder.build(row))
            except ArchiveError:  # deleted while the search ran: no longer an answer
                continue
        return answers

    answers = await run_in_threadpool(run)
    return model_response(answers, model)


def model_response(answers: list[dict], model: str) -> Response:
    """Answers in DICOM JSON (one array), or in DICOM XML (one multipart part each, PS3.18 8.7.3.5)."""
    if model == "xml":
        boundary = multipart.new_boundary()
        body = multipart.whole(boundary, DICOM_XML, [native_model(answer) for answer in answers])
        return Response(body, media_type=f'multipart/related; type="{DICOM_XML}"; boundary={boundary}')
    return Response(json.dumps(answers), media_type=DICOM_JSON)


def model_of(request: Request) -> str:
    """The DICOM model a search or metadata answer is written in; 406 when the client takes neither."""
    model = model_format(accepted(request.headers.get("accept")))
    if model is None:
        raise not_acceptable("DICOM models are served as application/dicom+json or multipart/related; "
                             'type="application/dicom+xml"')
    return model
