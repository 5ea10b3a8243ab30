"""The XNAT data model on the archive: projects, subjects, experiments and scans, with accession IDs and fields.

Rows live in their own tables of the index's SQLite database (one writer lock, one file to snapshot); files in
XNAT's folder layout under the storage directory (see catalog_layout). Resources and files are in
catalog_files, DICOM import and the prearchive in catalog_import. Experiments and scan resources filled from
DICOM are linked to the archive's studies and series (by Orthanc ID), so that both faces show the same bytes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog_fields import apply_updates, empty_fields
from .catalog_layout import Layout
from .catalog_schema import create_tables
from .errors import BadRequest, Conflict, UnknownResource
from .events import ArchiveReset, EventBus, InstanceStored, Phase, ResourceDeleted, UncleanStopSwept
from .gate import beside_reset_and_restore
from .safe_paths import single_name, xnat_label

if TYPE_CHECKING:
    from .archive import Archive

_TABLES = ("xnat_reconstructions", "xnat_shares", "xnat_prearchive_instances", "xnat_prearchive", "xnat_files",
           "xnat_resources", "xnat_scans", "xnat_experiments", "xnat_subjects", "xnat_projects", "xnat_counters")
# Fields kept in their own columns, never among the free fields (XNAT sets them from the URL).
_COLUMN_FIELDS = frozenset({"ID", "id", "label", "project", "subject_ID", "image_session_ID"})


# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.archive.gate)


def xnat_date(timestamp: float) -> str:
    """XNAT's timestamps (``2026-11-21 17:09:42.123``), local time as XNAT shows them."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}"


@dataclass(frozen=True)
class Project:
    id: str
    fields: dict[str, Any]
    inserted: float


@dataclass(frozen=True)
class Subject:
    id: str
    project: str
    label: str
    fields: dict[str, Any]
    inserted: float


@dataclass(frozen=True)
class Experiment:
    id: str
    project: str
    subject: str
    subject_label: str
    label: str
    xsi_type: str
    fields: dict[str, Any]
    inserted: float
    study: str | None = None


@dataclass(frozen=True)
class Scan:
    experiment: str
    project: str
    id: str
    xsi_type: str
    fields: dict[str, Any]
    inserted: float


@dataclass(frozen=True)
class Owner:
    """What a resource hangs from: a project, a subject, an experiment or a scan."""

    kind: str  # project, subject, experiment, scan, reconstruction (its ID in ``scan``)
    project: str
    subject: str | None = None
    experiment: str | None = None
    scan: str | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False)  # subject / session labels, for paths

    @property
    def key(self) -> str:
        return {"project": f"project:{self.project}", "subject": f"subject:{self.subject}",
                "experiment": f"experiment:{self.experiment}", "scan": f"scan:{self.experiment}/{self.scan}",
                "reconstruction": f"reconstruction:{self.experiment}/{self.scan}"}[self.kind]


def label_of(text: str, what: str) -> str:
    """A project ID, subject or session label given by a client: XNAT's label characters (InvalidName, a 400,
    for any other, as XNAT refuses them)."""
    return xnat_label(text, what)


def name_of(text: str, what: str) -> str:
    """A resource label or scan ID given by a client: one path segment of at most 255 bytes (escaped on disk)."""
    return single_name(text, what)


def _loads(text: str) -> dict[str, Any]:
    return json.loads(text) if text else empty_fields()


