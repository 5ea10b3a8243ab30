"""Named snapshots of a whole archive, restored like a template database between tests.

A snapshot is a copy of the index (SQLite's backup API) plus hard links to the stored files: stored files are
never modified in place (writes go to a new name, deletes unlink), so a link is as good as a copy, costs no
space and takes microseconds. Restoring swaps the index rows inside one write transaction and relinks only the
files that differ, so restoring the same snapshot before every test touches just what the last test changed.

Crash safety: a snapshot is built whole in a ``.data-<random>`` folder, and its name is a symbolic link to that
folder, replaced atomically (a rename); a kill at any moment leaves the old snapshot or the new one, and the
start-up sweep removes folders no name points at. A restore goes through ``core.switch`` (the index commit is
the switch; files to add come before it, files to remove after it). Reset, restore, save and delete hold the
archive's gate alone: in-flight stores finish first, new ones wait.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, UnknownResource
from .storage import is_disk_full, storage_full
from .switch import FOLDERS, StateSwitch

if TYPE_CHECKING:
    from .archive import Archive

_NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
MAX_NAME = 64
_KEPT_TABLES = {"properties"}  # this run's own state (the clean-close flag, the switch journal), not content
_DATA, _LINK = ".data-", ".link-"  # a snapshot's folder; a link being made (both hidden from names: no dot)


def is_snapshot_name(name: object) -> bool:
    """The one rule for snapshot names (they become folder names): 1-64 letters, digits, '.', '_' or '-', not
    starting with a dot (no hidden, '.' or '..' names)."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME and not name.startswith(".")
            and all(c in _NAME_CHARACTERS for c in name))


def check_snapshot_name(name: object) -> str:
    """``name`` when it is a valid snapshot name; BadRequest (400) saying the rule otherwise."""
    if not is_snapshot_name(name):
        shown = name[:80] if isinstance(name, str) else name
        raise BadRequest(f"a snapshot name is 1-{MAX_NAME} letters, digits, '.', '_' or '-', not starting with "
                         f"'.': {shown!r}")
    return name  # type: ignore[return-value]


class _Rule:
    """``_NAME.fullmatch(name)``, for callers of the former regular expression (lifecycle.manager)."""

    @staticmethod
    def fullmatch(name: str) -> bool:
        return is_snapshot_name(name)


_NAME = _Rule()


