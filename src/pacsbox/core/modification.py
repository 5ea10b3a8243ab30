"""Modification and anonymization of DICOM instances: Orthanc's ``DicomModification`` in domain terms.

A :class:`Modification` says what to do to every instance of a resource (remove, empty, replace, keep tags; drop
private tags; give new UIDs below a level); :func:`apply` does it to one pydicom data set, with a :class:`UidMap`
shared by all the instances of one job so that the same old UID always becomes the same new one (a study's
instances stay in one new study, references between instances survive).

Follows what the real Orthanc 1.10.1 does (checked by ``tests/faces/orthanc/test_modification_differential.py``):

* a modification works on the top level of the data set only; an anonymization also removes, empties and renews
  UIDs inside sequence items, and removes private tags at every depth;
* new UIDs for the modified level and every level under it (a study's modification renews StudyInstanceUID,
  SeriesInstanceUID and SOPInstanceUID), unless replaced or kept (``Keep``, with ``Force``);
* an anonymization gives each patient a new PatientID (a UUID) and the name ``Anonymized<N>`` (N counts every
  anonymized patient of the archive), marks PatientIdentityRemoved ``YES`` and, when the profile is used as it
  stands (no Replace, Remove, Keep or KeepPrivateTags), writes DeidentificationMethod.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .anonymization import Profile
from .create_dicom import Draft
from .errors import BadRequest
from .ids import Level

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SOP_INSTANCE_UID = 0x00080018
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
SPECIFIC_CHARACTER_SET = 0x00080005
#: The tags Orthanc indexes resources by: replacing, removing or keeping them needs "Force".
IDENTIFIERS = {PATIENT_ID: Level.PATIENT, STUDY_INSTANCE_UID: Level.STUDY, SERIES_INSTANCE_UID: Level.SERIES,
               SOP_INSTANCE_UID: Level.INSTANCE}
_UID_OF_LEVEL = {Level.STUDY: STUDY_INSTANCE_UID, Level.SERIES: SERIES_INSTANCE_UID, Level.INSTANCE: SOP_INSTANCE_UID}
_NAMES = {PATIENT_ID: "PatientID", STUDY_INSTANCE_UID: "StudyInstanceUID", SERIES_INSTANCE_UID: "SeriesInstanceUID",
          SOP_INSTANCE_UID: "SOPInstanceUID"}


def is_private(tag: int) -> bool:
    return bool(tag >> 16 & 1)


@dataclass(frozen=True)
class DicomPath:
    """A tag inside sequence items: ``ReferencedImageSequence[1].ReferencedSOPClassUID``; an index of None (``*``)
    means every item."""

    prefix: tuple[tuple[int, int | None], ...]
    tag: int

    def items(self, dataset: Dataset) -> list[Dataset]:
        """The items the path names (none when an index is past the end, as Orthanc)."""
        found = [dataset]
        for tag, index in self.prefix:
            step = []
            for item in found:
                if tag in item and item[tag].VR == "SQ":
                    members = list(item[tag].value or [])
                    step += members if index is None else members[index:index + 1]
            found = step
        return found


@dataclass
class Modification:
    """What to do to each instance. Build it with :meth:`remove`, :meth:`replace` and :meth:`keep` in the order
    Orthanc reads a request (Remove, then Replace, then Keep): a later call overrides an earlier one on a tag."""

    level: Level
    replacements: dict[int, Any] = field(default_factory=dict)  # JSON values: a string, None, a list of objects
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    kept: set[int] = field(default_factory=set)  # every tag a request asked to keep
    kept_uids: set[int] = field(default_factory=set)
    private_tags_to_keep: set[int] = field(default_factory=set)
    remove_private_tags: bool = False
    profile: Profile | None = None  # set for an anonymization
    private_creator: str = ""
    _orthanc_profile: bool = False  # the anonymization uses its profile as it stands (DeidentificationMethod)
    # tags inside sequence items, by path (Orthanc 1.9.4's DicomPath): applied after everything else
    path_removals: list[DicomPath] = field(default_factory=list)
    path_replacements: list[tuple[DicomPath, Any]] = field(default_factory=list)

    @classmethod
    def anonymization(cls, profile: Profile) -> Modification:
        """Anonymization at the patient level by one edition of the basic profile (Orthanc's SetupAnonymization)."""
        modification = cls(Level.PATIENT, removals=set(profile.removed), clearings=set(profile.emptied),
                           remove_private_tags=True, profile=profile, _orthanc_profile=True)
        modification.replacements[DEIDENTIFICATION_METHOD] = profile.method
        modification.replacements[PATIENT_IDENTITY_REMOVED] = "YES"
        return modification

    @property
    def is_anonymization(self) -> bool:
        return self.profile is not None

    def remove(self, tag: int) -> None:
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.replacements.pop(tag, None)
        self._customized()

    def replace(self, tag: int, value: Any) -> None:
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.replacements[tag] = value
        self._customized()

    def keep(self, tag: int) -> None:
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.replacements.pop(tag, None)
        self.kept.add(tag)
        if tag in _UID_OF_LEVEL.values():
            self.kept_uids.add(tag)
        elif is_private(tag):
            self.private_tags_to_keep.add(tag)
        self._customized()

    def remove_path(self, path: DicomPath) -> None:
        self.path_removals.append(path)
        self._customized()

    def replace_path(self, path: DicomPath, value: Any) -> None:
        self.path_replacements.append((path, value))
        self._customized()

    def keep_private_tags(self) -> None:
        self.remove_private_tags = False
        self._customized()

    def _customized(self) -> None:
        """A request that departs from the profile is no longer "Orthanc's" anonymization: no
        DeidentificationMethod is written (Orthanc's MarkNotOrthancAnonymization)."""
        if self._orthanc_profile:
            self._orthanc_profile = False
            self.replacements.pop(DEIDENTIFICATION_METHOD, None)

    def check(self) -> None:
        """Refuse what Orthanc refuses once the request is read: removing an identifier, replacing a parent's."""
        if any(tag in self.removals for tag in IDENTIFIERS):
            raise BadRequest(None)
        if self.is_anonymization:
            return
        name = self.level.title.lower()
        if self.level == Level.PATIENT and PATIENT_ID not in self.replacements:
            raise BadRequest("When modifying a patient, her PatientID is required to be modified")
        for tag, tag_level in ((PATIENT_ID, Level.PATIENT), (STUDY_INSTANCE_UID, Level.STUDY)):
            if Level.PATIENT < self.level < Level.INSTANCE and tag_level < self.level and tag in self.replacements:
                raise BadRequest(f"When modifying a {name}, the parent {_NAMES[tag]} cannot be manually modified")

    def renews(self, level: Level) -> bool:
        """Whether the UID of ``level`` gets a new value in every instance."""
        tag = _UID_OF_LEVEL[level]
        if tag in self.replacements or tag in self.kept_uids:
            return False
        if level == Level.SERIES and STUDY_INSTANCE_UID in self.replacements:
            return True  # a manually changed study takes its series along, whatever the level (as Orthanc)
        return self.level <= level


class UidMap:
    """New UIDs for old ones, per level, shared by the instances of one job (thread-safe); also new patients for an
    anonymization, named by ``next_patient_number`` (the archive's counter of anonymized patients)."""

    def __init__(self, next_patient_number: Callable[[], int] | None = None) -> None:
        self._lock = threading.Lock()
        self._uids: dict[tuple[str, str], str] = {}
        self._patients: dict[str, tuple[str, str]] = {}
        self._next_patient_number = next_patient_number or (lambda: 1)

    def uid(self, kind: str, old: str) -> str:
        from pydicom.uid import generate_uid

        with self._lock:
            key = (kind, old.strip(" \0"))
            if key not in self._uids:
                self._uids[key] = generate_uid()
            return self._uids[key]

    def patient(self, old_patient_id: str) -> tuple[str, str]:
        """``(new PatientID, new PatientName)`` of an anonymized patient."""
        with self._lock:
            key = old_patient_id.strip()
            if key not in self._patients:
                self._patients[key] = (str(uuid.uuid4()), f"Anonymized{self._next_patient_number()}")
            return self._patients[key]


def apply(dataset: Dataset, modification: Modification, uids: UidMap) -> None:
    """Modify one instance in place (its file meta follows its new SOPInstanceUID)."""
    from pydicom.dataelem import DataElement

    anonymizing = modification.is_anonymization
    old_patient_id = _text(dataset, PATIENT_ID)
    if modification.remove_private_tags:
        _remove_private(dataset, modification.private_tags_to_keep, nested=anonymizing)
    for item in _items(dataset, nested=anonymizing):
        present = set(item.keys())  # (BaseTag is an int: set operations instead of a lookup per listed tag)
        for tag in present & modification.clearings:
            _clear(item, tag)
        for tag in present & modification.removals:
            del item[tag]
    _replace(dataset, modification)
    if anonymizing:
        _renew_everywhere(dataset, modification, uids, old_patient_id)
    else:
        for level, tag in _UID_OF_LEVEL.items():
            if modification.renews(level) and tag in dataset:
                dataset[tag] = DataElement(tag, "UI", uids.uid(level.name, _text(dataset, tag)))
    for path in modification.path_removals:
        for item in path.items(dataset):
            if path.tag in item:
                del item[path.tag]
    for path, value in modification.path_replacements:
        for item in path.items(dataset):
            _replace_in(item, {path.tag: value}, _codec(dataset, modification))
    if getattr(dataset, "file_meta", None) is not None and SOP_INSTANCE_UID in dataset:
        dataset.file_meta.MediaStorageSOPInstanceUID = _text(dataset, SOP_INSTANCE_UID)


def _renew_everywhere(dataset: Dataset, modification: Modification, uids: UidMap, old_patient_id: str) -> None:
    """An anonymization's identifiers, at every depth: the patient's new ID (and at the top its new name), the
    study, series and instance UIDs and the profile's U attributes mapped to new UIDs."""
    from pydicom.dataelem import DataElement

    assert modification.profile is not None
    untouched = modification.replacements.keys() | modification.removals | modification.clearings
    new_patient_id, new_name = uids.patient(old_patient_id)
    if PATIENT_NAME not in modification.replacements and PATIENT_NAME not in modification.kept:
        dataset[PATIENT_NAME] = _text_element(dataset, PATIENT_NAME, new_name)
    kinds = {tag: "INSTANCE" for tag in modification.profile.new_uids if tag not in untouched}
    for level, tag in _UID_OF_LEVEL.items():
        if modification.renews(level):
            kinds[tag] = level.name
    renew_patient = PATIENT_ID not in modification.replacements and PATIENT_ID not in modification.kept
    for item in _items(dataset, nested=True):
        present = set(item.keys())
        if renew_patient and PATIENT_ID in present:
            item[PATIENT_ID] = _text_element(item, PATIENT_ID, new_patient_id)
        for tag in present & kinds.keys():
            if item[tag].VR == "UI" and item[tag].value not in (None, ""):
                item[tag] = DataElement(tag, "UI", uids.uid(kinds[tag], _text(item, tag)))
    if renew_patient and PATIENT_ID not in dataset:
        dataset[PATIENT_ID] = _text_element(dataset, PATIENT_ID, new_patient_id)


def _replace(dataset: Dataset, modification: Modification) -> None:
    """The replacements, at the top level, inserted where absent, encoded as Orthanc encodes them."""
    if not modification.replacements:
        return
    _replace_in(dataset, modification.replacements, _codec(dataset, modification))
    if isinstance(modification.replacements.get(SPECIFIC_CHARACTER_SET), str):
        # Orthanc leaves the values already there as they were encoded; pydicom would decode and encode them again
        # in the new character set when the one it read differs from the one it writes
        dataset._read_charset = dataset._character_set


def _codec(dataset: Dataset, modification: Modification) -> str:
    """The Python codec of the instance's character set: the new one when it is replaced (values are written in
    it, the others stay as they are)."""
    from pydicom.charset import python_encoding

    charset = dataset.get("SpecificCharacterSet")
    replaced = modification.replacements.get(SPECIFIC_CHARACTER_SET)
    if isinstance(replaced, str):
        charset = replaced.split("\\")
    if not charset:
        return "latin_1"
    first = charset if isinstance(charset, str) else (list(charset) or [""])[-1]
    return python_encoding.get(first, "latin_1")


def _replace_in(dataset: Dataset, replacements: dict[int, Any], codec: str) -> None:
    draft = Draft(None)
    draft.codec = codec
    for tag in sorted(replacements):
        draft.put_json(tag, replacements[tag], decode_binary=True)
    for tag, element in draft.elements.items():
        dataset[tag] = element


def _text_element(dataset: Dataset, tag: int, value: str) -> DataElement:
    draft = Draft(None)
    draft.put_text(tag, value)
    return draft.dataset()[tag]


def _clear(dataset: Dataset, tag: int) -> None:
    from pydicom.dataelem import DataElement
    from pydicom.sequence import Sequence

    element = dataset[tag]
    dataset[tag] = DataElement(tag, element.VR, Sequence() if element.VR == "SQ" else None)


def _text(dataset: Dataset, tag: int) -> str:
    if tag not in dataset:
        return ""
    value = dataset[tag].value
    if isinstance(value, bytes):
        return value.decode("latin_1").strip(" \0")
    return str(value if value is not None else "").strip(" \0")


def _items(dataset: Dataset, *, nested: bool) -> Iterator[Dataset]:
    """The data set, then (``nested``) every item of its sequences, depth first."""
    yield dataset
    if not nested:
        return
    for tag in list(dataset.keys()):
        element = dataset[tag]
        if element.VR == "SQ" and element.value:
            for item in element.value:
                yield from _items(item, nested=True)


def _remove_private(dataset: Dataset, keep: set[int], *, nested: bool) -> None:
    for item in _items(dataset, nested=nested):
        for tag in [tag for tag in item.keys() if is_private(int(tag)) and int(tag) not in keep]:  # noqa: SIM118 (iterating a Dataset yields elements)
            del item[tag]
