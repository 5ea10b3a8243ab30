"""DICOM media (PS3.10 file sets): a zip holding the instances of some resources and a DICOMDIR indexing them,
as Orthanc's ``/media`` and ``/tools/create-media`` answer.

The DICOMDIR is written by pydicom's ``FileSet`` (a well-kept implementation of PS3.10 and PS3.3 F), with the
records Orthanc's DicomDirWriter fills (PS3.3 F.5; measured on Orthanc 1.10.1): PATIENT with PatientID and
PatientName; STUDY with StudyDate and StudyTime (else the series', acquisition's or content's, else now),
StudyDescription, StudyInstanceUID, StudyID and AccessionNumber; SERIES with Modality, SeriesInstanceUID,
SeriesNumber, and SeriesDescription in the "extended" form; IMAGE with InstanceNumber and the references to its
file; each with the instance's SpecificCharacterSet. File IDs are pydicom's (``PT000000/ST000000/...``): the
files themselves are the stored ones, byte for byte.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import BadFormat, UnknownResource
from .ids import Level

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset
    from pydicom.fileset import RecordNode

if TYPE_CHECKING:
    from .archive import Archive

FILE_SET_ID = "ORTHANC_MEDIA"  # Orthanc's File-set ID
_SPOOL_FOLDER = "tmp"  # (the storage area's spool folder, emptied at every start)


def _text(dataset: Dataset, keyword: str) -> str | None:
    """A value as Orthanc puts it in a record (None when absent or empty): in ASCII, other characters dropped
    (Orthanc's DicomDirWriter converts each value to ASCII, whatever SpecificCharacterSet says)."""
    value = dataset.get(keyword)
    if value in (None, ""):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(item) for item in value)
    return "".join(character for character in str(value) if ord(character) < 128)


def _record(kind: str, dataset: Dataset, type2: Iterable[str] = (), optional: Iterable[str] = (),
            values: dict[str, str] | None = None) -> RecordNode:
    from pydicom.dataset import Dataset
    from pydicom.fileset import RecordNode

    record = Dataset()
    record.DirectoryRecordType = kind
    for keyword, value in (values or {}).items():
        setattr(record, keyword, value)
    for keyword in type2:  # type 2: present, empty when the instance has no value
        setattr(record, keyword, _text(dataset, keyword) or "")
    for keyword in optional:  # type 1C and 3: only with a value
        value = _text(dataset, keyword)
        if value is not None:
            setattr(record, keyword, value)
    if "SpecificCharacterSet" in dataset:
        record.SpecificCharacterSet = dataset.SpecificCharacterSet
    return RecordNode(record)


def _first(dataset: Dataset, keywords: tuple[str, ...], default: str) -> str:
    for keyword in keywords:
        value = _text(dataset, keyword)
        if value:
            return value
    return default


