"""The DICOM SCU's services: C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET towards remote modalities (Orthanc's
/modalities). Loaded by ``scu.DicomClient`` when it first sends (this module imports pynetdicom and pydicom).

Failures raise ``NetworkError`` with the wording Orthanc 1.10 uses in its error details, so that a client sees the
same sentence from pacsbox and from Orthanc ("DicomAssociation - connecting to AET ...", "C-STORE SCU to AET ...
has failed with DIMSE status 0x...").
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom import evt
from pynetdicom import sop_class as sop
from pynetdicom.association import Association
from pynetdicom.dsutils import split_dataset
from pynetdicom.presentation import PresentationContext, StoragePresentationContexts, build_context, build_role

from ...core.archive import Archive, Origin
from ...core.config import Config
from ...core.errors import ArchiveError, CannotTranscode, NetworkError, NoPresentationContext
from ...core.ids import Level
from ...core.modalities import Modality, StoreReport
from . import commitment, contexts
from .network import NoDelayAE, configure_pynetdicom, held_reactor
from .upper_layer import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are the odd numbers 1..255
_SUCCESS, _PENDING = 0x0000, (0xFF00, 0xFF01)
_FIND_MODELS = {"PATIENT": sop.PatientRootQueryRetrieveInformationModelFind}
_GET_MODELS = {"PATIENT": sop.PatientRootQueryRetrieveInformationModelGet}
# Orthanc issues every C-MOVE in the Study Root model, PATIENT level included; pacsbox does the same.
_MOVE_MODEL = sop.StudyRootQueryRetrieveInformationModelMove

# The syntaxes a C-GET accepts to receive (stored as received): the uncompressed and the usual compressed ones. A
# longer list costs every association dearly (pynetdicom validates and copies each UID) for syntaxes seldom met.
_GET_TRANSFER_SYNTAXES = contexts.UNCOMPRESSED + (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)


class ServiceClassUser:
    """Associations to remote modalities on behalf of one archive (implements ``core.modalities.RemoteDicom``)."""

    def __init__(self, archive: Archive, config: Config) -> None:
        configure_pynetdicom()
        self.archive = archive
        self.config = config

    # -- services -------------------------------------------------------------------------------------------
    def echo(self, modality: Modality) -> None:
        with self._association(modality, contexts.contexts([contexts.VERIFICATION])) as assoc:
            self._check(modality, "C-ECHO", assoc.send_c_echo())

    def store(self, modality: Modality, instance_ids: Sequence[str], move_originator: tuple[str, int] | None = None,
              permissive: bool = False, before_each: Callable[[int], None] | None = None) -> StoreReport:
        report = StoreReport()
        for batch in _batches([_Outgoing(self.archive, i) for i in instance_ids]):
            wanted = sorted({item.context_key for item in batch})
            try:
                assoc = self._open(modality, [build_context(s, [t]) for s, t in wanted])
            except NoPresentationContext:
                # None of the instances' own contexts accepted: each instance fails as below. (Orthanc proposes
                # a hundred common storage classes besides, so its association succeeds and it reports the same.)
                assoc = None
            try:
                with held_reactor(assoc) if assoc is not None else nullcontext():
                    self._store_batch(modality, assoc, batch, report, move_originator, permissive, before_each)
            finally:
                if assoc is not None and assoc.is_established:
                    assoc.release()
        return report

    def _store_batch(self, modality: Modality, assoc: Association | None, batch: list[_Outgoing],
                     report: StoreReport, move_originator: tuple[str, int] | None, permissive: bool,
                     before_each: Callable[[int], None] | None = None) -> None:
        originator_aet, originator_id = move_originator or (None, None)
        accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                    for cx in (assoc.accepted_contexts if assoc else [])}
        for item in batch:
            if before_each is not None:
                before_each(report.instances)
            report.instances += 1
            try:
                if assoc is None or item.context_key not in accepted:
                    raise CannotTranscode(f"Cannot transcode from {item.transfer_syntax} to one of "
                                          f"[ {_syntaxes_for(item.sop_class_uid, accepted)}]")
                status = assoc.send_c_store(item.payload(), originator_aet=originator_aet, originator_id=originator_id)
                self._check(modality, "C-STORE", status, warnings_succeed=True)
            except NetworkError as error:
                if not permissive:
                    raise
                report.failed += 1
                report.failures.append(f"{item.instance_id}: {error.details}")

    def find(self, modality: Modality, level: str, identifier: Dataset) -> list[Dataset]:
        model = _FIND_MODELS.get(level, sop.StudyRootQueryRetrieveInformationModelFind)
        answers: list[Dataset] = []
        with self._association(modality, contexts.contexts([model])) as assoc:
            for status, answer in assoc.send_c_find(identifier, model):
                if status and status.Status in _PENDING:
                    if answer is not None:  # pynetdicom gives None for an identifier it could not decode
                        answers.append(answer)
                    continue
                self._check(modality, "C-FIND", status)
        return answers

    def find_worklist(self, modality: Modality, identifier: Dataset) -> list[Dataset]:
        """C-FIND in the Modality Worklist Information Model (PS3.4 K.6); the answers."""
        model = contexts.WORKLIST_FIND
        answers: list[Dataset] = []
        with self._association(modality, contexts.contexts([model])) as assoc:
            for status, answer in assoc.send_c_find(identifier, model):
                if status and status.Status in _PENDING:
                    if answer is not None:
                        answers.append(answer)
                    continue
                self._check(modality, "C-FIND", status)
        return answers

    def store_file(self, modality: Modality, data: bytes, dataset: Dataset) -> tuple[str, str]:
        """C-STORE a file that is not archived (store-straight); its SOP class and instance UIDs."""
        sop_class, sop_instance = str(dataset.SOPClassUID), str(dataset.SOPInstanceUID)
        meta = getattr(dataset, "file_meta", None)
        syntax = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta \
            else "1.2.840.10008.1.2"
        if meta is None or "TransferSyntaxUID" not in meta:
            dataset.file_meta = FileMetaDataset()
            dataset.file_meta.TransferSyntaxUID = syntax
        with self._association(modality, [build_context(sop_class, [syntax])]) as assoc:
            if not assoc.accepted_contexts:
                raise NoPresentationContext(f"Unable to negotiate a presentation context with AET \"{modality.aet}\"")
            self._check(modality, "C-STORE", assoc.send_c_store(dataset), warnings_succeed=True)
        return sop_class, sop_instance

    def storage_commitment(self, modality: Modality, transaction_uid: str,
                           references: Sequence[commitment.Reference]) -> None:
        """N-ACTION Request Storage Commitment; the report comes back to the SCP as an N-EVENT-REPORT."""
        info = commitment.request_information(transaction_uid, list(references))
        with self._association(modality, commitment.scu_contexts(), hold=False) as assoc:
            status, _ = assoc.send_n_action(info, commitment.REQUEST_STORAGE_COMMITMENT,
                                            commitment.STORAGE_COMMITMENT_SOP_CLASS,
                                            commitment.STORAGE_COMMITMENT_SOP_INSTANCE)
            commitment.check_status(modality, "N-ACTION", status)

    def event_report(self, modality: Modality, event_type: int, info: Dataset) -> None:
        """N-EVENT-REPORT of a storage commitment result, pacsbox in the SCP role of the SOP class."""
        requested, roles = commitment.report_negotiation()
        with self._association(modality, requested, roles, hold=False) as assoc:
            status, _ = assoc.send_n_event_report(info, event_type, commitment.STORAGE_COMMITMENT_SOP_CLASS,
                                                  commitment.STORAGE_COMMITMENT_SOP_INSTANCE)
            commitment.check_status(modality, "N-EVENT-REPORT", status)

    def move(self, modality: Modality, level: str, identifiers: Sequence[Dataset], target_aet: str) -> None:
        if not identifiers:
            return
        with self._association(modality, contexts.contexts([_MOVE_MODEL])) as assoc:
            for identifier in identifiers:
                for status, _ in assoc.send_c_move(identifier, target_aet, _MOVE_MODEL):
                    if not (status and status.Status in _PENDING):
                        self._check(modality, "C-MOVE", status)

    def get(self, modality: Modality, level: str, identifiers: Sequence[Dataset]) -> StoreReport:
        model = _GET_MODELS.get(level, sop.StudyRootQueryRetrieveInformationModelGet)
        report = StoreReport()
        if not identifiers:
            return report

        def on_store(event) -> int:
            # Instances received on the C-GET association are archived like any DICOM reception (Orthanc's
            # Origin "DicomProtocol"); a failure is a C-STORE status, the retrieval goes on.
            report.instances += 1
            origin = Origin("DicomProtocol", remote_ip=modality.host, remote_aet=modality.aet,
                            called_aet=self._local_aet(modality))
            try:
                self.archive.store(_received_file(event, modality.aet), origin)
            except ArchiveError as error:
                report.failed += 1
                report.failures.append(str(error.details))
                return 0xC000
            return _SUCCESS

        requested, roles = _get_negotiation(model)
        with self._association(modality, list(requested), list(roles), [(evt.EVT_C_STORE, on_store)],
                               hold=False) as assoc:
            for identifier in identifiers:
                for status, _ in assoc.send_c_get(identifier, model):
                    if not (status and status.Status in _PENDING):
                        self._check(modality, "C-GET", status, warnings_succeed=True)
        return report

    # -- associations ---------------------------------------------------------------------------------------
    def _local_aet(self, modality: Modality) -> str:
        return modality.local_aet or self.config.DicomAet

    @contextmanager
    def _association(self, modality: Modality, requested: list[PresentationContext], roles: list | None = None,
                     handlers: list | None = None, hold: bool = True) -> Iterator[Association]:
        """An established association, released on exit. ``hold``: with pynetdicom's reactor held while the
        requests go out (``network.held_reactor``: else, under load, it can take an answer off the queue before the
        request waiting for it does); not for an association on which the peer may send requests of its own."""
        assoc = self._open(modality, requested, roles, handlers)
        try:
            with held_reactor(assoc) if hold else nullcontext():
                yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _open(self, modality: Modality, requested: list[PresentationContext], roles: list | None = None,
              handlers: list | None = None) -> Association:
        """An established association; the failure to get one in Orthanc's words."""
        prefix = f"DicomAssociation - connecting to AET \"{modality.aet}\": "
        timeout = modality.timeout or self.config.DicomScuTimeout or None
        try:
            ae = NoDelayAE(ae_title=self._local_aet(modality))
        except ValueError:
            raise NetworkError(prefix + "Illegal service parameter: Calling AP Title") from None
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout
        try:
            socket.getaddrinfo(modality.host, modality.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise NetworkError(prefix + f"Attempt to connect to unknown host: {modality.host}") from None
        opened: list[bool] = []
        started = time.monotonic()
        try:
            assoc = ae.associate(modality.host, modality.port, ae_title=modality.aet, contexts=requested, ext_neg=roles,
                                 evt_handlers=[(evt.EVT_CONN_OPEN, lambda event: opened.append(True))]
                                 + (handlers or []))
        except ValueError:
            raise NetworkError(prefix + "Illegal service parameter: Called AP Title") from None
        if not assoc.is_established:
            raise _association_failure(modality, assoc, bool(opened), time.monotonic() - started, timeout)
        return assoc

    def _check(self, modality: Modality, service: str, status: Dataset | None, warnings_succeed: bool = False
               ) -> None:
        """Raise unless a final DIMSE status says success (PS3.7 C: warnings are 0x0001 and 0xBxxx)."""
        if not status or "Status" not in status:
            raise NetworkError(f"{service} SCU to AET \"{modality.aet}\" has failed: no response (the association "
                               "was aborted, or the DIMSE timeout expired)")
        code = int(status.Status)
        if code == _SUCCESS or (warnings_succeed and (code == 0x0001 or code >> 12 == 0xB)):
            return
        raise NetworkError(f"{service} SCU to AET \"{modality.aet}\" has failed with DIMSE status 0x{code:04X}")


class _Outgoing:
    """One archived instance to send: its SOP class, transfer syntax and stored file."""

    def __init__(self, archive: Archive, instance_id: str) -> None:
        metadata = archive.metadata(Level.INSTANCE, instance_id)
        self.archive = archive
        self.instance_id = instance_id
        self.sop_class_uid = metadata.get("SopClassUid", "")
        self.transfer_syntax = metadata.get("TransferSyntax") or "1.2.840.10008.1.2"
        self.context_key = (self.sop_class_uid, self.transfer_syntax)

    def payload(self) -> Path | Dataset:
        """The stored file when pynetdicom can stream it as is (complete file meta), else the parsed data set."""
        path = self.archive.instance_path(self.instance_id)
        try:
            meta, _ = split_dataset(path)
            if all(k in meta for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")) \
                    and str(meta.TransferSyntaxUID) == self.transfer_syntax:
                return path
        except Exception:  # no preamble or meta: the bare data set is parsed below
            pass
        dataset = self.archive.instance_dataset(self.instance_id)
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = self.transfer_syntax
        return dataset


@cache
def _get_negotiation(model: str) -> tuple[tuple[PresentationContext, ...], tuple]:
    """The contexts and SCP/SCU role selections of a C-GET (PS3.4 C.4.3.1, PS3.7 D.3.3.4): the model, and each
    storage class of pynetdicom's common list (120 of them; an association takes 128 contexts at most) in which
    this SCU takes the SCP role. Built once: pynetdicom validates every UID of a context it builds."""
    storage = [cx.abstract_syntax for cx in StoragePresentationContexts][:_MAX_CONTEXTS - 1]
    requested = contexts.contexts([model]) + contexts.contexts(storage, _GET_TRANSFER_SYNTAXES)
    return tuple(requested), tuple(build_role(uid, scp_role=True) for uid in storage)


def _batches(outgoing: list[_Outgoing]) -> list[list[_Outgoing]]:
    """Consecutive runs of instances that need at most 128 presentation contexts each (one association each)."""
    batches: list[list[_Outgoing]] = []
    keys: set[tuple[str, str]] = set()
    for item in outgoing:
        if not batches or (item.context_key not in keys and len(keys) == _MAX_CONTEXTS):
            batches.append([])
            keys = set()
        batches[-1].append(item)
        keys.add(item.context_key)
    return batches


def _syntaxes_for(sop_class_uid: str, accepted: set[tuple[str, str]]) -> str:
    return "".join(f"{syntax} " for sop_class, syntax in sorted(accepted) if sop_class == sop_class_uid)


def _association_failure(modality: Modality, assoc: Association, opened: bool, elapsed: float,
                         timeout: float | None) -> NetworkError:
    """Why no association was established, in DCMTK's words as Orthanc reports them."""
    prefix = f"DicomAssociation - connecting to AET \"{modality.aet}\": "
    if assoc.is_rejected:
        return NetworkError(prefix + "DUL Association Rejected")
    if not opened:
        reason = "Operation timed out" if timeout and elapsed >= timeout else "Connection refused"
        return NetworkError(prefix + f"TCP Initialization Error: {reason}")
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        return NoPresentationContext(f"Unable to negotiate a presentation context with AET \"{modality.aet}\"")
    if timeout and elapsed >= timeout:
        return NetworkError(prefix + "DUL network read timeout")
    return NetworkError(prefix + "Peer aborted Association (or never connected)")


def _received_file(event, source_aet: str) -> bytes:
    """A C-STORE received on a C-GET association as a Part 10 file: pacsbox's file meta information, then the data
    set exactly as the peer encoded it (PS3.10 7.1)."""
    request = event.request
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = request.AffectedSOPClassUID
    meta.MediaStorageSOPInstanceUID = request.AffectedSOPInstanceUID
    meta.TransferSyntaxUID = event.context.transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = source_aet
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + event.encoded_dataset(include_meta=False)
