"""The DICOM SCP's services: association policy (Orthanc's rules) and the C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET handlers.

Loaded by ``scp.DicomServer`` on the first association (this module imports pynetdicom and pydicom). Every
connection is served in a thread of its own, and its association request is read before anything is answered. An
association that only verifies, stores and finds (storescu, findscu, a modality) is served directly by
``direct_scp``; any other (retrieve, role selection, extended negotiation) goes to pynetdicom, whose handlers are
below.
Handlers call the archive directly, which serialises only its short index transactions, so parallel associations
store in parallel.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator, Sequence

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event
from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from ...core.archive import Archive, Origin
from ...core.config import Config
from ...core.dicom import file_meta
from ...faults.dimse import AssociationWatch
from . import commitment, contexts, observe, retrieve, status, upper_layer
from .admission import ConnectionLimits, PduGuard
from .direct_scp import MAXIMUM_COMMAND_SIZE, DirectAssociation, store_status
from .find import find_responses
from .network import NoDelayAE, configure_pynetdicom
from .policy import REJECT_TOO_MANY_ASSOCIATIONS, AssociationPolicy, all_contexts, is_unknown
from .upper_layer import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .worklist_scp import worklist_responses

LOG = logging.getLogger("pacsbox.dimse")
_SERVED_DIRECTLY = frozenset((contexts.VERIFICATION, *contexts.STORAGE_SOP_CLASSES, *contexts.FIND_SOP_CLASSES))


class ServiceClassProvider:
    """The SCP of one archive: its application entity, association policy and handlers. ``serve`` takes the
    listening socket ``scp.DicomServer`` opened; ``stop`` ends serving."""

    def __init__(self, archive: Archive, config: Config) -> None:
        configure_pynetdicom()
        self.archive = archive
        self.config = config
        self.policy = AssociationPolicy(archive, config, all_contexts())
        self.ae = NoDelayAE(ae_title=config.DicomAet)
        self.ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        # Checked for both paths before pynetdicom sees a request (``serve_directly``); pynetdicom's own check
        # is left a margin for the requests admitted while the associations they replace wind down.
        self.limits = ConnectionLimits(config.DicomMaximumConnections, config.DicomMaximumAssociations)
        self.ae.maximum_associations = 2 * config.DicomMaximumAssociations
        self.ae.network_timeout = config.DicomScpTimeout or None
        self.ae.acse_timeout = config.DicomScpTimeout or None
        self.ae.dimse_timeout = config.DicomScpTimeout or None
        self.ae.maximum_pdu_size = upper_layer.MAXIMUM_PDU_LENGTH  # announced; longer PDUs abort (PduGuard)
        self.ae.require_called_aet = False  # checked in _on_requested, with Orthanc's rules
        self._server: _Server | None = None
        self._direct_associations: set[DirectAssociation] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def serve(self, listener: socket.socket, accepted: Sequence[tuple[socket.socket, object]] = ()) -> None:
        """Serve the connections already ``accepted`` (socket, address; each in a thread of its own, in order),
        then those of ``listener`` (bound and listening) until ``stop``; in the calling thread."""
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, _ended("released")), (evt.EVT_ABORTED, _ended("aborted")),
            (evt.EVT_DIMSE_SENT, _dimse_sent),
            *((event, observe.handler(self.archive, name, serve)) for event, name, serve in (
                (evt.EVT_C_ECHO, "C-ECHO", self._on_echo), (evt.EVT_C_STORE, "C-STORE", self._on_store),
                (evt.EVT_C_FIND, "C-FIND", self._on_find), (evt.EVT_C_MOVE, "C-MOVE", self._on_move),
                (evt.EVT_C_GET, "C-GET", self._on_get), (evt.EVT_N_ACTION, "N-ACTION", self._on_n_action),
                (evt.EVT_N_EVENT_REPORT, "N-EVENT-REPORT", self._on_n_event_report))),
        ]
        with self._lock:
            if self._stopped:
                for connection, _ in accepted:
                    connection.close()
                return
            self._server = self.ae.make_server(listener.getsockname()[:2], evt_handlers=handlers,
                                               contexts=self.policy.supported, server_class=_Server,
                                               dicom_server=self, listener=listener, request_handler=_RequestHandler)
            for connection, address in accepted:
                self._server.process_request(connection, address)
        # A ``stop`` from here on waits for this loop, which ends at once if it came first (socketserver).
        self._server.serve_forever()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            server = self._server
            running = list(self._direct_associations)
        if server is not None:
            server.shutdown()
        for association in running:
            association.abort()

    # -- the direct path ------------------------------------------------------------------------------------
    def serve_directly(self, sock: socket.socket, address) -> bool:
        """Serve the connection here if its association only verifies, stores and finds; False to leave it to
        pynetdicom (nothing has been read from the socket then)."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.limits.waiting(sock)
        data = upper_layer.peek_pdu(sock, self.config.DicomScpTimeout or None, lambda: self.limits.is_waiting(sock))
        if not self.limits.done_waiting(sock) or data is None or data[0] != upper_layer.A_ASSOCIATE_RQ_PDU:
            # Closed to make room for newer connections, no whole association request within the timeout
            # (silence, a trickle), one of more than a MiB (no real request comes near), or another PDU (garbage):
            # refused here, as PS3.8 9.2 has it (ARTIM expiry, an unexpected PDU). pynetdicom would wait for all
            # of a declared length, gigabytes, without end.
            _refuse_connection(sock)
            return True
        request = upper_layer.read_request(data)
        direct = request is not None and request.plain and all(
            cx.abstract_syntax in _SERVED_DIRECTLY or is_unknown(cx.abstract_syntax) for cx in request.contexts)
        with self._lock:
            has_room, evicted = self.limits.make_room(self._running())
            association = None
            if direct and request is not None:
                association = DirectAssociation(self.archive, self.policy, sock, address, request,
                                                 aet=self.config.DicomAet, timeout=self.config.DicomScpTimeout or None)
                self._direct_associations.add(association)
        if evicted is not None:
            evicted.abort_idle()
        if association is None:
            if has_room:
                return False  # pynetdicom's, unread
            _refuse_connection(sock, upper_layer.reject(*REJECT_TOO_MANY_ASSOCIATIONS))  # the request stays unread
            return True
        rejection = self.policy.rejection(association.request.calling_aet, association.request.called_aet)
        if rejection is None and not has_room:
            rejection = REJECT_TOO_MANY_ASSOCIATIONS
        try:
            association.serve(rejection)
        finally:
            with self._lock:
                self._direct_associations.discard(association)
        return True

    def _running(self) -> list:
        """Every association being served, on either path (``admission.Association``)."""
        running: list = list(self._direct_associations)
        if self._server is not None:
            running += [_PynetdicomAssociation(assoc) for assoc in self._server.active_associations]
        return running

    # -- association policy on the pynetdicom path -------------------------------------------------------------
    def allowed(self, calling_aet: str, request: str) -> bool:
        """Whether a peer calling as ``calling_aet`` may send ``request`` (``Echo``, ``Store``, ``Find``, ...)."""
        return self.policy.allowed(calling_aet, request)

    def _on_requested(self, event: Event) -> None:
        assoc = event.assoc
        request = assoc.requestor.primitive
        rejection = self.policy.rejection(request.calling_ae_title.strip(), request.called_ae_title.strip())
        watch = self._watch(assoc, request)
        if rejection is None and watch is not None:
            rejection = self._association_fault(assoc, watch, request)
        if rejection is not None:
            if watch is not None:
                watch.answered("rejected", rejection=rejection, fired=getattr(assoc, "pacsbox_fired", None))
            _reject(assoc, rejection)
            return
        offered = self.policy.contexts_for(cx.abstract_syntax for cx in request.presentation_context_definition_list)
        if offered is not self.policy.supported:
            assoc.acceptor.supported_contexts = offered

    def _watch(self, assoc, request) -> AssociationWatch | None:
        """The association's watch (pacsbox.faults): its rules and event log, None without them."""
        faults = getattr(self.archive, "faults", None)
        if faults is None or not (faults.log.size or faults.rules.active):
            return None
        assoc.pacsbox_watch = AssociationWatch(faults, request.calling_ae_title.strip(),
                                               request.called_ae_title.strip(), str(assoc.requestor.address))
        return assoc.pacsbox_watch

    def _association_fault(self, assoc, watch: AssociationWatch, request) -> tuple[int, int, int] | None:
        """Apply an association rule: its rejection returned, its abort kept for ``_on_accepted``, its PDU delay
        put on the association's socket."""
        fired = watch.requested(str(cx.abstract_syntax) for cx in request.presentation_context_definition_list)
        if fired is None:
            return None
        assoc.pacsbox_fired = fired
        if watch.pdu_delay:
            send = assoc.dul.socket.send

            def slow_send(data: bytes, delay: float = watch.pdu_delay) -> None:
                time.sleep(delay)  # the DUL sends one PDU a call
                send(data)

            assoc.dul.socket.send = slow_send
        return fired.action.reject

    def _on_accepted(self, event: Event) -> None:
        watch = getattr(event.assoc, "pacsbox_watch", None)
        if watch is not None:
            fired = getattr(event.assoc, "pacsbox_fired", None)
            watch.answered("accepted", [str(cx.abstract_syntax) for cx in event.assoc.accepted_contexts], fired=fired)
            if fired is not None and fired.action.abort is not None:
                event.assoc.abort()
                return
        if not self.policy.accepts_unknown_sop_classes():
            return
        # pynetdicom serves a request by its SOP class; an unknown one is mapped to the storage service through
        # the SOP Class Common Extended Negotiation table it consults (PS3.7 D.3.3.6).
        assoc = event.assoc
        for cx in assoc.accepted_contexts:
            if is_unknown(cx.abstract_syntax):
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
        return store_status(self.archive, _part10(event), self._origin(event))

    def _on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        if str(event.context.abstract_syntax) == contexts.WORKLIST_FIND:
            if self._refused(event, "FindWorklist"):
                return iter([(status.UNABLE_TO_PROCESS, None)])
            return worklist_responses(self.archive, self.config, event.identifier, self._origin(event),
                                      lambda: event.is_cancelled)
        if self._refused(event, "Find"):
            return iter([(status.UNABLE_TO_PROCESS, None)])
        return find_responses(self.archive, self.config, event, self._origin(event))

    def _on_n_action(self, event: Event):
        if self._refused(event, "NAction"):
            return 0x0110, None
        return commitment.on_n_action(self.archive, self.archive.remote, event)

    def _on_n_event_report(self, event: Event):
        if self._refused(event, "EventReport"):
            return 0x0110, None
        return commitment.on_n_event_report(self.archive, event)

    def _on_move(self, event: Event):
        if self._refused(event, "Move"):
            return iter([(None, None)])
        return retrieve.move_responses(self.archive, self.config, event)

    def _on_get(self, event: Event):
        if self._refused(event, "Get"):
            return iter([0])
        return retrieve.get_responses(self.archive, event)