def _leaf(dataset: Dataset, transfer_syntax: str, extended: bool) -> RecordNode:
    """The four records of one instance, linked leaf to root (pydicom merges shared ancestors by their keys)."""
    now_date, now_time = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    patient = _record("PATIENT", dataset, type2=("PatientName",), optional=("PatientID",))
    study = _record("STUDY", dataset, values={
        "StudyDate": _first(dataset, ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"), now_date),
        "StudyTime": _first(dataset, ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"), now_time),
    }, type2=("StudyDescription", "AccessionNumber"), optional=("StudyInstanceUID", "StudyID"))
    series = _record("SERIES", dataset, values={"Modality": _text(dataset, "Modality") or ""},
                     optional=("SeriesInstanceUID", "SeriesNumber", *(("SeriesDescription",) if extended else ())))
    image = _record("IMAGE", dataset, values={
        "ReferencedSOPClassUIDInFile": str(dataset.SOPClassUID),
        "ReferencedSOPInstanceUIDInFile": str(dataset.SOPInstanceUID),
        "ReferencedTransferSyntaxUIDInFile": transfer_syntax,
        "InstanceNumber": _text(dataset, "InstanceNumber") or "",
    })
    image.parent, series.parent, study.parent = series, study, patient
    return image


def _reference(dataset: Dataset, transfer_syntax: str) -> Dataset:
    """What FileSet needs of an instance to reference it: its UIDs and transfer syntax (no pixels)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    reference = Dataset()
    reference.SOPClassUID = dataset.SOPClassUID
    reference.SOPInstanceUID = dataset.SOPInstanceUID
    reference.file_meta = FileMetaDataset()
    reference.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    reference.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    reference.file_meta.TransferSyntaxUID = transfer_syntax
    return reference


def write_media(archive: Archive, resources: Iterable[tuple[Level, str]], *, extended: bool = False,
                output: BinaryIO | None = None, step: Callable[[int, int], None] | None = None) -> BinaryIO:
    """A temporary file (or ``output``) holding the zip (instances, then DICOMDIR) of the given resources;
    ``step(done, total)`` is called after each instance (a job's progress and checkpoint).

    Each instance is read once and zipped at once under the File ID pydicom gives it when added (which later
    additions leave as it is), so an instance deleted meanwhile is left out of both; UnknownResource when
    none is left.
    """
    from pydicom.fileset import FileSet
    from pydicom.uid import ImplicitVRLittleEndian

    instance_ids = list(dict.fromkeys(
        instance_id for level, public_id in resources for instance_id in archive.instance_ids_below(level, public_id)))
    spool = archive.config.storage_path / _SPOOL_FOLDER
    spool.mkdir(parents=True, exist_ok=True)
    file_set = FileSet()
    file_set.ID = FILE_SET_ID
    output = output or tempfile.TemporaryFile(dir=spool)
    try:
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
            for done, instance_id in enumerate(instance_ids):
                if step is not None:
                    step(done, len(instance_ids))
                try:
                    data = archive.instance_bytes(instance_id)
                except UnknownResource:  # deleted since the list was made
                    continue
                if data[128:132] != b"DICM":
                    # media hold Part 10 files only; Orthanc 1.10.1 fails here too, but after its 200 (an empty body)
                    raise BadFormat(f"Instance {instance_id} is stored without a DICOM file header (PS3.10 "
                                    "preamble and meta information): it cannot go on DICOM media")
                dataset = _parse(data, instance_id)
                transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID", "") or ImplicitVRLittleEndian)
                try:
                    added = file_set.add_custom(_reference(dataset, transfer_syntax),
                                                _leaf(dataset, transfer_syntax, extended))
                except (ValueError, AttributeError, KeyError) as error:
                    raise BadFormat(f"Instance {instance_id} cannot go on DICOM media: {error}") from None
                zipped.writestr(added.FileID.replace(os.sep, "/"), data)
            if instance_ids and not len(file_set):
                raise UnknownResource("Every instance was deleted while the media was being written")
            with tempfile.TemporaryDirectory(dir=spool) as folder:
                file_set.write(folder)  # the DICOMDIR, and the small references pydicom copies beside it
                zipped.writestr("DICOMDIR", (Path(folder) / "DICOMDIR").read_bytes())
    except BaseException:
        output.close()
        raise
    output.seek(0)
    return output


def _parse(data: bytes, instance_id: str) -> Dataset:
    from io import BytesIO

    from pydicom import dcmread

    try:
        return dcmread(BytesIO(data), force=True, stop_before_pixels=True)
    except Exception as error:  # pydicom raises assorted types for a file it cannot read
        raise BadFormat(f"Instance {instance_id} cannot be read: {error}") from None


class MediaJob:
    """Media as an Orthanc job (``"Asynchronous": true``): type ``Media``, the zip as its output ``archive``, and
    Orthanc's Content (Description, InstancesCount, UncompressedSize, ArchiveSize, with their MB forms). Not saved
    with SaveJobs, as Orthanc saves no Media job."""

    job_type = "Media"

    def __init__(self, archive: Archive, resources: list[tuple[Level, str]], *, extended: bool = False,
                 description: str = "REST API", synchronous: bool = False) -> None:
        self.archive, self.resources, self.extended, self.description = archive, resources, extended, description
        # a synchronous request waits for the job and answers the zip itself: it is kept here, not as an output
        self.synchronous = synchronous
        self.handle: BinaryIO | None = None

    def initial_content(self) -> dict:
        return {"ArchiveSize": "0", "ArchiveSizeMB": 0, "Description": self.description, "InstancesCount": 0,
                "UncompressedSize": "0", "UncompressedSizeMB": 0}

    def run(self, context) -> dict:
        folder = self.archive.jobs.output_directory or self.archive.config.storage_path / _SPOOL_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{context.job_id}-media.zip"

        def step(done: int, total: int) -> None:
            context.checkpoint()
            context.progress(done / max(total, 1))

        if self.synchronous:
            handle = write_media(self.archive, self.resources, extended=self.extended, step=step)
            try:
                size = handle.seek(0, os.SEEK_END)
                with zipfile.ZipFile(handle) as written:
                    members = [info for info in written.infolist() if info.filename != "DICOMDIR"]
            except BaseException:
                handle.close()
                raise
            self.handle = handle
        else:
            try:
                with open(path, "w+b") as output:
                    write_media(self.archive, self.resources, extended=self.extended, output=output, step=step)
                    size = output.seek(0, os.SEEK_END)
                with zipfile.ZipFile(path) as written:
                    members = [info for info in written.infolist() if info.filename != "DICOMDIR"]
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        uncompressed = sum(info.file_size for info in members)
        context.content.update({"ArchiveSize": str(size), "ArchiveSizeMB": size // (1024 * 1024),
                                "InstancesCount": len(members), "UncompressedSize": str(uncompressed),
                                "UncompressedSizeMB": uncompressed // (1024 * 1024)})
        if not self.synchronous:
            context.add_output_file("archive", path, "application/zip", "archive.zip")
        context.progress(1.0)
        return {}
