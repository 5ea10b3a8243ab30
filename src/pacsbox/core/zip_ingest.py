"""Storing the DICOM files of an uploaded zip archive (``Archive.store_zip``): the whole archive is checked first."""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import TYPE_CHECKING, BinaryIO

from .archive import IN_MEMORY_LIMIT
from .dicom import parse_instance
from .errors import InvalidDicom, TooLarge
from .storage import is_disk_full, storage_full
from .unpack import spool_zip_member

if TYPE_CHECKING:
    from .archive import Archive, StoreResult
    from .events import Origin


def store_zip(archive: Archive, source: BinaryIO, origin: Origin) -> list[StoreResult]:
    """``Archive.store_zip``: every member parsed before any is stored."""
    try:
        zipped = zipfile.ZipFile(source)
    except zipfile.BadZipFile as error:
        raise InvalidDicom(f"Not a valid zip archive: {error}") from None
    with zipped:
        limit = archive.config.MaximumUploadSize
        if sum(m.file_size for m in zipped.infolist()) > limit:
            raise TooLarge(f"The zip archive inflates to more than MaximumUploadSize "
                           f"({archive.config.MaximumUploadSize} bytes)")
        members = [m for m in zipped.infolist() if not m.is_dir() and not _is_ignorable(m.filename)]
        for member in members:
            _check_member_name(member.filename)
        inflated = 0
        for member in members:
            with _inflated(zipped, member, limit - inflated) as spooled:
                size = spooled.seek(0, os.SEEK_END)
                inflated += size
                spooled.seek(0)
                try:
                    parse_instance(spooled.read() if size <= IN_MEMORY_LIMIT else spooled,
                                   archive.settings.default_encoding)
                except InvalidDicom as error:
                    raise InvalidDicom(f"Zip member {member.filename!r}: {error.details}") from None
        results = []
        for member in members:
            with _inflated(zipped, member) as spooled:
                results.append(archive.store(spooled, origin))
        return results


def _inflated(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int | None = None) -> BinaryIO:
    """A zip member in a temporary file (memory up to 32 MiB), inflated a MiB at a time up to ``limit``."""
    try:
        return spool_zip_member(zipped, member, limit)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as error:
        if is_disk_full(error):
            raise storage_full(error) from None
        raise InvalidDicom(f"Corrupted zip member {member.filename!r}: {error}") from None


def _is_ignorable(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.upper() == "DICOMDIR" or name.startswith("__MACOSX/") or base == ".DS_Store"


def _check_member_name(name: str) -> None:
    """Refuse member names that would escape a folder if extracted (zip-slip), even though pacsbox never
    extracts by name: such an archive is hostile or broken, and a client deserves to hear it."""
    normalized = name.replace("\\", "/")
    parts = normalized.split("/")
    if normalized.startswith("/") or ".." in parts or (len(normalized) > 1 and normalized[1] == ":"):
        raise InvalidDicom(f"Unsafe path in zip archive: {name!r}")
