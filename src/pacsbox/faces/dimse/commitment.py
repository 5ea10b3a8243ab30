"""Storage commitment over DIMSE (PS3.4 Annex J, Push Model), as Orthanc 1.10.1 does it.

* **SCP.** An N-ACTION (Request Storage Commitment) is answered with success at once; a ``StorageCommitmentScp``
  job then looks the instances up (``core.commitment``) and the result goes back as an N-EVENT-REPORT on a new
  association to the modality the calling AET names (``DicomModalities``), the commitment SCU in the SCU role,
  pacsbox in the SCP role (role selection, PS3.7 D.3.3.4), Event Type 1 when every instance is committed, 2 with
  a FailedSOPSequence.
* **SCU.** ``DicomClient.storage_commitment`` sends the N-ACTION (the Orthanc face opens the pending report
  first); the N-EVENT-REPORT the remote sends back to this server's SCP completes it (``on_n_event_report``).
"""

from __future__ import annotations

import logging
import threading

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.presentation import build_context, build_role

from ...core.archive import Archive
from ...core.commitment import (
    EVENT_FAILURES,
    EVENT_SUCCESS,
    REQUEST_STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_SOP_CLASS,
    STORAGE_COMMITMENT_SOP_INSTANCE,
    Reference,
    commit,
)
from ...core.errors import ArchiveError, NetworkError
from ...core.modalities import Modality
from . import contexts

LOG = logging.getLogger("pacsbox.dimse")

_NO_SUCH_ACTION_TYPE = 0x0123
_PROCESSING_FAILURE = 0x0110
_INVALID_ARGUMENT_VALUE = 0x0115


def references_of(dataset: Dataset | None, sequence: str = "ReferencedSOPSequence") -> list[Reference]:
    """The (class, instance, failure reason) of each item of a sequence of references; ValueError if malformed."""
    if dataset is None or sequence not in dataset:
        return []
    found = []
    for item in dataset[sequence].value or []:
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
        reason = item.get("FailureReason", 0)
        found.append(Reference(sop_class, sop_instance, int(reason or 0)))
    return found


def event_information(transaction_uid: str, answers: list[Reference]) -> tuple[int, Dataset]:
    """The Event Type ID and Event Information of the N-EVENT-REPORT answering a commitment request."""
    info = Dataset()
    info.TransactionUID = transaction_uid
    failed = [a for a in answers if a.failure_reason]
    committed = [a for a in answers if not a.failure_reason]
    if failed:
        info.FailedSOPSequence = Sequence([_item(a, with_reason=True) for a in failed])
    if committed:
        info.ReferencedSOPSequence = Sequence([_item(a) for a in committed])
    return (EVENT_FAILURES if failed else EVENT_SUCCESS), info


def _item(reference: Reference, with_reason: bool = False) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class_uid
    item.ReferencedSOPInstanceUID = reference.sop_instance_uid
    if with_reason:
        item.FailureReason = reference.failure_reason
    return item


# -- SCP --------------------------------------------------------------------------------------------------------
def _aborted(event, reason: str, code: int) -> tuple[int, None]:
    """A request Orthanc cannot serve: like Orthanc 1.10.1 (measured), the association is aborted, no status
    sent; the SCP goes on serving others."""
    LOG.warning("%s: association with %r aborted", reason, event.assoc.requestor.ae_title.strip())
    event.assoc.abort()
    return code, None


def on_n_action(archive: Archive, client, event) -> tuple[int, Dataset | None]:
    """An N-ACTION received: success at once, the N-EVENT-REPORT later from a thread of its own."""
    if str(event.request.RequestedSOPClassUID) != STORAGE_COMMITMENT_SOP_CLASS or \
            event.action_type != REQUEST_STORAGE_COMMITMENT:
        return _aborted(event, "Only storage commitment is implemented for DICOM N-ACTION SCP", _NO_SUCH_ACTION_TYPE)
    try:
        information = event.action_information
        transaction_uid = str(information.get("TransactionUID", "") or "")
        references = references_of(information)
    except Exception as error:  # an undecodable or malformed data set is the peer's fault
        return _aborted(event, f"Cannot read the dataset in N-ACTION SCP: {error}", _PROCESSING_FAILURE)
    if not transaction_uid:
        return _aborted(event, "N-ACTION without TransactionUID", _INVALID_ARGUMENT_VALUE)
    job = StorageCommitmentScpJob(archive, client, event.assoc.requestor.ae_title.strip(),
                                  event.assoc.acceptor.ae_title.strip(), transaction_uid, references)
    jobs = getattr(archive, "jobs", None)
    if jobs is not None:
        jobs.submit(job)  # listed in /jobs, as Orthanc's StorageCommitmentScp job
    else:
        threading.Thread(target=job.run, args=(None,), name="pacsbox-storage-commitment", daemon=True).start()
    return 0x0000, None


