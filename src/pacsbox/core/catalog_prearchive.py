"""XNAT's prearchive: DICOM sessions waiting to be archived, moved or deleted.

A prearchive session is a set of archive instances (one study) with its project, subject and session labels.
Its folder ``prearchive/<project>/<timestamp>/<session>/SCANS/<scan>/DICOM/`` holds hard links to the stored
files, made when the session is imported or, for sessions received over C-STORE, when it is first read
(so that receiving copies nothing). Sessions received over DICOM are RECEIVING until no instance has come
for StableAge seconds (Orthanc's notion of a finished study), then READY.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import Experiment, label_of
from .catalog_files import FileEntry, dicom_file_name
from .catalog_import import scan_id_of
from .errors import ArchiveError, BadRequest, Conflict, UnknownResource
from .gate import beside_reset_and_restore
from .ids import Level

if TYPE_CHECKING:
    from .catalog import Catalog
    from .catalog_import import DicomTypes

_log = logging.getLogger(__name__)
_SESSION = ("SELECT psid, project, timestamp, name, subject, study, source, uploaded, lastmod,"
            " (SELECT COUNT(*) FROM xnat_prearchive_instances i WHERE i.psid = p.psid),"
            " (SELECT main_tags FROM resources WHERE public_id = p.study) FROM xnat_prearchive p")
# The session's instances with their series and stored file (the index's tables, read in one query).
_FILES = ("SELECT r.public_id, r.main_tags, s.public_id, s.main_tags, a.uuid, a.size, a.md5, a.compression"
          " FROM xnat_prearchive_instances p JOIN resources r ON r.public_id = p.instance"
          " JOIN resources s ON s.iid = r.series JOIN attachments a ON a.iid = r.iid AND a.content_type = 1"
          " WHERE p.psid = ? ORDER BY s.iid, r.index_in_series, r.iid")


# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.catalog.archive.gate)


@dataclass(frozen=True)
class PrearchiveSession:
    psid: int
    project: str
    timestamp: str
    name: str
    subject: str
    study: str  # Orthanc study ID
    source: str  # import, dicom
    uploaded: float
    lastmod: float
    status: str  # READY, RECEIVING
    study_tags: dict[str, str]
    instance_count: int


@dataclass(frozen=True)
class PrearchiveScan:
    id: str
    series: str  # Orthanc series ID
    series_tags: dict[str, str]
    files: list[FileEntry]


def new_timestamp(now: float) -> str:
    """XNAT's prearchive timestamp folder name (``20261121_170942123``, milliseconds last)."""
    return time.strftime("%Y%m%d_%H%M%S", time.localtime(now)) + f"{int(now * 1000) % 1000:03d}"


