"""``multipart/related`` bodies (RFC 2387), read and written for STOW-RS and WADO-RS.

Reading goes through python-multipart's streaming parser (the one Starlette uses for forms): each part lands in its
own spooled file, so a large upload never sits whole in memory.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ...core.errors import BadRequest

SPOOL_PART_IN_MEMORY = 8 * 1024 * 1024
_CHUNK = 1024 * 1024
_MAX_PARTS = 100_000  # far more instances than one test upload has; bounds the bookkeeping of a hostile body


class BadMultipart(BadRequest):
    """A body that is not the multipart/related it says it is (PS3.18 answers 400)."""


@dataclass
class Part:
    """One body part: its headers (lower-case names) and its content, rewound."""

    headers: dict[str, str] = field(default_factory=dict)
    content: BinaryIO = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_PART_IN_MEMORY))

    @property
    def media_type(self) -> str:
        return media_type_of(self.headers.get("content-type", ""))[0]


def media_type_of(header: str) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and the parameters of a Content-Type or Accept value."""
    kind, options = parse_options_header(header)
    return kind.decode("latin-1").strip().lower(), {k.decode("latin-1").lower(): v.decode("latin-1")
                                                    for k, v in options.items()}


def read_parts(body: BinaryIO, boundary: str) -> list[Part]:
    """Split a multipart body into its parts; BadMultipart when the boundary never opens a part or the closing
    delimiter is missing (a body cut short)."""
    parts: list[Part] = []
    header_name, header_value = bytearray(), bytearray()
    ended = False

    def on_part_begin() -> None:
        if len(parts) >= _MAX_PARTS:
            raise BadMultipart(f"More than {_MAX_PARTS} parts in one request")
        parts.append(Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].content.write(data[start:end])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[header_name.decode("latin-1").strip().lower()] = header_value.decode("latin-1").strip()
        header_name.clear()
        header_value.clear()

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_part_data": on_part_data,
                                        "on_header_field": on_header_field, "on_header_value": on_header_value,
                                        "on_header_end": on_header_end, "on_end": on_end})
    try:
        while chunk := body.read(_CHUNK):
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        close_parts(parts)
        raise BadMultipart(f"Malformed multipart body: {error}") from None
    if not ended or not parts:
        close_parts(parts)
        raise BadMultipart("Malformed multipart body: no part, or no closing delimiter, with boundary "
                           f"{boundary!r}")
    for part in parts:
        part.content.seek(0)
    return parts


def close_parts(parts: Iterable[Part]) -> None:
    for part in parts:
        part.content.close()


def new_boundary() -> str:
    return f"{uuid.uuid4()}-{uuid.uuid4()}"


def part_header(boundary: str, content_type: str, length: int, extra: dict[str, str] | None = None) -> bytes:
    """The delimiter and headers that open one part, as the plugin writes them."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in (extra or {}).items()]
    lines.append("MIME-Version: 1.0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")


def file_size(handle: BinaryIO) -> int:
    if isinstance(handle, io.BytesIO):  # a file transcoded in memory
        return handle.getbuffer().nbytes
    return os.fstat(handle.fileno()).st_size


def stream_files(boundary: str, content_type: str,
                 handles: list[BinaryIO | Callable[[], BinaryIO]]) -> Iterator[bytes]:
    """Parts from open files (each closed once sent): an instance deleted meanwhile is still sent whole. A callable
    is called when its turn comes (a file transcoded then, so that only one sits in memory)."""
    try:
        for position, source in enumerate(handles):
            handle = source() if callable(source) else source
            handles[position] = handle
            yield part_header(boundary, content_type, file_size(handle))
            while chunk := handle.read(_CHUNK):
                yield chunk
            yield b"\r\n"
            handle.close()
        yield closing(boundary)
    finally:
        for handle in handles:
            if not callable(handle):
                handle.close()


def whole(boundary: str, content_type: str, contents: Iterable[bytes],
          extra: Iterable[dict[str, str]] | None = None) -> bytes:
    """A small multipart body held in memory (frames, bulk data)."""
    extras = list(extra) if extra is not None else None
    out = bytearray()
    for number, content in enumerate(contents):
        out += part_header(boundary, content_type, len(content), extras[number] if extras else None)
        out += content + b"\r\n"
    out += closing(boundary)
    return bytes(out)
