"""Matching a Modality Worklist C-FIND identifier against worklist items, as Orthanc's HierarchicalMatcher does.

Orthanc 1.10.1's worklist plugin hands each ``.wl`` file to the core's matcher (measured against it by
tests/faces/dimse/test_worklist_reference.py):

* every key of the identifier but SpecificCharacterSet and group lengths is a constraint; an empty value or ``*``
  matches anything, a binary value is ignored;
* a non-universal constraint needs the item to hold the tag (an absent or binary item value never matches);
  ``a\\b`` is a list, ``*`` and ``?`` are wildcards for the text VRs of PS3.4 C.2.2.2.4, ``low-high`` a range for
  DA, DT and TM, anything else a single value; person names compare case-insensitively unless ``CaseSensitivePN``;
* a sequence key with no item, or one empty item, matches anything; with one item, the item's keys must all match
  within one item of the worklist's sequence (an item without that sequence matches); more than one item is an
  invalid query;
* values compare as text, each data set decoded with its own SpecificCharacterSet;
* the answer holds the requested keys the item has (absent ones stay absent), a universally matched sequence
  whole, otherwise only its matching items reduced to their requested keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import BadRequest

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

SPECIFIC_CHARACTER_SET = 0x00080005
# PS3.4 C.2.2.2.4: wildcards exist for these VRs only (Orthanc 1.6.0 and later)
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE_VRS = frozenset({"DA", "DT", "TM"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


class InvalidWorklistQuery(BadRequest):
    """An identifier Orthanc refuses (a sequence key with several items): the C-FIND fails with 0xC000."""


def vr_of(tag: int, element_vr: str | None = None) -> str:
    """The dictionary VR of a tag, else the VR the element came with."""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return element_vr or "UN"


def text_of(value) -> str | None:
    """An element's value as Orthanc's matcher reads it: text (multiple values joined by backslashes); None for
    a binary value."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


class _Constraint:
    """One flat constraint (Orthanc's DicomTagConstraint)."""

    def __init__(self, tag: int, vr: str, query: str, case_sensitive: bool) -> None:
        self.tag = tag
        self.case_sensitive = case_sensitive
        self.checks: list[tuple[str, object]] = []
        if vr in _RANGE_VRS and "-" in query:
            low, high = query.split("-", 1)
            if low:
                self.checks.append((">=", self._norm(low)))
            if high:
                self.checks.append(("<=", self._norm(high)))
        elif "\\" in query:
            self.checks.append(("in", {self._norm(v) for v in query.split("\\")}))
        elif vr in _WILDCARD_VRS and ("*" in query or "?" in query):
            pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in query)
            flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
            self.checks.append(("re", re.compile(pattern, flags)))
        else:
            self.checks.append(("==", self._norm(query)))

    def _norm(self, text: str) -> str:
        return text if self.case_sensitive else text.upper()

    def matches(self, value: str) -> bool:
        text = self._norm(value)
        for kind, expected in self.checks:
            if kind == "==" and text != expected:
                return False
            if kind == "in" and text not in expected:  # type: ignore[operator]
                return False
            if kind == "re" and expected.fullmatch(value) is None:  # type: ignore[union-attr]
                return False
            if kind == ">=" and not text >= expected:  # type: ignore[operator]
                return False
            if kind == "<=" and not text <= expected:  # type: ignore[operator]
                return False
        return True


class WorklistMatcher:
    """The constraints of one identifier (or of one sequence item of it)."""

    def __init__(self, query: Dataset, case_sensitive_pn: bool = False, depth: int = 0) -> None:
        self.flat_tags: list[int] = []
        self.constraints: list[_Constraint] = []
        self.sequences: dict[int, WorklistMatcher | None] = {}
        for element in query:
            tag = int(element.tag)
            if tag == SPECIFIC_CHARACTER_SET or tag & 0xFFFF == 0:
                continue
            vr = vr_of(tag, element.VR)
            if vr == "SQ":
                items = list(element.value or [])
                if not items or (len(items) == 1 and len(items[0]) == 0):
                    self.sequences[tag] = None  # universal matching of a sequence
                elif len(items) == 1:
                    if depth >= 16:
                        raise InvalidWorklistQuery("The query nests sequences too deeply")
                    self.sequences[tag] = WorklistMatcher(items[0], case_sensitive_pn, depth + 1)
                else:
                    raise InvalidWorklistQuery(f"The query has a sequence with more than one item: {element.tag}")
                continue
            self.flat_tags.append(tag)
            text = None if vr in _BINARY_VRS else text_of(element.value)
            if text is None or text in ("", "*"):
                continue  # universal (or a binary value, which Orthanc ignores)
            self.constraints.append(_Constraint(tag, vr, text, case_sensitive_pn or vr != "PN"))

    def matches(self, item: Dataset) -> bool:
        """Whether a worklist item (or one item of its sequence) satisfies every constraint."""
        for constraint in self.constraints:
            if constraint.tag not in item:
                return False
            element = item[constraint.tag]
            text = None if vr_of(constraint.tag, element.VR) in _BINARY_VRS else text_of(element.value)
            if text is None or not constraint.matches(text):
                return False
        for tag, nested in self.sequences.items():
            if nested is None or tag not in item:
                continue
            element = item[tag]
            if element.VR != "SQ" or not any(nested.matches(child) for child in element.value or []):
                return False
        return True

    def extract(self, item: Dataset) -> Dataset:
        """The answer: the requested keys the item holds, sequences reduced to their matching items."""
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        answer = Dataset()
        for tag in self.flat_tags:
            if tag in item:
                answer.add(item[tag])
        for tag, nested in self.sequences.items():
            if tag not in item or item[tag].VR != "SQ":
                continue
            children: Iterable[Dataset] = item[tag].value or []
            if nested is None:
                answer.add_new(tag, "SQ", Sequence([_copy(child) for child in children]))
            else:
                answer.add_new(tag, "SQ", Sequence([nested.extract(child) for child in children
                                                    if nested.matches(child)]))
        return answer


def _copy(dataset: Dataset) -> Dataset:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    copy = Dataset()
    for element in dataset:
        if element.VR == "SQ":
            copy.add_new(element.tag, "SQ", Sequence([_copy(child) for child in element.value or []]))
        else:
            copy.add(element)
    return copy
