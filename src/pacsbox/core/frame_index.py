"""Where each frame of a stored file lies: found once per file (its header parsed up to the pixel data, the items of
encapsulated data walked), then each frame read by seeking, without parsing the file again or loading it whole.

Stored files never change under their file UUID (a new version is a new file), so a layout is kept, in a bounded
least-recently-used table, for as long as the file exists. Files this cannot index (deflated, big endian, one bit a
pixel, no file meta, fragments without an offset table that are not one a frame) are left to the caller, which parses
them whole.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .dicom import EXPLICIT_VR_LENGTH_32
from .errors import BadFormat, InexistentItem
from .pixels import decoded_size, frame_count, integer, is_encapsulated, native_frame_size

_NATIVE_LITTLE = {"1.2.840.10008.1.2.1": True, "1.2.840.10008.1.2": False}  # syntax -> explicit VR
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_ITEM, _SEQUENCE_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"
_LONG_VRS = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True)
class FrameLayout:
    """A file's frames: native ones at ``start + index * frame_size``; encapsulated ones as lists of fragment spans
    (offset, length) in the file."""

    syntax: str
    count: int
    start: int = 0
    frame_size: int = 0
    fragments: tuple[tuple[tuple[int, int], ...], ...] | None = None

    def read(self, path: Path | str, index: int) -> bytes:
        """Frame ``index`` (from 0) as stored: InexistentItem when the file has no such frame."""
        if not 0 <= index < self.count:
            raise InexistentItem(f"Inexistent frame index in this image: {index}")
        with open(path, "rb") as stream:
            if self.fragments is None:
                stream.seek(self.start + index * self.frame_size)
                return stream.read(self.frame_size)
            parts = []
            for offset, length in self.fragments[index]:
                stream.seek(offset)
                parts.append(stream.read(length))
            return b"".join(parts)


def read_layout(path: Path | str) -> FrameLayout | None:
    """The frame layout of the file at ``path``, or None when it cannot be indexed so; BadFormat when its pixel data
    is shorter than its header announces."""
    import pydicom

    with open(path, "rb") as stream:
        try:
            header = pydicom.dcmread(stream, stop_before_pixels=True, force=True)
        except Exception:  # pydicom raises many types for a file it cannot parse: the whole parse says why
            return None
        meta = getattr(header, "file_meta", None)
        syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        encapsulated = bool(syntax) and is_encapsulated(syntax)
        explicit = True if encapsulated else _NATIVE_LITTLE.get(syntax)
        if explicit is None or getattr(header, "original_encoding", None) != (not explicit, True):
            return None  # a bare data set, or one not encoded as its meta says
        start = stream.tell()
        element = stream.read(12)
        if element[:4] != _PIXEL_DATA_TAG or integer(header, "BitsAllocated") in (0, 1):
            return None
        if explicit and element[4:6] in _LONG_VRS:
            length, offset = int.from_bytes(element[8:12], "little"), 12
        elif explicit:
            length, offset = int.from_bytes(element[6:8], "little"), 8
        else:
            length, offset = int.from_bytes(element[4:8], "little"), 8
        count = frame_count(header)
        if encapsulated:
            if length != _UNDEFINED:
                return None
            stream.seek(start + offset)
            fragments = _frames_of_fragments(stream, count)
            return None if fragments is None else FrameLayout(syntax, count, fragments=fragments)
        decoded_size(header, 1)  # a readable header (BadRequest otherwise)
        size = native_frame_size(header)
        if length == _UNDEFINED or length < size * count:
            raise BadFormat(f"The pixel data holds {length} bytes, not the {size * count} its header announces")
        return FrameLayout(syntax, count, start + offset, size)


def _frames_of_fragments(stream, count: int) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Each frame's fragment spans (PS3.5 A.4): by the Basic Offset Table when it has one offset a frame, else one
    fragment a frame when there are as many; None otherwise (or when the items are broken)."""
    header = stream.read(8)
    if header[:4] != _ITEM:
        return None
    table_length = int.from_bytes(header[4:8], "little")
    if table_length % 4 or table_length > 4 * count:
        return None
    table = stream.read(table_length)
    offsets = [int.from_bytes(table[k:k + 4], "little") for k in range(0, len(table), 4)]
    first = stream.tell()
    spans: list[tuple[int, int, int]] = []  # (offset of the item from the first, data offset, length)
    while True:
        item = stream.read(8)
        if len(item) < 8:
            return None
        if item[:4] == _SEQUENCE_END:
            break
        length = int.from_bytes(item[4:8], "little")
        if item[:4] != _ITEM or length == _UNDEFINED:
            return None
        position = stream.tell()
        spans.append((position - 8 - first, position, length))
        stream.seek(length, 1)
        if len(spans) > count and not offsets:  # more fragments than frames, no table: not indexed here
            return None
    if offsets:
        if len(offsets) != count:
            return None
        frames = []
        for number, begin in enumerate(offsets):
            end = offsets[number + 1] if number + 1 < count else None
            frames.append(tuple((data, length) for item, data, length in spans
                                if item >= begin and (end is None or item < end)))
        return tuple(frames) if all(frames) else None
    if len(spans) != count:
        return None
    return tuple(((data, length),) for _, data, length in spans)


class FrameLayouts:
    """The layouts of the most recently read files, keyed by file UUID (thread-safe, at most ``size`` of them)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._layouts: OrderedDict[str, FrameLayout | None] = OrderedDict()
        self._lock = threading.Lock()

    def layout(self, file_uuid: str, path: Path | str) -> FrameLayout | None:
        with self._lock:
            if file_uuid in self._layouts:
                self._layouts.move_to_end(file_uuid)
                return self._layouts[file_uuid]
        found = read_layout(path)
        with self._lock:
            self._layouts[file_uuid] = found
            while len(self._layouts) > self.size:
                self._layouts.popitem(last=False)
        return found
