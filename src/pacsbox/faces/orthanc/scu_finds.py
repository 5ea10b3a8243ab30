"""Orthanc's older SCU routes of a modality: ``find-worklist``, the deprecated ``find``, ``find-patient``,
``find-study``, ``find-series``, ``find-instance``, and ``store-straight``.

As Orthanc 1.10.1 answers them (measured against it by tests/faces/orthanc/test_scu_finds.py):

* ``find-worklist`` takes the query tags (keywords or ``gggg,eeee``, sequences as lists of objects), or
  ``{"Query": {...}, "Short": true}`` / ``"Full": true`` for the other JSON forms; each answer is rendered
  whole (simplified by default);
* ``find-*`` merge the body's tags into the level's template (Orthanc's main DICOM tags of the level) and refuse
  (an empty 400) a study query whose PatientID and AccessionNumber have two characters or fewer, a series query
  also without StudyInstanceUID, an instance query also without SeriesInstanceUID; ``find`` walks patients,
  their studies and their series;
* ``store-straight`` sends the body (a DICOM file) and answers its SOP class and instance UIDs.

Where Orthanc answers 500 for a client's mistake (a tag it does not know, a JSON array), pacsbox answers 400 with
Orthanc's error code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.dicom import ENCODINGS, MAIN_TAGS, read_dataset
from ...core.errors import BadFormat, OutOfRange
from ...core.ids import Level
from ...core.worklists import item_from_json
from . import dicom_query
from . import scu_params as fields
from .errors import OrthancError
from .json import json_response
from .params import archive_of

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

_PATIENT_ID, _ACCESSION, _STUDY_UID, _SERIES_UID = 0x00100020, 0x00080050, 0x0020000D, 0x0020000E
# Orthanc's DicomMap::SetupFind*Template: the main DICOM tags of each level, plus the keys of the levels above
TEMPLATES: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101000),
    Level.STUDY: (0x00080020, 0x00080030, 0x00200010, 0x00081030, 0x00080050, 0x0020000D, 0x00080090,
                  _PATIENT_ID),
    Level.SERIES: (0x00080021, 0x00080031, 0x00080060, 0x0008103E, 0x00180015, 0x00181030, 0x00200011,
                   0x0020000E, 0x00081070, 0x00400254, _ACCESSION, _PATIENT_ID, _STUDY_UID),
    Level.INSTANCE: (0x00080012, 0x00080013, 0x00200012, 0x00541330, 0x00200013, 0x00280008, 0x00200100,
                     0x00080018, 0x00200032, 0x00204000, 0x00200037, _ACCESSION, _PATIENT_ID, _STUDY_UID,
                     _SERIES_UID),
}


class _NoAnswer(Exception):
    """Orthanc returns without answering: an empty 400."""


def _unknown_tag() -> OrthancError:
    return OrthancError(27, "Unknown DICOM tag", 400)


# -- find-worklist ------------------------------------------------------------------------------------------------
async def find_worklist(request: Request) -> Response:
    """POST /modalities/{id}/find-worklist."""
    _, body = await fields.read_json(request)
    if not isinstance(body, dict):
        raise BadFormat("Must provide a JSON object")
    form = "simplify"
    query: Any = body
    if isinstance(body.get("Query"), dict):
        query = body["Query"]
        form = "short" if fields.boolean(body, "Short", False) else "full" if fields.boolean(body, "Full", False) \
            else "simplify"
    archive = archive_of(request)
    charset = ENCODINGS.get(archive.settings.default_encoding, "ISO_IR 100")
    try:
        identifier = item_from_json(query, default_charset=charset) if query else _empty_query(charset)
    except OutOfRange:
        raise _unknown_tag() from None
    _, modality = fields.modality_named(request)
    call = fields.for_call(modality, seconds=fields.timeout(body) if "Query" in body else None)
    answers = await run_in_threadpool(fields.remote(request).find_worklist, call, identifier)
    return json_response([dicom_query.render(answer, form) for answer in answers])


def _empty_query(charset: str) -> Dataset:
    from pydicom.dataset import Dataset

    identifier = Dataset()
    identifier.SpecificCharacterSet = charset
    return identifier


# -- find, find-patient, find-study, find-series, find-instance ---------------------------------------------------
def _merged(level: Level, body: Any) -> dict[int, str]:
    """The level's template with the body's tags over it (Orthanc's MergeQueryAndTemplate)."""
    if not isinstance(body, dict):
        raise _NoAnswer
    merged = dict.fromkeys(TEMPLATES[level], "")
    for key, value in body.items():
        tag = dicom_query.parse_tag(key)
        if tag is None:
            raise _unknown_tag()
        if isinstance(value, (dict, list)):
            raise BadFormat(f"The value of {key} must be a string")
        merged[tag] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return merged


def _check_keys(level: Level, query: dict[int, str]) -> None:
    """Orthanc's refusal of too broad a query below the patient level: no answer at all."""
    if level == Level.PATIENT:
        return
    if len(query.get(_ACCESSION, "")) <= 2 and len(query.get(_PATIENT_ID, "")) <= 2:
        raise _NoAnswer
    if level >= Level.SERIES and len(query.get(_STUDY_UID, "")) <= 2:
        raise _NoAnswer
    if level == Level.INSTANCE and len(query.get(_SERIES_UID, "")) <= 2:
        raise _NoAnswer


# What Orthanc's FindPatient/FindStudy/FindSeries/FindInstance keep of a query besides the level's main tags
_COPIED = {Level.PATIENT: (), Level.STUDY: (_PATIENT_ID, _ACCESSION, 0x00080061),
           Level.SERIES: (_PATIENT_ID, _ACCESSION, _STUDY_UID),
           Level.INSTANCE: (_PATIENT_ID, _ACCESSION, _STUDY_UID, _SERIES_UID)}


def _find(request: Request, modality, level: Level, merged: dict[int, str]) -> list[Dataset]:
    """One C-FIND at ``level`` with the level's main tags of the query (and the keys above it), the answers as
    Orthanc keeps them."""
    query = {tag: text for tag, text in merged.items() if tag in MAIN_TAGS[level] or tag in _COPIED[level]}
    encoding = archive_of(request).settings.default_encoding
    identifier = dicom_query.find_identifier(level, query, normalize=True, manufacturer=modality.manufacturer,
                                             default_encoding=encoding)
    answers = fields.remote(request).find(modality, dicom_query.QR_LEVELS[level], identifier)
    return [dicom_query.answer_as_orthanc_keeps_it(answer, encoding) for answer in answers]


async def find_level(request: Request, level: Level) -> Response:
    """POST /modalities/{id}/find-patient (and -study, -series, -instance)."""
    _, body = await fields.read_json(request)
    try:
        query = _merged(level, body)
        _check_keys(level, query)
    except _NoAnswer:
        return Response(status_code=400)
    _, modality = fields.modality_named(request)
    answers = await run_in_threadpool(_find, request, modality, level, query)
    return json_response([dicom_query.render(answer, "simplify") for answer in answers])


async def find_tree(request: Request) -> Response:
    """POST /modalities/{id}/find: the matching patients, each with its studies, each with its series."""
    _, body = await fields.read_json(request)
    try:
        queries = {level: _merged(level, body) for level in (Level.PATIENT, Level.STUDY, Level.SERIES)}
    except _NoAnswer:
        return Response(status_code=400)
    _, modality = fields.modality_named(request)
    return json_response(await run_in_threadpool(_tree, request, modality, queries))


def _tree(request: Request, modality, queries: dict[Level, dict[int, str]]) -> list[dict]:
    result = []
    for patient in _find(request, modality, Level.PATIENT, queries[Level.PATIENT]):
        patient_json = dicom_query.render(patient, "simplify")
        study_query = {**queries[Level.STUDY], **_copied(patient, (_PATIENT_ID,))}
        patient_json["Studies"] = []
        for study in _find(request, modality, Level.STUDY, study_query):
            study_json = dicom_query.render(study, "simplify")
            series_query = {**queries[Level.SERIES], **_copied(study, (_PATIENT_ID, _STUDY_UID))}
            study_json["Series"] = [dicom_query.render(series, "simplify")
                                    for series in _find(request, modality, Level.SERIES, series_query)]
            patient_json["Studies"].append(study_json)
        result.append(patient_json)
    return result


def _copied(answer: Dataset, tags: tuple[int, ...]) -> dict[int, str]:
    values = dicom_query.text_values(answer)
    return {tag: values[tag] for tag in tags if tag in values}


# -- store-straight -------------------------------------------------------------------------------------------------
async def store_straight(request: Request) -> Response:
    """POST /modalities/{id}/store-straight: C-STORE the body, a DICOM file, without storing it here."""
    body = await request.body()
    try:
        dataset = await run_in_threadpool(read_dataset, body) if body else None
    except Exception:  # pydicom raises many kinds on a body that is no DICOM
        dataset = None
    if dataset is None or "SOPInstanceUID" not in dataset or "SOPClassUID" not in dataset:
        raise BadFormat(f"Cannot parse an invalid DICOM file (size: {len(body)} bytes)")
    _, modality = fields.modality_named(request)
    sop_class, sop_instance = await run_in_threadpool(fields.remote(request).store_file, modality, body, dataset)
    return json_response({"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance})
