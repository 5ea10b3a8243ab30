"""Named snapshots of a whole archive, restored like a template database between tests.

A snapshot is a copy of the index (SQLite's backup API) plus hard links to the stored files: stored files are
never modified in place (writes go to a new name, deletes unlink), so a link is as good as a copy, costs no
space and takes microseconds. Restoring swaps the index rows inside one write transaction and relinks only the
files that differ, so restoring the same snapshot before every test touches just what the last test changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, UnknownResource

if TYPE_CHECKING:
    from .archive import Archive

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEPT_TABLES = {"properties"}  # this run's own state (the clean-close flag), not archive content
_FOLDERS = ("archive", "prearchive")  # XNAT's trees, beside the file store


class Snapshots:
    """Save, restore, list and delete the snapshots of one archive (kept under ``<storage>/snapshots``)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.root = archive.config.storage_path / "snapshots"

    # -- verbs ---------------------------------------------------------------------------------------------
    def save(self, name: str) -> dict[str, Any]:
        """Save the archive as it is now under ``name`` (replacing an older snapshot of that name)."""
        target = self._path(name)
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        (staging / "files").mkdir(parents=True)
        started = time.perf_counter()
        try:
            # The write lock keeps every writer out while the index and the files are copied, so the two agree.
            with self.archive.index.writing():
                reader = sqlite3.connect(self.archive.index.path)
                try:
                    copy = sqlite3.connect(staging / "index.sqlite")
                    with copy:
                        reader.backup(copy)
                    uuids = [row[0] for row in copy.execute("SELECT uuid FROM attachments")]
                    copy.close()
                finally:
                    reader.close()
                store = self.archive.store_area
                for file_uuid in uuids:
                    os.link(store.path_of(file_uuid), staging / "files" / file_uuid)
                for folder in _FOLDERS:
                    source = store.root / folder
                    if source.is_dir():
                        shutil.copytree(source, staging / folder, copy_function=os.link)
            summary = {"Name": name, "Instances": len(uuids), "Date": time.strftime("%Y%m%dT%H%M%S"),
                       "Seconds": round(time.perf_counter() - started, 4)}
            (staging / "snapshot.json").write_text(json.dumps(summary))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary

    def restore(self, name: str) -> dict[str, Any]:
        """Make the archive exactly what it was when ``name`` was saved (index, change log, files)."""
        source = self._path(name)
        if not (source / "snapshot.json").is_file():
            raise UnknownResource(f"no snapshot named {name!r}")
        started = time.perf_counter()
        index, store = self.archive.index, self.archive.store_area
        db = None
        try:
            with index.writing() as db:
                db.execute("PRAGMA defer_foreign_keys = ON")
                db.execute("ATTACH DATABASE ? AS snapshot", (str(source / "index.sqlite"),))
                self._copy_rows(db)
                wanted = {row[0] for row in db.execute("SELECT uuid FROM main.attachments")}
                present = set(store.all_uuids())
                for file_uuid in present - wanted:
                    store.remove(file_uuid)
                for file_uuid in wanted - present:
                    target = store.path_of(file_uuid)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(source / "files" / file_uuid, target)
                for folder in _FOLDERS:
                    shutil.rmtree(store.root / folder, ignore_errors=True)
                    if (source / folder).is_dir():
                        shutil.copytree(source / folder, store.root / folder, copy_function=os.link)
        finally:
            if db is not None:
                db.execute("DETACH DATABASE snapshot")
        summary = json.loads((source / "snapshot.json").read_text())
        return {**summary, "Seconds": round(time.perf_counter() - started, 4)}

    def list(self) -> list[dict[str, Any]]:
        """Every saved snapshot's summary, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            if _NAME.fullmatch(entry.name) and (entry / "snapshot.json").is_file():
                found.append(json.loads((entry / "snapshot.json").read_text()))
        return found

    def delete(self, name: str) -> None:
        """Forget a snapshot (the archive itself is untouched)."""
        path = self._path(name)
        if not path.is_dir():
            raise UnknownResource(f"no snapshot named {name!r}")
        shutil.rmtree(path)

    # -- helpers -------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise BadRequest(f"a snapshot name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                             f"or digit: {name!r}")
        return self.root / name

    @staticmethod
    def _copy_rows(db: sqlite3.Connection) -> None:
        tables = [row[0] for row in db.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        saved = {row[0] for row in db.execute(
            "SELECT name FROM snapshot.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        for table in tables:
            if table in _KEPT_TABLES:
                continue
            db.execute(f'DELETE FROM main."{table}"')
            if table in saved:
                columns = ", ".join(f'"{row[1]}"' for row in db.execute(f'PRAGMA main.table_info("{table}")'))
                db.execute(f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM snapshot."{table}"')
        # AUTOINCREMENT counters (the change log's sequence) come back too
        db.execute("DELETE FROM main.sqlite_sequence")
        db.execute("INSERT INTO main.sqlite_sequence SELECT * FROM snapshot.sqlite_sequence")
