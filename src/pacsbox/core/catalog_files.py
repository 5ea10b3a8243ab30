"""XNAT resources and their files, at project, subject, experiment and scan level.

A resource's files are rows (path, size, MD5) plus, for a scan's DICOM resource filled by an import, the live
instances of the archive series it is linked to: those are listed from the archive itself, so an instance
deleted through the Orthanc face leaves the listing at once, and are shown on disk as hard links into the
archive's file store (no copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .catalog import Experiment, Owner, Subject, name_of
from .errors import BadRequest, Conflict, UnknownResource
from .gate import beside_reset_and_restore
from .safe_paths import decode_name, encode_path
from .unpack import ArchiveReader, safe_relative_path

if TYPE_CHECKING:
    from .catalog import Catalog

# The index's instances of one series with their stored file (read here, beside the index's own queries,
# so that a listing is one query; the columns are the index's: resources, attachments, content type 1 = DICOM).
_SERIES_FILES = (
    "SELECT r.public_id, r.main_tags, a.uuid, a.size, a.md5, a.compression FROM resources s"
    " JOIN resources r ON r.series = s.iid AND r.level = 3"
    " JOIN attachments a ON a.iid = r.iid AND a.content_type = 1"
    " WHERE s.public_id = ? AND s.level = 2 ORDER BY r.index_in_series, r.iid"
)


_MAX_NAME = 255  # bytes of a file name (NAME_MAX of Linux and macOS)


# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.catalog.archive.gate)


@dataclass(frozen=True)
class Resource:
    rid: int
    owner: Owner
    label: str
    fields: dict[str, str]  # format, content, tags
    series: str | None
    inserted: float
    file_count: int = 0
    file_size: int = 0


@dataclass(frozen=True)
class FileEntry:
    """One file of a resource: where it is on disk, and the archive instance it is when it is one."""

    path: str
    size: int
    md5: str
    fields: dict[str, str]
    disk: Path
    instance: str | None = None


def dicom_file_name(main_tags_json: str, public_id: str) -> str:
    """How an archive instance is named in a DICOM resource: its SOP Instance UID, or its public ID when the UID
    cannot be a file name (a hostile "../../x" would link the file outside the folder, a line break would make it
    unreachable by URL, a name over 255 bytes cannot be created)."""
    sop_uid = json.loads(main_tags_json).get("SOPInstanceUID") or ""
    if not sop_uid or len(sop_uid.encode()) > _MAX_NAME - 4 or any(c in "/\\" or c < " " or c == "\x7f"
                                                                   for c in sop_uid):
        sop_uid = public_id
    return f"{sop_uid}.dcm"


def _check_shapes(names: list[str], existing: set[str]) -> None:
    """Conflict when a new file would need a folder where a file is, or stand where a folder is (``x`` and
    ``x/y``), with the resource's files or among the new ones: no file system holds both."""
    def folders_of(path: str) -> list[str]:
        parts = path.split("/")
        return ["/".join(parts[:end]) for end in range(1, len(parts))]

    files = set(existing)
    folders = {folder for path in existing for folder in folders_of(path)}
    for name in names:
        clash = name if name in folders else next((f for f in folders_of(name) if f in files), None)
        if clash is not None:
            raise Conflict(f"Cannot store {name!r}: {clash!r} would be both a file and a folder of the resource")
        files.add(name)
        folders.update(folders_of(name))


