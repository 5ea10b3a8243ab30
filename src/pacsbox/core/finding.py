"""Finding resources by DICOM query values, C-FIND style (PS3.4 C.2.2.2): Orthanc's /tools/find and the DIMSE
face's C-FIND both come here through ``Archive.find``.

Main tags are matched by the index's SQL; any other tag is matched against the first instance of each candidate,
read from its file, as Orthanc does. Query values too costly to match are refused first (``check_pattern``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dicom import MAIN_TAGS, read_dataset, tag_from_text
from .errors import OutOfRange
from .ids import Level
from .index_rows import ResourceRow, TagConstraint
from .matching import WILDCARD_VRS, Pattern, check_pattern, parse_pattern

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

if TYPE_CHECKING:
    from .archive import Archive

_MAIN_TAG_LEVELS: dict[str, list[Level]] = {}
for _level, _tags in MAIN_TAGS.items():
    for _keyword in _tags.values():
        _MAIN_TAG_LEVELS.setdefault(_keyword, []).append(_level)


@dataclass(frozen=True)
class FindQuery:
    """A find request in domain terms (Orthanc's /tools/find; later C-FIND)."""

    level: Level
    query: Mapping[str, str]
    case_sensitive: bool = False
    since: int = 0
    limit: int = 0
    # When set, matching is case-insensitive exactly for these VRs and sensitive for the others, as C-FIND is
    # (Orthanc's CaseSensitivePN); ``case_sensitive`` is then ignored.
    insensitive_vrs: frozenset[str] | None = None

    def is_case_sensitive(self, vr: str) -> bool:
        if vr == "UI":
            return True
        if self.insensitive_vrs is not None:
            return vr not in self.insensitive_vrs
        return self.case_sensitive


def find(archive: Archive, request: FindQuery) -> list[ResourceRow]:
    """Resources at ``request.level`` matching every query tag."""
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    level = request.level
    config = archive.config
    constraints: list[TagConstraint] = []
    modalities: TagConstraint | None = None
    from_files: list[tuple[int, Pattern, bool]] = []
    for key, text in request.query.items():
        tag = tag_from_text(key)
        if tag is None:
            raise OutOfRange(f"Unknown DICOM tag: {key!r}")
        keyword = keyword_for_tag(tag) or key
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        if ("*" in text or "?" in text) and vr not in WILDCARD_VRS:
            # PS3.4 C.2.2.2.4; the wording is Orthanc's
            raise OutOfRange(f"Wildcards are not allowed on tag {tag >> 16:04x},{tag & 0xFFFF:04x}")
        pattern = parse_pattern(text, vr)
        check_pattern(pattern, keyword, max_pattern=config.MaximumFindPatternLength,
                      max_list=config.MaximumFindListLength)
        if pattern.kind == "universal":
            continue
        sensitive = request.is_case_sensitive(vr)
        if keyword == "ModalitiesInStudy" and level == Level.STUDY:
            modalities = TagConstraint("Modality", Level.SERIES, pattern.kind, pattern.values, sensitive)
            continue
        main_levels = [lvl for lvl in _MAIN_TAG_LEVELS.get(keyword, []) if lvl <= level]
        if main_levels:
            constraints.append(TagConstraint(keyword, max(main_levels), pattern.kind, pattern.values, sensitive))
        else:
            from_files.append((tag, pattern, sensitive))
    index = archive.index
    iids = index.find(level, constraints, modalities)
    limit = request.limit or None
    if not from_files:
        selected = iids[request.since:][:limit] if limit else iids[request.since:]
        return index.describe(selected)
    matched: list[int] = []
    skipped = 0
    for iid in iids:
        if not _matches_file_tags(archive, iid, level, from_files):
            continue
        if skipped < request.since:
            skipped += 1
            continue
        matched.append(iid)
        if limit and len(matched) >= limit:
            break
    return index.describe(matched)


def _matches_file_tags(archive: Archive, iid: int, level: Level, patterns) -> bool:
    """Match tags that are not main tags against the resource's first instance, as Orthanc reads one file."""
    instances = archive.index.descendant_iids(iid, level, Level.INSTANCE) if level != Level.INSTANCE else [iid]
    dataset = _first_readable(archive, instances)
    if dataset is None:
        return False
    for tag, pattern, case_sensitive in patterns:
        element = dataset.get(tag)
        value = None if element is None or element.VR == "SQ" else _element_text(element)
        if not pattern.matches(value, case_sensitive):
            return False
    return True


def _first_readable(archive: Archive, instance_iids: list[int]) -> Dataset | None:
    """The dataset of the first of these instances still there: another request may delete them (row, then
    file) while a find reads them. None when every one is gone."""
    for instance_iid in instance_iids:
        rows = archive.index.describe([instance_iid])
        if not rows:
            continue
        try:
            return read_dataset(archive.store_area.read_plain(rows[0].file_uuid, rows[0].file_compressed))
        except FileNotFoundError:
            continue
    return None


def _element_text(element) -> str:
    value = element.value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)