class StorageCommitmentScpJob:
    """Look the instances up and send the N-EVENT-REPORT to the modality of the calling AET (Orthanc's
    ``StorageCommitmentScp`` job: it fails when the report cannot be sent)."""

    job_type = "StorageCommitmentScp"

    def __init__(self, archive: Archive, client, remote_aet: str, called_aet: str, transaction_uid: str,
                 references: list[Reference]) -> None:
        self.archive = archive
        self.client = client
        self.remote_aet = remote_aet
        self.called_aet = called_aet
        self.transaction_uid = transaction_uid
        self.references = references

    def initial_content(self) -> dict:
        return {"CalledAet": self.called_aet, "Description": "", "RemoteAet": self.remote_aet,
                "TransactionUid": self.transaction_uid}

    def run(self, context) -> None:
        try:
            modalities = self.archive.modalities.by_aet(self.remote_aet)
            if not modalities:
                raise NetworkError(f"Storage commitment: no modality with AET {self.remote_aet!r} to report to")
            event_type, info = event_information(self.transaction_uid, commit(self.archive, self.references))
            self.client.event_report(modalities[0], event_type, info)
        except ArchiveError as error:
            LOG.error("Storage commitment - Unable to send N-EVENT-REPORT request to AET %s: %s", self.remote_aet,
                      error.details)
            if context is not None:
                raise
        except Exception:  # the report fails, never the server
            LOG.exception("Storage commitment report to %r failed", self.remote_aet)
            if context is not None:
                raise ArchiveError("Storage commitment report failed") from None


def on_n_event_report(archive: Archive, event) -> tuple[int, Dataset | None]:
    """An N-EVENT-REPORT received: the report of a commitment this server requested."""
    if str(event.request.AffectedSOPClassUID) != STORAGE_COMMITMENT_SOP_CLASS or \
            event.event_type not in (EVENT_SUCCESS, EVENT_FAILURES):
        return _aborted(event, "Unknown event for DICOM N-EVENT-REPORT SCP", _NO_SUCH_ACTION_TYPE)
    try:
        information = event.event_information
        transaction_uid = str(information.get("TransactionUID", "") or "")
        answers = references_of(information) + [
            r if r.failure_reason else Reference(r.sop_class_uid, r.sop_instance_uid, _PROCESSING_FAILURE)
            for r in references_of(information, "FailedSOPSequence")]
    except Exception as error:  # an undecodable or malformed data set is the peer's fault
        return _aborted(event, f"Cannot read the dataset in N-EVENT-REPORT SCP: {error}", _PROCESSING_FAILURE)
    if not archive.commitments.complete(transaction_uid, event.assoc.requestor.ae_title.strip(), answers):
        LOG.warning("Storage commitment report for an unknown transaction: %s", transaction_uid)
    return 0x0000, None


# -- SCU ----------------------------------------------------------------------------------------------------------
def scu_contexts():
    """The context to send N-ACTION on (pacsbox as the commitment SCU, the default role)."""
    return contexts.contexts([STORAGE_COMMITMENT_SOP_CLASS])


def report_negotiation():
    """The context and role selection of an N-EVENT-REPORT association (pacsbox as the commitment SCP)."""
    return [build_context(STORAGE_COMMITMENT_SOP_CLASS, list(contexts.UNCOMPRESSED))], \
        [build_role(STORAGE_COMMITMENT_SOP_CLASS, scu_role=False, scp_role=True)]


def request_information(transaction_uid: str, references: list[Reference]) -> Dataset:
    """The Action Information of a Request Storage Commitment N-ACTION."""
    info = Dataset()
    info.TransactionUID = transaction_uid
    info.ReferencedSOPSequence = Sequence([_item(r) for r in references])
    return info


def check_status(modality: Modality, service: str, status: Dataset | None) -> None:
    if not status or "Status" not in status:
        raise NetworkError(f"Storage commitment - Unable to read {service} response from AET: {modality.aet}")
    if int(status.Status) != 0:
        raise NetworkError(f"Storage commitment - {service} to AET {modality.aet} has failed with DIMSE status "
                           f"0x{int(status.Status):04X}")


__all__ = ["REQUEST_STORAGE_COMMITMENT", "STORAGE_COMMITMENT_SOP_CLASS", "STORAGE_COMMITMENT_SOP_INSTANCE",
           "Reference", "on_n_action", "on_n_event_report", "references_of"]
