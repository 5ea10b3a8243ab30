"""A bounded pre-scan telling whether parsing an instance is cheap enough for an event loop.

Parsing costs per element, not per byte: a 1 MiB image (a few hundred elements and its pixels) parses in a
millisecond, a 1 MiB file of 100,000 tiny elements in a second, and an event loop parsing it serves nobody
meanwhile. The pre-scan walks element headers (nested ones too, as the parser does) and gives up after
``MAX_ELEMENTS`` of them, so it costs at most a few hundred microseconds; anything it does not recognise (big
endian, deflated, no Part 10 header, a broken structure) counts as costly and goes to a worker thread.
"""

from __future__ import annotations

import struct

from .dicom_nesting import _sequence_tags

MAX_ELEMENTS = 500  # element, item and fragment headers of a file parsed on the event loop (a few ms at most)
_TAG_LENGTH = struct.Struct("<HHI")
_EXPLICIT = struct.Struct("<HH2sH")
_LENGTH32 = struct.Struct("<I")
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_IMPLICIT_LE = b"1.2.840.10008.1.2"
_ELEMENTS, _ITEMS, _FRAGMENTS = 0, 1, 2


class _Costly(Exception):
    pass


def quick_to_parse(data: bytes, max_elements: int = MAX_ELEMENTS) -> bool:
    """Whether ``data`` is a little endian Part 10 file of at most ``max_elements`` headers in all."""
    try:
        offset, implicit = _data_set_start(data)
        _walk(data, offset, implicit, max_elements)
    except (_Costly, struct.error):
        return False
    return True


def _data_set_start(data: bytes) -> tuple[int, bool]:
    """Past the file meta group (explicit VR, PS3.10 7.1): where the data set starts, and whether it is implicit."""
    if len(data) < 144 or data[128:132] != b"DICM":
        raise _Costly
    offset, syntax = 132, b""
    while True:
        group, number, vr, length = _EXPLICIT.unpack_from(data, offset)
        if group != 0x0002:
            break
        start = offset + 8
        if vr in _LONG_VRS:
            length = _LENGTH32.unpack_from(data, offset + 8)[0]
            start = offset + 12
        if number == 0x0010:
            syntax = data[start:start + length].rstrip(b"\x00 ")
        offset = start + length
    if syntax == _IMPLICIT_LE:
        return offset, True
    if syntax.startswith(b"1.2.840.10008.1.2.2") or syntax == b"1.2.840.10008.1.2.1.99" or not syntax:
        raise _Costly  # big endian, deflated, unknown: pydicom's slower path
    return offset, False


def _walk(data: bytes, offset: int, implicit: bool, budget: int) -> None:
    stack = [(len(data), _ELEMENTS, implicit)]  # (end, or None until a delimiter; what it holds; implicit VR)
    while stack:
        end, holds, implicit = stack[-1]
        if end is not None and offset >= end:
            stack.pop()
            continue
        budget -= 1
        if budget < 0:
            raise _Costly
        group, number, length = _TAG_LENGTH.unpack_from(data, offset)
        tag = group << 16 | number
        if holds != _ELEMENTS:
            offset += 8
            if tag == _SEQUENCE_END:
                stack.pop()
            elif tag != _ITEM:
                raise _Costly
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
            _, _, vr, length = _EXPLICIT.unpack_from(data, offset)
            start = offset + 8
            if vr in _LONG_VRS:
                length = _LENGTH32.unpack_from(data, offset + 8)[0]
                start = offset + 12
        if tag == _PIXEL_DATA and length == _UNDEFINED:
            kind = _FRAGMENTS
        elif vr == b"SQ" or length == _UNDEFINED or ((implicit or vr == b"UN") and tag in _sequence_tags()):
            kind = _ITEMS
        else:
            offset = start + length
            continue
        stack.append((None if length == _UNDEFINED else start + length, kind, implicit or vr == b"UN"))
        offset = start
