"""The sweep after an unclean stop, run in a background thread once the server answers: its cost grows with the
archive (every stored file is listed), so a restart after ``kill -9`` is as quick as any other.

It removes the files the index does not reference (written but never committed, deleted from the index but not
yet from disk, temporary files), then publishes ``UncleanStopSwept`` for listeners with files of their own (the
XNAT catalog's temporary files). Beside a running server it must never take a file that is in use:

* a file this process made is never removed: the file store remembers the names it creates while the sweep is
  pending (``FileStore.remember_new_files``), so an upload whose rows are not yet committed keeps its file;
* each folder of the file store is swept holding the archive's gate shared, its names checked against the index
  at that moment: a restore, which links files in before its index commit, holds the gate alone meanwhile.

Until the sweep has finished the index stays marked open, so a stop before then leaves the work to the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .events import UncleanStopSwept
from .storage import TEMPORARY_SUFFIX

if TYPE_CHECKING:
    from .archive import Archive

LOG = logging.getLogger("pacsbox.recovery")


class RecoverySweep:
    """The pending sweep of one archive (``archive.recovery``): ``start`` runs it in the background, ``run`` here."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.finished = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        archive.store_area.remember_new_files()

    def start(self) -> None:
        """Sweep in a background thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._thread = threading.Thread(target=self._run_logged, name="pacsbox-recovery-sweep", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the sweep finished within ``timeout`` seconds."""
        return self.finished.wait(timeout)

    def stop(self) -> None:
        """End the sweep where it is (the archive closes); what is left waits for the next start."""
        with self._lock:
            self._stopping.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:  # left for the next start: the index stays marked open
            LOG.exception("the sweep after an unclean stop failed")

    def run(self) -> None:
        """Sweep now, in the calling thread."""
        began = time.monotonic()
        removed = 0
        for folder in _leaf_folders(self.archive.store_area.root):
            if self._stopping.is_set():
                return
            removed += self._sweep_folder(folder)
        if self._stopping.is_set():
            return
        self.archive.events.publish(UncleanStopSwept())
        self.archive.store_area.forget_new_files()
        self.finished.set()
        LOG.info("swept after an unclean stop: %d unreferenced files removed in %.1f s", removed,
                 time.monotonic() - began)

    def _sweep_folder(self, folder: Path) -> int:
        """Remove the files of one leaf folder (``ab/cd``) that neither the index nor this process knows."""
        archive = self.archive
        with archive.gate.shared():
            try:
                names = os.listdir(folder)
            except OSError:  # gone: a reset moved the store away meanwhile
                return 0
            if not names:
                return 0
            store = archive.store_area  # asked after listing: a file listed was remembered before it was made
            candidates = [name for name in names if not store.is_new_file(name.removesuffix(TEMPORARY_SUFFIX))]
            referenced = archive.index.referenced_uuids(candidates)
            removed = 0
            for name in candidates:
                if name not in referenced:
                    try:
                        os.unlink(folder / name)
                        removed += 1
                    except FileNotFoundError:
                        pass
            return removed


def _leaf_folders(root: Path):
    """The file store's ``ab/cd`` folders (two hex digits each), listed as the sweep goes."""
    try:
        tops = sorted(entry.name for entry in os.scandir(root) if len(entry.name) == 2 and entry.is_dir())
    except OSError:
        return
    for top in tops:
        try:
            seconds = sorted(entry.name for entry in os.scandir(root / top) if entry.is_dir())
        except OSError:
            continue
        for second in seconds:
            yield root / top / second
