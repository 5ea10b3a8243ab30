"""C-FIND SCP: a query identifier becomes an archive find; each match becomes an answer with the requested keys.

Follows PS3.4 C.4.1 and Orthanc's choices: matching on main tags and, for other tags, on one stored file of the
resource; person names match case-insensitively unless ``CaseSensitivePN``; computed keys (C.3.4) are filled in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from ...core.archive import Archive, FindQuery, Origin
from ...core.config import Config
from ...core.dicom import ENCODINGS
from ...core.errors import ArchiveError
from ...core.ids import Level
from ...core.index import ResourceRow
from . import status

LOG = logging.getLogger("pacsbox.dimse")

LEVELS = {"PATIENT": Level.PATIENT, "STUDY": Level.STUDY, "SERIES": Level.SERIES, "IMAGE": Level.INSTANCE}
_NOT_KEYS = frozenset({0x00080052, 0x00080005})  # QueryRetrieveLevel, SpecificCharacterSet
# PS3.4 C.3.4 "Additional Query/Retrieve Attributes": computed, never matched.
COMPUTED = {
    "NumberOfPatientRelatedStudies": (Level.PATIENT, Level.STUDY),
    "NumberOfPatientRelatedSeries": (Level.PATIENT, Level.SERIES),
    "NumberOfPatientRelatedInstances": (Level.PATIENT, Level.INSTANCE),
    "NumberOfStudyRelatedSeries": (Level.STUDY, Level.SERIES),
    "NumberOfStudyRelatedInstances": (Level.STUDY, Level.INSTANCE),
    "NumberOfSeriesRelatedInstances": (Level.SERIES, Level.INSTANCE),
}
_STUDY_LISTS = ("ModalitiesInStudy", "SOPClassesInStudy")
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})


class FindFailed(Exception):
    """A C-FIND that cannot be answered; ``status`` is the DIMSE failure status."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.status = code


def find_responses(archive: Archive, config: Config, event, origin: Origin | None = None
                   ) -> Iterator[tuple[int, Dataset | None]]:
    """The (status, identifier) pairs pynetdicom sends back: one pending answer per match, then success. The
    identifier first goes through the archive's find filters (Lua's IncomingFindRequestFilter)."""
    try:
        identifier: Dataset = event.identifier
        if origin is not None:
            identifier = archive.events.filter_find(identifier, origin)
        level = query_level(identifier)
        query, keys = query_of(identifier)
        rows = archive.find(FindQuery(level, query, limit=_limit(config, level),
                                      insensitive_vrs=frozenset() if config.CaseSensitivePN else frozenset({"PN"})))
    except FindFailed as failure:
        LOG.warning("C-FIND refused: %s", failure)
        yield failure.status, None
        return
    except ArchiveError as error:
        LOG.warning("C-FIND refused: %s", error.details)
        yield status.UNABLE_TO_PROCESS, None
        return
    answers = AnswerBuilder(archive, level, keys, identifier, config)
    for row in rows:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        try:
            answer = answers.build(row)
        except ArchiveError:  # deleted while the find ran: not an answer any more
            continue
        yield status.PENDING, answer


def query_level(identifier: Dataset) -> Level:
    """The level of a query; like Orthanc, PATIENT is accepted in the Study Root model too."""
    text = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    level = LEVELS.get(text)
    if level is None:
        raise FindFailed(status.UNABLE_TO_PROCESS, f"bad QueryRetrieveLevel {text!r}")
    return level


def query_of(identifier: Dataset) -> tuple[dict[str, str], list[int]]:
    """The matching constraints (keyword → C-FIND value) and every requested key, in the identifier's order."""
    query: dict[str, str] = {}
    keys: list[int] = []
    for element in identifier:
        tag = int(element.tag)
        if tag in _NOT_KEYS or element.tag.element == 0 or element.tag.group == 0x0002:
            continue
        keys.append(tag)
        if element.VR == "SQ" or element.is_empty:
            continue
        keyword = keyword_for_tag(tag) or f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        if keyword in COMPUTED or keyword == "SOPClassesInStudy":
            continue
        query[keyword] = query_text(element)
    return query, keys


def query_text(element) -> str:
    """A query element's value as C-FIND text (multiple values joined by backslashes)."""
    value = element.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _limit(config: Config, level: Level) -> int:
    return config.LimitFindInstances if level == Level.INSTANCE else config.LimitFindResults


