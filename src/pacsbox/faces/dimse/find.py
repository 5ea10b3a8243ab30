"""C-FIND SCP: a query identifier becomes an archive find; each match becomes an answer with the requested keys.

Follows PS3.4 C.4.1 and Orthanc's choices: matching on main tags and, for other tags, on one stored file of the
resource; person names match case-insensitively unless ``CaseSensitivePN``; computed keys (C.3.4) are filled in.
"""

from __future__ import annotations

import logging
import warnings
import zlib
from collections.abc import Callable, Iterator

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag

from ...core.archive import Archive, FindQuery, Origin
from ...core.config import Config
from ...core.dicom import ENCODINGS
from ...core.errors import ArchiveError
from ...core.ids import Level
from ...core.index_rows import ResourceRow
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
# VRs whose value is binary: a stored value pydicom cannot read is sent empty; any other is text, sent as stored
_BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "OB", "OW", "OF", "OD", "OL", "OV",
                         "UN"})
_EMPTY_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
                        "OL", "OV", "OW", "PN", "SH", "SL", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR",
                        "US", "UT", "UV"})
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"


class FindFailed(Exception):
    """A C-FIND that cannot be answered; ``status`` is the DIMSE failure status."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.status = code


def find_responses(archive: Archive, config: Config, event, origin: Origin | None = None
                   ) -> Iterator[tuple[int, Dataset | None]]:
    """The (status, identifier) pairs pynetdicom sends back: one pending answer per match, then a final status
    (pynetdicom adds success after the last pending one)."""
    for code, answer, _ in find_answers(archive, config, event.identifier, event.context.transfer_syntax,
                                        lambda: event.is_cancelled, origin):
        yield code, answer


def find_answers(archive: Archive, config: Config, identifier: Dataset, transfer_syntax: str,
                 is_cancelled: Callable[[], bool], origin: Origin | None = None
                 ) -> Iterator[tuple[int, Dataset | None, bytes | None]]:
    """(status, answer, answer encoded in ``transfer_syntax``) for each match, then, when the find fails or is
    cancelled, a final failure or cancel status. Every answer is encodable: a stored value that cannot be sent
    is sent empty. Whatever goes wrong (an invalid or over-complex query the archive refuses, any error) ends
    the find with a failure status, as Orthanc answers 0xC000: never a dropped association. With an ``origin``,
    the identifier first goes through the archive's find filters (Lua's IncomingFindRequestFilter)."""
    encoding = encoding_of(transfer_syntax)
    try:
        if origin is not None:
            identifier = archive.events.filter_find(identifier, origin)
        level = query_level(identifier)
        query, keys = query_of(identifier)
        rows = archive.find(FindQuery(level, query, limit=_limit(config, level),
                                      insensitive_vrs=frozenset() if config.CaseSensitivePN else frozenset({"PN"})))
        answers = AnswerBuilder(archive, level, keys, identifier, config)
        for row in rows:
            if is_cancelled():
                yield status.CANCEL, None, None
                return
            try:
                answer = answers.build(row)
            except ArchiveError:  # deleted while the find ran: not an answer any more
                continue
            yield (status.PENDING, *encodable(answer, encoding))
    except FindFailed as failure:
        LOG.warning("C-FIND refused: %s", failure)
        yield failure.status, None, None
    except ArchiveError as error:
        LOG.warning("C-FIND refused: %s", error.details)
        yield status.UNABLE_TO_PROCESS, None, None
    except Exception:  # any failure answers a final status; the association goes on
        LOG.exception("C-FIND failed")
        yield status.UNABLE_TO_PROCESS, None, None


def encoding_of(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) of an uncompressed transfer syntax (PS3.5 A.1-A.5)."""
    syntax = str(transfer_syntax)
    return (syntax == _IMPLICIT_VR_LITTLE_ENDIAN, syntax != _EXPLICIT_VR_BIG_ENDIAN,
            syntax == _DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)


def encode(dataset: Dataset, encoding: tuple[bool, bool, bool]) -> bytes:
    """``dataset`` encoded as PS3.5 says for ``encoding``; raises whatever pydicom raises for a value it cannot
    write."""
    implicit, little_endian, deflated = encoding
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little_endian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid stored values are expected here, and handled by the caller
        # pydicom would send a value too long for an explicit VR's 16-bit length as UN: not the key asked for
        warnings.filterwarnings("error", message=".*cannot be written in an explicit transfer syntax")
        write_dataset(buffer, dataset)
    data = buffer.getvalue()
    if deflated:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        data += b"\x00" if len(data) % 2 else b""
    return data


