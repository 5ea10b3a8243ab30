"""The DICOM side of Orthanc's query/retrieve routes: C-FIND identifiers built from a REST query, answers kept as
Orthanc keeps them, and C-MOVE/C-GET identifiers built from answers or from tags.

Everything here reproduces what Orthanc 1.10.1 puts on the wire and shows back, observed by sending it the same
requests with a recording peer (see tests/faces/orthanc/test_queries.py): which tags "Normalize" keeps at each
level, the keys added for the level, the manufacturer quirks, the character set of identifiers and answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...core import modules
from ...core.dicom import ENCODINGS
from ...core.dicom_json import render_tags, tag_name
from ...core.errors import BadFormat
from ...core.ids import Level
from .errors import OrthancError

if TYPE_CHECKING:  # pydicom loads on first use (a query, a tag named by keyword), not at start-up
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

# DICOM query/retrieve level names (PS3.4 C.6), and Orthanc's names of its levels.
QR_LEVELS = {Level.PATIENT: "PATIENT", Level.STUDY: "STUDY", Level.SERIES: "SERIES", Level.INSTANCE: "IMAGE"}
_LEVEL_NAMES = {"PATIENT": Level.PATIENT, "PATIENTS": Level.PATIENT, "STUDY": Level.STUDY, "STUDIES": Level.STUDY,
                "SERIES": Level.SERIES, "INSTANCE": Level.INSTANCE, "INSTANCES": Level.INSTANCE,
                "IMAGE": Level.INSTANCE}

SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
MEDIA_STORAGE_SOP_CLASS_UID, MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020002, 0x00020003
PATIENT_ID, STUDY_UID, SERIES_UID, ACCESSION_NUMBER = 0x00100020, 0x0020000D, 0x0020000E, 0x00080050

# The tags "Normalize" keeps in a query, per level: the DICOM modules of the level and of the levels above it, plus
# the counters of the level itself (observed on Orthanc 1.10.1 with every tag of the data dictionary).
# Orthanc's module tables (core.modules, as /module filters) less what Normalize drops: SpecificCharacterSet
# (0008,0005), added back below for every level, and the private 0029,0109 of the series module
_PATIENT_MODULE = modules.PATIENT_MODULE
_STUDY_MODULE = modules.STUDY_MODULE
_SERIES_MODULE = modules.SERIES_MODULE - {0x00290109}
_INSTANCE_MODULE = modules.INSTANCE_MODULE - {0x00080005}
_COUNTERS = {
    Level.PATIENT: frozenset({0x00201200, 0x00201202, 0x00201204}),
    Level.STUDY: frozenset({0x00080061, 0x00080062, 0x00201206, 0x00201208}),
    Level.SERIES: frozenset({0x00201209}),
    Level.INSTANCE: frozenset(),
}
_MODULES = {Level.PATIENT: _PATIENT_MODULE, Level.STUDY: _STUDY_MODULE, Level.SERIES: _SERIES_MODULE,
            Level.INSTANCE: _INSTANCE_MODULE}
NORMALIZED_TAGS = {
    level: frozenset().union(*(_MODULES[upper] for upper in Level if upper <= level), _COUNTERS[level],
                             {SPECIFIC_CHARACTER_SET})
    for level in Level
}

# The keys a C-FIND at each level always carries (PS3.4 C.6.1.1 / C.6.2.1 unique keys, and AccessionNumber).
_REQUIRED_KEYS = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (PATIENT_ID, ACCESSION_NUMBER, STUDY_UID),
    Level.SERIES: (PATIENT_ID, ACCESSION_NUMBER, STUDY_UID, SERIES_UID),
    Level.INSTANCE: (PATIENT_ID, ACCESSION_NUMBER, STUDY_UID, SERIES_UID, SOP_INSTANCE_UID),
}
# The keys of a C-MOVE or C-GET at each level (Orthanc copies only these from an answer or a resource).
RETRIEVE_KEYS = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (STUDY_UID,),
    Level.SERIES: (STUDY_UID, SERIES_UID),
    Level.INSTANCE: (STUDY_UID, SERIES_UID, SOP_INSTANCE_UID),
}
# What a retrieve job reports of each answer it retrieves (Orthanc 1.10.1 leaves the SOPInstanceUID out).
RETRIEVE_REPORT_KEYS = (ACCESSION_NUMBER, QUERY_RETRIEVE_LEVEL, PATIENT_ID, STUDY_UID, SERIES_UID)


def parse_level(value: Any, missing: Exception) -> Level:
    """Orthanc's level names in any case (``Study``, ``STUDY``, ``Image``...); ``missing`` if not a string."""
    if not isinstance(value, str):
        raise missing
    level = _LEVEL_NAMES.get(value.strip().upper())
    if level is None:
        raise OrthancError(3, "Parameter out of range", 400)
    return level


