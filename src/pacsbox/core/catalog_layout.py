"""XNAT's folders under the storage directory, and the atomic file writes and links that fill them.

``archive/<project>/arc001/<session>/SCANS/<scan>/<resource>/...`` for scans, ``.../RESOURCES/<resource>/``
for session resources, ``archive/<project>/resources/<resource>/`` and ``archive/<project>/subjects/<subject>/
<resource>/`` for project and subject resources (where xnatpy's ``expected_data_dir`` looks), and
``prearchive/<project>/<timestamp>/<session>/`` for the prearchive.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from .errors import Conflict, InvalidName
from .safe_paths import confined_join, encode_name, encode_path, encoded_join

_CHUNK = 1024 * 1024
TEMPORARY_SUFFIX = ".pacsbox-tmp"  # files being written; swept after an unclean stop


class Layout:
    """Paths of the XNAT tree and the file operations on it.

    Every path is built here from labels, scan IDs and file names through ``safe_paths``: each becomes its
    ``encode_name`` (the label itself for the usual ``[A-Za-z0-9_-]`` labels) and the result is confined to the
    archive or prearchive folder, so that no value a client or a DICOM file sends can reach outside them."""

    def __init__(self, root: Path, *, sync: bool) -> None:
        self.root = root
        self.archive_root = root / "archive"
        self.prearchive_root = root / "prearchive"
        self.sync = sync
        self._writing: set[str] = set()  # names of the temporary files being written (kept by the sweep)
        self._writing_lock = threading.Lock()
        # resolved once: the roots are the operator's, only the names joined below them are untrusted
        self._resolved = {self.archive_root: self.archive_root.resolve(),
                          self.prearchive_root: self.prearchive_root.resolve()}

    # -- paths ----------------------------------------------------------------------------------------------
    def _archive(self, *texts: str) -> Path:
        return encoded_join(self.archive_root, *texts, resolved_root=self._resolved[self.archive_root])

    def project_dir(self, project: str) -> Path:
        return self._archive(project)

    def subject_dir(self, project: str, subject_label: str) -> Path:
        return self._archive(project, "subjects", subject_label)

    def session_dir(self, project: str, label: str) -> Path:
        return self._archive(project, "arc001", label)

    def scan_dir(self, project: str, session_label: str, scan: str) -> Path:
        return self._archive(project, "arc001", session_label, "SCANS", scan)

    def prearchive_dir(self, project: str, timestamp: str, name: str, *below: str) -> Path:
        """A prearchive session's folder, or (``below``: ``SCANS``, a scan ID, ``DICOM``) a folder in it."""
        return encoded_join(self.prearchive_root, project, timestamp, name, *below,
                            resolved_root=self._resolved[self.prearchive_root])

    def resource_dir(self, kind: str, project: str, label: str, *, subject_label: str = "",
                     session_label: str = "", scan: str = "", assessor: str = "") -> Path:
        if kind == "experiment" and assessor:  # an assessor's resources, in its session's folder
            return self._archive(project, "arc001", session_label, "ASSESSORS", assessor, label)
        if kind == "project":
            return self._archive(project, "resources", label)
        if kind == "subject":
            return self._archive(project, "subjects", subject_label, label)
        if kind == "experiment":
            return self._archive(project, "arc001", session_label, "RESOURCES", label)
        if kind == "reconstruction":  # XNAT keeps reconstructions' files in the session's PROCESSED folder
            return self._archive(project, "arc001", session_label, "PROCESSED", scan, label)
        return self._archive(project, "arc001", session_label, "SCANS", scan, label)

    @staticmethod
    def file_path(folder: Path, relative: str) -> Path:
        """Where a resource file (``relative``: a checked path with ``/`` separators) is, confined to ``folder``
        (a folder this layout made): for writing and deleting."""
        return confined_join(folder, encode_path(relative))

    @staticmethod
    def below(folder: Path, *texts: str) -> Path:
        """``folder`` (a folder this layout made, confined already) joined with the names of ``texts`` without
        resolving again: an ``encode_name`` cannot hold a separator or be ``..``, and only pacsbox writes below
        ``folder``. For paths built many times per request (a prearchive listing fills every scan's folder)."""
        return folder.joinpath(*(encode_name(text) for text in texts))

    @staticmethod
    def listed_file(folder: Path, relative: str) -> Path:
        """The same path as ``file_path`` without resolving it, for listings of many files: every part is an
        ``encode_name``, which cannot hold a separator or be ``..``, and only pacsbox writes below ``folder``."""
        return folder.joinpath(encode_path(relative))

    # -- writing ------------------------------------------------------------------------------------------
    def write_file(self, target: Path, source: bytes | BinaryIO) -> tuple[int, str]:
        """Write ``target`` whole or not at all: a temporary name, fsync (SyncStorageArea), then rename.
        Returns ``(size, md5)``. Conflict when a file stands where a folder of the path must be or a folder where
        the file must be (``x`` then ``x/y``, or ``x/y`` then ``x``)."""
        # the temporary name is of fixed length, not derived from the target's: a 255-byte name stays writable
        temporary = target.parent / f".{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
        digest = hashlib.md5()
        size = 0
        with self._writing_lock:  # before the file exists: the sweep never sees it unannounced
            self._writing.add(temporary.name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                if isinstance(source, (bytes, bytearray, memoryview)):
                    handle.write(source)
                    digest.update(source)
                    size = len(source)
                else:
                    source.seek(0)
                    while chunk := source.read(_CHUNK):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                if self.sync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as error:
            _discard(temporary)
            raise _path_error(error, target) from None
        except BaseException:
            _discard(temporary)
            raise
        finally:
            with self._writing_lock:
                self._writing.discard(temporary.name)
        return size, digest.hexdigest()

    @staticmethod
    def link(source: Path, target: Path) -> None:
        """Show a stored file at ``target``: a hard link (no copy, no extra space), a copy across devices."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def sync_links(self, folder: Path, expected: Mapping[str, Path], keep: Iterable[str] = ()) -> None:
        """Make ``folder`` show exactly the ``expected`` files (file name -> stored file) plus the ``keep`` paths
        (uploaded files): links to files no longer expected (deleted through another face) go, missing or stale
        links come. Names are ``encode_name``-d here; a name a folder already takes is left unshown on disk
        (the listing, read from the index, still has it)."""
        on_disk = {encode_name(name): source for name, source in expected.items()}
        kept = {encode_path(path).split("/", 1)[0] for path in keep}
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name not in on_disk and entry.name not in kept and not entry.name.endswith(TEMPORARY_SUFFIX) \
                        and (entry.is_symlink() or entry.is_file()):
                    entry.unlink(missing_ok=True)  # unlink never follows a link: only the entry goes
        for name, source in on_disk.items():
            target = folder / name  # an encode_name: one part, never ".." nor a separator
            with contextlib.suppress(FileNotFoundError):
                if target.lstat().st_ino == source.stat().st_ino:
                    continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError):
                self.link(source, target)  # FileNotFoundError: the source went between the listing and now

    @staticmethod
    def remove_tree(path: Path, prune_below: Path | None = None) -> None:
        """Remove a folder, then its parents left empty strictly below ``prune_below`` (a prearchive
        timestamp folder, a project's arc001)."""
        shutil.rmtree(path, ignore_errors=True)
        if prune_below is None:
            return
        for parent in path.parents:
            if parent == prune_below or prune_below not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    @staticmethod
    def move(source: Path, target: Path) -> None:
        """Rename a folder (a relabelled subject or session, a prearchive session moved to another project);
        Conflict when something already stands at ``target``."""
        if source.exists() and source != target:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            except OSError as error:
                raise _path_error(error, target) from None

    def clear(self) -> None:
        shutil.rmtree(self.archive_root, ignore_errors=True)
        shutil.rmtree(self.prearchive_root, ignore_errors=True)

    def sweep_temporary_files(self) -> None:
        """Remove files whose write a crash interrupted (never referenced by a committed row). It walks the whole
        tree: run in the background after an unclean stop (core.recovery), it keeps the files being written."""
        for top in (self.archive_root, self.prearchive_root):
            for folder, _, names in os.walk(top):  # a folder a reset moves away meanwhile is skipped
                for name in names:
                    if name.endswith(TEMPORARY_SUFFIX):
                        with self._writing_lock:  # asked after listing: a file listed was announced before
                            if name in self._writing:
                                continue
                        _discard(Path(folder, name))


def _path_error(error: OSError, target: Path) -> Exception:
    """The client's error for a write the file system refused because of the name (others stay as they are)."""
    if error.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY):
        return Conflict(f"Cannot store {target.name!r}: something else already stands at that name")
    if error.errno == errno.ENAMETOOLONG:
        return InvalidName(f"Cannot store {target.name[:80]!r}: the path is too long")
    return error


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):  # missing, or its folder never came (a file stands there)
        path.unlink()
