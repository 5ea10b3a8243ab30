"""The index's tables, made if missing each time an index is opened, and the upgrade of older index files."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    iid INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    level INTEGER NOT NULL,
    parent INTEGER REFERENCES resources(iid) ON DELETE CASCADE,
    patient INTEGER,            -- ancestors (self included), so that finds join nothing
    study INTEGER,
    series INTEGER,
    main_tags TEXT NOT NULL,    -- JSON object {keyword: value}
    last_update REAL NOT NULL,
    is_stable INTEGER NOT NULL DEFAULT 0,
    is_protected INTEGER NOT NULL DEFAULT 0,
    index_in_series INTEGER
);
CREATE INDEX IF NOT EXISTS resources_by_parent ON resources(parent);
CREATE INDEX IF NOT EXISTS resources_by_level ON resources(level, iid);
CREATE INDEX IF NOT EXISTS resources_unstable ON resources(last_update) WHERE is_stable = 0 AND level < 3;

CREATE TABLE IF NOT EXISTS attachments (
    iid INTEGER NOT NULL REFERENCES resources(iid) ON DELETE CASCADE,
    content_type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    size INTEGER NOT NULL,      -- uncompressed (Orthanc's UncompressedSize and UncompressedMD5)
    md5 TEXT NOT NULL,
    compression INTEGER NOT NULL DEFAULT 0,  -- Orthanc's CompressionType: 0 none, 1 zlib with its size first
    compressed_size INTEGER,    -- NULL when not compressed (then equal to size and md5)
    compressed_md5 TEXT,
    PRIMARY KEY (iid, content_type)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attachments_by_uuid ON attachments(uuid);

CREATE TABLE IF NOT EXISTS metadata (
    iid INTEGER NOT NULL REFERENCES resources(iid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (iid, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lookup (
    iid INTEGER NOT NULL REFERENCES resources(iid) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value TEXT NOT NULL,
    folded TEXT NOT NULL,
    PRIMARY KEY (iid, tag)
) WITHOUT ROWID;
-- Finds probe lookup by its primary key from each candidate resource (``Index.find``). Indexes on every value
-- cost each instance stored ~20 more pages to write, so they were dropped (also from earlier indexes); only the
-- DICOM identifiers are indexed, one entry per resource, as Orthanc does: exact finds on them (``/tools/lookup``,
-- a C-FIND or C-MOVE by UID) then start from the few matching rows instead of scanning the whole level.
DROP INDEX IF EXISTS lookup_exact;
DROP INDEX IF EXISTS lookup_folded;
-- (One partial index per tag: SQLite uses a partial index only when the query's terms imply its WHERE clause
-- literally, which ``tag = 'X'`` does for ``WHERE tag = 'X'`` but not for ``WHERE tag IN (...)``.)
CREATE INDEX IF NOT EXISTS lookup_patient_id ON lookup(value) WHERE tag = 'PatientID';
CREATE INDEX IF NOT EXISTS lookup_study_uid ON lookup(value) WHERE tag = 'StudyInstanceUID';
CREATE INDEX IF NOT EXISTS lookup_accession ON lookup(value) WHERE tag = 'AccessionNumber';
CREATE INDEX IF NOT EXISTS lookup_series_uid ON lookup(value) WHERE tag = 'SeriesInstanceUID';
CREATE INDEX IF NOT EXISTS lookup_sop_uid ON lookup(value) WHERE tag = 'SOPInstanceUID';

CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_type TEXT NOT NULL,
    iid INTEGER NOT NULL REFERENCES resources(iid) ON DELETE CASCADE,
    level INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_iid ON changes(iid);

CREATE TABLE IF NOT EXISTS exports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    level INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    remote_modality TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    date TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS properties (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def add_compression_columns(db: sqlite3.Connection) -> None:
    """Indexes made before attachments could be compressed lack three columns: add them (idempotent)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(attachments)")}
    for column, kind in (("compression", "INTEGER NOT NULL DEFAULT 0"), ("compressed_size", "INTEGER"),
                         ("compressed_md5", "TEXT")):
        if column not in columns:
            db.execute(f"ALTER TABLE attachments ADD COLUMN {column} {kind}")
