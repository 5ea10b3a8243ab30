"""Storage commitment (PS3.4 Annex J, Push Model): what the archive commits to, and the reports it was sent.

As Orthanc 1.10.1 does (measured by tests/faces/dimse/test_storage_commitment.py): a reference succeeds when the
archive holds an instance of that SOP Instance UID whose SOP Class UID is the one referenced; an unknown instance
fails with 0x0112 (no such object instance), a known one of another class with 0x0119 (class/instance conflict).
The SCU keeps the last ``StorageCommitmentReportsSize`` reports (``GET /storage-commitment/{id}``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ArchiveError, InexistentItem
from .ids import Level

if TYPE_CHECKING:
    from .archive import Archive

STORAGE_COMMITMENT_SOP_CLASS = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class
STORAGE_COMMITMENT_SOP_INSTANCE = "1.2.840.10008.1.20.1.1"  # its well-known SOP instance (PS3.4 J.3.5)
REQUEST_STORAGE_COMMITMENT = 1  # N-ACTION Action Type ID
EVENT_SUCCESS, EVENT_FAILURES = 1, 2  # N-EVENT-REPORT Event Type IDs (PS3.4 J.3.3)

PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
SOP_CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE_TRANSACTION_UID = 0x0131
RESOURCE_LIMITATION = 0x0213
# PS3.4 Table J.3-2's meanings, as Orthanc words them in its reports
FAILURE_DESCRIPTIONS = {
    PROCESSING_FAILURE: "A general failure in processing the operation was encountered",
    NO_SUCH_OBJECT_INSTANCE: "One or more of the elements in the Referenced SOP Instance Sequence was not available",
    CLASS_INSTANCE_CONFLICT: "The SOP Class of an element in the Referenced SOP Instance Sequence did not correspond "
                             "to the SOP class registered for this SOP Instance at the SCP",
    SOP_CLASS_NOT_SUPPORTED: "The SCP does not support the SOP Class of an element in the Referenced SOP Instance "
                             "Sequence",
    DUPLICATE_TRANSACTION_UID: "The Transaction UID of the Storage Commitment Request is already in use",
    RESOURCE_LIMITATION: "The SCP does not currently have enough resources to store the requested SOP Instance(s)",
}


@dataclass(frozen=True)
class Reference:
    """One referenced instance: (SOP Class UID, SOP Instance UID), and why it failed (0: it did not)."""

    sop_class_uid: str
    sop_instance_uid: str
    failure_reason: int = 0


def commit(archive: Archive, references: list[Reference]) -> list[Reference]:
    """The SCP's answer for each reference, in order: failure_reason 0 when the archive holds it."""
    answers = []
    for reference in references:
        answers.append(Reference(reference.sop_class_uid, reference.sop_instance_uid,
                                 _failure(archive, reference)))
    return answers


def _failure(archive: Archive, reference: Reference) -> int:
    try:
        found = _lookup(archive, reference.sop_instance_uid)
    except ArchiveError:
        return NO_SUCH_OBJECT_INSTANCE
    if not found:
        return NO_SUCH_OBJECT_INSTANCE
    try:
        sop_class = archive.metadata(Level.INSTANCE, found).get("SopClassUid", "")
    except ArchiveError:
        return NO_SUCH_OBJECT_INSTANCE
    return 0 if sop_class == reference.sop_class_uid else CLASS_INSTANCE_CONFLICT


def _lookup(archive: Archive, sop_instance_uid: str) -> str | None:
    """The Orthanc ID of the instance with this SOP Instance UID, if the archive holds it."""
    if not sop_instance_uid:
        return None
    found = [public_id for level, public_id in archive.lookup(sop_instance_uid) if level == Level.INSTANCE]
    return found[0] if found else None


@dataclass
class CommitmentReport:
    """One storage commitment transaction this server asked for (Orthanc's StorageCommitmentReports)."""

    transaction_uid: str
    remote_aet: str
    status: str = "Pending"  # Pending, then Success or Failure when the N-EVENT-REPORT arrives
    references: list[Reference] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As GET /storage-commitment/{id} answers."""
        return {
            "Failures": [{"Description": FAILURE_DESCRIPTIONS.get(r.failure_reason, "Unknown failure reason"),
                          "FailureReason": r.failure_reason, "SOPClassUID": r.sop_class_uid,
                          "SOPInstanceUID": r.sop_instance_uid} for r in self.references if r.failure_reason],
            "RemoteAET": self.remote_aet,
            "Status": self.status,
            "Success": [{"SOPClassUID": r.sop_class_uid, "SOPInstanceUID": r.sop_instance_uid}
                        for r in self.references if not r.failure_reason],
        }


class CommitmentReports:
    """The last ``size`` reports by transaction UID (the oldest goes first), shared by the SCU that opens them
    and the SCP that receives their N-EVENT-REPORT."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 1)
        self._reports: OrderedDict[str, CommitmentReport] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, transaction_uid: str, remote_aet: str) -> None:
        with self._lock:
            self._reports[transaction_uid] = CommitmentReport(transaction_uid, remote_aet)
            while len(self._reports) > self.size:
                self._reports.popitem(last=False)

    def complete(self, transaction_uid: str, remote_aet: str, references: list[Reference]) -> bool:
        """Record the N-EVENT-REPORT of a transaction; False when it is unknown (or was dropped)."""
        with self._lock:
            report = self._reports.get(transaction_uid)
            if report is None:
                return False
            report.references = list(references)
            report.status = "Failure" if any(r.failure_reason for r in references) else "Success"
            return True

    def get(self, transaction_uid: str) -> CommitmentReport:
        with self._lock:
            report = self._reports.get(transaction_uid)
        if report is None:
            raise InexistentItem(f"No storage commitment transaction with UID: {transaction_uid}")
        return report

    def clear(self) -> None:
        with self._lock:
            self._reports.clear()