def parse_tag(key: str) -> int | None:
    """A tag as Orthanc's REST API names it: ``gggg,eeee``, ``gggg-eeee``, ``ggggeeee`` or a keyword (a retired one
    with or without DCMTK's ``RETIRED_`` prefix); None if unknown."""
    digits = key[:4] + key[5:] if len(key) == 9 and key[4] in ",-" else key
    if len(digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in digits):
        return int(digits, 16)
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(key[len("RETIRED_"):] if key.startswith("RETIRED_") else key)


def parse_tag_map(value: Any, error: Exception) -> dict[int, str]:
    """A JSON object of tag names to strings, or ``error``."""
    if not isinstance(value, Mapping):
        raise error
    tags: dict[int, str] = {}
    for key, text in value.items():
        tag = parse_tag(key)
        if tag is None or not isinstance(text, str):
            raise error
        tags[tag] = text
    return tags


def character_set(default_encoding: str) -> str:
    """The Specific Character Set term of Orthanc's ``DefaultEncoding``."""
    return ENCODINGS.get(default_encoding, "ISO_IR 100")


def find_identifier(level: Level, query: Mapping[int, str], *, normalize: bool, manufacturer: str,
                    default_encoding: str) -> Dataset:
    """The C-FIND identifier Orthanc 1.10 sends for ``/modalities/{id}/query``.

    With ``normalize``, tags outside the level's modules are dropped, and the manufacturer's quirks applied:
    ``GenericNoWildcardInDates`` turns a ``*`` date into universal matching, ``GenericNoUniversalWildcard`` every
    ``*``; ``GE`` asks for the level's keys with ``*`` instead of an empty value.
    """
    fields = dict(query)
    if normalize:
        fields = {tag: text for tag, text in fields.items() if tag in NORMALIZED_TAGS[level]}
        for tag, text in fields.items():
            if text == "*" and (manufacturer == "GenericNoUniversalWildcard" or (
                    manufacturer == "GenericNoWildcardInDates" and _vr(tag) == "DA")):
                fields[tag] = ""
    identifier = dataset_from_map(fields, default_encoding)
    universal = "*" if manufacturer == "GE" else ""
    for tag in _REQUIRED_KEYS[level]:
        if tag not in identifier:
            identifier[tag] = _element(tag, _vr(tag), universal)
    identifier.QueryRetrieveLevel = QR_LEVELS[level]
    return identifier


def retrieve_identifier(level: Level, values: Mapping[int, str], default_encoding: str) -> Dataset:
    """A C-MOVE or C-GET identifier with the level's keys taken from ``values`` (an answer, or the tags of a
    ``/move`` resource); a missing key is Orthanc's "Bad request"."""
    keys = {}
    for tag in RETRIEVE_KEYS[level]:
        if tag not in values:
            raise OrthancError(8, "Bad request", 400)
        keys[tag] = values[tag]
    identifier = dataset_from_map(keys, default_encoding)
    identifier.QueryRetrieveLevel = QR_LEVELS[level]
    return identifier


