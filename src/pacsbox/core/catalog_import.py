"""DICOM into the XNAT model: the import service, filing a study as a session, and C-STORE routing.

Labels follow XNAT's rules for DICOM (its "How XNAT scans DICOM to map to project/subject/session" page): the
request's own values first, then ``Project:X Subject:Y Session:Z`` in Patient Comments (0010,4000), then in
Study Comments (0032,4000), then StudyDescription (project, when such a project exists; then
AccessionNumber), PatientName (subject) and PatientID (session). A session's scans are its series: ID =
SeriesNumber, type = SeriesDescription, one ``DICOM`` resource linked to the archive series.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .catalog import Experiment, label_of
from .catalog_fields import empty_fields
from .dicom import ParsedInstance, parse_instance
from .errors import BadRequest, Conflict, InvalidDicom, UnknownResource
from .gate import beside_reset_and_restore
from .ids import Level
from .safe_paths import dicom_label
from .unpack import ArchiveReader, is_archive

if TYPE_CHECKING:
    from .archive import Origin
    from .catalog import Catalog

UNASSIGNED = "Unassigned"  # XNAT's prearchive folder for sessions of no known project
# XNAT's project prearchive codes (arc:project/prearchive_code): where a session with no destination goes
PREARCHIVE_ALL, AUTO_ARCHIVE, AUTO_ARCHIVE_OVERWRITE = 0, 4, 5
_COMMENT_FIELD = re.compile(r"\b(project|subject|session)\s*:\s*([^\s,;]+)", re.IGNORECASE)
_SESSION_TYPES = {"MR": "xnat:mrSessionData", "CT": "xnat:ctSessionData", "PT": "xnat:petSessionData"}
_SCAN_TYPES = {"MR": "xnat:mrScanData", "CT": "xnat:ctScanData", "PT": "xnat:petScanData"}
OTHER_SESSION = "xnat:otherDicomSessionData"
OTHER_SCAN = "xnat:otherDicomScanData"


# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.archive.gate)


def session_type_of(modality: str) -> str:
    """XNAT's session type for a DICOM Modality (MR -> xnat:mrSessionData, ...)."""
    return _SESSION_TYPES.get(modality.upper(), OTHER_SESSION)


def clean_label(text: str) -> str:
    """A DICOM value made into an XNAT label: letters, digits, ``_`` and ``-``; others become ``_``; at most
    64 characters (a longer value is cut and ends with a hash of it): never refused, so the instance lands."""
    return dicom_label(text)


def scan_id_of(series_number: str, taken: Collection[str]) -> str:
    """The scan ID of a series: its SeriesNumber as an XNAT label (a hostile ``/some/dir`` or ``../..`` becomes
    ``some_dir`` or ``--``... never a path), else its rank; ``-2``, ``-3``... added while the ID is taken, so two
    series stay two scans."""
    base = clean_label(series_number) or str(len(taken) + 1)
    scan_id, counter = base, 1
    while scan_id in taken:
        counter += 1
        scan_id = f"{base}-{counter}"
    return scan_id


@dataclass(frozen=True)
class Routing:
    """Candidate labels read from one instance; the project candidates count only when the project exists."""

    projects: tuple[str, ...] = ()
    subject: str = ""
    session: str = ""


def _text(parsed: ParsedInstance, tag: int) -> str:
    element = parsed.dataset.get_item(tag)
    if element is None:
        return ""
    value = element.value
    if isinstance(element, tuple):  # pydicom's RawDataElement (a NamedTuple), told apart without importing it
        value = (value or b"").decode("latin-1", "replace")
    return str(value or "").strip(" \x00")


def routing_of(parsed: ParsedInstance) -> Routing:
    """XNAT's label rules applied to one instance."""
    found: dict[str, str] = {}
    for tag in (0x00104000, 0x00324000):  # Patient Comments, Study Comments
        for key, value in _COMMENT_FIELD.findall(_text(parsed, tag)):
            found.setdefault(key.lower(), value)
    study, patient = parsed.main_tags.get(Level.STUDY, {}), parsed.main_tags.get(Level.PATIENT, {})
    projects = [found.get("project", ""), study.get("StudyDescription", ""), study.get("AccessionNumber", "")]
    return Routing(
        projects=tuple(label for label in (clean_label(p) for p in projects) if label),
        subject=clean_label(found.get("subject") or patient.get("PatientName", "")),
        session=clean_label(found.get("session") or patient.get("PatientID", "")),
    )


def scan_type_of_modality(modality: str) -> str:
    """XNAT's scan type for a DICOM Modality (MR -> xnat:mrScanData, ...)."""
    return _SCAN_TYPES.get(modality.upper(), OTHER_SCAN)