class Snapshots:
    """Save, restore, list and delete the snapshots of one archive (kept under ``<storage>/snapshots``)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.root = archive.config.storage_path / "snapshots"

    # -- verbs ---------------------------------------------------------------------------------------------
    def save(self, name: str) -> dict[str, Any]:
        """Save the archive as it is now under ``name`` (replacing an older snapshot of that name)."""
        target = self._path(name)
        started = time.perf_counter()
        with self.archive.gate.exclusive():
            self.root.mkdir(parents=True, exist_ok=True)
            data = self.root / f"{_DATA}{uuid.uuid4().hex}"
            link = self.root / f"{_LINK}{uuid.uuid4().hex}"
            try:
                summary = self._build(data, name, started)
                os.symlink(data.name, link)
                old = self._data_of(target)
                if target.is_dir() and not target.is_symlink():  # a snapshot saved before names were links
                    old = self.root / f"{_DATA}{uuid.uuid4().hex}"
                    os.replace(target, old)
                os.replace(link, target)  # the commit: the name now shows the new folder
            except BaseException as error:
                link.unlink(missing_ok=True)
                shutil.rmtree(data, ignore_errors=True)
                if is_disk_full(error):
                    raise storage_full(error) from None
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return summary

    def _build(self, staging: Path, name: str, started: float) -> dict[str, Any]:
        (staging / "files").mkdir(parents=True)
        # The write lock keeps other writers (metadata, the XNAT catalog) out while the index and the files are
        # copied, so the two agree; the gate already keeps stores and deletes out.
        with self.archive.index.writing():
            reader = sqlite3.connect(self.archive.index.path)
            try:
                copy = sqlite3.connect(staging / "index.sqlite")
                try:
                    with copy:
                        reader.backup(copy)
                    uuids = [row[0] for row in copy.execute("SELECT uuid FROM attachments")]
                finally:
                    copy.close()
            finally:
                reader.close()
            store = self.archive.store_area
            for file_uuid in uuids:
                os.link(store.path_of(file_uuid), staging / "files" / file_uuid)
            for folder in FOLDERS:
                source = store.root / folder
                if source.is_dir():
                    shutil.copytree(source, staging / folder, copy_function=os.link)
        summary = {"Name": name, "Instances": len(uuids), "Date": time.strftime("%Y%m%dT%H%M%S"),
                   "Seconds": round(time.perf_counter() - started, 4)}
        (staging / "snapshot.json").write_text(json.dumps(summary))
        return summary

    def restore(self, name: str) -> dict[str, Any]:
        """Make the archive exactly what it was when ``name`` was saved (index, change log, files, XNAT folders),
        once in-flight stores have finished. A crash at any moment leaves the state before or after."""
        path = self._path(name)
        started = time.perf_counter()
        index = self.archive.index
        with self.archive.gate.exclusive():
            source = path.resolve()
            if not (source / "snapshot.json").is_file():
                raise UnknownResource(f"no snapshot named {name!r}")
            switch = StateSwitch(self.archive)
            try:
                new_folders = [folder for folder in FOLDERS if (source / folder).is_dir()]
                for folder in new_folders:
                    shutil.copytree(source / folder, switch.staging / folder, copy_function=os.link)
                wanted = _snapshot_uuids(source / "index.sqlite")
                before = index.all_attachment_uuids()
                for file_uuid in wanted - before:
                    switch.link_file(source / "files" / file_uuid, file_uuid)
                attached = None
                try:
                    with index.writing() as db:
                        db.execute("PRAGMA defer_foreign_keys = ON")
                        db.execute("ATTACH DATABASE ? AS snapshot", (str(source / "index.sqlite"),))
                        attached = db
                        self._copy_rows(db)
                        switch.record(db, new_folders)
                finally:
                    if attached is not None:
                        attached.execute("DETACH DATABASE snapshot")
            except BaseException as error:
                switch.abandon()
                if is_disk_full(error):
                    raise storage_full(error) from None
                raise
            switch.finish(new_folders, before - wanted)
            summary = json.loads((source / "snapshot.json").read_text())
        return {**summary, "Seconds": round(time.perf_counter() - started, 4)}

    def list(self) -> list[dict[str, Any]]:
        """Every saved snapshot's summary, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            if is_snapshot_name(entry.name) and (entry / "snapshot.json").is_file():
                found.append(json.loads((entry / "snapshot.json").read_text()))
        return found

    def delete(self, name: str) -> None:
        """Forget a snapshot (the archive itself is untouched)."""
        path = self._path(name)
        with self.archive.gate.exclusive():
            if not path.is_dir():
                raise UnknownResource(f"no snapshot named {name!r}")
            data = self._data_of(path)
            if data is None:  # a snapshot saved before names were links: out of sight first, then removed
                data = self.root / f"{_DATA}{uuid.uuid4().hex}"
                os.replace(path, data)
            else:
                path.unlink()
            shutil.rmtree(data, ignore_errors=True)

    def sweep(self) -> None:
        """At start: remove what a save or a delete interrupted by a crash left (folders no name points at,
        links never renamed into place)."""
        if not self.root.is_dir():
            return
        entries = list(self.root.iterdir())
        shown = {data.name for entry in entries if (data := self._data_of(entry)) is not None}
        for entry in entries:
            if entry.name.startswith(_LINK) or entry.name.startswith(".staging-"):
                if entry.is_symlink() or not entry.is_dir():
                    entry.unlink(missing_ok=True)
                else:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(_DATA) and entry.name not in shown:
                shutil.rmtree(entry, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.root / check_snapshot_name(name)

    def _data_of(self, entry: Path) -> Path | None:
        """The folder a snapshot name links to; None for anything else (no link, a link out of the root)."""
        if not entry.is_symlink() or not is_snapshot_name(entry.name):
            return None
        pointed = os.readlink(entry)
        if "/" in pointed or not pointed.startswith(_DATA):
            return None
        return self.root / pointed

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


def _snapshot_uuids(path: Path) -> set[str]:
    """The stored files a snapshot's index references (read only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT uuid FROM attachments")}
    finally:
        db.close()