def _ended(outcome: str):
    def ended(event: Event) -> None:
        watch = getattr(event.assoc, "pacsbox_watch", None)
        if watch is not None:
            watch.ended(outcome)

    return ended


def _dimse_sent(event: Event) -> None:
    watch = getattr(event.assoc, "pacsbox_watch", None)
    if watch is not None:
        watch.sent(event)


def _part10(event: Event) -> bytes:
    """The received dataset with pacsbox's file meta information, its bytes as the peer encoded them."""
    request = event.request
    header = file_meta(request.AffectedSOPClassUID, request.AffectedSOPInstanceUID, event.context.transfer_syntax,
                       implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                       implementation_version_name=IMPLEMENTATION_VERSION_NAME,
                       source_aet=event.assoc.requestor.ae_title.strip())
    return header + event.encoded_dataset(include_meta=False)


def _refuse_connection(sock: socket.socket, answer: bytes = upper_layer.abort(source=0x02)) -> None:
    """Answer with an A-ABORT from the service provider (or ``answer``) and close."""
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)  # a peer that reads nothing cannot hold the thread
        sock.sendall(answer)
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _PynetdicomAssociation:
    """A pynetdicom association as admission sees it (``admission.Association``)."""

    def __init__(self, assoc) -> None:
        self.assoc = assoc

    def idle_for(self, now: float) -> float:
        guard = getattr(self.assoc, "pacsbox_guard", None)
        if guard is None or getattr(self.assoc, "_is_paused", False):  # paused: serving a request
            return 0.0
        return now - guard.last_activity

    def abort_idle(self) -> None:
        # pynetdicom's abort waits for the association's threads: not in the thread of a new connection
        threading.Thread(target=self.assoc.abort, name="pacsbox-dicom-evict", daemon=True).start()