class Resources:
    """Resources and files of the catalog (``catalog.resources``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = catalog.index
        self.layout = catalog.layout
        self.store_area = catalog.archive.store_area

    # -- owners -------------------------------------------------------------------------------------------
    def owner(self, *, project: str, subject: Subject | None = None, experiment: Experiment | None = None,
              scan: str | None = None, reconstruction: str | None = None) -> Owner:
        """The owner a URL names (the objects already looked up by the face)."""
        if experiment is not None and reconstruction is not None:
            labels = {"session": experiment.label, "subject": experiment.subject_label}
            return Owner("reconstruction", experiment.project, experiment.subject, experiment.id, reconstruction,
                         labels)
        if experiment is not None:
            labels = {"session": experiment.label, "subject": experiment.subject_label}
            assessed = experiment.fields.get("assessor_of")
            if assessed:  # an assessor's resources are in its session's folder, under ASSESSORS/<label>
                session = self.catalog.experiment(None, assessed)
                labels = {"session": session.label, "subject": experiment.subject_label, "assessor": experiment.label}
            if scan is not None:
                return Owner("scan", experiment.project, experiment.subject, experiment.id, scan, labels)
            return Owner("experiment", experiment.project, experiment.subject, experiment.id, None, labels)
        if subject is not None:
            return Owner("subject", subject.project, subject.id, labels={"subject": subject.label})
        self.catalog.project(project)
        return Owner("project", project)

    def folder(self, resource: Resource) -> Path:
        owner = resource.owner
        return self.layout.resource_dir(owner.kind, owner.project, resource.label,
                                        subject_label=owner.labels.get("subject", ""),
                                        session_label=owner.labels.get("session", ""), scan=owner.scan or "",
                                        assessor=owner.labels.get("assessor", ""))

    # -- resources ----------------------------------------------------------------------------------------
    def list(self, owner: Owner) -> list[Resource]:
        with self.index.reading() as db:
            rows = db.execute("SELECT rid, label, fields, series, inserted FROM xnat_resources WHERE owner = ?"
                              " ORDER BY rid", (owner.key,)).fetchall()
            return [self._resource(db, owner, row) for row in rows]

    def list_below(self, experiment: Experiment, scans: list[str] | None) -> list[Resource]:
        """The resources of a session's scans (all, or those listed), for ``scans/ALL/files``."""
        if scans is None:
            scans = [scan.id for scan in self.catalog.list_scans(experiment)]
        owners = [self.owner(project=experiment.project, experiment=experiment, scan=scan) for scan in scans]
        return [resource for owner in owners for resource in self.list(owner)]

    def get(self, owner: Owner, ref: str) -> Resource:
        """A resource by label, or by its numeric ID (pyxnat addresses resources by ID)."""
        with self.index.reading() as db:
            return self._get(db, owner, ref)

    def _get(self, db: sqlite3.Connection, owner: Owner, ref: str) -> Resource:
        query = "SELECT rid, label, fields, series, inserted FROM xnat_resources WHERE owner = ? AND "
        row = db.execute(query + "label = ?", (owner.key, ref)).fetchone()
        if row is None and ref.isdigit():
            row = db.execute(query + "rid = ?", (owner.key, int(ref))).fetchone()
        if row is None:
            raise UnknownResource(f"Unknown resource {ref!r}")
        return self._resource(db, owner, row)

    def _resource(self, db: sqlite3.Connection, owner: Owner, row) -> Resource:
        rid, label, fields, series, inserted = row
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM xnat_files WHERE resource = ?",
                                 (rid,)).fetchone()
        if series is not None:
            linked = db.execute(f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM ({_SERIES_FILES})",
                                (series,)).fetchone()
            count, size = count + linked[0], size + linked[1]
        return Resource(rid, owner, label, json.loads(fields), series, inserted, count, size)

    @_gated
    def put(self, owner: Owner, label: str, fields: Mapping[str, str]) -> tuple[Resource, bool]:
        """Create a resource (or update its format, content and tags)."""
        name_of(label, "resource label")
        with self.index.writing() as db:
            resource, created = self._ensure(db, owner, label, fields)
        self.folder(resource).mkdir(parents=True, exist_ok=True)
        return self.get(owner, resource.label), created

    def _ensure(self, db: sqlite3.Connection, owner: Owner, label: str, fields: Mapping[str, str],
                series: str | None = None) -> tuple[Resource, bool]:
        try:
            resource = self._get(db, owner, label)
        except UnknownResource:
            values = {key: value for key, value in fields.items() if value}
            cursor = db.execute(
                "INSERT INTO xnat_resources (owner, project, subject, experiment, scan, label, fields, series,"
                " inserted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (owner.key, owner.project, owner.subject if owner.kind == "subject" else None, owner.experiment,
                 owner.scan if owner.kind == "scan" else None, label, json.dumps(values), series, time.time()))
            return Resource(cursor.lastrowid, owner, label, values, series, time.time()), True
        if fields:
            merged = {**resource.fields, **{key: value for key, value in fields.items() if value}}
            db.execute("UPDATE xnat_resources SET fields = ? WHERE rid = ?", (json.dumps(merged), resource.rid))
        if series is not None and resource.series != series:
            db.execute("UPDATE xnat_resources SET series = ? WHERE rid = ?", (series, resource.rid))
        return resource, False

    @_gated
    def delete(self, owner: Owner, ref: str, remove_files: bool) -> None:
        with self.index.writing() as db:
            resource = self._get(db, owner, ref)
            db.execute("DELETE FROM xnat_resources WHERE rid = ?", (resource.rid,))
        self.layout.remove_tree(self.folder(resource))
        if remove_files and resource.series:
            self.catalog.release_series([resource.series])

    # -- files --------------------------------------------------------------------------------------------
    def files(self, resource: Resource) -> list[FileEntry]:
        """Every file of a resource: uploaded files, then the archive instances it shows."""
        folder = self.folder(resource)
        with self.index.reading() as db:
            entries = [FileEntry(path, size, md5, json.loads(fields), self.layout.listed_file(folder, path))
                       for path, size, md5, fields in db.execute(
                           "SELECT path, size, md5, fields FROM xnat_files WHERE resource = ? ORDER BY path",
                           (resource.rid,))]
            if resource.series is not None:
                taken = {entry.path for entry in entries}
                for public_id, tags, file_uuid, size, md5, packed in db.execute(_SERIES_FILES, (resource.series,)):
                    name = dicom_file_name(tags, public_id)
                    if name not in taken:
                        entries.append(FileEntry(name, size, md5, {"format": "DICOM", "content": "RAW"},
                                                 self.store_area.readable_path(file_uuid, bool(packed)), public_id))
        return entries

    def file(self, resource: Resource, path: str) -> FileEntry:
        wanted = safe_relative_path(path, "file path")
        for entry in self.files(resource):
            if entry.path == wanted:
                return entry
        raise UnknownResource(f"Unknown file {path!r} in resource {resource.label}")

    @_gated
    def upload(self, owner: Owner, label: str, path: str, body: BinaryIO, *, overwrite: bool, extract: bool,
               fields: Mapping[str, str]) -> list[str]:
        """Store an uploaded file (or, with ``extract``, every file of an uploaded zip/tar/tar.gz, placed
        beside ``path``) in a resource, created if missing. All names are checked before anything is written;
        a name already there is a Conflict unless ``overwrite``. Returns the stored paths."""
        target = safe_relative_path(path, "file path")
        if not target and not extract:
            raise BadRequest("A file upload needs a file name after /files/")
        name_of(label, "resource label")
        with self.index.reading() as db:
            try:
                resource = self._get(db, owner, label)
            except UnknownResource:
                existing, shown = set(), set()
            else:
                existing = {r[0] for r in db.execute("SELECT path FROM xnat_files WHERE resource = ?",
                                                     (resource.rid,))}
                shown = {dicom_file_name(r[1], r[0]) for r in db.execute(_SERIES_FILES, (resource.series,))} \
                    if resource.series else set()
        file_fields = {key: value for key, value in fields.items() if value}
        if extract:
            base = target.rsplit("/", 1)[0] if "/" in target else ""
            with ArchiveReader(body, self.catalog.archive.config.MaximumUploadSize) as reader:
                planned = [(f"{base}/{member.path}" if base else member.path, member) for member in reader]
                _check_shapes([name for name, _ in planned], existing | shown)
                self._check_overwrite([name for name, _ in planned], existing, overwrite)
                return self._write(owner, label, [(name, member.read) for name, member in planned], file_fields)
        _check_shapes([target], existing | shown)
        self._check_overwrite([target], existing, overwrite)
        return self._write(owner, label, [(target, lambda: body)], file_fields)

    @staticmethod
    def _check_overwrite(names: list[str], existing: set[str], overwrite: bool) -> None:
        clashes = sorted(set(names) & existing)
        if clashes and not overwrite:
            raise Conflict(f"File already exists: {clashes[0]} (add overwrite=true to replace it)")

    def _write(self, owner: Owner, label: str, items: list[tuple[str, Any]], fields: dict[str, str]) -> list[str]:
        """Write every file under its final name (atomically each), then commit all rows in one transaction;
        a failure removes the files it wrote that no row refers to."""
        with self.index.writing() as db:
            resource, _ = self._ensure(db, owner, label, {})
        folder = self.folder(resource)
        written: list[tuple[str, int, str]] = []
        try:
            for name, read in items:
                size, md5 = self.layout.write_file(self.layout.file_path(folder, name), read())
                written.append((name, size, md5))
            with self.index.writing() as db:
                db.executemany("INSERT OR REPLACE INTO xnat_files (resource, path, size, md5, fields)"
                               " VALUES (?, ?, ?, ?, ?)",
                               [(resource.rid, name, size, md5, json.dumps(fields)) for name, size, md5 in written])
        except BaseException:
            with self.index.reading() as db:
                kept = {r[0] for r in db.execute("SELECT path FROM xnat_files WHERE resource = ?", (resource.rid,))}
            for name, _, _ in written:
                if name not in kept:
                    with contextlib.suppress(OSError):  # never hide the error that stopped the upload
                        self.layout.file_path(folder, name).unlink(missing_ok=True)
            raise
        return [name for name, _, _ in written]

    @_gated
    def delete_file(self, resource: Resource, path: str) -> None:
        entry = self.file(resource, path)
        if entry.instance is not None:
            from .ids import Level

            self.catalog.archive.delete(Level.INSTANCE, entry.instance)
            return
        with self.index.writing() as db:
            db.execute("DELETE FROM xnat_files WHERE resource = ? AND path = ?", (resource.rid, entry.path))
        self.layout.file_path(self.folder(resource), entry.path).unlink(missing_ok=True)

    @_gated
    def refresh(self, resource: Resource, *, append: bool, delete: bool, checksum: bool) -> dict[str, int]:
        """XNAT's catalog refresh: bring the rows of a resource in line with its folder. ``append`` adds the
        files found on disk without a row (placed there by hand), ``delete`` drops the rows of files gone from
        disk, ``checksum`` measures size and MD5 again. Files shown from the archive (a DICOM resource's
        series), temporary files and links are left alone. Returns how many rows each option changed."""
        from .catalog_layout import TEMPORARY_SUFFIX

        folder = self.folder(resource)
        with self.index.reading() as db:
            rows = {r[0]: (r[1], r[2]) for r in db.execute("SELECT path, size, md5 FROM xnat_files WHERE resource = ?",
                                                            (resource.rid,))}
            shown = {dicom_file_name(r[1], r[0]) for r in db.execute(_SERIES_FILES, (resource.series,))} \
                if resource.series else set()
        on_disk: dict[str, Path] = {}
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_symlink() or not path.is_file() or path.name.endswith(TEMPORARY_SUFFIX) \
                        or path.name.startswith("."):
                    continue
                parts = path.relative_to(folder).parts
                try:  # names on disk are encode_name's: the file's path is what they decode to
                    relative = "/".join(decode_name(part) for part in parts)
                except ValueError:
                    continue  # a cut name, or not ASCII: not a name pacsbox would have written
                if encode_path(relative) != "/".join(parts):
                    continue  # a name pacsbox would write otherwise: it could not be found again by its path
                if relative not in shown:
                    on_disk[relative] = path
        changed = {"appended": 0, "deleted": 0, "checksummed": 0}
        measured: list[tuple[str, int, str]] = []
        for name, path in sorted(on_disk.items()):
            if (append and name not in rows) or (checksum and name in rows):
                size, md5 = _measure(path)
                if name not in rows or rows[name] != (size, md5):
                    measured.append((name, size, md5))
        with self.index.writing() as db:
            for name, size, md5 in measured:
                if name in rows:
                    db.execute("UPDATE xnat_files SET size = ?, md5 = ? WHERE resource = ? AND path = ?",
                               (size, md5, resource.rid, name))
                    changed["checksummed"] += 1
                else:
                    db.execute("INSERT INTO xnat_files (resource, path, size, md5, fields) VALUES (?, ?, ?, ?, ?)",
                               (resource.rid, name, size, md5, json.dumps({})))
                    changed["appended"] += 1
            if delete:
                gone = [name for name in rows if name not in on_disk]
                db.executemany("DELETE FROM xnat_files WHERE resource = ? AND path = ?",
                               [(resource.rid, name) for name in gone])
                changed["deleted"] = len(gone)
        return changed

    # -- DICOM resources linked to the archive ------------------------------------------------------------
    def link_series(self, db: sqlite3.Connection, owner: Owner, series_id: str) -> None:
        """Make the scan's DICOM resource show the archive series (inside the caller's transaction)."""
        self._ensure(db, owner, "DICOM", {"format": "DICOM", "content": "RAW"}, series=series_id)

    @_gated
    def sync_dicom_folders(self, experiment_id: str) -> None:
        """Make the session's DICOM folders on disk match the archive (hard links to the stored files)."""
        experiment = self.catalog.experiment(None, experiment_id)
        with self.index.reading() as db:
            rows = db.execute("SELECT scan, label FROM xnat_resources WHERE experiment = ? AND series IS NOT NULL",
                              (experiment_id,)).fetchall()
        for scan, label in rows:
            owner = self.owner(project=experiment.project, experiment=experiment, scan=scan)
            resource = self.get(owner, label)
            entries = self.files(resource)
            self.layout.sync_links(self.folder(resource),
                                   {e.path: e.disk for e in entries if e.instance is not None},
                                   keep=[e.path for e in entries if e.instance is None])


def _measure(path: Path) -> tuple[int, str]:
    """Size and MD5 of a file, read in chunks."""
    digest, size = hashlib.md5(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
