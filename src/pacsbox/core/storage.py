"""The file store: attachment bytes under the storage directory, written atomically and durably."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from .errors import StorageFull

_CHUNK = 1024 * 1024
_FILES_PER_FOLDER = 64  # new files share a leaf folder, 64 at a time (a 1M-file store: ~16k folders of 64)
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
TEMPORARY_SUFFIX = ".tmp"
PLAIN_FOLDER = ".plain"  # readable copies of compressed files (not two hex digits: never taken for stored files)
PLAIN_COPIES_LIMIT = 512 * 1024 * 1024  # bytes of those copies kept (checked every _PLAIN_TRIM_EVERY copies)
_PLAIN_TRIM_EVERY = 32
FRESH_FOLDER = ".fresh"  # empty files made ahead of writes (FreshFiles); not two hex digits either
T = TypeVar("T")
_ZLIB_LEVEL = 6  # Orthanc's ZlibCompressor level: the same bytes, so the same CompressedMD5 as Orthanc's


def md5_hex(data: bytes | memoryview) -> str:
    """``data``'s MD5 in hex (hashlib loads OpenSSL's library: with the first digest, not at start)."""
    import hashlib

    return hashlib.md5(data).hexdigest()


def compress(data: bytes | memoryview) -> bytes:
    """Orthanc's zlib storage format (``StorageCompression``, ``/attachments/.../compress``): the uncompressed size
    as a little-endian 64-bit integer, then the zlib stream."""
    return struct.pack("<Q", len(data)) + zlib.compress(data, _ZLIB_LEVEL)


def decompress(data: bytes, limit: int | None = None) -> bytes:
    """The bytes of Orthanc's zlib storage format; ValueError when they are not in it (or inflate past ``limit``,
    or to another size than they declare)."""
    if len(data) < 8:
        raise ValueError("a compressed file holds at least its 8-byte size")
    (size,) = struct.unpack("<Q", data[:8])
    if limit is not None and size > limit:
        raise ValueError(f"the compressed file declares {size} bytes, over the limit of {limit}")
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(data[8:], size + 1)
    except zlib.error as error:
        raise ValueError(f"not a zlib stream: {error}") from None
    if len(plain) != size:
        raise ValueError(f"the compressed file declares {size} bytes but inflates to {len(plain)}")
    if not inflater.eof:  # cut short (its checksum is missing): not the file that was stored
        raise ValueError("the compressed file is truncated")
    return plain


def is_disk_full(error: BaseException) -> bool:
    """Whether an error says the file system (or a quota) has no room left: an OSError with ENOSPC, EDQUOT or
    EFBIG, or SQLite's SQLITE_FULL ("database or disk is full")."""
    if isinstance(error, OSError):
        return error.errno in _FULL_ERRNOS
    return type(error).__name__ == "OperationalError" and "disk is full" in str(error)


def storage_full(error: BaseException | None = None) -> StorageFull:
    """The core's error for a full disk, with what the system said."""
    reason = f": {error.strerror or error}" if isinstance(error, OSError) else f": {error}" if error else ""
    return StorageFull(f"The storage area has no room left{reason}")


