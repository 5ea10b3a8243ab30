"""QIDO-RS answers: which attributes a result carries and where their values come from, as the Orthanc DICOMweb
plugin 1.7 answers (PS3.18 10.6.3.3 Tables 10.6.3-3 to -5 as of 2019a, the parents' attributes too).

Values come from the index's main tags of the resource and its parents, computed attributes (PS3.4 C.3.4) from
the index, and anything else from the resource's first stored file. Text is sent in the DefaultEncoding, characters
it cannot represent dropped, as Orthanc answers a find.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...core.dicom import ENCODINGS
from ...core.errors import ArchiveError
from ...core.ids import Level

if TYPE_CHECKING:  # pydicom loads on the first answer, not at start-up
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    from ...core.archive import Archive
    from ...core.index_rows import ResourceRow

# The tags of the attributes this module names (pydicom's dictionary, written out so that importing this module does
# not load pydicom)
_TAG_OF = {
    "StudyDate": 0x00080020, "StudyTime": 0x00080030, "AccessionNumber": 0x00080050,
    "InstanceAvailability": 0x00080056, "ReferringPhysicianName": 0x00080090, "TimezoneOffsetFromUTC": 0x00080201,
    "PatientName": 0x00100010, "PatientID": 0x00100020, "PatientBirthDate": 0x00100030, "PatientSex": 0x00100040,
    "StudyInstanceUID": 0x0020000D, "StudyID": 0x00200010, "Modality": 0x00080060, "SeriesDescription": 0x0008103E,
    "SeriesInstanceUID": 0x0020000E, "SeriesNumber": 0x00200011, "PerformedProcedureStepStartDate": 0x00400244,
    "PerformedProcedureStepStartTime": 0x00400245, "SOPClassUID": 0x00080016, "SOPInstanceUID": 0x00080018,
    "InstanceNumber": 0x00200013, "Rows": 0x00280010, "Columns": 0x00280011, "BitsAllocated": 0x00280100,
    "NumberOfFrames": 0x00280008, "ModalitiesInStudy": 0x00080061, "NumberOfStudyRelatedSeries": 0x00201206,
    "NumberOfStudyRelatedInstances": 0x00201208, "NumberOfSeriesRelatedInstances": 0x00201209,
    "SpecificCharacterSet": 0x00080005, "RetrieveURL": 0x00081190,
}


def _tags(*keywords: str) -> tuple[int, ...]:
    return tuple(_TAG_OF[keyword] for keyword in keywords)


# Returned by default at each level, and by every level below it (the plugin adds the parents' attributes).
DEFAULT_TAGS = {
    Level.STUDY: _tags("StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ReferringPhysicianName",
                       "TimezoneOffsetFromUTC", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                       "StudyInstanceUID", "StudyID"),
    Level.SERIES: _tags("Modality", "TimezoneOffsetFromUTC", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
                        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"),
    Level.INSTANCE: _tags("SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "TimezoneOffsetFromUTC",
                          "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames"),
}
# Computed at their own level only.
COMPUTED_TAGS = {
    Level.STUDY: _tags("ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    Level.SERIES: _tags("NumberOfSeriesRelatedInstances"),
    Level.INSTANCE: (),
}
_COMPUTED = {tag for tags in COMPUTED_TAGS.values() for tag in tags}
_NEVER_RETURNED = _tags("SpecificCharacterSet", "RetrieveURL")
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
# VRs whose values pydicom's to_json_dict writes as the strings they are (no number, no person name, no bytes): the
# answers write these attributes themselves, without a DataElement (tests/faces/dicomweb/test_qido_json.py compares)
_PLAIN_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "IS", "DS"})
_INLINE_BINARY_BYTES = 1024  # pydicom's to_json_dict default (no bulk data handler: binary values inline)
_SERIES_READ_AT_ONCE = 100  # a study's series read in one statement (more: the general way)
_FIRST_FILES_TRIED = 8  # instances of a resource tried in turn for its attributes (one deleted meanwhile is skipped)
_MODALITIES_IN_STUDY = _TAG_OF["ModalitiesInStudy"]
_NUMBER_OF_STUDY_RELATED_SERIES = _TAG_OF["NumberOfStudyRelatedSeries"]


def returned_tags(level: Level, extra: Iterable[int]) -> list[int]:
    """The tags a result at ``level`` carries: the defaults of the level and its parents, then ``extra``."""
    tags: list[int] = []
    for owner in (Level.STUDY, Level.SERIES, Level.INSTANCE):
        if owner <= level:
            tags += DEFAULT_TAGS[owner]
    tags += COMPUTED_TAGS[level]
    tags += [tag for tag in extra if tag not in _NEVER_RETURNED]
    return list(dict.fromkeys(tags))


def json_of(dataset: Dataset, **options) -> dict:
    """pydicom's DICOM JSON (PS3.18 Annex F) of a data set, an empty sequence without its empty ``Value`` (F.2.5,
    as the plugin writes it)."""
    return _drop_empty_values(dataset.to_json_dict(**options))


def _drop_empty_values(model: dict) -> dict:
    for attribute in model.values():
        without_empty_value(attribute)
    return model


def without_empty_value(attribute: dict) -> dict:
    """One DICOM JSON attribute without an empty ``Value`` (an empty sequence), its items' attributes likewise."""
    value = attribute.get("Value")
    if value == []:
        del attribute["Value"]
    elif attribute.get("vr") == "SQ" and value:
        for item in value:
            _drop_empty_values(item)
    return attribute


