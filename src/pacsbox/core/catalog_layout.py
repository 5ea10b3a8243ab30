"""XNAT's folders under the storage directory, and the atomic file writes and links that fill them.

``archive/<project>/arc001/<session>/SCANS/<scan>/<resource>/...`` for scans, ``.../RESOURCES/<resource>/``
for session resources, ``archive/<project>/resources/<resource>/`` and ``archive/<project>/subjects/<subject>/
<resource>/`` for project and subject resources (where xnatpy's ``expected_data_dir`` looks), and
``prearchive/<project>/<timestamp>/<session>/`` for the prearchive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1024 * 1024
TEMPORARY_SUFFIX = ".pacsbox-tmp"  # files being written; swept after an unclean stop


class Layout:
    """Paths of the XNAT tree and the file operations on it."""

    def __init__(self, root: Path, *, sync: bool) -> None:
        self.root = root
        self.archive_root = root / "archive"
        self.prearchive_root = root / "prearchive"
        self.sync = sync

    # -- paths ----------------------------------------------------------------------------------------------
    def project_dir(self, project: str) -> Path:
        return self.archive_root / project

    def session_dir(self, project: str, label: str) -> Path:
        return self.archive_root / project / "arc001" / label

    def prearchive_dir(self, project: str, timestamp: str, name: str) -> Path:
        return self.prearchive_root / project / timestamp / name

    def resource_dir(self, kind: str, project: str, label: str, *, subject_label: str = "",
                     session_label: str = "", scan: str = "") -> Path:
        if kind == "project":
            return self.project_dir(project) / "resources" / label
        if kind == "subject":
            return self.project_dir(project) / "subjects" / subject_label / label
        if kind == "experiment":
            return self.session_dir(project, session_label) / "RESOURCES" / label
        return self.session_dir(project, session_label) / "SCANS" / scan / label

    # -- writing ------------------------------------------------------------------------------------------
    def write_file(self, target: Path, source: bytes | BinaryIO) -> tuple[int, str]:
        """Write ``target`` whole or not at all: a temporary name, fsync (SyncStorageArea), then rename.
        Returns ``(size, md5)``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")
        digest = hashlib.md5()
        size = 0
        try:
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
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
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
        """Make ``folder`` show exactly the ``expected`` files (name -> stored file) plus the ``keep`` names:
        links to files no longer expected (deleted through another face) go, missing or stale links come."""
        keep = set(keep)
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.is_file() and entry.name not in expected and entry.name not in keep \
                        and not entry.name.endswith(TEMPORARY_SUFFIX):
                    entry.unlink(missing_ok=True)
        for name, source in expected.items():
            target = folder / name
            with contextlib.suppress(FileNotFoundError):
                if target.stat().st_ino == source.stat().st_ino:
                    continue
            with contextlib.suppress(FileNotFoundError):  # the source went between the listing and now
                self.link(source, target)

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
        if source.exists() and source != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

    def clear(self) -> None:
        shutil.rmtree(self.archive_root, ignore_errors=True)
        shutil.rmtree(self.prearchive_root, ignore_errors=True)

    def sweep_temporary_files(self) -> None:
        """Remove files whose write a crash interrupted (never referenced by a committed row)."""
        for top in (self.archive_root, self.prearchive_root):
            if top.is_dir():
                for path in top.rglob(f"*{TEMPORARY_SUFFIX}"):
                    path.unlink(missing_ok=True)