class AnswerBuilder:
    """Fills the requested keys of each matching resource: main tags of the resource and its ancestors, computed
    keys, then the first stored file of the resource for anything else (Orthanc's ``StorageAccessOnFind``)."""

    def __init__(self, archive: Archive, level: Level, keys: list[int], identifier: Dataset, config: Config) -> None:
        self.archive = archive
        self.level = level
        self.keys = keys
        self.identifier = identifier
        self.retrieve_aet = config.DicomAet
        # Orthanc answers in its DefaultEncoding, dropping the characters that encoding cannot represent.
        self.character_set = ENCODINGS.get(archive.settings.default_encoding, "ISO_IR 100")
        self._codec = python_encoding.get(self.character_set, "latin_1")
        self._ancestors: dict[tuple[Level, str], dict[str, str]] = {}

    def build(self, row: ResourceRow) -> Dataset:
        known = self._main_tags(row)
        answer = Dataset()
        answer.QueryRetrieveLevel = "IMAGE" if self.level == Level.INSTANCE else self.level.name
        answer.SpecificCharacterSet = self.character_set
        answer.RetrieveAETitle = self.retrieve_aet
        file_dataset: Dataset | None = None
        for tag in self.keys:
            keyword = keyword_for_tag(tag)
            vr = _vr(tag, self.identifier)
            if keyword in COMPUTED:
                value = self._count(row, *COMPUTED[keyword])
                answer.add_new(tag, vr, "" if value is None else str(value))
            elif keyword in _STUDY_LISTS:
                answer.add_new(tag, vr, self._study_list(row, keyword))
            elif keyword in known:
                answer.add_new(tag, vr, _element_value(self._representable(known[keyword], vr), vr))
            else:
                if file_dataset is None:
                    file_dataset = self._first_file(row)
                element = file_dataset.get(tag) if file_dataset is not None else None
                if element is not None and element.VR != "SQ":
                    value = element.value
                    if element.VR in _TEXT_VRS and isinstance(value, str):
                        value = self._representable(value, element.VR)
                    answer.add_new(tag, element.VR, value)
                else:
                    answer.add_new(tag, vr, None)
        return answer

    def _representable(self, text: str, vr: str) -> str:
        if vr not in _TEXT_VRS:
            return text
        return text.encode(self._codec, "ignore").decode(self._codec)

    def _main_tags(self, row: ResourceRow) -> dict[str, str]:
        tags = dict(row.main_tags)
        if row.level == Level.INSTANCE:
            # The SOP Class UID is in the instance's metadata, not its main tags.
            tags.setdefault("SOPClassUID", self.archive.metadata(Level.INSTANCE, row.public_id).get("SopClassUid", ""))
        public_id, level = row.public_id, row.level
        while level > Level.PATIENT:
            parent_level = Level(level - 1)
            key = (level, public_id)
            if key not in self._ancestors:
                parent = self.archive.related(level, public_id, parent_level)[0]
                self._ancestors[key] = {"_id": parent.public_id, **parent.main_tags}
            parent_tags = self._ancestors[key]
            for name, value in parent_tags.items():
                if name != "_id":
                    tags.setdefault(name, value)
            public_id, level = parent_tags["_id"], parent_level
        return tags

    def _count(self, row: ResourceRow, owner: Level, counted: Level) -> int | None:
        if row.level != owner:
            return None
        if counted == Level(owner + 1):
            return len(row.children)
        return len(self.archive.related(owner, row.public_id, counted))

    def _study_list(self, row: ResourceRow, keyword: str) -> str:
        if row.level != Level.STUDY:
            return ""
        if keyword == "ModalitiesInStudy":
            series = self.archive.related(Level.STUDY, row.public_id, Level.SERIES)
            values = [s.main_tags.get("Modality", "") for s in series]
        else:
            instances = self.archive.instance_ids_below(Level.STUDY, row.public_id)
            values = [self.archive.metadata(Level.INSTANCE, i).get("SopClassUid", "") for i in instances]
        return "\\".join(sorted({v for v in values if v}))

    def _first_file(self, row: ResourceRow) -> Dataset | None:
        instances = self.archive.instance_ids_below(row.level, row.public_id)
        return self.archive.instance_dataset(instances[0]) if instances else None


def _vr(tag: int, identifier: Dataset) -> str:
    if tag in identifier and identifier[tag].VR not in ("UN", None):
        return identifier[tag].VR
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _element_value(text: str, vr: str):
    if vr in ("US", "SS", "UL", "SL"):
        return [int(v) for v in text.split("\\") if v.strip()] or None
    if vr in ("FL", "FD"):
        return [float(v) for v in text.split("\\") if v.strip()] or None
    return text
