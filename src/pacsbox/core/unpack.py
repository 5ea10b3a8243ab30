"""Reading uploaded zip, tar and tar.gz archives safely: every member checked before any is used."""

from __future__ import annotations

import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import BadRequest, TooLarge

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NAME = 255  # bytes of one file or folder name (NAME_MAX of Linux and macOS)
_CHUNK = 1024 * 1024  # bytes inflated per step: what one step of a zip bomb can cost
_IN_MEMORY = 32 * 1024 * 1024  # a spooled member goes to a temporary file past this
# Compressions XNAT's and Orthanc's zip readers know (Java's ZipInputStream, minizip). Python's bzip2 and lzma
# readers inflate a whole compressed chunk at once, whatever comes out: a bomb there is not bounded by the step.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def iter_zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> Iterator[bytes]:
    """A zip member's bytes, inflated a MiB at a time and counted as they come: never more than its declared
    size (a member whose data inflates further fails its CRC check: BadZipFile) nor than ``limit`` (TooLarge).

    ``ZipFile.read`` inflates all of a member's compressed data in one step before cutting it to the declared
    size: a 1 MB member claiming a few bytes then costs a gigabyte of memory first.
    """
    if info.compress_type not in _ZIP_METHODS:
        raise BadRequest(f"Zip member {info.filename!r} uses compression method {info.compress_type}: only stored"
                         " and deflated members are supported")
    bound = info.file_size if limit is None else min(info.file_size, limit + 1)
    total = 0
    with handle.open(info) as stream:
        while total < bound and (chunk := stream.read(min(_CHUNK, bound - total))):
            total += len(chunk)
            if limit is not None and total > limit:
                raise TooLarge(f"The archive inflates to more than MaximumUploadSize ({limit} bytes)")
            yield chunk
        if stream.read(1):  # past the declared size: more data (the CRC check fails first, in practice)
            raise zipfile.BadZipFile(f"Zip member {info.filename!r} holds more than its declared size")


def read_zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
    """``iter_zip_member`` joined: at most the member's declared size in memory."""
    return b"".join(iter_zip_member(handle, info, limit))


def spool_zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> BinaryIO:
    """``iter_zip_member`` into a rewound temporary file: in memory up to 32 MiB, on disk past it (a member of a
    gigabyte, declared honestly, costs disk, not memory)."""
    spooled = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)
    try:
        for chunk in iter_zip_member(handle, info, limit):
            spooled.write(chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


def check_zip_members(handle: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limit: int | None) -> None:
    """Inflate every member once, keeping nothing: a corrupt one (BadRequest) is found before any is used, and
    what they really inflate to together is held to ``limit`` (TooLarge), whatever their headers say."""
    total = 0
    for info in infos:
        try:
            for chunk in iter_zip_member(handle, info, None if limit is None else limit - total):
                total += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error) as error:
            raise BadRequest(f"Corrupt archive member {info.filename!r}: {error}") from None


@dataclass(frozen=True)
class Member:
    """One regular file of an archive: its safe relative path and how to read it."""

    path: str
    size: int
    _handle: object
    _entry: object

    def spool(self) -> BinaryIO:
        """The member's bytes in a rewound temporary file (memory up to 32 MiB, disk past it): for members too
        large to hold in memory. The caller closes it."""
        try:
            if isinstance(self._handle, zipfile.ZipFile):
                return spool_zip_member(self._handle, self._entry)
            spooled = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)
            extracted = self._handle.extractfile(self._entry)
            if extracted is None:
                raise BadRequest(f"Archive member {self.path!r} cannot be read")
            while chunk := extracted.read(_CHUNK):
                spooled.write(chunk)
            spooled.seek(0)
            return spooled  # type: ignore[return-value]
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, NotImplementedError, zlib.error) as error:
            raise BadRequest(f"Corrupt archive member {self.path!r}: {error}") from None

    def read(self) -> bytes:
        try:
            if isinstance(self._handle, zipfile.ZipFile):
                return read_zip_member(self._handle, self._entry)
            extracted = self._handle.extractfile(self._entry)
            if extracted is None:
                raise BadRequest(f"Archive member {self.path!r} cannot be read")
            return extracted.read()
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, NotImplementedError, zlib.error) as error:
            raise BadRequest(f"Corrupt archive member {self.path!r}: {error}") from None