class Catalog:
    """XNAT's projects, subjects, experiments and scans over one archive (``archive.catalog``)."""

    def __init__(self, archive: Archive, *, tables_created: bool = False) -> None:
        from .catalog_assessors import Assessors
        from .catalog_files import Resources
        from .catalog_headers import Headers
        from .catalog_import import Importer
        from .catalog_reconstructions import Reconstructions
        from .catalog_sharing import Sharing

        self.archive = archive
        self.index = archive.index
        self.site_id = archive.config.XnatSiteId
        self.layout = Layout(archive.config.storage_path, sync=archive.config.SyncStorageArea)
        if not tables_created:  # core.catalog_lazy creates them at start, and may build this in a transaction
            create_tables(self.index)
        self.resources = Resources(self)
        self.importer = Importer(self)
        self.headers = Headers(self)
        self.sharing = Sharing(self)
        self.assessors = Assessors(self)
        self.reconstructions = Reconstructions(self)

    def subscribe(self, events: EventBus) -> None:
        """Follow the archive through its events: C-STORE routing (in the store's transaction, so that an
        instance and its prearchive rows commit together), deletions, resets, and the sweep after an unclean stop."""
        events.subscribe(InstanceStored, self._on_instance_stored, Phase.IN_TRANSACTION)
        events.subscribe(ResourceDeleted, self._on_resource_deleted)
        events.subscribe(ArchiveReset, lambda event: self.clear())
        # after an unclean stop, in the background once the server answers (core.recovery)
        events.subscribe(UncleanStopSwept, lambda event: self.layout.sweep_temporary_files())

    def _on_instance_stored(self, event: InstanceStored) -> None:
        if event.origin.kind == "DicomProtocol":  # XNAT's DICOM receiver: file it in the prearchive (rows only)
            assert event.transaction is not None
            self.importer.route_received(event.transaction, event.parsed, event.study_id, event.instance_id)

    def close(self) -> None:
        """Nothing is held open between requests; here for symmetry with the archive's life."""

    def clear(self) -> None:
        """Forget every XNAT object and remove XNAT's folders (the archive's reset)."""
        with self.index.writing() as db:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")
        self.layout.clear()

    # -- accession IDs ------------------------------------------------------------------------------------
    def new_id(self, db: sqlite3.Connection, kind: str) -> str:
        """The next accession ID of a kind (S: subjects, E: experiments), never reused: ``XNAT_S00001``."""
        value = db.execute(
            "INSERT INTO xnat_counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1"
            " RETURNING value", (kind,)
        ).fetchone()[0]
        return f"{self.site_id}_{kind}{value:05d}"

    # -- projects -----------------------------------------------------------------------------------------
    def list_projects(self) -> list[Project]:
        with self.index.reading() as db:
            return [Project(r[0], _loads(r[1]), r[2])
                    for r in db.execute("SELECT id, fields, inserted FROM xnat_projects ORDER BY id")]

    def project(self, project_id: str) -> Project:
        with self.index.reading() as db:
            return self._project(db, project_id)

    @staticmethod
    def _project(db: sqlite3.Connection, project_id: str) -> Project:
        row = db.execute("SELECT id, fields, inserted FROM xnat_projects WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            raise UnknownResource(f"Unknown project: {project_id}")
        return Project(row[0], _loads(row[1]), row[2])

    def has_project(self, project_id: str) -> bool:
        with self.index.reading() as db:
            return self.project_exists(db, project_id)

    def project_exists(self, db: sqlite3.Connection, project_id: str) -> bool:
        return db.execute("SELECT 1 FROM xnat_projects WHERE id = ?", (project_id,)).fetchone() is not None

    @_gated
    def put_project(self, project_id: str, updates: Mapping[str, str]) -> tuple[Project, bool]:
        """Create a project (name and secondary ID default to its ID) or update its fields."""
        label_of(project_id, "project ID")
        with self.index.writing() as db:
            row = db.execute("SELECT fields FROM xnat_projects WHERE id = ?", (project_id,)).fetchone()
            created = row is None
            fields = apply_updates(_loads(row[0]) if row else empty_fields(), _free(updates), "xnat:projectData")
            if created:
                fields["data"].setdefault("name", project_id)
                fields["data"].setdefault("secondary_ID", project_id)
                db.execute("INSERT INTO xnat_projects (id, fields, inserted) VALUES (?, ?, ?)",
                           (project_id, json.dumps(fields), time.time()))
            else:
                db.execute("UPDATE xnat_projects SET fields = ? WHERE id = ?", (json.dumps(fields), project_id))
        self.layout.project_dir(project_id).mkdir(parents=True, exist_ok=True)
        return self.project(project_id), created

    # Project settings XNAT keeps beside a project's data (arc:project, the accessibility): in its fields'
    # "settings", never among the data fields a client reads.
    DEFAULT_PREARCHIVE_CODE = 4  # a project created through REST auto-archives, as on XNAT with default settings

    def project_setting(self, project_id: str, key: str, default: Any = None) -> Any:
        return self.project(project_id).fields.get("settings", {}).get(key, default)

    def prearchive_code(self, project_id: str) -> int:
        return int(self.project_setting(project_id, "prearchive_code", self.DEFAULT_PREARCHIVE_CODE))

    @_gated
    def set_project_setting(self, project_id: str, key: str, value: Any) -> None:
        with self.index.writing() as db:
            fields = self._project(db, project_id).fields
            fields.setdefault("settings", {})[key] = value
            db.execute("UPDATE xnat_projects SET fields = ? WHERE id = ?", (json.dumps(fields), project_id))

    @_gated
    def delete_project(self, project_id: str, remove_files: bool) -> None:
        with self.index.writing() as db:
            self._project(db, project_id)
            series = self._series_of(db, "project = ?", (project_id,))
            db.execute("DELETE FROM xnat_projects WHERE id = ?", (project_id,))
            _forget_shares(db)
        self.layout.remove_tree(self.layout.project_dir(project_id))
        if remove_files:
            self.release_series(series)

    # -- subjects -----------------------------------------------------------------------------------------
    _SUBJECT = "SELECT id, project, label, fields, inserted FROM xnat_subjects"

    def list_subjects(self, project: str | None = None) -> list[Subject]:
        with self.index.reading() as db:
            if project is None:
                rows = db.execute(f"{self._SUBJECT} ORDER BY id")
            else:
                self._project(db, project)
                rows = db.execute(f"{self._SUBJECT} WHERE project = ? OR id IN (SELECT id FROM xnat_shares"
                                  " WHERE kind = 'subject' AND project = ?) ORDER BY id", (project, project))
            return [Subject(r[0], r[1], r[2], _loads(r[3]), r[4]) for r in rows]

    def subject(self, project: str | None, ref: str) -> Subject:
        """A subject by accession ID, or by label within a project."""
        with self.index.reading() as db:
            return self._subject(db, project, ref)

    def _subject(self, db: sqlite3.Connection, project: str | None, ref: str) -> Subject:
        if project is None:
            row = db.execute(f"{self._SUBJECT} WHERE id = ?", (ref,)).fetchone()
        else:
            self._project(db, project)
            row = db.execute(f"{self._SUBJECT} WHERE project = ? AND id = ?", (project, ref)).fetchone() or \
                db.execute(f"{self._SUBJECT} WHERE project = ? AND label = ?", (project, ref)).fetchone() or \
                db.execute(f"{self._SUBJECT} WHERE id IN (SELECT id FROM xnat_shares WHERE kind = 'subject'"
                           " AND project = ? AND (id = ? OR label = ?))", (project, ref, ref)).fetchone()
        if row is None:
            raise UnknownResource(f"Unknown subject: {ref}" + (f" in project {project}" if project else ""))
        return Subject(row[0], row[1], row[2], _loads(row[3]), row[4])

    @_gated
    def put_subject(self, project: str | None, ref: str, updates: Mapping[str, str],
                    new_label: str | None = None) -> tuple[Subject, bool]:
        """Create a subject labelled ``ref`` in a project, or update (and relabel) the one ``ref`` names."""
        with self.index.writing() as db:
            subject, created = self._ensure_subject(db, project, ref)
            fields = apply_updates(subject.fields, _free(updates), "xnat:subjectData")
            db.execute("UPDATE xnat_subjects SET fields = ? WHERE id = ?", (json.dumps(fields), subject.id))
            old_label = subject.label
            if new_label and new_label != old_label:
                self._check_free_label(db, "xnat_subjects", subject.project, label_of(new_label, "label"))
                db.execute("UPDATE xnat_subjects SET label = ? WHERE id = ?", (new_label, subject.id))
        if new_label and new_label != old_label:
            self.layout.move(self.layout.subject_dir(subject.project, old_label),
                             self.layout.subject_dir(subject.project, new_label))
        return self.subject(None, subject.id), created

    def _ensure_subject(self, db: sqlite3.Connection, project: str | None, ref: str) -> tuple[Subject, bool]:
        try:
            return self._subject(db, project, ref), False
        except UnknownResource:
            if project is None:
                raise
        self._project(db, project)
        label_of(ref, "subject label")
        subject_id = self.new_id(db, "S")
        now = time.time()
        db.execute("INSERT INTO xnat_subjects (id, project, label, fields, inserted) VALUES (?, ?, ?, ?, ?)",
                   (subject_id, project, ref, json.dumps(empty_fields()), now))
        return Subject(subject_id, project, ref, empty_fields(), now), True

    @staticmethod
    def _check_free_label(db: sqlite3.Connection, table: str, project: str, label: str) -> None:
        if db.execute(f"SELECT 1 FROM {table} WHERE project = ? AND label = ?", (project, label)).fetchone():
            raise Conflict(f"The label {label!r} is already used in project {project}")

    @_gated
    def delete_subject(self, project: str | None, ref: str, remove_files: bool) -> None:
        with self.index.writing() as db:
            subject = self._subject(db, project, ref)
            series = self._series_of(db, "subject = ? OR experiment IN (SELECT id FROM xnat_experiments"
                                         " WHERE subject = ?)", (subject.id, subject.id))
            labels = [r[0] for r in db.execute("SELECT label FROM xnat_experiments WHERE subject = ?",
                                               (subject.id,))]
            db.execute("DELETE FROM xnat_subjects WHERE id = ?", (subject.id,))
            _forget_shares(db)
        for label in labels:
            self.layout.remove_tree(self.layout.session_dir(subject.project, label),
                                    self.layout.project_dir(subject.project))
        self.layout.remove_tree(self.layout.subject_dir(subject.project, subject.label),
                                self.layout.project_dir(subject.project))
        if remove_files:
            self.release_series(series)

    # -- experiments --------------------------------------------------------------------------------------
    _EXPERIMENT = ("SELECT e.id, e.project, e.subject, s.label, e.label, e.xsi_type, e.fields, e.inserted, e.study"
                   " FROM xnat_experiments e JOIN xnat_subjects s ON s.id = e.subject")

    def list_experiments(self, project: str | None = None, subject: str | None = None) -> list[Experiment]:
        """Experiments of the site, of a project, or of a subject (by ID or label within the project)."""
        with self.index.reading() as db:
            if subject is not None:
                owner = self._subject(db, project, subject)
                rows = db.execute(f"{self._EXPERIMENT} WHERE e.subject = ? ORDER BY e.id", (owner.id,))
            elif project is not None:
                self._project(db, project)
                rows = db.execute(f"{self._EXPERIMENT} WHERE e.project = ? OR e.id IN (SELECT id FROM xnat_shares"
                                  " WHERE kind = 'experiment' AND project = ?) ORDER BY e.id", (project, project))
            else:
                rows = db.execute(f"{self._EXPERIMENT} ORDER BY e.id")
            return [Experiment(r[0], r[1], r[2], r[3], r[4], r[5], _loads(r[6]), r[7], r[8]) for r in rows]

    def experiment(self, project: str | None, ref: str, subject: str | None = None) -> Experiment:
        """An experiment by accession ID, or by label within a project (and checked against a subject)."""
        with self.index.reading() as db:
            return self._experiment(db, project, ref, subject)

    def _experiment(self, db: sqlite3.Connection, project: str | None, ref: str,
                    subject: str | None = None) -> Experiment:
        if project is None:
            row = db.execute(f"{self._EXPERIMENT} WHERE e.id = ?", (ref,)).fetchone()
        else:
            self._project(db, project)
            row = db.execute(f"{self._EXPERIMENT} WHERE e.project = ? AND e.id = ?", (project, ref)).fetchone() or \
                db.execute(f"{self._EXPERIMENT} WHERE e.project = ? AND e.label = ?", (project, ref)).fetchone() or \
                db.execute(f"{self._EXPERIMENT} WHERE e.id IN (SELECT id FROM xnat_shares WHERE kind = 'experiment'"
                           " AND project = ? AND (id = ? OR label = ?))", (project, ref, ref)).fetchone()
        if row is not None and subject is not None:
            owner = self._subject(db, project, subject)
            if row[2] != owner.id:
                row = None
        if row is None:
            raise UnknownResource(f"Unknown experiment: {ref}" + (f" in project {project}" if project else ""))
        return Experiment(row[0], row[1], row[2], row[3], row[4], row[5], _loads(row[6]), row[7], row[8])

    @_gated
    def put_experiment(self, project: str | None, subject: str | None, ref: str, xsi_type: str | None,
                       updates: Mapping[str, str], new_label: str | None = None) -> tuple[Experiment, bool]:
        """Create an experiment labelled ``ref`` (its subject is created when the label is new, as XNAT does),
        or update (and relabel) the one ``ref`` names."""
        with self.index.writing() as db:
            try:
                experiment, created = self._experiment(db, project, ref, subject), False
            except UnknownResource:
                if project is None:
                    raise
                if subject is None:
                    raise BadRequest(f"No experiment {ref} in project {project}; to create one, PUT it under"
                                     " /projects/P/subjects/S/experiments/") from None
                if not xsi_type:
                    raise BadRequest("Creating an experiment needs its type: add ?xsiType=xnat:mrSessionData") \
                        from None
                owner, _ = self._ensure_subject(db, project, subject)
                experiment = self._insert_experiment(db, owner, label_of(ref, "experiment label"), xsi_type,
                                                     empty_fields(), None)
                created = True
            fields = apply_updates(experiment.fields, _free(updates), experiment.xsi_type)
            db.execute("UPDATE xnat_experiments SET fields = ? WHERE id = ?", (json.dumps(fields), experiment.id))
            if new_label and new_label != experiment.label:
                self._check_free_label(db, "xnat_experiments", experiment.project, label_of(new_label, "label"))
                db.execute("UPDATE xnat_experiments SET label = ? WHERE id = ?", (new_label, experiment.id))
        folder = self.layout.session_dir(experiment.project, experiment.label)
        if new_label and new_label != experiment.label:
            self.layout.move(folder, self.layout.session_dir(experiment.project, new_label))
        elif created:
            folder.mkdir(parents=True, exist_ok=True)
        return self.experiment(None, experiment.id), created

    def _insert_experiment(self, db: sqlite3.Connection, subject: Subject, label: str, xsi_type: str,
                           fields: dict[str, Any], study: str | None) -> Experiment:
        self._check_free_label(db, "xnat_experiments", subject.project, label)
        experiment_id = self.new_id(db, "E")
        now = time.time()
        db.execute("INSERT INTO xnat_experiments (id, project, subject, label, xsi_type, fields, study, inserted)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (experiment_id, subject.project, subject.id, label, xsi_type, json.dumps(fields), study, now))
        return Experiment(experiment_id, subject.project, subject.id, subject.label, label, xsi_type, fields, now,
                          study)

    @_gated
    def delete_experiment(self, project: str | None, ref: str, remove_files: bool,
                          subject: str | None = None) -> None:
        with self.index.writing() as db:
            experiment = self._experiment(db, project, ref, subject)
            series = self._series_of(db, "experiment = ?", (experiment.id,))
            db.execute("DELETE FROM xnat_experiments WHERE id = ?", (experiment.id,))
            db.execute("DELETE FROM xnat_experiments WHERE json_extract(fields, '$.assessor_of') = ?",
                       (experiment.id,))  # its assessors go with it (their folders are inside its folder)
            _forget_shares(db)
        self.layout.remove_tree(self.layout.session_dir(experiment.project, experiment.label),
                                self.layout.project_dir(experiment.project))
        if remove_files:
            self.release_series(series)

    # -- scans --------------------------------------------------------------------------------------------
    def list_scans(self, experiment: Experiment) -> list[Scan]:
        with self.index.reading() as db:
            rows = db.execute("SELECT id, xsi_type, fields, inserted FROM xnat_scans WHERE experiment = ?"
                              " ORDER BY inserted, id", (experiment.id,)).fetchall()
        return [Scan(experiment.id, experiment.project, r[0], r[1], _loads(r[2]), r[3]) for r in rows]

    def has_scan(self, experiment: Experiment, scan_id: str) -> bool:
        with self.index.reading() as db:
            return db.execute("SELECT 1 FROM xnat_scans WHERE experiment = ? AND id = ?",
                              (experiment.id, scan_id)).fetchone() is not None

    def scan(self, experiment: Experiment, scan_id: str) -> Scan:
        with self.index.reading() as db:
            return self._scan(db, experiment, scan_id)

    @staticmethod
    def _scan(db: sqlite3.Connection, experiment: Experiment, scan_id: str) -> Scan:
        row = db.execute("SELECT id, xsi_type, fields, inserted FROM xnat_scans WHERE experiment = ? AND id = ?",
                         (experiment.id, scan_id)).fetchone()
        if row is None:
            raise UnknownResource(f"Unknown scan {scan_id} in experiment {experiment.id}")
        return Scan(experiment.id, experiment.project, row[0], row[1], _loads(row[2]), row[3])

    @_gated
    def put_scan(self, experiment: Experiment, scan_id: str, xsi_type: str,
                 updates: Mapping[str, str]) -> tuple[Scan, bool]:
        """Create (as ``xsi_type``) or update a scan."""
        name_of(scan_id, "scan ID")
        with self.index.writing() as db:
            try:
                scan, created = self._scan(db, experiment, scan_id), False
            except UnknownResource:
                db.execute("INSERT INTO xnat_scans (experiment, id, xsi_type, fields, inserted) VALUES (?, ?, ?, ?, ?)",
                           (experiment.id, scan_id, xsi_type, json.dumps(empty_fields()), time.time()))
                scan, created = self._scan(db, experiment, scan_id), True
            fields = apply_updates(scan.fields, _free(updates), scan.xsi_type)
            db.execute("UPDATE xnat_scans SET fields = ? WHERE experiment = ? AND id = ?",
                       (json.dumps(fields), experiment.id, scan_id))
        return self.scan(experiment, scan_id), created

    @_gated
    def delete_scan(self, experiment: Experiment, scan_id: str, remove_files: bool) -> None:
        with self.index.writing() as db:
            self._scan(db, experiment, scan_id)
            series = self._series_of(db, "experiment = ? AND scan = ?", (experiment.id, scan_id))
            db.execute("DELETE FROM xnat_scans WHERE experiment = ? AND id = ?", (experiment.id, scan_id))
        self.layout.remove_tree(self.layout.scan_dir(experiment.project, experiment.label, scan_id))
        if remove_files:
            self.release_series(series)

    # -- links to the DICOM archive -----------------------------------------------------------------------
    @staticmethod
    def _series_of(db: sqlite3.Connection, where: str, params: tuple) -> list[str]:
        """Orthanc series shown by the resources matching ``where``, gathered before those rows go."""
        return [r[0] for r in db.execute(f"SELECT DISTINCT series FROM xnat_resources WHERE series IS NOT NULL"
                                         f" AND ({where})", params)]

    @_gated
    def release_series(self, series_ids: list[str]) -> None:
        """Delete from the archive the series that no XNAT resource and no prearchive session shows any more
        (removeFiles=true: XNAT deletes a session's files with the session)."""
        from .ids import Level

        for series_id in series_ids:
            with self.index.reading() as db:
                if db.execute("SELECT 1 FROM xnat_resources WHERE series = ? LIMIT 1", (series_id,)).fetchone():
                    continue
                if db.execute(
                    "SELECT 1 FROM xnat_prearchive_instances p JOIN resources r ON r.public_id = p.instance"
                    " JOIN resources s ON s.iid = r.series WHERE s.public_id = ? LIMIT 1", (series_id,)
                ).fetchone():
                    continue
            try:
                self.archive.delete(Level.SERIES, series_id)
            except UnknownResource:
                continue  # already deleted through another face

    def _on_resource_deleted(self, event: ResourceDeleted) -> None:
        """After a deletion in the archive: refresh the XNAT folders that showed the deleted files."""
        studies = list(event.studies)
        with self.index.reading() as db:
            if not db.execute("SELECT 1 FROM xnat_experiments WHERE study IS NOT NULL"
                              " UNION ALL SELECT 1 FROM xnat_prearchive LIMIT 1").fetchone():
                return  # no XNAT session and no prearchive session shows DICOM files
            linked = []
            if studies:
                marks = ",".join("?" * len(studies))
                linked = db.execute(f"SELECT id FROM xnat_experiments WHERE study IN ({marks})", studies).fetchall()
        for (experiment_id,) in linked:
            self.resources.sync_dicom_folders(experiment_id)
        self.importer.prearchive.forget_deleted_instances()


def _free(updates: Mapping[str, str]) -> dict[str, str]:
    """Field updates without the fields XNAT keeps in columns (ID, label, project)."""
    return {path: value for path, value in updates.items() if path not in _COLUMN_FIELDS}


def _forget_shares(db: sqlite3.Connection) -> None:
    """Drop the shares of subjects and experiments that are gone (shares name them by ID, without a key)."""
    db.execute("DELETE FROM xnat_shares WHERE (kind = 'subject' AND id NOT IN (SELECT id FROM xnat_subjects))"
               " OR (kind = 'experiment' AND id NOT IN (SELECT id FROM xnat_experiments))")
