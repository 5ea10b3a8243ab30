"""Orthanc's modification jobs in domain terms: modify or anonymize resources, merge studies, split a study.

Each job reads the instances it works on from the archive, writes the new instances through ``Archive.store`` (so
they are ingested like any other: events fire, the XNAT catalog and every face see them), records
``ModifiedFrom``/``AnonymizedFrom`` on the new resources whose IDs differ from their sources, and deletes the
sources afterwards unless asked to keep them. A job follows the jobs engine's interface (``job_type``,
``initial_content()``, ``run(context)`` in a worker thread, returning the answer of a synchronous request);
``context.checkpoint()`` between instances lets the engine pause or cancel it.

Answers and rules follow the real Orthanc 1.10.1 (``tests/faces/orthanc/test_modification_differential.py``).
"""

from __future__ import annotations

import contextlib
import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .archive import Archive, StoreResult
from .create_dicom import MODULE_TAGS
from .errors import BadRequest, UnknownResource
from .events import Origin
from .ids import Level, hash_id
from .modification import Modification, UidMap, apply
from .transcoding import CannotTranscode, transcode

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

ANONYMIZATION_SEQUENCE = "AnonymizationSequence"  # index property: the N of the last "Anonymized<N>" patient


class JobContext(Protocol):
    """What the jobs engine lends a running job."""

    content: dict

    def progress(self, fraction: float) -> None: ...

    def checkpoint(self) -> None: ...

    def add_output(self, key: str, data: bytes, mime: str) -> None: ...


def next_anonymized_patient(archive: Archive) -> int:
    """The archive's counter of anonymized patients, incremented and persisted in one write transaction."""
    with archive.index.writing() as db:
        row = db.execute("SELECT value FROM properties WHERE name = ?", (ANONYMIZATION_SEQUENCE,)).fetchone()
        number = int(row[0]) + 1 if row and str(row[0]).isdigit() else 1
        db.execute("INSERT OR REPLACE INTO properties (name, value) VALUES (?, ?)", (ANONYMIZATION_SEQUENCE,
                                                                                     str(number)))
    return number


