"""C-MOVE and C-GET SCP: the identifier's unique keys select instances, which are sent as they were stored.

PS3.4 C.4.2 and C.4.3: the keys are the unique key of the query level (lists allowed); C-MOVE resolves the move
destination among the known modalities, as Orthanc does, and opens an association to it per request.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset, FileMetaDataset
from pynetdicom.presentation import PresentationContext, build_context

from ...core.archive import Archive, FindQuery
from ...core.config import Config
from ...core.errors import ArchiveError
from ...core.ids import Level
from . import status
from .find import FindFailed, query_level, query_text

LOG = logging.getLogger("pacsbox.dimse")
UNIQUE_KEYS = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID", Level.SERIES: "SeriesInstanceUID",
               Level.INSTANCE: "SOPInstanceUID"}
_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255


class Outgoing:
    """One stored instance to send: its SOP class and transfer syntax decide the presentation context."""

    def __init__(self, archive: Archive, instance_id: str) -> None:
        metadata = archive.metadata(Level.INSTANCE, instance_id)
        self.archive = archive
        self.instance_id = instance_id
        self.sop_class_uid = metadata.get("SopClassUid", "")
        self.transfer_syntax = metadata.get("TransferSyntax", "1.2.840.10008.1.2")

    def payload(self) -> Dataset:
        """The stored dataset, its elements still raw, so that pydicom writes their bytes back unchanged."""
        dataset = self.archive.instance_dataset(self.instance_id)
        if "TransferSyntaxUID" not in getattr(dataset, "file_meta", {}):
            dataset.file_meta = FileMetaDataset()
            dataset.file_meta.TransferSyntaxUID = self.transfer_syntax
        return dataset


def selected_instances(archive: Archive, identifier: Dataset) -> list[str]:
    """The archived instances a C-MOVE/C-GET identifier designates."""
    level = query_level(identifier)
    key = UNIQUE_KEYS[level]
    element = identifier[key] if key in identifier else None  # noqa: SIM401 (get() returns the value)
    text = "" if element is None or element.is_empty else query_text(element)
    values = [v.strip() for v in text.split("\\") if v.strip()]
    if not values:
        raise FindFailed(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, f"no {key} in a {level.name} retrieve")
    found: list[str] = []
    for row in archive.find(FindQuery(level, {key: "\\".join(values)}, case_sensitive=True)):
        found.extend(archive.instance_ids_below(level, row.public_id))
    return found


def storage_contexts(outgoing: list[Outgoing]) -> list[PresentationContext]:
    """One context per (SOP class, transfer syntax) sent, so each file goes out exactly as stored."""
    pairs = sorted({(o.sop_class_uid, o.transfer_syntax) for o in outgoing})
    if len(pairs) > _MAX_CONTEXTS:
        LOG.warning("C-MOVE needs %d presentation contexts; only the first %d are proposed", len(pairs),
                    _MAX_CONTEXTS)
    return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs[:_MAX_CONTEXTS]]


def move_responses(archive: Archive, config: Config, event):
    """pynetdicom's C-MOVE handler protocol: destination, number of sub-operations, then one yield each."""
    destination = str(event.move_destination).strip() if isinstance(event.move_destination, str) \
        else event.move_destination.decode("ascii", "replace").strip()
    modalities = archive.modalities.by_aet(destination)
    try:
        instance_ids = selected_instances(archive, event.identifier)
        outgoing = [Outgoing(archive, i) for i in instance_ids]
    except (FindFailed, ArchiveError) as error:
        # Orthanc answers a retrieve it cannot resolve with 0xC000; pynetdicom needs a destination and a count
        # before any status, so the refusal goes out as the only sub-operation's result.
        LOG.warning("C-MOVE refused: %s", error)
        if not modalities:
            yield None, None
            return
        yield modalities[0].host, modalities[0].port, {"contexts": [build_context("1.2.840.10008.1.1")]}
        yield 1
        yield status.UNABLE_TO_PROCESS, None
        return
    if not modalities:
        LOG.warning("C-MOVE refused: unknown move destination %r", destination)
        yield None, None
        return
    target = modalities[0]
    yield target.host, target.port, {"contexts": storage_contexts(outgoing) or None}
    yield len(outgoing)
    for item in outgoing:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, item.payload()


def get_responses(archive: Archive, event):
    """pynetdicom's C-GET handler protocol: number of sub-operations, then one yield each."""
    try:
        instance_ids = selected_instances(archive, event.identifier)
        outgoing = [Outgoing(archive, i) for i in instance_ids]
    except (FindFailed, ArchiveError) as error:
        LOG.warning("C-GET refused: %s", error)
        yield 1
        yield status.UNABLE_TO_PROCESS, None
        return
    yield len(outgoing)
    for item in outgoing:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, item.payload()
