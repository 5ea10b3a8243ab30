"""The jobs of the Orthanc face (run by ``core.jobs``), with Orthanc 1.10.1's types and Content.

* ``Archive`` (``/{level}/{id}/archive``, ``/tools/create-archive``): the zip, one instance per step; its output
  ``archive`` when asynchronous. Not saved across a restart, as in Orthanc.
* ``DicomModalityStore`` (``/modalities/{id}/store``): C-STORE, one instance per step, on one association.
* ``OrthancPeerStore`` (``/peers/{id}/store``): HTTP POST of each instance to a peer, one per step.
* ``DicomMoveScu`` (``/queries/{id}/retrieve``, ``/queries/{id}/answers/{n}/retrieve``): C-MOVE, one step.
* ``DicomGetScu`` (``/modalities/{id}/get``): C-GET, one step.

The store and retrieve jobs are saved (``SaveJobs``) with where they stood; ``saved_job_types`` teaches the engine
to rebuild them.
"""

from __future__ import annotations

import dataclasses
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ...core.archive import Archive
from ...core.errors import Unsupported
from ...core.ids import Level
from ...core.jobs import JobContext
from ...core.modalities import Modality, RemoteDicom
from ...core.peers import Peer, PeerConnection, PeerStoreReport
from ..http_common import spool_directory
from .zipping import write_archive

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

_MB = 1024 * 1024


def _remote(archive: Archive) -> RemoteDicom:
    if archive.remote is None:
        raise Unsupported("This server has no DICOM client (the DICOM face is not running)")
    return archive.remote