class Prearchive:
    """The prearchive of the catalog (``catalog.importer.prearchive``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = catalog.index
        self.layout = catalog.layout
        self.store_area = catalog.archive.store_area
        self.stable_age = catalog.archive.config.StableAge

    # -- filing -------------------------------------------------------------------------------------------
    def add(self, project: str, subject: str, name: str, study: str, instance_ids: list[str],
            source: str) -> PrearchiveSession:
        """File imported instances: into the prearchive session of the same study and project, or a new one."""
        name = label_of(name or study[:8], "session label")
        with self.index.writing() as db:
            psid = self._session_for(db, project, subject, name, study, source)
            db.executemany("INSERT OR IGNORE INTO xnat_prearchive_instances (psid, instance) VALUES (?, ?)",
                           [(psid, instance) for instance in instance_ids])
        session = self._by_psid(psid)
        self.materialise(session)
        return session

    def receive(self, db: sqlite3.Connection, project: str, subject: str, name: str, study: str,
                instance: str) -> None:
        """File one instance received over DICOM (inside the archive's store transaction; rows only)."""
        psid = self._session_for(db, project, subject, name, study, "dicom")
        db.execute("INSERT OR IGNORE INTO xnat_prearchive_instances (psid, instance) VALUES (?, ?)", (psid, instance))

    @staticmethod
    def _session_for(db: sqlite3.Connection, project: str, subject: str, name: str, study: str,
                     source: str) -> int:
        now = time.time()
        row = db.execute("SELECT psid FROM xnat_prearchive WHERE study = ? AND project = ?",
                         (study, project)).fetchone()
        if row is not None:
            db.execute("UPDATE xnat_prearchive SET lastmod = ? WHERE psid = ?", (now, row[0]))
            return row[0]
        stamp = now
        while db.execute("SELECT 1 FROM xnat_prearchive WHERE project = ? AND timestamp = ? AND name = ?",
                         (project, new_timestamp(stamp), name)).fetchone():
            stamp += 0.001
        cursor = db.execute(
            "INSERT INTO xnat_prearchive (project, timestamp, name, subject, study, source, uploaded, lastmod)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (project, new_timestamp(stamp), name, subject, study, source, now, now))
        return cursor.lastrowid

    # -- reading ------------------------------------------------------------------------------------------
    def sessions(self, project: str | None = None) -> list[PrearchiveSession]:
        with self.index.reading() as db:
            if project is None:
                rows = db.execute(f"{_SESSION} ORDER BY project, timestamp").fetchall()
            else:
                rows = db.execute(f"{_SESSION} WHERE project = ? ORDER BY timestamp", (project,)).fetchall()
        sessions = [self._session(row) for row in rows]
        for session in sessions:
            if session.source == "dicom":
                try:
                    self.materialise(session)
                except (OSError, ArchiveError) as error:  # one session's folder never hides the others
                    _log.warning("prearchive session %s: its folder could not be filled: %s", session.psid, error)
        return sessions

    def session(self, project: str, timestamp: str, name: str) -> PrearchiveSession:
        with self.index.reading() as db:
            row = db.execute(f"{_SESSION} WHERE project = ? AND timestamp = ? AND name = ?",
                             (project, timestamp, name)).fetchone()
        if row is None:
            raise UnknownResource(f"Unknown prearchive session /prearchive/projects/{project}/{timestamp}/{name}")
        return self._session(row)

    def _by_psid(self, psid: int) -> PrearchiveSession:
        with self.index.reading() as db:
            return self._session(db.execute(f"{_SESSION} WHERE psid = ?", (psid,)).fetchone())

    def _session(self, row) -> PrearchiveSession:
        psid, project, timestamp, name, subject, study, source, uploaded, lastmod, count, study_tags = row
        receiving = source == "dicom" and time.time() - lastmod < self.stable_age
        return PrearchiveSession(psid, project, timestamp, name, subject, study, source, uploaded, lastmod,
                                 "RECEIVING" if receiving else "READY", json.loads(study_tags or "{}"), count)

    def scans(self, session: PrearchiveSession) -> list[PrearchiveScan]:
        """The session's series as scans (ID = SeriesNumber made a label), each with its files."""
        grouped: OrderedDict[str, tuple[dict[str, str], list[FileEntry]]] = OrderedDict()
        with self.index.reading() as db:
            for public_id, tags, series, series_tags, file_uuid, size, md5, packed in db.execute(_FILES,
                                                                                                  (session.psid,)):
                entry = grouped.setdefault(series, (json.loads(series_tags), []))
                entry[1].append(FileEntry(dicom_file_name(tags, public_id), size, md5,
                                          {"format": "DICOM", "content": "RAW"},
                                          self.store_area.readable_path(file_uuid, bool(packed)),
                                          public_id))
        scans: list[PrearchiveScan] = []
        taken: set[str] = set()
        for series, (tags, files) in grouped.items():
            scan_id = scan_id_of(tags.get("SeriesNumber") or "", taken)
            taken.add(scan_id)
            scans.append(PrearchiveScan(scan_id, series, tags, files))
        return scans

    def scan(self, session: PrearchiveSession, scan_id: str) -> PrearchiveScan:
        for scan in self.scans(session):
            if scan.id == scan_id:
                return scan
        raise UnknownResource(f"Unknown scan {scan_id} in prearchive session {session.name}")

    def folder(self, session: PrearchiveSession) -> Path:
        return self.layout.prearchive_dir(session.project, session.timestamp, session.name)

    @_gated
    def materialise(self, session: PrearchiveSession) -> None:
        """Make the session's folder show its files (hard links into the file store)."""
        folder = self.folder(session)
        scans = self.scans(session)
        for scan in scans:
            self.layout.sync_links(self.layout.below(folder, "SCANS", scan.id, "DICOM"),
                                   {f.path: f.disk for f in scan.files})
        if scans:
            folder.mkdir(parents=True, exist_ok=True)

    # -- actions ------------------------------------------------------------------------------------------
    @_gated
    def archive(self, session: PrearchiveSession, project: str = "", subject: str = "", label: str = "",
                overwrite: str = "none", types: DicomTypes | None = None) -> Experiment:
        """Archive a prearchive session as an experiment (XNAT's /data/services/archive)."""
        from .catalog_import import DicomTypes

        project = project or session.project
        if project == "Unassigned":
            raise BadRequest("The session belongs to no project: give project=")
        instance_ids = self._instances(session)
        if not instance_ids:
            raise BadRequest(f"Prearchive session {session.name} holds no instance any more")
        experiment = self.catalog.importer.file_session(
            project, label_of(subject or session.subject or session.name, "subject label"),
            label_of(label or session.name, "session label"), session.study, instance_ids, overwrite,
            types or DicomTypes())
        self._forget(session)
        return experiment

    @_gated
    def delete(self, session: PrearchiveSession) -> None:
        """Remove the session and its instances from the archive (those no archived session shows)."""
        instance_ids = self._instances(session)
        self._forget(session)
        for instance_id in instance_ids:
            with self.index.reading() as db:
                shown = db.execute(
                    "SELECT 1 FROM resources r JOIN resources s ON s.iid = r.series JOIN xnat_resources x"
                    " ON x.series = s.public_id WHERE r.public_id = ?"
                    " UNION SELECT 1 FROM xnat_prearchive_instances WHERE instance = ?",
                    (instance_id, instance_id)).fetchone()
            if not shown:
                try:
                    self.catalog.archive.delete(Level.INSTANCE, instance_id)
                except UnknownResource:
                    continue

    @_gated
    def move(self, session: PrearchiveSession, new_project: str) -> PrearchiveSession:
        """Move the session to another project's prearchive (the project must exist)."""
        self.catalog.project(new_project)
        with self.index.writing() as db:
            if db.execute("SELECT 1 FROM xnat_prearchive WHERE project = ? AND timestamp = ? AND name = ?",
                          (new_project, session.timestamp, session.name)).fetchone():
                raise Conflict(f"Project {new_project} already has the prearchive session {session.name}")
            db.execute("UPDATE xnat_prearchive SET project = ? WHERE psid = ?", (new_project, session.psid))
        moved = self._by_psid(session.psid)
        self.layout.move(self.folder(session), self.folder(moved))
        self.layout.remove_tree(self.folder(session), self.layout.prearchive_root)
        self.materialise(moved)
        return moved

    @_gated
    def rebuild(self, session: PrearchiveSession) -> PrearchiveSession:
        """Refresh the session's folder from the archive (XNAT rebuilds the session's XML)."""
        self.materialise(session)
        return self._by_psid(session.psid)

    def _instances(self, session: PrearchiveSession) -> list[str]:
        with self.index.reading() as db:
            return [r[0] for r in db.execute(
                "SELECT p.instance FROM xnat_prearchive_instances p JOIN resources r ON r.public_id = p.instance"
                " WHERE p.psid = ? ORDER BY r.iid", (session.psid,))]

    def _forget(self, session: PrearchiveSession) -> None:
        with self.index.writing() as db:
            db.execute("DELETE FROM xnat_prearchive WHERE psid = ?", (session.psid,))
        self.layout.remove_tree(self.folder(session), self.layout.prearchive_root)

    def forget_deleted_instances(self) -> None:
        """Drop the rows of instances deleted through another face, and the sessions left empty."""
        with self.index.reading() as db:
            if not db.execute("SELECT 1 FROM xnat_prearchive LIMIT 1").fetchone():
                return
        with self.index.writing() as db:
            db.execute("DELETE FROM xnat_prearchive_instances WHERE NOT EXISTS"
                       " (SELECT 1 FROM resources r WHERE r.public_id = instance)")
            emptied = db.execute(
                "SELECT psid, project, timestamp, name FROM xnat_prearchive p WHERE NOT EXISTS"
                " (SELECT 1 FROM xnat_prearchive_instances i WHERE i.psid = p.psid)").fetchall()
            db.executemany("DELETE FROM xnat_prearchive WHERE psid = ?", [(r[0],) for r in emptied])
        for _, project, timestamp, name in emptied:
            self.layout.remove_tree(self.layout.prearchive_dir(project, timestamp, name),
                                    self.layout.prearchive_root)