class FileStore:
    """Files named by UUID in two levels of folders (``ab/cd/abcd...``), like Orthanc's storage area.

    Orthanc spreads files over the 65536 folders at random, so that nearly every file of a young store makes one
    or two folders: ~0.5 ms of system time each, more than writing a small file. Here 64 files in a row share a
    random folder: their UUIDs (still version 4, with 106 random bits) begin with the same four digits.
    """

    def __init__(self, root: Path, *, sync: bool = True) -> None:
        self.root = root
        self.sync = sync
        self._folders: set[Path] = set()  # folders known to exist: saves a mkdir system call per write
        self._prefix = ""  # the first four hex digits of new names, and how many more names get them
        self._left = 0
        self._lock = threading.Lock()
        self._plain_made = 0  # inflated copies made (core.attachments' compressed files)
        self._new_files: set[str] | None = None  # names made by this process, while a recovery sweep is pending
        root.mkdir(parents=True, exist_ok=True)
        self._fresh = FreshFiles(root / FRESH_FOLDER)

    def close(self) -> None:
        """Stop making files ahead and remove those not taken."""
        self._fresh.close()

    def path_of(self, file_uuid: str) -> Path:
        return self.root / file_uuid[0:2] / file_uuid[2:4] / file_uuid

    def write(self, data: bytes | memoryview) -> tuple[str, str]:
        """Store bytes under a new UUID; return ``(uuid, md5)``. The file is complete on disk when this returns.

        Written to a temporary name, flushed with fsync (when SyncStorageArea), then renamed: a crash leaves
        either no file or the whole file, never a partial one under the final name.
        """
        file_uuid, target, temporary = self._new_target()
        try:
            handle, temporary = self._create(temporary)
            with handle:
                handle.write(data)
                self._finish(handle)
            self._place(temporary, target)
        except BaseException as error:
            self._discard(temporary, error)
        return file_uuid, md5_hex(data)

    def write_stream(self, source: BinaryIO) -> tuple[str, str]:
        """Like write, copying from a file object in chunks (bounded memory for large uploads)."""
        from hashlib import md5  # (as in md5_hex)

        file_uuid, target, temporary = self._new_target()
        digest = md5()
        source.seek(0)
        try:
            handle, temporary = self._create(temporary)
            with handle:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
                self._finish(handle)
            self._place(temporary, target)
        except BaseException as error:
            self._discard(temporary, error)
        return file_uuid, digest.hexdigest()

    @staticmethod
    def _discard(temporary: Path, error: BaseException) -> None:
        """A write failed: its temporary file goes at once (a full disk must not fill up with them), and a full
        disk is reported as such."""
        temporary.unlink(missing_ok=True)
        if is_disk_full(error):
            raise storage_full(error) from None
        raise error

    def free_bytes(self) -> int:
        """Bytes the storage area's file system still offers to this process."""
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def _new_target(self) -> tuple[str, Path, Path]:
        import uuid  # (it imports platform: loaded on first use, not at start)

        with self._lock:
            if self._left == 0:
                self._prefix, self._left = uuid.uuid4().hex[:4], _FILES_PER_FOLDER
            self._left -= 1
            file_uuid = self._prefix + str(uuid.uuid4())[4:]
            if self._new_files is not None:  # before the file exists: the sweep never sees it unremembered
                self._new_files.add(file_uuid)
        target = self.path_of(file_uuid)
        self._make_folder(target.parent)
        return file_uuid, target, target.with_name(target.name + TEMPORARY_SUFFIX)

    def _create(self, temporary: Path) -> tuple[BinaryIO, Path]:
        """An empty file to write, and its path: one made ahead (``FreshFiles``), else ``temporary``."""
        fresh = self._fresh.take()
        if fresh is not None:
            try:
                return open(fresh, "r+b"), fresh  # no O_CREAT: made ahead, and empty (only FreshFiles writes there)
            except FileNotFoundError:  # its folder went away (the store closed, another process opened it)
                pass
        return self._in_folder(temporary.parent, lambda: open(temporary, "wb")), temporary

    def _place(self, written: Path, target: Path) -> None:
        """Rename a written file to its stored name."""
        self._in_folder(target.parent, lambda: os.replace(written, target))

    def _in_folder(self, folder: Path, action: Callable[[], T]) -> T:
        """``action`` on a path in ``folder``, once more after making the folder again if it went away (a reset
        while another thread was writing)."""
        try:
            return action()
        except FileNotFoundError:
            self._folders.discard(folder)
            self._make_folder(folder)
            return action()

    def _make_folder(self, folder: Path) -> None:
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)

    def _finish(self, handle: BinaryIO) -> None:
        if self.sync:
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, file_uuid: str) -> bytes:
        return self.path_of(file_uuid).read_bytes()

    def read_plain(self, file_uuid: str, compressed: bool) -> bytes:
        """The content of a file, inflated when it is stored compressed."""
        data = self.read(file_uuid)
        return decompress(data) if compressed else data

    def readable_path(self, file_uuid: str, compressed: bool) -> Path:
        """A path holding the plain content of a file: the file itself, or for a compressed one a copy inflated
        once under ``.plain`` (for the code that sends or links files by path). FileNotFoundError when the file
        is gone. The copy goes with the file (``remove``), and all copies with ``clear``/``clear_plain_copies``."""
        if not compressed:
            return self.path_of(file_uuid)
        import uuid  # (it imports platform: loaded on first use, not at start)

        copy = self.root / PLAIN_FOLDER / file_uuid
        if not copy.exists():
            data = self.read_plain(file_uuid, True)
            copy.parent.mkdir(parents=True, exist_ok=True)
            temporary = copy.with_name(f"{file_uuid}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")
            try:
                temporary.write_bytes(data)
                os.replace(temporary, copy)
            except BaseException as error:
                self._discard(temporary, error)
            with self._lock:
                self._plain_made += 1
                trim = self._plain_made % _PLAIN_TRIM_EVERY == 0
            if trim:
                self._trim_plain_copies()
        return copy

    def _trim_plain_copies(self) -> None:
        """Keep the inflated copies under PLAIN_COPIES_LIMIT bytes: the least recently made go first, but none
        made in the last minute (a reader may be about to open it)."""
        entries = []
        for entry in os.scandir(self.root / PLAIN_FOLDER):
            try:
                stats = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((stats.st_mtime, stats.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        young = time.time() - 60
        for made, size, path in sorted(entries):
            if total <= PLAIN_COPIES_LIMIT or made > young:
                break
            Path(path).unlink(missing_ok=True)
            total -= size

    def clear_plain_copies(self) -> None:
        """Remove the inflated copies (they are made again on demand)."""
        shutil.rmtree(self.root / PLAIN_FOLDER, ignore_errors=True)

    def open(self, file_uuid: str) -> BinaryIO:
        return open(self.path_of(file_uuid), "rb")

    def iter_chunks(self, file_uuid: str) -> Iterator[bytes]:
        with self.open(file_uuid) as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    def remove(self, file_uuid: str) -> None:
        self.path_of(file_uuid).unlink(missing_ok=True)
        (self.root / PLAIN_FOLDER / file_uuid).unlink(missing_ok=True)

    def remember_new_files(self) -> None:
        """Remember the name of every file made from now on, until ``forget_new_files`` (core.recovery)."""
        with self._lock:
            self._new_files = set()

    def forget_new_files(self) -> None:
        with self._lock:
            self._new_files = None

    def is_new_file(self, file_uuid: str) -> bool:
        """Whether this process made ``file_uuid`` since ``remember_new_files``."""
        with self._lock:
            return self._new_files is not None and file_uuid in self._new_files

    def all_uuids(self) -> Iterator[str]:
        """Every stored file (and leftover temporary file) by name, for the sweep after an unclean stop."""
        for first in self.root.iterdir():
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in first.iterdir():
                if second.is_dir():
                    for entry in second.iterdir():
                        yield entry.name

    def clear(self) -> None:
        """Remove every stored file."""
        self._left = 0
        self.clear_plain_copies()
        for entry in self.root.iterdir():
            if entry.is_dir() and len(entry.name) == 2:
                shutil.rmtree(entry, ignore_errors=True)
        self._folders.clear()

    def move_all_to(self, folder: Path) -> None:
        """Move every stored file into ``folder`` (on the same file system: renames of the top folders, whatever
        the number of files), for a reset to delete them once it has committed."""
        self._left = 0
        self.clear_plain_copies()
        folder.mkdir(parents=True, exist_ok=True)
        for entry in self.root.iterdir():
            if entry.is_dir() and len(entry.name) == 2:
                os.replace(entry, folder / entry.name)
        self._folders.clear()


class FreshFiles:
    """Empty files made ahead of need by a thread of their own, for ``FileStore`` to write into and rename.

    Creating a file is the costliest system call of a small store on some file systems: ext4 without a journal scans
    the inodes freed in the last seconds before it allocates one (0.07 ms an open on a quiet disk, over 1 ms while
    another process deletes files), more than the file's fsync. Made here, between writes, a write is an open of an
    existing empty file, its bytes, fsync and a rename. The thread starts with the first write, tops the files up to
    ``HIGH`` whenever fewer than ``LOW`` are left (one wake-up every ``HIGH - LOW`` writes), and stops with the store;
    the folder is emptied when a store opens, so a crash leaves nothing behind for long. A write that finds none (a
    burst, a full disk) creates its own file, as before.
    """

    LOW, HIGH = 8, 32

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)  # a previous process's: a crash may have left one half written
        self._ready: deque[Path] = deque()
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._made = 0

    def take(self) -> Path | None:
        """An empty file of this folder, now the caller's; None when none is ready."""
        try:
            path: Path | None = self._ready.popleft()
        except IndexError:
            path = None
        if len(self._ready) < self.LOW and not self._closed:
            if self._thread is None:
                self._start()
            self._wanted.set()
        return path

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._make, name="pacsbox-fresh-files", daemon=True)
                self._thread.start()

    def _make(self) -> None:
        prefix = f"{os.getpid()}-{os.urandom(4).hex()}-"
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closed:
                return
            try:
                self.folder.mkdir(exist_ok=True)
                while len(self._ready) < self.HIGH and not self._closed:
                    self._made += 1
                    path = self.folder / f"{prefix}{self._made}"
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                    self._ready.append(path)
            except OSError:  # a full disk, say: writers make their own files until a later call succeeds
                pass

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._ready.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