class ArchiveJob:
    """A zip of resources in Orthanc's layout. Synchronous: ``handle`` holds the zip once it ran; asynchronous:
    the output ``archive`` (``archive.zip``)."""

    job_type = "Archive"

    def __init__(self, archive: Archive, resources: list[tuple[Level, str]], *, synchronous: bool) -> None:
        self.archive, self.resources, self.synchronous = archive, resources, synchronous
        self.handle: BinaryIO | None = None

    def initial_content(self) -> dict:
        return {"ArchiveSize": "0", "ArchiveSizeMB": 0, "Description": "REST API", "InstancesCount": 0,
                "UncompressedSize": "0", "UncompressedSizeMB": 0}

    def run(self, context: JobContext) -> dict:
        def step(done: int, total: int) -> None:
            context.content["InstancesCount"] = total
            context.progress(done / total)
            context.checkpoint()

        spool = spool_directory(self.archive.config)
        if self.synchronous:
            output: BinaryIO = tempfile.TemporaryFile(dir=spool)
        else:
            output = tempfile.NamedTemporaryFile(dir=spool, prefix="job-", suffix=".zip", delete=False)
        try:
            write_archive(self.archive, self.resources, output=output, before_each=step)
            output.seek(0)
            with zipfile.ZipFile(output) as zipped:
                members = zipped.infolist()
            size = output.seek(0, 2)
            output.seek(0)
        except BaseException:
            output.close()
            if not self.synchronous:
                Path(output.name).unlink(missing_ok=True)
            raise
        uncompressed = sum(member.file_size for member in members)
        context.content.update(ArchiveSize=str(size), ArchiveSizeMB=size // _MB, InstancesCount=len(members),
                               UncompressedSize=str(uncompressed), UncompressedSizeMB=uncompressed // _MB)
        if self.synchronous:
            self.handle = output
        else:
            output.close()
            context.add_output_file("archive", Path(output.name), "application/zip", "archive.zip")
        return dict(context.content)


class DicomModalityStoreJob:
    """C-STORE of archived instances to a modality; goes on from where it stopped after a pause or a restart."""

    job_type = "DicomModalityStore"

    def __init__(self, archive: Archive, modality: Modality, instance_ids: list[str], content: dict, *,
                 originator: tuple[str, int] | None = None, permissive: bool = False) -> None:
        self.archive, self.modality, self.instance_ids = archive, modality, instance_ids
        self.content, self.originator, self.permissive = content, originator, permissive
        self.position = 0
        self.failed = 0

    @classmethod
    def request(cls, archive: Archive, modality: Modality, instance_ids: list[str], resources: list[str],
                local_aet: str, originator: tuple[str, int] | None, permissive: bool) -> DicomModalityStoreJob:
        """The job of POST /modalities/{id}/store, with Orthanc's Content."""
        content: dict[str, Any] = {"Description": "REST API", "FailedInstancesCount": 0,
                                   "InstancesCount": len(instance_ids), "LocalAet": local_aet,
                                   "RemoteAet": modality.aet}
        if resources:
            content["ParentResources"] = sorted(set(resources))
        if originator is not None:
            content["MoveOriginatorAET"], content["MoveOriginatorID"] = originator
        return cls(archive, modality, instance_ids, content, originator=originator, permissive=permissive)

    def initial_content(self) -> dict:
        return dict(self.content, FailedInstancesCount=self.failed)

    def reset(self) -> None:
        self.position = self.failed = 0

    def run(self, context: JobContext) -> dict:
        total, start = len(self.instance_ids), self.position

        def step(done: int) -> None:
            self.position = start + done
            context.progress(self.position / total if total else 1.0)
            if done:  # as Orthanc's first step, the first instance goes with the association that opens for it
                context.checkpoint()

        report = _remote(self.archive).store(self.modality, self.instance_ids[start:], self.originator,
                                             self.permissive, before_each=step)
        self.position = total
        self.failed += report.failed
        context.content["FailedInstancesCount"] = self.failed
        return dict(context.content)

    def serialize(self) -> dict:
        return {"Modality": dataclasses.asdict(self.modality), "Instances": self.instance_ids,
                "Content": self.content, "Originator": self.originator, "Permissive": self.permissive,
                "Position": self.position, "Failed": self.failed}

    @classmethod
    def load(cls, archive: Archive, saved: dict) -> DicomModalityStoreJob:
        originator = saved["Originator"]
        job = cls(archive, Modality(**saved["Modality"]), list(saved["Instances"]), dict(saved["Content"]),
                  originator=None if originator is None else (originator[0], originator[1]),
                  permissive=bool(saved["Permissive"]))
        job.position, job.failed = int(saved["Position"]), int(saved["Failed"])
        return job


class OrthancPeerStoreJob:
    """HTTP POST of archived instances to an Orthanc peer, one instance per step, on one kept-alive connection."""

    job_type = "OrthancPeerStore"

    def __init__(self, archive: Archive, peer: Peer, instance_ids: list[str], resources: list[str], *,
                 compress: bool = False, permissive: bool = False) -> None:
        self.archive, self.peer, self.instance_ids, self.resources = archive, peer, instance_ids, resources
        self.compress, self.permissive = compress, permissive
        self.position, self.report = 0, PeerStoreReport()

    def initial_content(self) -> dict:
        content: dict[str, Any] = {"Compress": self.compress, "Description": "REST API",
                                   "FailedInstancesCount": self.report.failed,
                                   "InstancesCount": len(self.instance_ids), "Peer": self.peer.job_json(),
                                   "Size": str(self.report.size), "SizeMB": self.report.size // _MB}
        if self.resources:
            content["ParentResources"] = sorted(set(self.resources))
        return content

    def reset(self) -> None:
        self.position, self.report = 0, PeerStoreReport()

    def run(self, context: JobContext) -> dict:
        total = len(self.instance_ids)
        with PeerConnection(self.peer) as connection:
            while self.position < total:
                context.checkpoint()
                path = self.archive.instance_path(self.instance_ids[self.position])
                one = connection.store([path], compress=self.compress, permissive=self.permissive)
                self.report.failed += one.failed
                self.report.size += one.size
                self.position += 1
                context.content.update(FailedInstancesCount=self.report.failed, Size=str(self.report.size),
                                       SizeMB=self.report.size // _MB)
                context.progress(self.position / total)
        return dict(context.content)

    def serialize(self) -> dict:
        peer = dataclasses.asdict(self.peer)
        return {"Peer": peer, "Instances": self.instance_ids, "Resources": self.resources,
                "Compress": self.compress, "Permissive": self.permissive, "Position": self.position,
                "Failed": self.report.failed, "Size": self.report.size}

    @classmethod
    def load(cls, archive: Archive, saved: dict) -> OrthancPeerStoreJob:
        job = cls(archive, Peer(**saved["Peer"]), list(saved["Instances"]), list(saved["Resources"]),
                  compress=bool(saved["Compress"]), permissive=bool(saved["Permissive"]))
        job.position = int(saved["Position"])
        job.report = PeerStoreReport(job.position, int(saved["Failed"]), int(saved["Size"]))
        return job


class RetrieveJob:
    """C-MOVE (``DicomMoveScu``) or C-GET (``DicomGetScu``) of identifiers from a modality, in one step."""

    def __init__(self, archive: Archive, job_type: str, modality: Modality, level: str,
                 identifiers: list[Dataset], content: dict, target_aet: str = "") -> None:
        self.archive, self.job_type, self.modality, self.level = archive, job_type, modality, level
        self.identifiers, self.content, self.target_aet = identifiers, content, target_aet

    def initial_content(self) -> dict:
        return dict(self.content)

    def run(self, context: JobContext) -> dict:
        remote = _remote(self.archive)
        if self.job_type == "DicomGetScu":
            remote.get(self.modality, self.level, self.identifiers)
        else:
            remote.move(self.modality, self.level, self.identifiers, self.target_aet)
        return dict(context.content)

    def serialize(self) -> dict:
        return {"Modality": dataclasses.asdict(self.modality), "Level": self.level, "Content": self.content,
                "Identifiers": [identifier.to_json_dict() for identifier in self.identifiers],
                "TargetAet": self.target_aet}

    @classmethod
    def loader(cls, archive: Archive, job_type: str):
        def load(saved: dict) -> RetrieveJob:
            from pydicom.dataset import Dataset

            return cls(archive, job_type, Modality(**saved["Modality"]), str(saved["Level"]),
                       [Dataset.from_json(item) for item in saved["Identifiers"]], dict(saved["Content"]),
                       str(saved["TargetAet"]))
        return load


def load_saved(archive: Archive, job_type: str,
               saved: dict) -> DicomModalityStoreJob | OrthancPeerStoreJob | RetrieveJob:
    """A saved job of this face rebuilt (the engine learns the names in ``saved_job_types``)."""
    if job_type == DicomModalityStoreJob.job_type:
        return DicomModalityStoreJob.load(archive, saved)
    if job_type == OrthancPeerStoreJob.job_type:
        return OrthancPeerStoreJob.load(archive, saved)
    return RetrieveJob.loader(archive, job_type)(saved)