@dataclass(frozen=True)
class DicomTypes:
    """How a study's modality becomes session and scan types. The core knows the common ones; the XNAT face
    passes the types its schema documents declare."""

    session: Callable[[str], str] = session_type_of
    scan: Callable[[str], str] = scan_type_of_modality


@dataclass
class ImportRequest:
    """What the import service was asked (the face reads it from the query and ``dest``)."""

    to_archive: bool | None  # None: the project's prearchive code decides (XNAT's import without dest)
    project: str = ""
    subject: str = ""
    session: str = ""
    overwrite: str = "none"  # none, append, delete
    ignore_unparsable: bool = False
    types: DicomTypes = field(default_factory=DicomTypes)
    quarantine: bool = False  # archived sessions start in XNAT's quarantine status


@dataclass
class _Study:
    routing: Routing
    members: list[Any] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)


class Importer:
    """The import service and the filing of DICOM studies as sessions (``catalog.importer``)."""

    def __init__(self, catalog: Catalog) -> None:
        from .catalog_prearchive import Prearchive

        self.catalog = catalog
        self.archive = catalog.archive
        self.index = catalog.index
        self.prearchive = Prearchive(catalog)

    # -- the import service -------------------------------------------------------------------------------
    @_gated
    def import_upload(self, body: BinaryIO, request: ImportRequest, origin: Origin) -> list[str]:
        """Import a zip/tar/tar.gz of DICOM files (or one DICOM file): every member is read and checked before
        anything is stored. Returns the new sessions' paths (``/archive/projects/P/subjects/S/experiments/E``
        or ``/prearchive/projects/P/TS/NAME``), one per study."""
        if request.overwrite not in ("none", "append", "delete"):
            raise BadRequest(f"overwrite must be none, append or delete, not {request.overwrite!r}")
        with contextlib.ExitStack() as open_archive:
            studies = self._read(body, request.ignore_unparsable, open_archive)
            return self._import_studies(studies, request, origin)

    @_gated
    def import_directory(self, folder: Path, request: ImportRequest, origin: Origin) -> list[str]:
        """Import the DICOM files of a server-side folder (XNAT's inbox import): like an uploaded zip of it.
        Symbolic links are not followed: the caller checked the folder, and nothing below may lead out of it."""
        studies: OrderedDict[str, _Study] = OrderedDict()
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            self._add_member(studies, str(path.relative_to(folder)), path.read_bytes, skip_unparsable=True)
        if not studies:
            raise BadRequest(f"The folder {folder.name} holds no DICOM file")
        return self._import_studies(studies, request, origin)

    def _import_studies(self, studies: OrderedDict[str, _Study], request: ImportRequest,
                        origin: Origin) -> list[str]:
        plans = []
        for study in studies.values():
            project, subject, session = self._labels(study.routing, request)
            to_archive, overwrite = self._destination_of(request, project, session)
            self._check_destination(request, to_archive, overwrite, project, subject, session)
            plans.append((study, project, subject, session, to_archive, overwrite))
        sessions = [(plan[1], plan[3]) for plan in plans if plan[4]]
        if len(set(sessions)) < len(sessions):
            raise BadRequest(f"The upload holds {len(plans)} studies that would all be session"
                             f" {sessions[0][1]!r}: import them one by one, or label them apart in the DICOM")
        results = []
        for study, *rest in plans:
            stored = [self.archive.store(read(), origin) for read in study.members]
            results.append((stored, *rest))
        paths = []
        for stored, project, subject, session, to_archive, overwrite in results:
            instance_ids = [result.instance_id for result in stored]
            study_id = stored[0].study_id
            if to_archive:
                experiment = self.file_session(project, subject, session, study_id, instance_ids, overwrite,
                                               request.types)
                if request.quarantine:
                    self.catalog.put_experiment(None, None, experiment.id, None, {"status": "quarantine"})
                paths.append(f"/archive/projects/{experiment.project}/subjects/{experiment.subject}"
                             f"/experiments/{experiment.id}")
            else:
                entry = self.prearchive.add(project or UNASSIGNED, subject, session, study_id, instance_ids, "import")
                paths.append(f"/prearchive/projects/{entry.project}/{entry.timestamp}/{entry.name}")
        return paths

    def _destination_of(self, request: ImportRequest, project: str, session: str) -> tuple[bool, str]:
        """Archive or prearchive, and the overwrite mode: as asked, else as the project's prearchive code says
        (0: prearchive; 4: archive, but a session already there waits in the prearchive; 5: archive, adding
        to a session already there)."""
        if request.to_archive is not None:
            return request.to_archive, request.overwrite
        if not project or not self.catalog.has_project(project):
            return False, request.overwrite
        code = self.catalog.prearchive_code(project)
        if code == PREARCHIVE_ALL:
            return False, request.overwrite
        if code == AUTO_ARCHIVE_OVERWRITE:
            return True, request.overwrite if request.overwrite != "none" else "append"
        if request.overwrite == "none" and session and self._session_exists(project, session):
            return False, request.overwrite
        return True, request.overwrite

    def _session_exists(self, project: str, session: str) -> bool:
        try:
            self.catalog.experiment(project, session)
        except UnknownResource:
            return False
        return True

    def _read(self, body: BinaryIO, ignore_unparsable: bool,
              open_archive: contextlib.ExitStack) -> OrderedDict[str, _Study]:
        """Parse every member; group the readers of the DICOM ones by study."""
        body.seek(0)
        head = body.read(512)
        studies: OrderedDict[str, _Study] = OrderedDict()
        if is_archive(head) or _is_tar(head):
            # XNAT imports the DICOM files of an archive and leaves the rest (snapshots, notes, DICOMDIR text)
            reader = open_archive.enter_context(ArchiveReader(body, self.archive.config.MaximumUploadSize))
            for member in reader:
                self._add_member(studies, member.path, member.read, skip_unparsable=True)
        else:
            def whole() -> bytes:
                body.seek(0)
                return body.read()
            self._add_member(studies, "the uploaded file", whole, skip_unparsable=ignore_unparsable)
        if not studies:
            raise BadRequest("The upload holds no DICOM file")
        return studies

    def _add_member(self, studies: OrderedDict[str, _Study], name: str, read: Callable[[], bytes], *,
                    skip_unparsable: bool) -> None:
        """Parse one file and group its reader under its study. ``skip_unparsable`` skips files that are not
        DICOM; a Part 10 file that does not parse (cut short, damaged) still refuses the whole import."""
        data = read()
        try:
            parsed = parse_instance(data, self.archive.settings.default_encoding)
        except InvalidDicom as error:
            if skip_unparsable and bytes(data[128:132]) != b"DICM":
                return
            raise BadRequest(f"{name}: not a DICOM file ({error.details}); add Ignore-Unparsable=true to skip"
                             " such files") from None
        study = studies.setdefault(parsed.study_uid, _Study(routing_of(parsed)))
        study.members.append(read)

    def _labels(self, routing: Routing, request: ImportRequest) -> tuple[str, str, str]:
        project = request.project
        if not project:
            with self.index.reading() as db:
                project = next((p for p in routing.projects if self.catalog.project_exists(db, p)), "")
        return project, request.subject or routing.subject, request.session or routing.session

    def _check_destination(self, request: ImportRequest, to_archive: bool, overwrite: str, project: str,
                           subject: str, session: str) -> None:
        for label, what in ((subject, "subject label"), (session, "session label")):
            if label:
                label_of(label, what)  # names of folders: never "..", never a path
        if request.project or to_archive:
            if not project:
                raise BadRequest("No project for the session: give project= or dest=/archive/projects/P")
            self.catalog.project(project)  # UnknownResource: a 404 for a project that does not exist
        if not to_archive:
            return
        if not subject or not session:
            raise BadRequest("No subject or session label: give subject= and session= or add them to the DICOM")
        if overwrite == "none":
            try:
                existing = self.catalog.experiment(project, session)
            except UnknownResource:
                return
            raise Conflict(f"Session {session} already exists in project {project} ({existing.id}); use"
                           " overwrite=append or overwrite=delete")

    # -- filing a study as a session ----------------------------------------------------------------------
    def file_session(self, project: str, subject_label: str, session_label: str, study_id: str,
                     instance_ids: list[str], overwrite: str = "none", types: DicomTypes = DicomTypes()) -> Experiment:
        """Create (or, with overwrite=append, complete; with delete, replace) the session of an archive study:
        one scan per series of ``instance_ids``, each with a DICOM resource linked to its series."""
        series = self._series_of_instances(instance_ids)
        if not series:
            raise BadRequest("No stored instance to file as a session")
        first = series[0]
        session_type = types.session(first["Modality"])
        replaced: Experiment | None = None
        with self.index.writing() as db:
            subject, _ = self.catalog._ensure_subject(db, project, subject_label)
            try:
                experiment: Experiment | None = self.catalog._experiment(db, project, session_label)
            except UnknownResource:
                experiment = None
            if experiment is not None and overwrite == "none":
                raise Conflict(f"Session {session_label} already exists in project {project}")
            if experiment is not None and overwrite == "delete":
                db.execute("DELETE FROM xnat_experiments WHERE id = ?", (experiment.id,))
                replaced, experiment = experiment, None
            if experiment is None:
                experiment = self.catalog._insert_experiment(db, subject, session_label, session_type,
                                                             _session_fields(first), study_id)
            elif experiment.subject != subject.id:
                raise Conflict(f"Session {session_label} belongs to another subject than {subject_label}")
            self._add_scans(db, experiment, series, types)
        if replaced is not None:
            self.catalog.layout.remove_tree(self.catalog.layout.session_dir(project, replaced.label))
        self.catalog.layout.session_dir(project, session_label).mkdir(parents=True, exist_ok=True)
        self.catalog.resources.sync_dicom_folders(experiment.id)
        return self.catalog.experiment(None, experiment.id)

    def _add_scans(self, db: sqlite3.Connection, experiment: Experiment, series: list[dict[str, Any]],
                   types: DicomTypes) -> None:
        taken = {r[0]: r[1] for r in db.execute(
            "SELECT s.id, r.series FROM xnat_scans s LEFT JOIN xnat_resources r ON r.experiment = s.experiment"
            " AND r.scan = s.id AND r.label = 'DICOM' WHERE s.experiment = ?", (experiment.id,))}
        for entry in series:
            scan_id = next((sid for sid, linked in taken.items() if linked == entry["id"]), None)
            if scan_id is None:
                scan_id = scan_id_of(entry["SeriesNumber"], taken)
                data = {"type": entry["SeriesDescription"], "series_description": entry["SeriesDescription"],
                        "UID": entry["SeriesInstanceUID"], "modality": entry["Modality"], "quality": "usable",
                        "frames": str(entry["count"])}
                fields = {**empty_fields(), "data": {k: v for k, v in data.items() if v}}
                db.execute("INSERT INTO xnat_scans (experiment, id, xsi_type, fields, inserted) VALUES (?, ?, ?, ?, ?)",
                           (experiment.id, scan_id, types.scan(entry["Modality"]), json.dumps(fields), time.time()))
                taken[scan_id] = entry["id"]
            owner = self.catalog.resources.owner(project=experiment.project, experiment=experiment, scan=scan_id)
            self.catalog.resources.link_series(db, owner, entry["id"])

    def _series_of_instances(self, instance_ids: list[str]) -> list[dict[str, Any]]:
        """The series holding the given instances, in first-seen order, with their main tags and study's."""
        found: OrderedDict[str, dict[str, Any]] = OrderedDict()
        with self.index.reading() as db:
            for start in range(0, len(instance_ids), 500):
                chunk = instance_ids[start:start + 500]
                for series_id, series_tags, study_tags, patient_tags in db.execute(
                    "SELECT s.public_id, s.main_tags, st.main_tags, p.main_tags FROM resources r"
                    " JOIN resources s ON s.iid = r.series JOIN resources st ON st.iid = r.study"
                    f" JOIN resources p ON p.iid = r.patient WHERE r.public_id IN ({','.join('?' * len(chunk))})"
                    " ORDER BY r.iid", chunk,
                ):
                    entry = found.get(series_id)
                    if entry is None:
                        tags = json.loads(series_tags)
                        entry = found[series_id] = {
                            "id": series_id, "count": 0, "study": json.loads(study_tags),
                            "patient": json.loads(patient_tags),
                            **{k: tags.get(k, "") for k in ("SeriesNumber", "SeriesDescription", "Modality",
                                                            "SeriesInstanceUID")},
                        }
                    entry["count"] += 1
        return list(found.values())

    # -- C-STORE routing (called inside the archive's store transaction) ----------------------------------
    def route_received(self, db: sqlite3.Connection, parsed: ParsedInstance, study_id: str, instance_id: str) -> None:
        """File an instance received over DICOM in the prearchive, as XNAT's DICOM receiver does: under the
        project its tags name (when it exists), else under Unassigned. Rows only: no file is copied here."""
        routing = routing_of(parsed)
        project = next((p for p in routing.projects if self.catalog.project_exists(db, p)), UNASSIGNED)
        session = routing.session or clean_label(parsed.study_uid)[-16:]
        self.prearchive.receive(db, project, routing.subject, session, study_id, instance_id)


def _session_fields(series: dict[str, Any]) -> dict[str, Any]:
    study, patient = series["study"], series["patient"]
    date, moment = study.get("StudyDate", ""), study.get("StudyTime", "")
    data = {
        "UID": study.get("StudyInstanceUID", ""),
        "date": f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) >= 8 and date.isdigit() else "",
        "time": f"{moment[:2]}:{moment[2:4]}:{moment[4:6]}" if len(moment) >= 6 and moment[:6].isdigit() else "",
        "modality": series["Modality"],
        "session_type": study.get("StudyDescription", ""),
        "dcmAccessionNumber": study.get("AccessionNumber", ""),
        "dcmPatientId": patient.get("PatientID", ""),
        "dcmPatientName": patient.get("PatientName", ""),
    }
    return {**empty_fields(), "data": {k: v for k, v in data.items() if v}}


def _is_tar(head: bytes) -> bool:
    return len(head) > 262 and head[257:262] == b"ustar"
