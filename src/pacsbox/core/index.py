"""The SQLite index: resources, their main tags, attachments, metadata, changes and exports.

WAL journal, one connection per thread for reads, and one writer at a time behind a lock (SQLite serialises
writers anyway; taking the lock in Python avoids busy-waiting). ``synchronous=NORMAL`` keeps every committed
transaction across a crash of the process (kill -9), which is the failure tests produce.

Storing an instance changes ~20 pages; with SQLite's automatic checkpoint every 1000 WAL pages, one store in 50
would copy the WAL back and fsync twice (5-10 ms) before answering. A background thread checkpoints instead
(``PRAGMA wal_checkpoint(PASSIVE)`` never blocks writers), every ``_CHECKPOINT_EVERY`` commits; the automatic
checkpoint stays as a backstop, at a size the background thread keeps the WAL under.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .ids import Level
from .index_find import ANCESTOR_COLUMN, find_sql, fold
from .index_rows import (
    DESCRIBE,
    DESCRIBE_INSTANCE,
    Change,
    Export,
    NewResource,
    ResourceRow,
    TagConstraint,
    described,
    now_iso,
)
from .index_schema import SCHEMA, add_compression_columns

DICOM_ATTACHMENT = 1  # Orthanc's FileContentType_Dicom
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit
_CHECKPOINT_EVERY = 16  # commits between background checkpoints
_MARKS_KEPT = 64  # the last mark_stable commits whose flagged IDs are kept (Index.stable_marks_since)
_AUTOCHECKPOINT_PAGES = 10000  # the backstop (SQLite's default is 1000)


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (sqlite3.Connection itself cannot)."""


