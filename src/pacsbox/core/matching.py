"""DICOM C-FIND style matching (PS3.4 C.2.2.2), shared by Orthanc's /tools/find and the DIMSE face.

A query value is one of: universal (empty or ``*``), single value, list of values (``a\\b``), wildcard (``*``
and ``?``), or range (``low-high`` for DA, DT and TM).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from .errors import BadRequest
from .index_find import fold

RANGE_VRS = frozenset({"DA", "DT", "TM"})
_LEADING_SPACES_DROPPED = frozenset({"UI", "IS", "DS"})  # as core.dicom stores them (DCMTK's cleaning)
# PS3.4 C.2.2.2.4: wildcard matching (a lone "*" included) exists only for these VRs.
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})


@dataclass(frozen=True)
class Pattern:
    """A parsed query value. ``kind`` is ``universal``, ``exact``, ``list``, ``wildcard`` or ``range``."""

    kind: str
    values: tuple[str, ...]

    def matches(self, value: str | None, case_sensitive: bool = True) -> bool:
        """Match one stored value (None = the tag is absent), as the index's SQL does."""
        if self.kind == "universal":
            return True
        if value is None:
            return False
        candidates = [value]
        patterns = self.values
        if not case_sensitive:
            candidates = [fold(value)]
            patterns = tuple(fold(v) for v in patterns)
        text = candidates[0]
        if self.kind == "exact":
            return text == patterns[0]
        if self.kind == "list":
            return text in patterns
        if self.kind == "wildcard":
            return re.fullmatch(_glob_regex(patterns[0]), text, re.DOTALL) is not None
        low, high = patterns
        return bool(text) and (not low or text >= low) and (not high or text <= high)


def parse_pattern(text: str, vr: str | None) -> Pattern:
    """Classify a query value the way DICOM C-FIND does, given the VR of its tag.

    Trailing spaces are padding; leading ones are part of the value, as in the stored values (a PatientID
    `` P1`` is found by `` P1`` only, as in Orthanc), except for the VRs whose stored values lose them.
    """
    value = text.strip() if vr in _LEADING_SPACES_DROPPED else text.rstrip()
    if value in ("", "*"):
        return Pattern("universal", ())
    if vr in RANGE_VRS and "-" in value:
        low, _, high = value.partition("-")
        return Pattern("range", (low.strip(), high.strip()))
    if "\\" in value:
        clean = str.strip if vr in _LEADING_SPACES_DROPPED else str.rstrip
        return Pattern("list", tuple(clean(v) for v in value.split("\\")))
    if "*" in value or "?" in value:
        return Pattern("wildcard", (_to_glob(value),))
    return Pattern("exact", (value,))


def check_pattern(pattern: Pattern, keyword: str, *, max_pattern: int, max_list: int) -> None:
    """Refuse (BadRequest) a query value too costly to match: a wildcard pattern over ``max_pattern`` characters
    (SQLite refuses GLOB patterns past 50,000 bytes, and matching costs its length times the value's), a list of
    more than ``max_list`` values. Limits of 0 are off."""
    if pattern.kind == "wildcard" and max_pattern and len(pattern.values[0]) > max_pattern:
        raise BadRequest(f"The wildcard query on {keyword} is {len(pattern.values[0])} characters long: at most "
                         f"{max_pattern} are allowed (MaximumFindPatternLength)")
    if pattern.kind == "list" and max_list and len(pattern.values) > max_list:
        raise BadRequest(f"The query on {keyword} lists {len(pattern.values)} values: at most {max_list} are "
                         "allowed (MaximumFindListLength)")


def _to_glob(value: str) -> str:
    """A DICOM wildcard as an SQLite GLOB pattern: only ``[`` and ``]`` need escaping."""
    return "".join("[" + c + "]" if c in "[]" else c for c in value)


def _glob_regex(glob: str) -> str:
    # fnmatch's translation handles *, ? and the bracket escapes _to_glob produced.
    return fnmatch.translate(glob)
