"""The XNAT catalog's tables, apart from its code: created at every start (cheap, and the index's reset and
snapshots see them), while the catalog's modules load on first use (``core.catalog_lazy``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .index import Index

SCHEMA = """
CREATE TABLE IF NOT EXISTS xnat_projects (
    id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    inserted REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS xnat_subjects (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES xnat_projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    fields TEXT NOT NULL,
    inserted REAL NOT NULL,
    UNIQUE (project, label)
);
CREATE TABLE IF NOT EXISTS xnat_experiments (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES xnat_projects(id) ON DELETE CASCADE,
    subject TEXT NOT NULL REFERENCES xnat_subjects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    fields TEXT NOT NULL,
    study TEXT,                 -- Orthanc ID of the DICOM study the session was filled from
    inserted REAL NOT NULL,
    UNIQUE (project, label)
);
CREATE INDEX IF NOT EXISTS xnat_experiments_by_study ON xnat_experiments(study);
CREATE INDEX IF NOT EXISTS xnat_experiments_by_subject ON xnat_experiments(subject);
CREATE TABLE IF NOT EXISTS xnat_scans (
    experiment TEXT NOT NULL REFERENCES xnat_experiments(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    fields TEXT NOT NULL,
    inserted REAL NOT NULL,
    PRIMARY KEY (experiment, id)
);
CREATE TABLE IF NOT EXISTS xnat_resources (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,  -- XNAT's xnat_abstractresource_id
    owner TEXT NOT NULL,                    -- project:P, subject:S, experiment:E or scan:E/ID
    project TEXT NOT NULL REFERENCES xnat_projects(id) ON DELETE CASCADE,
    subject TEXT REFERENCES xnat_subjects(id) ON DELETE CASCADE,
    experiment TEXT REFERENCES xnat_experiments(id) ON DELETE CASCADE,
    scan TEXT,
    label TEXT NOT NULL,
    fields TEXT NOT NULL,                   -- format, content, tags
    series TEXT,                            -- Orthanc ID of the DICOM series whose instances it shows
    inserted REAL NOT NULL,
    UNIQUE (owner, label),
    FOREIGN KEY (experiment, scan) REFERENCES xnat_scans(experiment, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS xnat_resources_by_series ON xnat_resources(series);
CREATE TABLE IF NOT EXISTS xnat_files (
    resource INTEGER NOT NULL REFERENCES xnat_resources(rid) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    fields TEXT NOT NULL,                   -- format, content, tags
    PRIMARY KEY (resource, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xnat_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS xnat_prearchive (
    psid INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,                  -- a project ID, or Unassigned
    timestamp TEXT NOT NULL,
    name TEXT NOT NULL,                     -- the session label
    subject TEXT NOT NULL,
    study TEXT NOT NULL,                    -- Orthanc ID of the DICOM study
    source TEXT NOT NULL,                   -- import or dicom (received over C-STORE)
    uploaded REAL NOT NULL,
    lastmod REAL NOT NULL,
    UNIQUE (project, timestamp, name)
);
CREATE INDEX IF NOT EXISTS xnat_prearchive_by_study ON xnat_prearchive(study, project);
CREATE TABLE IF NOT EXISTS xnat_reconstructions (  -- xnat:reconstructedImageData of a session
    experiment TEXT NOT NULL REFERENCES xnat_experiments(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    xsi_type TEXT NOT NULL,
    fields TEXT NOT NULL,
    inserted REAL NOT NULL,
    PRIMARY KEY (experiment, id)
);
CREATE TABLE IF NOT EXISTS xnat_shares (    -- a subject or experiment shared into a project besides its own
    kind TEXT NOT NULL,                     -- subject or experiment
    id TEXT NOT NULL,                       -- its accession ID
    project TEXT NOT NULL REFERENCES xnat_projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,                    -- its label in that project
    PRIMARY KEY (kind, id, project),
    UNIQUE (kind, project, label)
);
CREATE TABLE IF NOT EXISTS xnat_prearchive_instances (
    psid INTEGER NOT NULL REFERENCES xnat_prearchive(psid) ON DELETE CASCADE,
    instance TEXT NOT NULL,                 -- Orthanc instance ID
    PRIMARY KEY (psid, instance)
) WITHOUT ROWID;
"""


# the names of the tables and indexes SCHEMA creates
_NAMES = tuple(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))


def create_tables(index: Index) -> None:
    """Create the catalog's tables where missing: a read when they all exist (every start but the first), else
    one write transaction."""
    with index.reading() as db:
        found = db.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({', '.join('?' * len(_NAMES))})",
                           _NAMES).fetchone()[0]
    if found == len(_NAMES):
        return
    with index.writing() as db:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