class Index:
    """The archive's database. Every method is one transaction; writers are serialised."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        # Weak: a thread's connection closes when the thread ends (one per DICOM association), not at close().
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._commits = 0
        self._changing_commits = 0  # commits that changed at least one row, but stability flags (``generation``)
        self._stability_marks = 0  # mark_stable commits that flagged something
        self._recent_marks: deque[tuple[int, tuple[str, ...]]] = deque(maxlen=_MARKS_KEPT)  # (number, public IDs)
        self._checkpoint_wanted = threading.Event()
        self._closing = False
        self._checkpointer: threading.Thread | None = None
        creating = not path.exists()
        with self._write_lock:
            db = self._connection(creating)
            if creating:
                db.executescript(f"BEGIN;{SCHEMA};COMMIT;")  # one transaction, no wait for the disk
                db.execute("PRAGMA synchronous=NORMAL")
            else:
                db.executescript(SCHEMA)  # executescript manages its own transaction
            add_compression_columns(db)

    # -- connections -------------------------------------------------------------------------------------
    def _connection(self, creating: bool = False) -> sqlite3.Connection:
        """This thread's connection. ``creating``: the file is new, and is made (WAL, tables) with
        ``synchronous=OFF``, which the caller sets back to NORMAL once the tables exist.

        With the usual settings, turning a new file to WAL and creating its tables waits for three or four
        fsyncs: 20-30 ms on these disks, most of a warm start and a tenth of a cold one. The new file holds nothing
        to protect yet, and a process killed meanwhile leaves either no table or all of them (one transaction):
        the page cache outlives the process.
        """
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60,
                                 factory=_Connection)
            db.execute("PRAGMA synchronous=OFF" if creating else "PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA cache_size=-16000")
            db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            self._local.db = db
            with self._connections_lock:
                self._connections.add(db)
        return db

    @contextmanager
    def writing(self, *, counted: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success and rolled back on any exception; ``counted=False`` only
        for ``mark_stable``, which counts its commits itself (see ``generation``)."""
        db = self._connection()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            changes = db.total_changes
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._commits += 1
            if counted and db.total_changes != changes:  # (the stability watcher commits every second, mostly nothing)
                self._changing_commits += 1
            if self._commits % _CHECKPOINT_EVERY == 0:
                self._want_checkpoint()

    def generation(self) -> tuple[int, int]:
        """A value that differs between two calls when anything was committed to the index in between: the commits
        that changed at least one row, counted once committed, then those of ``mark_stable`` that flagged some
        resources stable (the second number alone moves when only stability flags changed: ``stable_marks_since``
        names the resources). Every write goes through ``writing`` and the index has one writer process, the
        server's (``open_archive``); a commit that changed no row (the stability watcher's, most seconds) changes
        nothing that was read. Read it *before* reading what depends on the index: an answer read after it can only
        be newer than it says. (Not SQLite's ``data_version``, which would also see other processes: it costs
        several microseconds a request, this two attribute reads.)"""
        return self._changing_commits, self._stability_marks

    def stable_marks_since(self, marks: int) -> list[str] | None:
        """The public IDs flagged stable by the ``mark_stable`` commits after the first ``marks`` of them (the
        second number of ``generation``), or None when they are no longer all kept."""
        kept = list(self._recent_marks)
        if marks < self._stability_marks and (not kept or kept[0][0] > marks + 1):
            return None
        return [public_id for number, ids in kept if number > marks for public_id in ids]

    @property
    def is_writing(self) -> bool:
        """Whether a write transaction is running now (a hint: the next moment may differ)."""
        return self._write_lock.locked()

    def _want_checkpoint(self) -> None:
        if self._checkpointer is None and not self._closing:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="pacsbox-checkpoint", daemon=True)
            self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _checkpoint_loop(self) -> None:
        db = self._connection()
        while True:
            self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            if self._closing:
                return
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # busy or closing: the next round, or the automatic checkpoint, will do it
                continue

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        self._closing = True
        self._checkpoint_wanted.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        with self._connections_lock:
            for db in list(self._connections):
                # a connection made in a thread that is gone may refuse to close from here; that is harmless
                with contextlib.suppress(sqlite3.ProgrammingError):
                    db.close()
            self._connections.clear()
        self._local = threading.local()

    # -- ingest ------------------------------------------------------------------------------------------
    def find_iid(self, db: sqlite3.Connection, public_id: str, level: Level | None = None) -> int | None:
        row = db.execute("SELECT iid, level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
        if row is None or (level is not None and row[1] != level):
            return None
        return row[0]

    def insert_instance(
        self,
        db: sqlite3.Connection,
        levels: Sequence[NewResource],
        *,
        file_uuid: str,
        file_size: int,
        md5: str,
        index_in_series: int | None,
        metadata: dict[str, str],
        series_metadata: dict[str, str],
        compressed: tuple[int, str] | None = None,
    ) -> tuple[dict[Level, int], list[NewResource]]:
        """Insert an instance and whichever of its ancestors are new (inside the caller's transaction).

        Returns the iid of every level, and the newly created levels, patient first.
        """
        now = time.time()
        ancestors: dict[Level, int] = {}
        created: list[NewResource] = []
        parent: int | None = None
        # One query for the ancestors already there, one update for all of them: fewer statements, same rows.
        upper = [resource.public_id for resource in levels if resource.level != Level.INSTANCE]
        known = dict(db.execute(
            f"SELECT public_id, iid FROM resources WHERE public_id IN ({','.join('?' * len(upper))})", upper
        ).fetchall()) if upper else {}
        touched: list[int] = []
        for resource in levels:
            iid = known.get(resource.public_id) if resource.level != Level.INSTANCE else None
            if iid is None:
                column_values = {level: ancestors.get(level) for level in (Level.PATIENT, Level.STUDY, Level.SERIES)}
                cursor = db.execute(
                    "INSERT INTO resources (public_id, level, parent, patient, study, series, main_tags, last_update,"
                    " index_in_series) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        resource.public_id,
                        int(resource.level),
                        parent,
                        column_values[Level.PATIENT],
                        column_values[Level.STUDY],
                        column_values[Level.SERIES],
                        json.dumps(resource.main_tags, ensure_ascii=False),
                        now,
                        index_in_series if resource.level == Level.INSTANCE else None,
                    ),
                )
                iid = cursor.lastrowid
                if resource.level != Level.INSTANCE:
                    db.execute(f"UPDATE resources SET {ANCESTOR_COLUMN[resource.level]} = ? WHERE iid = ?", (iid, iid))
                db.executemany(
                    "INSERT INTO lookup (iid, tag, value, folded) VALUES (?, ?, ?, ?)",
                    [(iid, tag, value, fold(value)) for tag, value in resource.main_tags.items()],
                )
                created.append(resource)
            else:
                touched.append(iid)
            ancestors[resource.level] = iid
            parent = iid
        if touched:
            marks = ",".join("?" * len(touched))
            db.execute(f"UPDATE resources SET last_update = ?, is_stable = 0 WHERE iid IN ({marks})", (now, *touched))
        instance_iid = ancestors[Level.INSTANCE]
        db.execute(
            "INSERT INTO attachments (iid, content_type, uuid, size, md5, compression, compressed_size,"
            " compressed_md5) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (instance_iid, DICOM_ATTACHMENT, file_uuid, file_size, md5, int(compressed is not None),
             *(compressed or (None, None))),
        )
        db.executemany(
            "INSERT OR REPLACE INTO metadata (iid, name, value) VALUES (?, ?, ?)",
            [(instance_iid, name, value) for name, value in metadata.items()]
            + [(ancestors[Level.SERIES], name, value) for name, value in series_metadata.items()],
        )
        return ancestors, created

    @staticmethod
    def children_indexes(db: sqlite3.Connection, iid: int) -> list[int | None]:
        """IndexInSeries of every instance of a series (for its completeness)."""
        return [row[0] for row in db.execute("SELECT index_in_series FROM resources WHERE parent = ?", (iid,))]

    @staticmethod
    def set_metadata_many(db: sqlite3.Connection, iid: int, values: dict[str, str]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO metadata (iid, name, value) VALUES (?, ?, ?)",
            [(iid, name, value) for name, value in values.items()],
        )

    @staticmethod
    def log_change(db: sqlite3.Connection, change_type: str, iid: int, level: Level, public_id: str) -> None:
        db.execute(
            "INSERT INTO changes (change_type, iid, level, public_id, date) VALUES (?, ?, ?, ?, ?)",
            (change_type, iid, int(level), public_id, now_iso()),
        )

    # -- reading resources -------------------------------------------------------------------------------
    def list_resources(self, level: Level, since: int = 0, limit: int | None = None) -> list[tuple[int, str]]:
        """``(iid, public_id)`` of one level, in insertion order, paged like Orthanc's lists."""
        sql = "SELECT iid, public_id FROM resources WHERE level = ? ORDER BY iid LIMIT ? OFFSET ?"
        limit = -1 if limit is None else sqlite_integer(limit)
        return self._connection().execute(sql, (int(level), limit, sqlite_integer(since))).fetchall()

    def count(self, level: Level) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM resources WHERE level = ?", (int(level),)).fetchone()[0]

    def lookup(self, public_id: str) -> tuple[int, Level] | None:
        row = self._connection().execute(
            "SELECT iid, level FROM resources WHERE public_id = ?", (public_id,)
        ).fetchone()
        return None if row is None else (row[0], Level(row[1]))

    def describe(self, iids: Sequence[int]) -> list[ResourceRow]:
        """Full rows for resources of one level, in the order of ``iids``."""
        if not iids:
            return []
        rows: dict[int, ResourceRow] = {}
        with self.reading() as db:
            for chunk in _chunks(iids):
                marks = ",".join("?" * len(chunk))
                for (iid, public_id, level, main_tags, parent_id, last_update, stable, protected, index,
                     file_uuid, file_size, patient_tags, compression) in db.execute(
                    "SELECT r.iid, r.public_id, r.level, r.main_tags, p.public_id, r.last_update, r.is_stable,"
                    " r.is_protected, r.index_in_series, a.uuid, a.size, pat.main_tags, a.compression"
                    " FROM resources r LEFT JOIN resources p ON p.iid = r.parent"
                    " LEFT JOIN attachments a ON a.iid = r.iid AND a.content_type = 1"
                    " LEFT JOIN resources pat ON pat.iid = r.patient AND r.level = 1"
                    f" WHERE r.iid IN ({marks})",
                    chunk,
                ):
                    rows[iid] = ResourceRow(
                        iid=iid,
                        public_id=public_id,
                        level=Level(level),
                        main_tags=json.loads(main_tags),
                        parent_id=parent_id,
                        last_update=last_update,
                        is_stable=bool(stable),
                        is_protected=bool(protected),
                        index_in_series=index,
                        file_uuid=file_uuid,
                        file_size=file_size,
                        file_compressed=bool(compression),
                        patient_main_tags=json.loads(patient_tags) if patient_tags else None,
                    )
                for parent, public_id, index in db.execute(
                    f"SELECT parent, public_id, index_in_series FROM resources WHERE parent IN ({marks}) ORDER BY iid",
                    chunk,
                ):
                    rows[parent].children.append(public_id)
                    rows[parent].children_indexes.append(index)
        return [rows[iid] for iid in iids if iid in rows]

    def describe_one(self, public_id: str, level: Level) -> ResourceRow | None:
        """``describe`` of one resource named by its public ID (None unless the index holds it at ``level``), in
        one statement: a read answered on the event loop pays one SQLite round trip instead of five (lookup,
        BEGIN, row, children, COMMIT), and one statement reads one consistent snapshot as well."""
        found = self._connection().execute(
            (DESCRIBE_INSTANCE if level == Level.INSTANCE else DESCRIBE) + "WHERE r.public_id = ? AND r.level = ?",
            (public_id, int(level))).fetchone()
        return None if found is None else described(found)

    def describe_below(self, public_id: str, level: Level, target: Level, at_most: int) -> list[ResourceRow] | None:
        """``describe`` of the resources of level ``target`` below the resource ``public_id`` of ``level``, in the
        order of their iid, in one statement; None when there are none (the resource may be unknown: ask again
        the slow way) or more than ``at_most``."""
        column = _column_below(level, target)
        select = DESCRIBE_INSTANCE if target == Level.INSTANCE else DESCRIBE
        rows = self._connection().execute(
            select + f"JOIN resources above ON above.iid = r.{column}"
            " WHERE above.public_id = ? AND above.level = ? AND r.level = ? ORDER BY r.iid LIMIT ?",
            (public_id, int(level), int(target), at_most + 1)).fetchall()
        if not rows or len(rows) > at_most:
            return None
        return [described(found) for found in rows]

    def child_iids(self, iid: int) -> list[int]:
        rows = self._connection().execute("SELECT iid FROM resources WHERE parent = ? ORDER BY iid", (iid,))
        return [row[0] for row in rows]

    def descendant_iids(self, iid: int, level: Level, target: Level) -> list[int]:
        """Every resource of level ``target`` below (or at) the resource ``iid`` of level ``level``."""
        column = _column_below(level, target)
        rows = self._connection().execute(
            f"SELECT iid FROM resources WHERE {column} = ? AND level = ? ORDER BY iid", (iid, int(target))
        )
        return [row[0] for row in rows]

    def descendant_ids(self, iid: int, level: Level, target: Level, limit: int | None = None) -> list[str]:
        """``descendant_iids``' public IDs, in the same order (no row to describe), the first ``limit`` of them."""
        column = _column_below(level, target)
        rows = self._connection().execute(
            f"SELECT public_id FROM resources WHERE {column} = ? AND level = ? ORDER BY iid LIMIT ?",
            (iid, int(target), -1 if limit is None else sqlite_integer(limit)),
        )
        return [row[0] for row in rows]

    def count_below(self, iid: int, level: Level, target: Level) -> int:
        """How many resources of level ``target`` are below the resource ``iid`` of level ``level``."""
        column = _column_below(level, target)
        return self._connection().execute(
            f"SELECT COUNT(*) FROM resources WHERE {column} = ? AND level = ?", (iid, int(target))
        ).fetchone()[0]

    def ancestor_iid(self, iid: int, target: Level) -> int | None:
        column = ANCESTOR_COLUMN[target]
        row = self._connection().execute(f"SELECT {column} FROM resources WHERE iid = ?", (iid,)).fetchone()
        return None if row is None else row[0]

    def attachments_below(self, iid: int, level: Level) -> list[tuple[str, int]]:
        """``(uuid, size)`` of every DICOM file at or below a resource."""
        column = ANCESTOR_COLUMN[level]
        return self._connection().execute(
            f"SELECT a.uuid, a.size FROM resources r JOIN attachments a ON a.iid = r.iid WHERE r.{column} = ?"
            " ORDER BY r.iid",
            (iid,),
        ).fetchall()

    def attachment_sizes_below(self, iid: int, level: Level) -> list[tuple[int, int, int]]:
        """``(content type, size, size on disk)`` of every attachment at or below a resource."""
        column = ANCESTOR_COLUMN[level]
        return self._connection().execute(
            f"SELECT a.content_type, a.size, COALESCE(a.compressed_size, a.size) FROM resources r"
            f" JOIN attachments a ON a.iid = r.iid WHERE r.{column} = ?", (iid,)).fetchall()

    def total_disk_size(self) -> int:
        """Bytes the attachments take on disk (compressed ones as stored)."""
        return self._connection().execute(
            "SELECT COALESCE(SUM(COALESCE(compressed_size, size)), 0) FROM attachments").fetchone()[0]

    def all_attachment_uuids(self) -> set[str]:
        return {row[0] for row in self._connection().execute("SELECT uuid FROM attachments")}

    def referenced_uuids(self, names: list[str]) -> set[str]:
        """Those of ``names`` an attachment row references (the recovery sweep asks a folder at a time)."""
        found: set[str] = set()
        for start in range(0, len(names), 500):  # under SQLite's oldest limit of bound variables (999)
            chunk = names[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._connection().execute(
                f"SELECT uuid FROM attachments WHERE uuid IN ({marks})", chunk))
        return found

    def total_size(self) -> int:
        return self._connection().execute("SELECT COALESCE(SUM(size), 0) FROM attachments").fetchone()[0]

    # -- deleting ----------------------------------------------------------------------------------------
    def delete(self, db: sqlite3.Connection, iid: int) -> tuple[int | None, list[str]]:
        """Delete a resource, its descendants and then its ancestors left childless.

        Returns the remaining ancestor's iid (None if none is left) and the attachment UUIDs to remove.
        """
        level = Level(db.execute("SELECT level FROM resources WHERE iid = ?", (iid,)).fetchone()[0])
        uuids = [file_uuid for file_uuid, _ in self.attachments_below(iid, level)]  # same connection: same transaction
        parent = db.execute("SELECT parent FROM resources WHERE iid = ?", (iid,)).fetchone()[0]
        db.execute("DELETE FROM resources WHERE iid = ?", (iid,))
        while parent is not None:
            if db.execute("SELECT 1 FROM resources WHERE parent = ? LIMIT 1", (parent,)).fetchone():
                break
            grandparent = db.execute("SELECT parent FROM resources WHERE iid = ?", (parent,)).fetchone()[0]
            # an emptied ancestor goes with its own attachments (those a client put on the study, say)
            uuids += [row[0] for row in db.execute("SELECT uuid FROM attachments WHERE iid = ?", (parent,))]
            db.execute("DELETE FROM resources WHERE iid = ?", (parent,))
            parent = grandparent
        return parent, uuids

    def clear(self) -> None:
        """Empty every table and restart the change sequence (reset)."""
        with self.writing() as db:
            self.clear_all(db)

    @staticmethod
    def clear_all(db: sqlite3.Connection) -> None:
        """Inside the caller's transaction: empty every table of the archive (the XNAT catalog's too), restart
        the sequences; only ``properties`` stays (this run's own state, not archive content)."""
        db.execute("PRAGMA defer_foreign_keys = ON")
        tables = [row[0] for row in db.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            if table != "properties":
                db.execute(f'DELETE FROM main."{table}"')
        db.execute("DELETE FROM main.sqlite_sequence")

    # -- metadata and flags ------------------------------------------------------------------------------
    def metadata(self, iid: int) -> dict[str, str]:
        rows = self._connection().execute("SELECT name, value FROM metadata WHERE iid = ?", (iid,))
        return dict(rows.fetchall())

    def set_metadata(self, iid: int, name: str, value: str, change: tuple[Level, str] | None) -> bool:
        """Write one metadata value; False when the resource is gone (deleted since the caller looked it up)."""
        with self.writing() as db:
            if db.execute("SELECT 1 FROM resources WHERE iid = ?", (iid,)).fetchone() is None:
                return False
            self.set_metadata_many(db, iid, {name: value})
            if change:
                self.log_change(db, "UpdatedMetadata", iid, *change)
        return True

    def delete_metadata(self, iid: int, name: str, change: tuple[Level, str] | None) -> bool:
        with self.writing() as db:
            deleted = db.execute("DELETE FROM metadata WHERE iid = ? AND name = ?", (iid, name)).rowcount > 0
            if deleted and change:
                self.log_change(db, "UpdatedMetadata", iid, *change)
        return deleted

    def set_protected(self, iid: int, protected: bool) -> None:
        with self.writing() as db:
            db.execute("UPDATE resources SET is_protected = ? WHERE iid = ?", (int(protected), iid))

    def mark_stable(self, older_than: float) -> list[tuple[int, Level, str]]:
        """Flag as stable the patients, studies and series not updated since ``older_than``; log the changes."""
        # counted apart (``generation``): a flag changes the answers that show these resources, not every answer
        with self.writing(counted=False) as db:
            rows = db.execute(
                "SELECT iid, level, public_id FROM resources WHERE is_stable = 0 AND level < 3 AND last_update <= ?"
                " ORDER BY level DESC, iid",
                (older_than,),
            ).fetchall()
            for iid, level, public_id in rows:
                db.execute("UPDATE resources SET is_stable = 1 WHERE iid = ?", (iid,))
                self.log_change(db, "Stable" + Level(level).title, iid, Level(level), public_id)
        if rows:  # (committed: the IDs are kept before the count moves, so a reader of the count finds them)
            self._recent_marks.append((self._stability_marks + 1, tuple(row[2] for row in rows)))
            self._stability_marks += 1
        return [(iid, Level(level), public_id) for iid, level, public_id in rows]

    # -- changes and exports -----------------------------------------------------------------------------
    def changes(self, since: int, limit: int) -> list[Change]:
        rows = self._connection().execute(
            "SELECT seq, change_type, level, public_id, date FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (sqlite_integer(since), sqlite_integer(limit)),
        )
        return [Change(seq, kind, Level(level), public_id, date) for seq, kind, level, public_id, date in rows]

    def last_change(self) -> Change | None:
        row = self._connection().execute(
            "SELECT seq, change_type, level, public_id, date FROM changes ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Change(row[0], row[1], Level(row[2]), row[3], row[4])

    def last_seq(self, table: str) -> int:
        """The highest sequence number ever given in ``changes`` or ``exports`` (survives deletions)."""
        row = self._connection().execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return row[0] if row else 0

    def clear_changes(self) -> None:
        with self.writing() as db:
            db.execute("DELETE FROM changes")

    def exports(self, since: int, limit: int) -> list[Export]:
        rows = self._connection().execute(
            "SELECT seq, level, public_id, remote_modality, patient_id, study_uid, series_uid, sop_uid, date"
            " FROM exports WHERE seq > ? ORDER BY seq LIMIT ?",
            (sqlite_integer(since), sqlite_integer(limit)),
        )
        return [Export(r[0], Level(r[1]), *r[2:]) for r in rows]

    def log_export(self, level: Level, public_id: str, remote_modality: str, uids: Sequence[str]) -> None:
        with self.writing() as db:
            db.execute(
                "INSERT INTO exports (level, public_id, remote_modality, patient_id, study_uid, series_uid, sop_uid,"
                " date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (int(level), public_id, remote_modality, *uids, now_iso()),
            )

    def clear_exports(self) -> None:
        with self.writing() as db:
            db.execute("DELETE FROM exports")

    # -- properties --------------------------------------------------------------------------------------
    def get_property(self, name: str) -> str | None:
        row = self._connection().execute("SELECT value FROM properties WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_property(self, name: str, value: str | None) -> None:
        with self.writing() as db:
            if value is None:
                db.execute("DELETE FROM properties WHERE name = ?", (name,))
            else:
                db.execute("INSERT OR REPLACE INTO properties (name, value) VALUES (?, ?)", (name, value))

    # -- find --------------------------------------------------------------------------------------------
    def find(
        self, level: Level, constraints: Iterable[TagConstraint], modalities_in_study: TagConstraint | None = None
    ) -> list[int]:
        """iids at ``level`` whose own or ancestors' main tags satisfy every constraint, in insertion order."""
        sql, params = find_sql(level, constraints, modalities_in_study)
        return [row[0] for row in self._connection().execute(sql, params)]


_SQLITE_MAX = 2**63 - 1


def sqlite_integer(value: int) -> int:
    """A non-negative count or sequence number as SQLite can take it: past 2^63 - 1 it means "no bound", and
    SQLite's integers stop there (a larger Python int raises OverflowError)."""
    return min(max(value, 0), _SQLITE_MAX)


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _column_below(level: Level, target: Level) -> str:
    """The column naming a resource of ``level`` in the rows of its descendants at ``target``: children through
    the parent's index, deeper descendants through the ancestor column."""
    return "parent" if target == level + 1 else ANCESTOR_COLUMN[level]