def plain_attribute(vr: str, values: list[str]) -> dict:
    """The DICOM JSON attribute (PS3.18 F.2.2) of string ``values`` of a VR in ``_PLAIN_STRING_VRS``, as pydicom's
    ``DataElement.to_json_dict`` writes it: UIDs without surrounding whitespace (pydicom's UID strips it), no
    ``Value`` when there are none or the only one is empty."""
    if vr == "UI":
        values = [value.strip() for value in values]
    if not values or values == [""]:
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def vr_of(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


class AnswerBuilder:
    """Builds the DICOM JSON object of each matching resource."""

    def __init__(self, archive: Archive, level: Level, tags: list[int], default_encoding: str, base_url: str) -> None:
        self.archive, self.level, self.tags, self.base_url = archive, level, tags, base_url
        from pydicom.charset import python_encoding
        from pydicom.datadict import keyword_for_tag

        self.character_set = ENCODINGS.get(default_encoding, "ISO_IR 100")
        self._codec = python_encoding.get(self.character_set, "latin_1")
        self._parents: dict[tuple[Level, str], ResourceRow] = {}
        # each returned tag with its VR, its keyword and its JSON key, looked up once for every result
        self._facts = [(tag, vr_of(tag), keyword_for_tag(tag), f"{tag:08X}") for tag in tags]

    def build(self, row: ResourceRow) -> dict:
        """The answer for one resource (ArchiveError when it was deleted meanwhile), its attributes in the order
        of ``tags`` between SpecificCharacterSet and RetrieveURL."""
        from pydicom.dataelem import DataElement

        known, uids = self._main_tags(row)
        # Most attributes are strings from the index, written here as DICOM JSON; the others (person names,
        # numbers, what comes from a file) go through pydicom's DataElement and its JSON.
        model: dict[str, dict] = {"00080005": plain_attribute("CS", [self.character_set])}
        file_dataset: Dataset | None = None
        for tag, vr, keyword, key in self._facts:
            if tag in _COMPUTED:
                if tag in COMPUTED_TAGS[self.level]:
                    model[key] = self._computed(row, tag, vr)
                continue
            if keyword in known:
                text = known[keyword]
                if vr in _PLAIN_STRING_VRS:
                    values = text.split("\\") if text else []
                    model[key] = plain_attribute(vr, self._representable(values) if vr in _TEXT_VRS else values)
                    continue
                element = self._from_text(tag, vr, text)
            else:
                if file_dataset is None:
                    file_dataset = self._first_file(row)
                element = file_dataset.get(tag) if tag in file_dataset else None
                if element is not None and element.VR in _TEXT_VRS:
                    element = DataElement(tag, element.VR, self._representable(element.value))
            if element is not None:
                model[key] = without_empty_value(element.to_json_dict(None, _INLINE_BINARY_BYTES))
        model["00081190"] = plain_attribute("UR", [self._retrieve_url(uids)])
        return model

    def _main_tags(self, row: ResourceRow) -> tuple[dict[str, str], list[str]]:
        tags = dict(row.main_tags)
        if row.level == Level.INSTANCE:  # the SOP Class UID is in the instance's metadata, not its main tags
            sop_class = self.archive.metadata(Level.INSTANCE, row.public_id).get("SopClassUid")
            if sop_class:
                tags.setdefault("SOPClassUID", sop_class)
        current = row
        while current.level > Level.PATIENT:
            key = (current.level, current.public_id)
            parent = self._parents.get(key)
            if parent is None:  # by the parent's ID when the row has it: one indexed read
                parent = self._parents[key] = (
                    self.archive.resource(Level(current.level - 1), current.parent_id) if current.parent_id
                    else self.archive.related(current.level, current.public_id, Level(current.level - 1))[0])
            for name, value in parent.main_tags.items():
                tags.setdefault(name, value)
            current = parent
        uids = [tags.get(name, "") for name in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
        return tags, uids[: self.level]

    def _retrieve_url(self, uids: list[str]) -> str:
        url = self.base_url
        for segment, uid in zip(("studies", "series", "instances"), uids, strict=False):
            url += f"/{segment}/{uid}"
        return url

    def _from_text(self, tag: int, vr: str, text: str) -> DataElement:
        from pydicom.dataelem import DataElement

        if not text:
            return DataElement(tag, vr, None)
        values = [self._representable(v) if vr in _TEXT_VRS else v for v in text.split("\\")]
        if vr in _NUMBER_VRS:
            try:
                return DataElement(tag, vr, values if len(values) > 1 else values[0])
            except (ValueError, TypeError, OverflowError):
                vr = "LO"  # a malformed number is still shown, as text
        return DataElement(tag, vr, values if len(values) > 1 else values[0])

    def _representable(self, value):
        if isinstance(value, str):  # trailing spaces are padding (PS3.5 6.2): gone once characters are dropped
            return value.encode(self._codec, "ignore").decode(self._codec).rstrip(" ")
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [self._representable(v) for v in value]
        if type(value).__name__ == "PersonName":
            return self._representable(str(value))
        return value

    def _computed(self, row: ResourceRow, tag: int, vr: str) -> dict:
        """ModalitiesInStudy (CS) or a number of related resources (IS, written as a JSON number)."""
        if tag == _MODALITIES_IN_STUDY:
            series = (self.archive.related_if_few(Level.STUDY, row.public_id, Level.SERIES, _SERIES_READ_AT_ONCE)
                      or self.archive.related(Level.STUDY, row.public_id, Level.SERIES))
            return plain_attribute(vr, sorted({s.main_tags.get("Modality", "") for s in series} - {""}))
        counted = Level.SERIES if tag == _NUMBER_OF_STUDY_RELATED_SERIES else Level.INSTANCE
        if counted == Level(row.level + 1):
            return {"vr": vr, "Value": [len(row.children)]}
        return {"vr": vr, "Value": [self.archive.count_below(row.level, row.public_id, counted)]}

    def _first_file(self, row: ResourceRow) -> Dataset:
        """The first instance's data set, for the attributes the index does not keep (the fast reader's elements:
        only those asked are converted)."""
        for instance_id in self.archive.instance_ids_below(row.level, row.public_id, _FIRST_FILES_TRIED):
            try:
                return self.archive.instance_elements(instance_id)
            except ArchiveError:  # deleted meanwhile: the next one will do
                continue
        from pydicom.dataset import Dataset

        return Dataset()
