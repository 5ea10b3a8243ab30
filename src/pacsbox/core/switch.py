"""Replacing the whole archive state (a reset, a snapshot restore) so that a crash at any moment leaves either the
old state or the new one, with every listed instance backed by its file.

The commit point is the SQLite transaction that swaps the index rows: it also writes a journal entry (the
``pending_switch`` property) naming a staging folder inside the storage directory. Before it, only additions
happened (files linked in under new names, XNAT folders built in the staging folder): a crash leaves the old
rows, and unreferenced files that the start-up sweep removes. After it come the moves and deletions, each
repeatable: the XNAT folders are swapped in from the staging folder, files no row references are removed, then
the journal entry goes. A start that finds the journal entry finishes the switch; a staging folder the journal
does not name is litter from a switch that never committed, and goes.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .archive import Archive

JOURNAL = "pending_switch"
STAGING_PREFIX = ".switch-"
FOLDERS = ("archive", "prearchive")  # XNAT's trees beside the file store (core.catalog_layout)
_OLD = ".old-"  # inside a staging folder: what the switch moved out of the way


class StateSwitch:
    """One replacement of the archive's state; the caller holds the archive's gate exclusively."""

    def __init__(self, archive: Archive) -> None:
        import uuid  # (it imports platform: loaded on first use, not at start)

        self.archive = archive
        self.root = archive.config.storage_path
        self.staging = self.root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        self.staging.mkdir(parents=True)
        self._linked: list[str] = []

    def link_file(self, source: Path, file_uuid: str) -> None:
        """Show ``source`` in the file store under ``file_uuid`` (before the commit: harmless if it never comes)."""
        target = self.archive.store_area.path_of(file_uuid)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except FileExistsError:  # left by an earlier attempt that never committed: files never change content
            return
        self._linked.append(file_uuid)

    def record(self, db: sqlite3.Connection, new_folders: Iterable[str]) -> None:
        """Write the journal entry inside the caller's swapping transaction (its commit commits the switch)."""
        entry = json.dumps({"staging": self.staging.name, "folders": sorted(new_folders)})
        db.execute("INSERT OR REPLACE INTO properties (name, value) VALUES (?, ?)", (JOURNAL, entry))

    def abandon(self) -> None:
        """The swapping transaction failed: take back what was added, the old state stays."""
        for file_uuid in self._linked:
            self.archive.store_area.remove(file_uuid)
        shutil.rmtree(self.staging, ignore_errors=True)

    def finish(self, new_folders: Iterable[str], garbage: Iterable[str] = (), *, empty_store: bool = False) -> None:
        """After the commit: swap the XNAT folders, remove the files no row references, close the journal."""
        _swap_folders(self.root, self.staging, set(new_folders))
        if empty_store:
            self.archive.store_area.move_all_to(self.staging / f"{_OLD}files")
        for file_uuid in garbage:
            self.archive.store_area.remove(file_uuid)
        self.archive.index.set_property(JOURNAL, None)
        shutil.rmtree(self.staging, ignore_errors=True)


def recover_switch(archive: Archive) -> bool:
    """At start: finish a switch whose commit a crash interrupted and remove staging litter. True when a switch
    was finished (the caller then sweeps unreferenced files)."""
    root = archive.config.storage_path
    entry = archive.index.get_property(JOURNAL)
    pending = None
    if entry is not None:
        try:
            pending = json.loads(entry)
            staging_name = str(pending["staging"])
            folders = {str(name) for name in pending["folders"]}
        except (ValueError, KeyError, TypeError):
            pending = None
        if pending is not None and staging_name.startswith(STAGING_PREFIX) and "/" not in staging_name:
            _swap_folders(root, root / staging_name, folders)
        archive.index.set_property(JOURNAL, None)
    if root.is_dir():
        for litter in root.iterdir():
            if litter.name.startswith(STAGING_PREFIX):
                shutil.rmtree(litter, ignore_errors=True)
    return entry is not None


def _swap_folders(root: Path, staging: Path, new_folders: set[str]) -> None:
    """Make each XNAT folder the staged one (or absent); every step can run again after a crash."""
    import uuid  # (it imports platform: loaded on first use, not at start)

    for folder in FOLDERS:
        live, staged = root / folder, staging / folder
        if folder in new_folders and not staged.exists():
            continue  # moved in already
        if live.exists():
            staging.mkdir(parents=True, exist_ok=True)
            os.replace(live, staging / f"{_OLD}{folder}-{uuid.uuid4().hex}")
        if folder in new_folders:
            os.replace(staged, live)
