"""The DICOM SCP: association policy (Orthanc's rules) and the C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET handlers.

pynetdicom runs each association in a thread of its own; handlers call the archive directly, which serialises only
its short index transactions, so parallel associations store in parallel.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom import evt
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import uid_to_service_class

from ... import __version__
from ...core.archive import Archive, Origin
from ...core.config import Config
from ...core.errors import ArchiveError
from . import contexts, retrieve, status
from .find import find_responses
from .network import NoDelayAE

LOG = logging.getLogger("pacsbox.dimse")
# PS3.7 D.3.3.2; a UUID-derived UID (PS3.5 B.2), so no registered root is needed
IMPLEMENTATION_CLASS_UID = "2.25.52866604236141863274981416590666453567"
IMPLEMENTATION_VERSION_NAME = f"PACSBOX_{__version__}"[:16]

# PS3.8 9.3.4 A-ASSOCIATE-RJ (result, source, reason)
_REJECT_CALLING_AET = (0x01, 0x01, 0x03)
_REJECT_CALLED_AET = (0x01, 0x01, 0x07)


class DicomServer:
    """The SCP of one archive, listening on ``config.BindAddress``/``config.DicomPort`` (0: a free port)."""

    def __init__(self, archive: Archive, config: Config) -> None:
        self.archive = archive
        self.config = config
        self.ae = NoDelayAE(ae_title=config.DicomAet)
        self.ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        self.ae.maximum_associations = 64
        self.ae.network_timeout = config.DicomScpTimeout or None
        self.ae.acse_timeout = config.DicomScpTimeout or None
        self.ae.dimse_timeout = config.DicomScpTimeout or None
        self.ae.maximum_pdu_size = 0  # no limit on what peers send: fewer, larger PDUs are faster
        self.ae.require_called_aet = False  # checked in _on_requested, with Orthanc's rules
        for cx in _all_contexts():
            # add_supported_context keeps the role flags, which assigning supported_contexts would drop
            self.ae.add_supported_context(cx.abstract_syntax, cx.transfer_syntax, scu_role=cx.scu_role,
                                          scp_role=cx.scp_role)
        self._server = None
        self.port = 0

    def start(self) -> int:
        """Listen in background threads; returns the bound port."""
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
        ]
        self._server = self.ae.start_server((self.config.BindAddress, self.config.DicomPort), block=False,
                                            evt_handlers=handlers)
        listening = self._server.socket
        # Delayed ACKs against Nagle's algorithm cost ~40 ms per small DIMSE response; accepted sockets inherit it.
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = listening.getsockname()[1]
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- association policy (Orthanc's OrthancApplicationEntityFilter) -------------------------------------------
    def allowed(self, calling_aet: str, request: str) -> bool:
        """Whether a peer calling as ``calling_aet`` may send ``request`` (``Echo``, ``Store``, ``Find``, ...)."""
        if getattr(self.config, f"DicomAlwaysAllow{request}", False):
            return True
        return any(m.allows(request) for m in self.archive.modalities.by_aet(calling_aet))

    def _on_requested(self, event: Event) -> None:
        assoc = event.assoc
        request = assoc.requestor.primitive
        calling = request.calling_ae_title.strip()
        called = request.called_ae_title.strip()
        if self.config.DicomCheckCalledAet and called != self.config.DicomAet:
            LOG.warning("association refused: called AET %r is not %r", called, self.config.DicomAet)
            _reject(assoc, _REJECT_CALLED_AET)
            return
        known = bool(self.archive.modalities.by_aet(calling))
        if not (self.config.DicomAlwaysAllowEcho or self.config.DicomAlwaysAllowStore or known):
            LOG.warning("association refused: unknown calling AET %r", calling)
            _reject(assoc, _REJECT_CALLING_AET)
            return
        if self.config.UnknownSopClassAccepted:
            offered = list(self.ae.supported_contexts)
            known_uids = {cx.abstract_syntax for cx in offered}
            for cx in request.presentation_context_definition_list:
                if cx.abstract_syntax not in known_uids and _is_unknown(cx.abstract_syntax):
                    offered.append(build_context(cx.abstract_syntax, list(contexts.STORAGE_TRANSFER_SYNTAXES)))
                    known_uids.add(cx.abstract_syntax)
            assoc.acceptor.supported_contexts = offered

    def _on_accepted(self, event: Event) -> None:
        if not self.config.UnknownSopClassAccepted:
            return
        # pynetdicom serves a request by its SOP class; an unknown one is mapped to the storage service through
        # the SOP Class Common Extended Negotiation table it consults (PS3.7 D.3.3.6).
        from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation

        assoc = event.assoc
        for cx in assoc.accepted_contexts:
            if _is_unknown(cx.abstract_syntax):
                item = SOPClassCommonExtendedNegotiation()
                item.sop_class_uid = cx.abstract_syntax
                item.service_class_uid = "1.2.840.10008.4.2"  # Storage Service Class
                assoc.acceptor._common_ext[cx.abstract_syntax] = item

    # -- services -------------------------------------------------------------------------------------------
    def _origin(self, event: Event) -> Origin:
        assoc = event.assoc
        return Origin("DicomProtocol", remote_ip=assoc.requestor.address,
                      remote_aet=assoc.requestor.ae_title.strip(), called_aet=assoc.acceptor.ae_title.strip())

    def _refused(self, event: Event, request: str) -> bool:
        """Whether the peer may not send this request; like Orthanc, a refused request aborts the association
        (every context was accepted at negotiation: permissions are per request, not per SOP class)."""
        calling = event.assoc.requestor.ae_title.strip()
        if self.allowed(calling, request):
            return False
        LOG.warning("%s refused: AET %r is not allowed to send it", request, calling)
        event.assoc.abort()
        return True

    def _on_echo(self, event: Event) -> int:
        if self._refused(event, "Echo"):
            return status.UNABLE_TO_PROCESS
        return status.SUCCESS

    def _on_store(self, event: Event) -> int:
        if self._refused(event, "Store"):
            return status.OUT_OF_RESOURCES
        try:
            data = _part10(event)
            self.archive.store(data, self._origin(event))
        except ArchiveError as error:
            LOG.warning("C-STORE refused: %s", error.details)
            return status.CANNOT_UNDERSTAND
        except Exception:  # a failing store answers a DICOM status; the association and the server go on
            LOG.exception("C-STORE failed")
            return status.OUT_OF_RESOURCES
        return status.SUCCESS

    def _on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        if self._refused(event, "Find"):
            return iter([(status.UNABLE_TO_PROCESS, None)])
        return find_responses(self.archive, self.config, event)

    def _on_move(self, event: Event):
        if self._refused(event, "Move"):
            return iter([(None, None)])
        return retrieve.move_responses(self.archive, self.config, event)

    def _on_get(self, event: Event):
        if self._refused(event, "Get"):
            return iter([0])
        return retrieve.get_responses(self.archive, event)


def _part10(event: Event) -> bytes:
    """The received dataset with pacsbox's file meta information, its bytes as the peer encoded them."""
    request = event.request
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = request.AffectedSOPClassUID
    meta.MediaStorageSOPInstanceUID = request.AffectedSOPInstanceUID
    meta.TransferSyntaxUID = event.context.transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = event.assoc.requestor.ae_title.strip()
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + event.encoded_dataset(include_meta=False)


def _all_contexts() -> list[PresentationContext]:
    return (
        contexts.contexts([contexts.VERIFICATION])
        + _storage_contexts()
        + contexts.contexts(contexts.FIND_SOP_CLASSES + contexts.MOVE_SOP_CLASSES)
        + contexts.contexts(contexts.GET_SOP_CLASSES)
    )


def _storage_contexts() -> list[PresentationContext]:
    storage = contexts.contexts(contexts.STORAGE_SOP_CLASSES, contexts.STORAGE_TRANSFER_SYNTAXES)
    for cx in storage:
        # Accept the roles a C-GET SCU proposes (it is the storage SCP of the sub-operations), PS3.7 D.3.3.4.
        cx.scu_role = True
        cx.scp_role = True
    return storage


def _is_unknown(sop_class_uid: str) -> bool:
    return uid_to_service_class(sop_class_uid).__name__ == "ServiceClass"


def _reject(assoc, reason: tuple[int, int, int]) -> None:
    assoc.acse.send_reject(*reason)
    assoc.is_rejected = True
    assoc.kill()
