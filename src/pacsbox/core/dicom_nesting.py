"""How deep the sequences of a data set nest, measured without recursion, so that ingest can refuse a file nested
thousands deep.

pydicom reads and the renderers walk sequences recursively: past ~200 levels every later read of such a file would
exhaust the interpreter's recursion limit. Real data nests a few levels (an SR content tree a dozen or so), so
ingest refuses anything deeper than ``MAX_SEQUENCE_DEPTH`` with a clear error, instead of storing a file no route
can show.
"""

from __future__ import annotations

import contextlib
import functools
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydicom loads with the first DICOM read, not with the server (cold start)
    from pydicom.dataset import Dataset

MAX_SEQUENCE_DEPTH = 64

# pydicom's RawDataElement is a NamedTuple, its converted DataElement no tuple: the loops below tell them apart with
# ``isinstance(element, tuple)``, which needs no pydicom (tests/test_lazy_imports.py checks it stays true)

# The value representations of PS3.5 6.2 (Table 6.2-1), and those whose explicit VR header has a 4-byte length
# (PS3.5 7.1.2): plain values, so that reading an element header needs no pydicom (tests/core check them against
# pydicom's ``valuerep.VR`` and ``EXPLICIT_VR_LENGTH_32``).
VR_NAMES = ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
            "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV")
EXPLICIT_VR_LENGTH_32 = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})


class TruncatedSequence(ValueError):
    """A sequence's items end inside an item or element header: no reader can show them (DCMTK, and so the real
    Orthanc, refuses the file)."""

_TAG_LENGTH = struct.Struct("<HHI")
_EXPLICIT = struct.Struct("<HH2sH")
_LENGTH32 = struct.Struct("<I")
_LONG_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
# what a container on the walk's stack holds (PS3.5 7.5): data elements, sequence items, or pixel data fragments
_ELEMENTS, _ITEMS, _FRAGMENTS = 0, 1, 2


@functools.cache
def _sequence_tags() -> frozenset[int]:
    """Tags the dictionary declares SQ: how an implicit VR reader (pydicom, DCMTK) knows a sequence."""
    from pydicom.datadict import DicomDictionary

    return frozenset(tag for tag, entry in DicomDictionary.items() if entry[0] == "SQ")


def top_level_elements(dataset: Dataset) -> Iterable:
    """The top-level elements of a data set pydicom read, unconverted; deferred values are read, except pixel
    data (a deferred sequence may hide the nesting)."""
    for tag in list(dataset.keys()):  # (iterating a Dataset converts every element)
        element = dataset.get_item(tag, keep_deferred=True)
        if isinstance(element, tuple) and element.value is None and element.length and tag != _PIXEL_DATA:
            # a corrupt deferred value pydicom cannot convert (its error must not become a 500) stays unread
            with contextlib.suppress(Exception):
                element = dataset.get_item(tag)
        yield element


def deepest_sequence(elements: Iterable) -> int:
    """The nesting level of the deepest sequence among top-level ``elements`` (1: a sequence at the top level,
    0: none), raw or converted by pydicom. Counting stops soon after ``MAX_SEQUENCE_DEPTH`` is passed.
    TruncatedSequence when a raw sequence's data ends inside a header."""
    # A cheap pass first: ingest calls this for every instance, and nearly every element is a plain value (pydicom's
    # tags compare in Python: they are compared as plain integers).
    pending = [(element, 1) for element in elements if _may_hold_items(element)]
    deepest = 0
    while pending and deepest <= MAX_SEQUENCE_DEPTH:
        element, level = pending.pop()
        if isinstance(element, tuple):
            implicit = element.is_implicit_VR or element.VR == "UN"  # PS3.5 6.2.2: UN holds implicit VR
            deepest = max(deepest, _raw_depth(element.value or b"", implicit, level))
        elif element.VR == "SQ":
            deepest = max(deepest, level)
            for item in element.value:
                nested = (item.get_item(tag) for tag in list(item.keys()))
                pending.extend((child, level + 1) for child in nested if _may_hold_items(child))
    return deepest


def _may_hold_items(element) -> bool:
    """Whether an element, raw or converted, is a sequence or may be one (undefined length, or a sequence's tag
    with an unknown VR); nearly every element is a plain value, told apart here cheaply."""
    vr = element.VR
    if vr == "SQ":
        return True
    if not isinstance(element, tuple):
        return False
    if element.length == _UNDEFINED:
        return int(element.tag) != _PIXEL_DATA
    return (vr is None or vr == "UN") and int(element.tag) in _sequence_tags()


def _container(tag: int, vr: str | None, length: int, implicit: bool) -> int | None:
    """What an element's value holds when it is not a plain value: items, fragments, or None."""
    if tag == _PIXEL_DATA:
        return _FRAGMENTS if length == _UNDEFINED else None
    if vr == "SQ" or length == _UNDEFINED:
        return _ITEMS
    if (implicit or vr in (None, "UN")) and tag in _sequence_tags():
        return _ITEMS
    return None


def _raw_depth(data: bytes, implicit: bool, level: int) -> int:
    """The deepest level within the items ``data`` of a sequence at ``level``, walked with a stack. Data ending
    inside a header raises TruncatedSequence; any other malformed structure ends the walk, and telling what is
    wrong with it is left to the parser."""
    deepest = level
    stack = [(len(data), _ITEMS, implicit)]  # (end offset, or None until its delimiter; what it holds; implicit VR)
    offset = 0
    try:
        while stack and deepest <= MAX_SEQUENCE_DEPTH:
            end, holds, implicit = stack[-1]
            if end is not None and offset >= end:
                level -= stack.pop()[1] == _ITEMS
                continue
            group, number, length = _TAG_LENGTH.unpack_from(data, offset)
            tag = group << 16 | number
            if holds != _ELEMENTS:
                offset += 8
                if tag == _SEQUENCE_END:
                    level -= stack.pop()[1] == _ITEMS
                elif tag != _ITEM:
                    return deepest
                elif holds == _FRAGMENTS:
                    offset += length
                else:
                    stack.append((None if length == _UNDEFINED else offset + length, _ELEMENTS, implicit))
                continue
            if tag == _ITEM_END:
                offset += 8
                stack.pop()
                continue
            vr = None
            if implicit:
                start = offset + 8
            else:
                _, _, vr_bytes, length = _EXPLICIT.unpack_from(data, offset)
                vr = vr_bytes.decode("latin-1")
                if vr_bytes in _LONG_VRS:
                    length = _LENGTH32.unpack_from(data, offset + 8)[0]
                    start = offset + 12
                else:
                    start = offset + 8
            kind = _container(tag, vr, length, implicit)
            if kind is None:
                offset = start + length
                continue
            if kind == _ITEMS:
                level += 1
                deepest = max(deepest, level)
            stack.append((None if length == _UNDEFINED else start + length, kind, implicit or vr == "UN"))
            offset = start
    except struct.error:  # the data ends inside a header
        raise TruncatedSequence("a sequence ends inside an item or element header") from None
    return deepest
