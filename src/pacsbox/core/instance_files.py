"""What an instance's file gives beyond its tags: its encapsulated PDF, and a copy written to the file system.

``export_instance`` writes where a client says, so it is off unless ``RestApiWriteToFileSystemEnabled`` (Orthanc's
key, false by default), and even then a hostile target is refused: a relative path (relative to what?), ``..``,
NUL, a path into the archive's own storage or index folders, an existing directory or symbolic link, or a folder
that does not exist. The copy is written beside the target and renamed over it, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadRequest, InexistentItem

if TYPE_CHECKING:
    from .archive import Archive

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


class ExportRefused(BadRequest):
    """A target path ``export_instance`` will not write to."""


class ExportDisabled(PermissionError):
    """``RestApiWriteToFileSystemEnabled`` is false (Orthanc answers 403)."""


def extract_pdf(archive: Archive, instance_id: str) -> bytes:
    """The PDF an Encapsulated PDF instance carries; InexistentItem for any other instance.

    As Orthanc: the SOP class must be Encapsulated PDF and MIMETypeOfEncapsulatedDocument ``application/pdf``;
    the pad byte that makes the value even is dropped (a PDF ends with ``%%EOF`` and an end of line).
    """
    dataset = archive.instance_dataset(instance_id)
    if str(dataset.get("SOPClassUID", "")) != ENCAPSULATED_PDF or \
            str(dataset.get("MIMETypeOfEncapsulatedDocument", "")).strip() != "application/pdf":
        raise InexistentItem(f"Instance {instance_id} is not an encapsulated PDF")
    document = dataset.get("EncapsulatedDocument")  # (by keyword: the value itself)
    if not document:
        raise InexistentItem(f"Instance {instance_id} holds no document")
    pdf = bytes(document)
    if pdf and pdf[-1] not in (10, 13):
        pdf = pdf[:-1]
    return pdf


def export_target(archive: Archive, text: str) -> Path:
    """The checked target of an export: ExportRefused (a 4xx) for anything hostile or impossible."""
    if not text or "\0" in text:
        raise ExportRefused("The body must be the absolute path of the file to write")
    target = Path(text)
    if not target.is_absolute():
        raise ExportRefused(f"Not an absolute path: {text!r} (pacsbox's working folder is no place to write to)")
    if ".." in target.parts:
        raise ExportRefused(f"The path must not contain '..': {text!r}")
    if len(os.fsencode(text)) > 4096:
        raise ExportRefused("The path is longer than PATH_MAX")
    folder = target.parent.resolve()
    own = [archive.config.storage_path.resolve(), archive.config.index_path.resolve()]
    if any(folder == root or root in folder.parents for root in own):
        raise ExportRefused("The path is inside the archive's own storage or index folder")
    if not folder.is_dir():
        raise ExportRefused(f"No such folder: {str(target.parent)!r}")
    if target.is_symlink() or target.is_dir():
        raise ExportRefused(f"The path names a directory or a symbolic link: {text!r}")
    return folder / target.name


def export_instance(archive: Archive, instance_id: str, text: str) -> None:
    """Write an instance's DICOM file to the path ``text`` (``POST /instances/{id}/export``)."""
    if not archive.config.RestApiWriteToFileSystemEnabled:
        raise ExportDisabled("RestApiWriteToFileSystemEnabled is false")
    target = export_target(archive, text)
    data = archive.instance_bytes(instance_id)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ExportRefused(f"Cannot write to {str(target)!r}: {error.strerror or error}") from None