class _RequestHandler(RequestHandler):
    """pynetdicom's handler of a connection, with every PDU it reads checked first (``PduGuard``)."""

    def _create_association(self):
        assoc = super()._create_association()
        association_socket = assoc.dul.socket
        raw = association_socket.socket

        def send_abort() -> None:
            with contextlib.suppress(OSError):
                raw.sendall(upper_layer.abort(source=0x02))

        config = self.server.dicom_server.config
        guard = PduGuard(association_socket.recv, send_abort, config.DicomMaximumDatasetSize, MAXIMUM_COMMAND_SIZE,
                         before_pdu=(lambda: upper_layer.acknowledge_promptly(raw))
                         if config.DicomAcknowledgeAtOnce else None)
        association_socket.recv = guard.recv  # the DUL reads every PDU through it
        assoc.pacsbox_guard = guard
        assoc._serve_request = _OnItsContext(assoc, assoc._serve_request, self.server.dicom_server.policy)
        return assoc


_REQUESTS = {"C_ECHO": "Echo", "C_STORE": "Store", "C_FIND": "Find", "C_MOVE": "Move", "C_GET": "Get"}


class _OnItsContext:
    """pynetdicom's dispatch of a request, refusing one sent on a presentation context of another service with
    0x0122, as the direct path does: pynetdicom picks the service from the SOP class the command names, and stores
    a C-STORE sent on a C-FIND context (or aborts a C-FIND sent on a storage one)."""

    def __init__(self, assoc, serve, policy: AssociationPolicy) -> None:
        self.assoc = assoc
        self.serve = serve
        self.policy = policy

    def __call__(self, message, context_id: int) -> None:
        context = getattr(self.assoc, "_accepted_cx", {}).get(context_id)
        request = _REQUESTS.get(type(message).__name__)
        calling = self.assoc.requestor.ae_title.strip()
        # a request the peer may not send at all goes on to its handler, which aborts (as the direct path does)
        if context is None or request is None or not self.policy.allowed(calling, request) \
                or self.policy.service_of(context.abstract_syntax) == request:
            self.serve(message, context_id)
            return
        LOG.warning("%s refused: presentation context %d is for %s", request, context_id, context.abstract_syntax)
        response = type(message)()
        response.MessageIDBeingRespondedTo = message.MessageID
        response.AffectedSOPClassUID = message.AffectedSOPClassUID
        if request == "Store":
            response.AffectedSOPInstanceUID = message.AffectedSOPInstanceUID
        response.Status = status.SOP_CLASS_NOT_SUPPORTED
        self.assoc.dimse.send_msg(response, context_id)