def encodable(answer: Dataset, encoding: tuple[bool, bool, bool]) -> tuple[Dataset, bytes]:
    """The answer and its encoding; an element that cannot be encoded (a binary value of the wrong length, a
    value too long for an explicit VR length field, ...) is sent empty instead, the rest as it is."""
    try:
        return answer, encode(answer, encoding)
    except Exception:  # pydicom raises many kinds; the element-by-element pass finds the culprit
        pass
    repaired = Dataset()
    for tag in list(answer.keys()):
        element = answer.get_item(tag)
        single = Dataset()
        single[tag] = element
        try:
            encode(single, encoding)
            repaired[tag] = element
        except Exception:  # this element is the culprit
            LOG.warning("C-FIND answer: %s cannot be encoded as stored, sent empty", tag)
            repaired.add_new(tag, element.VR if element.VR in _EMPTY_VRS else "UN", None)
    return repaired, encode(repaired, encoding)


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
                answer[tag] = _key(tag, vr, "" if value is None else str(value))
            elif keyword in _STUDY_LISTS:
                answer[tag] = _key(tag, vr, self._study_list(row, keyword))
            elif keyword in known:
                answer[tag] = _key(tag, vr, _element_value(self._representable(known[keyword], vr), vr))
            else:
                if file_dataset is None:
                    file_dataset = self._first_file(row)
                answer[tag] = self._stored_key(file_dataset, tag, vr)
        return answer

    def _stored_key(self, dataset: Dataset | None, tag: int, vr: str) -> DataElement | RawDataElement:
        """A key read from the stored file, its value as stored; empty when the file has none (or a sequence)."""
        element = _stored_element(dataset, tag, vr)
        if isinstance(element, RawDataElement):
            return element
        if element is None or element.VR == "SQ":
            return DataElement(tag, vr, None)
        value = element.value
        if element.VR in _TEXT_VRS and isinstance(value, str):
            value = self._representable(value, element.VR)
        try:
            return DataElement(tag, element.VR, value)
        except (ValueError, TypeError, OverflowError):  # a value pydicom read but will not set anew (a DS "abc")
            return element

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
        if not instances:
            return None
        try:
            return self.archive.instance_dataset(instances[0])
        except ArchiveError:
            raise
        except Exception:  # a stored file pydicom cannot parse: its keys are sent empty
            LOG.warning("C-FIND answer: the stored file of %s cannot be read", instances[0], exc_info=True)
            return None


def _key(tag: int, vr: str, value) -> DataElement | RawDataElement:
    """An answer's key; a text pydicom will not set as ``vr`` (an IS ``x`` in the index, a VR the identifier
    made up) is sent as it is, anything else that will not be set is sent empty."""
    try:
        return DataElement(tag, vr, value)
    except (ValueError, TypeError, OverflowError):
        if not isinstance(value, str) or vr in _BINARY_VRS:
            return DataElement(tag, vr, None)
        raw = value.encode("latin-1", "replace")
        raw += b" " if len(raw) % 2 else b""
        return RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)


def _stored_element(dataset: Dataset | None, tag: int, vr: str) -> DataElement | RawDataElement | None:
    """A stored element, read; one pydicom cannot read (a US of 3 bytes, a DS of ``abc``) as Orthanc answers it:
    a text value as stored, a binary value empty."""
    if dataset is None or tag not in dataset:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dataset[tag]
    except Exception:  # pydicom raises many kinds for a value it cannot read
        raw = dataset.get_item(tag)
    stored_vr = str(raw.VR) if raw.VR else vr
    if stored_vr in _BINARY_VRS or stored_vr == "SQ" or not isinstance(raw.value, bytes):
        return None
    LOG.info("C-FIND answer: %s holds a %s value pydicom cannot read, sent as stored", Tag(tag), stored_vr)
    # as stored, in a new data set: pydicom writes an unread element's bytes as they are
    return RawDataElement(Tag(tag), stored_vr, len(raw.value), raw.value, 0, False, True)


def _vr(tag: int, identifier: Dataset) -> str:
    if tag in identifier and identifier[tag].VR not in ("UN", None):
        return identifier[tag].VR
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _element_value(text: str, vr: str):
    """A main tag's text as a value of ``vr`` (the identifier's VR, the peer's word): empty if it is not one."""
    try:
        if vr in ("US", "SS", "UL", "SL"):
            return [int(v) for v in text.split("\\") if v.strip()] or None
        if vr in ("FL", "FD"):
            return [float(v) for v in text.split("\\") if v.strip()] or None
    except ValueError:
        return None
    return text