def read_instance(archive: Archive, instance_id: str) -> Dataset:
    """A stored instance as pydicom reads it, with file meta (a file stored without one gets one)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    dataset = archive.instance_dataset(instance_id)
    meta = getattr(dataset, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:  # a bare data set, stored as it came: as read
        meta = FileMetaDataset(meta or Dataset())
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if dataset.is_implicit_VR else ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = dataset.get("SOPClassUID", "")
        meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID", "")
        dataset.file_meta = meta
    return dataset


def serialize(dataset: Dataset) -> bytes:
    import pydicom

    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    except Exception as error:  # a value pydicom cannot write is the request's fault, never a 500
        raise BadRequest(f"Cannot write the modified instance: {error}") from None
    return buffer.getvalue()


def modify_instance_file(archive: Archive, instance_id: str, modification: Modification,
                         transcode_to: str | None) -> bytes:
    """The instance-level form: the modified file, not stored (the ``/instances/{id}/modify`` answer)."""
    dataset = read_instance(archive, instance_id)
    numbers = (lambda: next_anonymized_patient(archive)) if modification.is_anonymization else None
    apply(dataset, modification, UidMap(numbers))
    if transcode_to:
        try:
            transcode(dataset, transcode_to)
        except CannotTranscode:  # (the job form keeps the syntax; this one fails, with Orthanc's words)
            raise CannotTranscode(f"Cannot transcode to transfer syntax: {transcode_to}") from None
    return serialize(dataset)


@dataclass
class _Output:
    """The new resources a job made: its answer's ``ID``/``PatientID`` (one resource) or ``Resources`` (bulk)."""

    level: Level
    single: bool
    first: StoreResult | None = None
    resources: dict[Level, set[str]] = field(default_factory=lambda: {level: set() for level in Level})

    def add(self, result: StoreResult) -> None:
        self.first = self.first or result
        for level, public_id in _ids_of(result).items():
            self.resources[level].add(public_id)

    def answer(self) -> dict[str, Any]:
        if self.single:
            if self.first is None:
                return {}
            public_id = _ids_of(self.first)[self.level]
            return {"ID": public_id, "Path": f"/{self.level.plural}/{public_id}", "PatientID": self.first.patient_id,
                    "Type": self.level.title}
        listed = [{"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.title}
                  for level in reversed(Level) for public_id in sorted(self.resources[level])]
        return {"Resources": listed}


def _ids_of(result: StoreResult) -> dict[Level, str]:
    return {Level.PATIENT: result.patient_id, Level.STUDY: result.study_id, Level.SERIES: result.series_id,
            Level.INSTANCE: result.instance_id}


class _InstancesJob:
    """What the three jobs share: source instances worked on one at a time, copies stored, sources deleted at the
    end unless kept. The position survives a pause (the engine runs the job again on resume, and it goes on where
    it stopped); ``reset`` starts it over (a resubmitted job)."""

    job_type = ""

    def __init__(self, archive: Archive, instance_ids: list[str], *, keep_source: bool, origin: Origin,
                 permissive: bool = False) -> None:
        self.archive, self.instance_ids, self.keep_source = archive, instance_ids, keep_source
        self.origin, self.permissive = origin, permissive
        # the engine saves jobs (serialize) while they run: what it reads changes under this lock only
        self.state_lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.position, self.failed = 0, 0
        self.stored: set[str] = set()
        self.uids = UidMap()

    def initial_content(self) -> dict[str, Any]:
        return {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": len(self.instance_ids)}

    def serialize(self) -> dict[str, Any]:
        """What ``SaveJobs`` keeps of the job (core.modify_jobs_saved rebuilds it)."""
        from .modify_jobs_saved import serialize  # (that module builds on this one)

        return serialize(self)

    def run(self, context: JobContext | None) -> dict[str, Any]:
        total = len(self.instance_ids) or 1
        while self.position < len(self.instance_ids):
            if context is not None:
                context.checkpoint()
            instance_id = self.instance_ids[self.position]
            try:
                stored = self._handle(instance_id)
            except Exception:
                if not self.permissive:
                    raise
                with self.state_lock:
                    self.failed += 1
                    self.position += 1
                if context is not None:
                    context.content["FailedInstancesCount"] = self.failed
            else:
                with self.state_lock:
                    self.stored.add(stored)
                    self.position += 1
            if context is not None:
                context.progress(self.position / total)
        if not self.keep_source:
            for instance_id in self.instance_ids:
                if instance_id not in self.stored and self.archive.exists(Level.INSTANCE, instance_id):
                    self.archive.delete(Level.INSTANCE, instance_id)
        answer = {**self.initial_content(), "FailedInstancesCount": self.failed, **self._answer()}
        if context is not None:
            context.content.update(answer)  # a finished job's Content is its answer, as in Orthanc
        return answer

    def _handle(self, instance_id: str) -> str:
        """Make and store the copy of one instance; its ID."""
        raise NotImplementedError

    def _answer(self) -> dict[str, Any]:
        raise NotImplementedError

    def _store(self, dataset: Dataset) -> StoreResult:
        result = self.archive.store(serialize(dataset), self.origin)
        if result.status == "FilteredOut":
            raise BadRequest("The modified instance was refused by a store filter")
        return result


class ResourceModificationJob(_InstancesJob):
    """Modify or anonymize every instance of some resources (Orthanc's ResourceModificationJob)."""

    job_type = "ResourceModification"

    def __init__(self, archive: Archive, modification: Modification, resources: list[tuple[Level, str]], *,
                 bulk: bool, keep_source: bool, origin: Origin, transcode_to: str | None = None,
                 permissive: bool = False) -> None:
        """``resources``: what to modify (with ``bulk`` false, one resource, whose new ID is the answer)."""
        instance_ids = [instance for level, public_id in resources
                        for instance in archive.instance_ids_below(level, public_id)]
        self.modification, self.transcode_to = modification, transcode_to
        self.output_level, self.bulk = resources[0][0] if resources else modification.level, bulk
        super().__init__(archive, instance_ids, keep_source=keep_source, origin=origin, permissive=permissive)

    def reset(self) -> None:
        super().reset()
        if self.modification.is_anonymization:
            self.uids = UidMap(lambda: next_anonymized_patient(self.archive))
        self.output = _Output(self.output_level, single=not self.bulk)

    def initial_content(self) -> dict[str, Any]:
        content = {**super().initial_content(), "IsAnonymization": self.modification.is_anonymization}
        if self.transcode_to:
            content["Transcode"] = self.transcode_to
        return content

    def _handle(self, instance_id: str) -> str:
        sources = _source_ids(self.archive, instance_id)
        dataset = read_instance(self.archive, instance_id)
        apply(dataset, self.modification, self.uids)
        if self.transcode_to:
            with contextlib.suppress(CannotTranscode):  # Orthanc keeps the syntax (and logs it)
                transcode(dataset, self.transcode_to, new_uid_when_lossy=False)
        result = self._store(dataset)
        with self.state_lock:
            self.output.add(result)
        metadata = "AnonymizedFrom" if self.modification.is_anonymization else "ModifiedFrom"
        _record_origin(self.archive, sources, _ids_of(result), metadata)
        return result.instance_id

    def _answer(self) -> dict[str, Any]:
        return self.output.answer()


class MergeStudyJob(_InstancesJob):
    """Move series or instances into a study (Orthanc's MergeStudyJob): they take the target study's patient and
    study module tags (those it lacks are removed), new series UIDs (one per source series) and new instance
    UIDs."""

    job_type = "MergeStudy"

    def __init__(self, archive: Archive, target_study: str, resources: list[str], *, keep_source: bool,
                 origin: Origin) -> None:
        archive.resource(Level.STUDY, target_study)
        instance_ids: list[str] = []
        for public_id in resources:
            try:
                level = archive.level_of(public_id)
            except UnknownResource:
                raise UnknownResource(f"Cannot find this resource: {public_id}") from None
            if level == Level.PATIENT:
                raise UnknownResource(f"This resource is neither a study, nor a series, nor an instance: "
                                      f"{public_id} is a Patient")
            if public_id == target_study:
                raise UnknownResource(f"Cannot merge a study into the same study: {public_id}")
            if level > Level.STUDY and archive.related(level, public_id, Level.STUDY)[0].public_id == target_study:
                raise UnknownResource(f"Cannot merge {level.title.lower()} {public_id} into its parent study "
                                      f"{target_study}")
            instance_ids += [i for i in archive.instance_ids_below(level, public_id) if i not in instance_ids]
        super().__init__(archive, instance_ids, keep_source=keep_source, origin=origin)
        self.target_study = target_study
        target = read_instance(archive, archive.instance_ids_below(Level.STUDY, target_study)[0])
        module = MODULE_TAGS["Patient"] | MODULE_TAGS["Study"]
        self.target_elements = {tag: target[tag] for tag in sorted(module) if tag in target}
        self.absent = module - self.target_elements.keys()

    def _handle(self, instance_id: str) -> str:
        dataset = read_instance(self.archive, instance_id)
        for tag in self.absent & set(dataset.keys()):
            del dataset[tag]
        for tag, element in self.target_elements.items():
            dataset[tag] = element
        apply(dataset, Modification(Level.SERIES), self.uids)  # new series and instance UIDs
        return self._store(dataset).instance_id

    def initial_content(self) -> dict[str, Any]:
        return {**super().initial_content(), "TargetStudy": self.target_study}

    def _answer(self) -> dict[str, Any]:
        return {"TargetStudy": self.target_study}


class SplitStudyJob(_InstancesJob):
    """Move series or instances of a study into a new study (Orthanc's SplitStudyJob), with tags of the new study
    replaced or removed."""

    job_type = "SplitStudy"

    def __init__(self, archive: Archive, source_study: str, instance_ids: list[str], changes: Modification, *,
                 keep_source: bool, origin: Origin) -> None:
        self.source_study, self.changes = source_study, changes
        self.changes.level = Level.STUDY
        study = archive.resource(Level.STUDY, source_study)
        self.source_uid = study.main_tags.get("StudyInstanceUID", "")
        patient = archive.related(Level.STUDY, source_study, Level.PATIENT)[0]
        self.patient_id = patient.main_tags.get("PatientID", "")
        super().__init__(archive, instance_ids, keep_source=keep_source, origin=origin)

    def reset(self) -> None:
        """The new study's UID is chosen up front (the job's Content names the target from the start)."""
        super().reset()
        self.target_uid = self.uids.uid(Level.STUDY.name, self.source_uid)

    def initial_content(self) -> dict[str, Any]:
        return {**super().initial_content(), **self._answer()}

    def _handle(self, instance_id: str) -> str:
        dataset = read_instance(self.archive, instance_id)
        apply(dataset, self.changes, self.uids)
        return self._store(dataset).instance_id

    def _answer(self) -> dict[str, Any]:
        return {"TargetStudy": hash_id(self.patient_id, self.target_uid), "TargetStudyUID": self.target_uid}


def _source_ids(archive: Archive, instance_id: str) -> dict[Level, str]:
    ids = {Level.INSTANCE: instance_id}
    for level in (Level.SERIES, Level.STUDY, Level.PATIENT):
        ids[level] = archive.related(Level.INSTANCE, instance_id, level)[0].public_id
    return ids


def _record_origin(archive: Archive, sources: dict[Level, str], targets: dict[Level, str], name: str) -> None:
    """ModifiedFrom/AnonymizedFrom on each new resource whose ID differs from its source's (no change logged, as
    Orthanc writes them with the instance)."""
    with archive.index.writing() as db:
        for level in Level:
            if sources[level] == targets[level]:
                continue
            row = db.execute("SELECT iid FROM resources WHERE public_id = ?", (targets[level],)).fetchone()
            if row is not None:
                archive.index.set_metadata_many(db, row[0], {name: sources[level]})