def safe_relative_path(name: str, what: str = "path") -> str:
    """A member or file name made relative with ``/`` separators; BadRequest for names that would escape the
    folder they are written to (absolute names, drive letters, ``..``), the zip-slip attack, and for names no
    folder can hold or no URL can reach (control characters, a part over 255 bytes)."""
    normalized = name.replace("\\", "/")
    if "\x00" in normalized:
        raise BadRequest(f"Unsafe {what} {name!r}: NUL character")
    if any(c < " " or c == "\x7f" for c in normalized):
        raise BadRequest(f"Invalid {what} {name!r}: control characters are not allowed")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise BadRequest(f"Unsafe {what} {name!r}: absolute names are not allowed")
    parts = [part for part in normalized.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadRequest(f"Unsafe {what} {name!r}: '..' is not allowed")
    if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME for part in parts):
        raise BadRequest(f"Invalid {what} {name[:80]!r}...: a name is at most {_MAX_NAME} bytes")
    return "/".join(parts)


def is_archive(head: bytes) -> bool:
    """Whether the first bytes of a body look like a zip or a gzip (tar.gz) archive. Plain tars are recognised
    by ``open_archive`` itself (their magic sits at offset 257)."""
    return head.startswith(_ZIP_MAGIC) or head.startswith(_GZIP_MAGIC)


def _is_ignorable(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return path.startswith("__MACOSX/") or base == ".DS_Store"


class ArchiveReader:
    """An uploaded archive (zip, tar or tar.gz), opened and checked whole: ``members`` lists its regular files.

    BadRequest when the body is not such an archive, when it is corrupt, or when any member's name or link
    would escape the extraction folder; TooLarge when its members add up to more than ``limit`` bytes (a zip
    bomb: a small body that inflates to gigabytes), found before anything is inflated. Use as a context manager.
    """

    def __init__(self, source: BinaryIO, limit: int | None = None) -> None:
        self.limit = limit
        source.seek(0)
        head = source.read(4)
        source.seek(0)
        self._handle: zipfile.ZipFile | tarfile.TarFile
        try:
            if head.startswith(_ZIP_MAGIC):
                self._handle = zipfile.ZipFile(source)
                self.members = self._zip_members(self._handle)
            else:
                self._handle = tarfile.open(fileobj=source, mode="r:*")
                self.members = self._tar_members(self._handle)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, NotImplementedError) as error:
            raise BadRequest(f"Not a valid zip, tar or tar.gz archive: {error}") from None
        except (BadRequest, TooLarge):
            raise
        except Exception as error:  # the zip and tar modules raise assorted errors on corrupt input
            raise BadRequest(f"Not a valid zip, tar or tar.gz archive: {error}") from None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def _check_size(self, total: int) -> None:
        if self.limit is not None and total > self.limit:
            raise TooLarge(f"The archive inflates to more than MaximumUploadSize ({self.limit} bytes)")

    def _zip_members(self, handle: zipfile.ZipFile) -> list[Member]:
        # the sizes the central directory declares: zipfile never inflates a member past its declared size (a
        # member that holds more fails its CRC check), so they bound what reading the archive can cost
        self._check_size(sum(info.file_size for info in handle.infolist()))
        members = []
        for info in handle.infolist():
            path = safe_relative_path(info.filename, "name in archive")
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if is_link:
                raise BadRequest(f"Unsafe name in archive {info.filename!r}: symbolic links are not allowed")
            if info.is_dir() or not path or _is_ignorable(path):
                continue
            members.append(Member(path, info.file_size, handle, info))
        check_zip_members(handle, [member._entry for member in members], self.limit)
        return members

    def _tar_members(self, handle: tarfile.TarFile) -> list[Member]:
        members = []
        total = 0
        for info in handle:  # one header at a time: a tar.gz is inflated only as far as the limit allows
            total += info.size
            self._check_size(total)
            path = safe_relative_path(info.name, "name in archive")
            if info.issym() or info.islnk():
                # a link may point anywhere (outside the folder, at /etc/passwd): only regular files are stored
                raise BadRequest(f"Unsafe member in archive {info.name!r}: links are not allowed")
            if not info.isfile() or not path or _is_ignorable(path):
                continue
            members.append(Member(path, info.size, handle, info))
        return members