def dataset_from_map(fields: Mapping[int, str], default_encoding: str) -> Dataset:
    """A data set from tag values given as text, as Orthanc builds a DICOM file from a map of tags: in the
    map's character set (its SpecificCharacterSet, else DefaultEncoding), characters it cannot encode dropped,
    and the file meta SOP UIDs copied from the data set's."""
    from pydicom.charset import python_encoding
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    term = fields.get(SPECIFIC_CHARACTER_SET) or character_set(default_encoding)
    codec = python_encoding.get(term.split("\\")[0].strip(), "latin_1")
    dataset = Dataset()
    dataset.SpecificCharacterSet = term
    for tag, text in sorted(fields.items()):
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        vr = _vr(tag)
        if vr == "SQ":
            if text:
                raise BadFormat(f"While creating a DICOM instance, tag ({tag >> 16:04x},{tag & 0xFFFF:04x}) has "
                                f"out-of-range value: \"{text}\"")
            dataset.add_new(tag, vr, Sequence())
            continue
        dataset[tag] = _element(tag, vr, _value(vr, text.encode(codec, "ignore").decode(codec)))
    for source, meta in ((SOP_CLASS_UID, MEDIA_STORAGE_SOP_CLASS_UID),
                         (SOP_INSTANCE_UID, MEDIA_STORAGE_SOP_INSTANCE_UID)):
        if source in dataset:
            dataset.add_new(meta, "UI", dataset[source].value)
    return dataset


def answer_as_orthanc_keeps_it(answer: Dataset, default_encoding: str) -> Dataset:
    """A C-FIND answer as Orthanc stores it: text values only (sequences and binary values left out), converted
    to DefaultEncoding, with the file meta SOP UIDs copied from the data set's."""
    fields: dict[int, str] = {}
    for element in answer:
        if element.tag == SPECIFIC_CHARACTER_SET or element.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            continue
        fields[int(element.tag)] = _text(element.value)
    return dataset_from_map(fields, default_encoding)


def text_values(dataset: Dataset) -> dict[int, str]:
    """The text of each element of a data set kept by :func:`answer_as_orthanc_keeps_it`."""
    return {int(e.tag): _text(e.value) for e in dataset if e.VR != "SQ" and e.tag != SPECIFIC_CHARACTER_SET}


def render(dataset: Dataset, form: str) -> dict[str, Any]:
    """A data set in Orthanc's ``full``, ``simplify`` or ``short`` JSON."""
    return render_tags(dataset, form)


def render_map(fields: Mapping[int, str], form: str) -> dict[str, Any]:
    """Tag values as Orthanc renders a map of tags (``GET /queries/{id}/query``): every value a string."""
    body: dict[str, Any] = {}
    for tag, text in sorted(fields.items()):
        key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        if form == "simplify":
            body[tag_name(tag)] = text
        elif form == "short":
            body[key] = text
        else:
            body[key] = {"Name": tag_name(tag), "Type": "String", "Value": text}
    return body


def subset(dataset: Dataset, tags: tuple[int, ...]) -> Dataset:
    """The elements of ``dataset`` with one of ``tags`` (a report of what was retrieved)."""
    from pydicom.dataset import Dataset

    kept = Dataset()
    for tag in tags:
        if tag in dataset:
            kept[tag] = dataset[tag]
    return kept


def _element(tag: int, vr: str, value: Any) -> DataElement:
    # A query value need not be a valid value of its VR (a "*" UID, a range of dates): no validation warnings.
    from pydicom import config as pydicom_config
    from pydicom.dataelem import DataElement

    return DataElement(tag, vr, value, validation_mode=pydicom_config.IGNORE)


def _vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        vr = dictionary_VR(tag)
    except KeyError:  # private or unknown tags: text, as Orthanc writes a string it has no dictionary entry for
        return "LO"
    return vr.split(" or ")[0]


def _value(vr: str, text: str) -> Any:
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        values = [int(v) for v in text.split("\\") if v.strip().lstrip("-").isdigit()]
        return values[0] if len(values) == 1 else (values or None)
    if vr in ("FL", "FD"):
        try:
            values = [float(v) for v in text.split("\\") if v.strip()]
        except ValueError:
            return None
        return values[0] if len(values) == 1 else (values or None)
    if vr in ("IS", "DS") and not text:
        return None
    return text.split("\\") if "\\" in text else text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)
    return str(value)