def _reject(assoc, reason: tuple[int, int, int]) -> None:
    assoc.acse.send_reject(*reason)
    assoc.is_rejected = True
    assoc.kill()


class _Server(ThreadedAssociationServer):
    """pynetdicom's threaded server on the listening socket ``scp.DicomServer`` opened at start (connections made
    meanwhile wait in its backlog), with a look at each association request before pynetdicom takes it."""

    daemon_threads = True  # a direct association runs in its connection's thread: stopping must not wait for it

    def __init__(self, *args, dicom_server: ServiceClassProvider, listener: socket.socket, **kwargs) -> None:
        self.dicom_server = dicom_server
        self.listener = listener
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        # socketserver made a socket of its own to bind: the one already listening replaces it
        self.socket.close()
        self.socket = self.listener
        self.server_address = self.listener.getsockname()
        if self.ae.network_timeout is not None:  # as pynetdicom's own server_bind
            self.listener.settimeout(self.ae.network_timeout)

    def server_activate(self) -> None:
        """Already listening (``scp.DicomServer.start``)."""

    def finish_request(self, request, client_address) -> None:
        if not self.dicom_server.serve_directly(request, client_address):
            super().finish_request(request, client_address)

    def shutdown(self) -> None:
        # pynetdicom's shutdown also unregisters the server from an AE that never registered it (make_server)
        socketserver.BaseServer.shutdown(self)
        self.server_close()
