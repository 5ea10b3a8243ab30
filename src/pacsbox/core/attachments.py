"""Attachments: files kept on a patient, study, series or instance beside (or as) its DICOM file.

Orthanc numbers them (its ``FileContentType``): 1 is the DICOM file, 3 the DICOM file up to its pixel data (kept
when the storage is compressed, so that tags are read without inflating the pixels), 1024-65535 belong to users,
by number or by a name declared in ``UserContentType``. Each has an uncompressed size and MD5 and, when stored
zlib-compressed (``StorageCompression``, or ``POST .../compress``), a compressed size and MD5.

Revisions follow Orthanc 1.10.1 with its built-in SQLite index, which keeps none: every attachment and metadata
reads as revision 0, a write that replaces one answers revision 1, and ``If-Match: "0-<md5>"`` holds when the MD5
is that of the current content (the check and the write happen under the index's write lock). With
``CheckRevisions``, replacing or deleting without ``If-Match`` is a conflict, as in Orthanc.

Durability is that of instances: the file is written and synced before the row commits; a replaced or deleted
file is removed after the commit; a crash in between leaves an unreferenced file, which the sweep after an
unclean stop removes (``Archive._recover_after_unclean_stop``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, Conflict, InexistentItem, OutOfRange, UnknownResource
from .ids import Level
from .storage import compress, decompress, md5_hex

if TYPE_CHECKING:
    from .archive import Archive

DICOM = 1
DICOM_UNTIL_PIXEL_DATA = 3
BUILTIN_NAMES = {"dicom": DICOM, "dicom-as-json": 2, "dicom-until-pixel-data": DICOM_UNTIL_PIXEL_DATA}
FIRST_USER_TYPE, LAST_USER_TYPE = 1024, 65535
ZLIB = 1  # Orthanc's CompressionType_ZlibWithSize

_ETAG = re.compile(r'^"?(\d+)-([^"]*)"?$')
_NUMBER = re.compile(r"-?[0-9]+")


class RevisionMismatch(Conflict):
    """An ``If-Match`` revision that is not the current one (Orthanc's ErrorCode_Revision, HTTP 409)."""


class BadAttachmentNumber(BadRequest):
    """An attachment named by a number that no 32-bit integer holds (Orthanc: "Bad type for a parameter")."""


class ReservedAttachment(PermissionError):
    """An attachment a client may not write or delete (built-in, or a number outside 1024-65535)."""


@dataclass(frozen=True)
class AttachmentInfo:
    """One attachment as Orthanc's ``/info`` describes it."""

    content_type: int
    uuid: str
    uncompressed_size: int
    uncompressed_md5: str
    compressed_size: int
    compressed_md5: str
    compression: int

    @property
    def is_compressed(self) -> bool:
        return self.compression != 0


@dataclass(frozen=True)
class Expected:
    """What an ``If-Match`` header expects: the revision and MD5 of an ETag ``"<revision>-<md5>"``."""

    revision: int
    md5: str

    @classmethod
    def parse(cls, header: str | None) -> Expected | None:
        """The expectation of an If-Match header (None without one); OutOfRange when it is not an ETag."""
        if header is None:
            return None
        found = _ETAG.match(header.strip())
        if not found:
            raise OutOfRange('The "if-match" HTTP header should contain the ETag (revision followed by MD5 hash), '
                             f"but found: {header.strip()}")
        return cls(int(found.group(1)), found.group(2))

    def holds_for(self, md5: str) -> bool:
        return self.revision == 0 and self.md5 == md5  # (the SQLite index keeps every revision at 0)


def etag(revision: int, md5: str) -> str:
    return f'"{revision}-{md5}"'


def check_write(expected: Expected | None, current_md5: str | None, check_revisions: bool) -> int:
    """The revision a write answers (0 for a new item, 1 for a replaced one), once ``expected`` allows it."""
    if current_md5 is None:
        return 0
    if expected is None:
        if check_revisions:
            raise RevisionMismatch()
        return 1
    if not expected.holds_for(current_md5):
        raise RevisionMismatch()
    return 1


def require_if_match(expected: Expected | None, check_revisions: bool) -> None:
    """A delete without If-Match is refused at once with CheckRevisions (before looking for the item)."""
    if expected is None and check_revisions:
        raise RevisionMismatch('HTTP header "If-Match" is missing, as "CheckRevisions" is "true"')


def check_delete(expected: Expected | None, current_md5: str) -> None:
    if expected is not None and not expected.holds_for(current_md5):
        raise RevisionMismatch()


def user_content_types(declared: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """``UserContentType`` read as name -> (number, MIME type); ValueError for a malformed entry."""
    types: dict[str, tuple[int, str]] = {}
    for name, value in declared.items():
        number, mime = value, "application/octet-stream"
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
            number, mime = value
        if isinstance(number, bool) or not isinstance(number, int) or not FIRST_USER_TYPE <= number <= LAST_USER_TYPE:
            raise ValueError(f"UserContentType {name!r}: the number must be an integer in 1024..65535 (optionally "
                             f"[number, MIME type]), not {value!r}")
        types[name] = (number, mime)
    return types


class Attachments:
    """The attachments of the archive's resources: rows in the index's ``attachments`` table, bytes in the file
    store."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.index = archive.index
        self.files = archive.store_area
        self.user_types = user_content_types(archive.config.UserContentType)
        self.compress_new = bool(archive.config.StorageCompression)
        self.check_revisions = bool(archive.config.CheckRevisions)

    # -- names ------------------------------------------------------------------------------------------
    def content_type(self, name: str) -> int:
        """The number of an attachment name (built-in, declared, or a number); InexistentItem if unknown."""
        if name in BUILTIN_NAMES:
            return BUILTIN_NAMES[name]
        if name in self.user_types:
            return self.user_types[name][0]
        if _NUMBER.fullmatch(name):  # any number names one (Orthanc reads it as a 32-bit int)
            number = int(name)
            if not -(2**31) <= number < 2**31:
                raise BadAttachmentNumber("Syntax error in some user-supplied data")
            return number
        raise InexistentItem(f"Unknown attachment {name!r}: declare it in the UserContentType configuration option")

    def name_of(self, content_type: int) -> str:
        for name, number in BUILTIN_NAMES.items():
            if number == content_type:
                return name
        for name, (number, _) in self.user_types.items():
            if number == content_type:
                return name
        return str(content_type)

    def mime_type(self, content_type: int) -> str:
        if content_type == DICOM:
            return "application/dicom"
        for number, mime in self.user_types.values():
            if number == content_type:
                return mime
        return "application/octet-stream"

    def writable_type(self, name: str) -> int:
        """The number of a name a client may write; ReservedAttachment for built-in and out-of-range ones."""
        content_type = self.content_type(name)
        if not FIRST_USER_TYPE <= content_type <= LAST_USER_TYPE:
            raise ReservedAttachment(f"The attachment {name!r} is reserved by the server")
        return content_type

    # -- reading ----------------------------------------------------------------------------------------
    def _iid(self, level: Level, public_id: str) -> int:
        found = self.index.lookup(public_id)
        if found is None or found[1] != level:
            raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
        return found[0]

    def list(self, level: Level, public_id: str) -> list[tuple[str, int]]:
        """``(name, number)`` of the attachments of a resource, by number."""
        iid = self._iid(level, public_id)
        with self.index.reading() as db:
            rows = db.execute("SELECT content_type FROM attachments WHERE iid = ? ORDER BY content_type",
                              (iid,)).fetchall()
        return [(self.name_of(row[0]), row[0]) for row in rows]

    def info(self, level: Level, public_id: str, name: str) -> AttachmentInfo:
        """One attachment; UnknownResource when the resource or the attachment is absent."""
        content_type = self.content_type(name)
        iid = self._iid(level, public_id)
        with self.index.reading() as db:
            found = _row(db, iid, content_type)
        if found is None:
            raise UnknownResource(f"No attachment {name!r} on {level.title.lower()} {public_id}")
        return found

    def read(self, level: Level, public_id: str, name: str, *, as_stored: bool = False) -> tuple[AttachmentInfo, bytes]:
        """An attachment's content, inflated (or ``as_stored``: compressed ones as they are on disk)."""
        found = self.info(level, public_id, name)
        try:
            data = self.files.read(found.uuid)
        except FileNotFoundError:  # replaced or deleted since the lookup (rows go first, then files)
            raise UnknownResource(f"No attachment {name!r} on {level.title.lower()} {public_id}") from None
        if found.is_compressed and not as_stored:
            data = decompress(data)
        return found, data

    def verify_md5(self, level: Level, public_id: str, name: str) -> bool:
        """Whether the stored bytes still have the MD5 recorded when they were stored."""
        found, data = self.read(level, public_id, name, as_stored=True)
        return md5_hex(data) == found.compressed_md5

    # -- writing ----------------------------------------------------------------------------------------
    def put(self, level: Level, public_id: str, name: str, data: bytes, expected: Expected | None = None) -> str:
        """Store or replace a user attachment; returns the ETag Orthanc answers."""
        with self.archive.gate.shared():  # beside stores and deletes; a reset or restore waits (and they for it)
            return self._put(level, public_id, name, data, expected)

    def _put(self, level: Level, public_id: str, name: str, data: bytes, expected: Expected | None) -> str:
        content_type = self.writable_type(name)
        self._iid(level, public_id)
        md5 = md5_hex(data)
        stored = compress(data) if self.compress_new else data
        file_uuid, stored_md5 = self.files.write(stored)
        compressed = (len(stored), stored_md5) if self.compress_new else None
        revision, stale = self._replace(level, public_id, content_type, file_uuid, len(data), md5, compressed,
                                        expected, is_new_content=True)
        if stale:
            self.files.remove(stale)
        return etag(revision, md5)

    def set_compressed(self, level: Level, public_id: str, name: str, compressed: bool) -> None:
        """Store an attachment again, compressed or not (``/compress``, ``/uncompress``): new file, same content."""
        with self.archive.gate.shared():
            self._set_compressed(level, public_id, name, compressed)

    def _set_compressed(self, level: Level, public_id: str, name: str, compressed: bool) -> None:
        found, data = self.read(level, public_id, name)
        if found.is_compressed == compressed:
            return
        stored = compress(data) if compressed else data
        file_uuid, stored_md5 = self.files.write(stored)
        packed = (len(stored), stored_md5) if compressed else None
        _, stale = self._replace(level, public_id, found.content_type, file_uuid, found.uncompressed_size,
                                 found.uncompressed_md5, packed, None, is_new_content=False, previous=found.uuid)
        if stale:
            self.files.remove(stale)

    def _replace(self, level: Level, public_id: str, content_type: int, file_uuid: str, size: int, md5: str,
                 compressed: tuple[int, str] | None, expected: Expected | None, *, is_new_content: bool,
                 previous: str | None = None) -> tuple[int, str | None]:
        """Point the row at the new file (inside one write transaction, after the checks); returns the revision
        answered and the file no longer referenced. The new file goes if anything fails."""
        try:
            with self.index.writing() as db:
                iid = self.index.find_iid(db, public_id, level)
                if iid is None:
                    raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
                current = _row(db, iid, content_type)
                if previous is not None and (current is None or current.uuid != previous):
                    raise RevisionMismatch("The attachment changed while it was being compressed")
                revision = 0
                if is_new_content:
                    revision = check_write(expected, current.uncompressed_md5 if current else None,
                                           self.check_revisions)
                db.execute(
                    "INSERT OR REPLACE INTO attachments (iid, content_type, uuid, size, md5, compression,"
                    " compressed_size, compressed_md5) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (iid, content_type, file_uuid, size, md5, ZLIB if compressed else 0,
                     *(compressed or (None, None))))
                self.index.log_change(db, "UpdatedAttachment", iid, level, public_id)
        except BaseException:
            self.files.remove(file_uuid)
            raise
        return revision, current.uuid if current else None

    def delete(self, level: Level, public_id: str, name: str, expected: Expected | None = None) -> None:
        """Delete a user attachment (the DICOM file goes only with its instance)."""
        with self.archive.gate.shared():
            self._delete(level, public_id, name, expected)

    def _delete(self, level: Level, public_id: str, name: str, expected: Expected | None) -> None:
        content_type = self.content_type(name)
        if content_type == DICOM or not FIRST_USER_TYPE <= content_type <= LAST_USER_TYPE:
            self._iid(level, public_id)
            raise ReservedAttachment(f"The attachment {name!r} is reserved by the server")
        self._iid(level, public_id)
        require_if_match(expected, self.check_revisions)
        with self.index.writing() as db:
            iid = self.index.find_iid(db, public_id, level)
            current = _row(db, iid, content_type) if iid is not None else None
            if current is None:
                raise UnknownResource(f"No attachment {name!r} on {level.title.lower()} {public_id}")
            check_delete(expected, current.uncompressed_md5)
            db.execute("DELETE FROM attachments WHERE iid = ? AND content_type = ?", (iid, content_type))
            self.index.log_change(db, "UpdatedAttachment", iid, level, public_id)
        self.files.remove(current.uuid)

    # -- metadata revisions -----------------------------------------------------------------------------
    def set_metadata(self, level: Level, public_id: str, name: str, value: str,
                     expected: Expected | None = None) -> str:
        """Write user metadata as ``Archive.set_metadata`` does, once ``expected`` allows it; returns the ETag."""
        iid = self._iid(level, public_id)
        _check_metadata_writable(self.archive, name)
        md5 = metadata_md5(value)
        with self.index.writing() as db:
            row = db.execute("SELECT value FROM metadata WHERE iid = ? AND name = ?", (iid, name)).fetchone()
            if db.execute("SELECT 1 FROM resources WHERE iid = ?", (iid,)).fetchone() is None:
                raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")  # deleted since the lookup
            revision = check_write(expected, metadata_md5(row[0]) if row else None, self.check_revisions)
            self.index.set_metadata_many(db, iid, {name: value})
            self.index.log_change(db, "UpdatedMetadata", iid, level, public_id)
        return etag(revision, md5)

    def delete_metadata(self, level: Level, public_id: str, name: str, expected: Expected | None = None) -> None:
        iid = self._iid(level, public_id)
        _check_metadata_writable(self.archive, name)
        require_if_match(expected, self.check_revisions)
        with self.index.writing() as db:
            row = db.execute("SELECT value FROM metadata WHERE iid = ? AND name = ?", (iid, name)).fetchone()
            if row is None:  # Orthanc answers "Unknown resource" here, not "inexistent item"
                raise UnknownResource(f"No metadata {name!r} on {public_id}")
            check_delete(expected, metadata_md5(row[0]))
            db.execute("DELETE FROM metadata WHERE iid = ? AND name = ?", (iid, name))
            self.index.log_change(db, "UpdatedMetadata", iid, level, public_id)


def _row(db: sqlite3.Connection, iid: int, content_type: int) -> AttachmentInfo | None:
    row = db.execute(
        "SELECT uuid, size, md5, compression, compressed_size, compressed_md5 FROM attachments"
        " WHERE iid = ? AND content_type = ?", (iid, content_type)).fetchone()
    if row is None:
        return None
    file_uuid, size, md5, compression, compressed_size, compressed_md5 = row
    return AttachmentInfo(content_type, file_uuid, size, md5, compressed_size if compression else size,
                          compressed_md5 if compression else md5, compression)


def _check_metadata_writable(archive: Archive, name: str) -> None:
    if name.isdigit() and len(name) <= 5 and int(name) < 1024:  # a built-in one by number, as Orthanc reads it
        raise PermissionError(f"The metadata {name!r} is reserved by the server")
    archive._check_writable(name)


def metadata_md5(value: str) -> str:
    """The MD5 in a metadata's ETag: of its UTF-8 value."""
    return md5_hex(value.encode("utf-8"))


@dataclass(frozen=True)
class PackedDicom:
    """A DICOM file stored compressed (``StorageCompression``): its compressed size and MD5, and the
    ``dicom-until-pixel-data`` attachment Orthanc keeps beside it (None for a file without pixel data)."""

    compressed_size: int
    compressed_md5: str
    until_pixel_data: tuple[str, int, str, int, str] | None  # uuid, size, md5, compressed size, compressed MD5

    @property
    def uuids(self) -> list[str]:
        return [self.until_pixel_data[0]] if self.until_pixel_data else []


def write_packed_dicom(files, data: bytes, pixel_data_offset: int | None) -> tuple[str, str, PackedDicom]:
    """Write a DICOM file compressed, with its part up to the pixel data as a second compressed file, as Orthanc
    does with StorageCompression; returns ``(uuid, uncompressed md5, packed)``."""
    stored = compress(data)
    file_uuid, stored_md5 = files.write(stored)
    until = None
    try:
        if pixel_data_offset:
            head = bytes(data[:pixel_data_offset])
            head_stored = compress(head)
            head_uuid, head_stored_md5 = files.write(head_stored)
            until = (head_uuid, len(head), md5_hex(head), len(head_stored), head_stored_md5)
    except BaseException:
        files.remove(file_uuid)
        raise
    return file_uuid, md5_hex(data), PackedDicom(len(stored), stored_md5, until)


def insert_until_pixel_data(db: sqlite3.Connection, instance_iid: int, packed: PackedDicom) -> None:
    """Inside the store's transaction: the row of the ``dicom-until-pixel-data`` attachment."""
    if packed.until_pixel_data:
        head_uuid, size, md5, stored_size, stored_md5 = packed.until_pixel_data
        db.execute("INSERT INTO attachments (iid, content_type, uuid, size, md5, compression, compressed_size,"
                   " compressed_md5) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (instance_iid, DICOM_UNTIL_PIXEL_DATA, head_uuid, size, md5, ZLIB, stored_size, stored_md5))
