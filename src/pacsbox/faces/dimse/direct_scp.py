"""Associations that only verify, store and find, served in the thread that accepted them (PS3.4 A, B and C.4.1,
PS3.7 9.1).

An ingest association is a loop of C-STORE-RQ in, C-STORE-RSP out; a query one, C-FIND-RQ in, C-FIND-RSPs out.
pynetdicom serves each message through two polling threads (1 ms sleeps), queues and its state machine, 3-5 ms a
message before any work; here the accepting thread reads PDUs with blocking calls, reassembles each message,
serves it and answers. The policy is the pynetdicom path's (``policy``), the negotiation picks syntaxes as
pynetdicom does (``upper_layer``), and finds are answered by the same ``find_responses``, so a peer cannot tell
the two paths apart.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from io import BytesIO

from ...core.archive import Archive, Origin
from ...core.dicom import file_meta
from ...core.errors import ArchiveError, ScriptError, StorageFull
from ...faults.dimse import AssociationWatch, identifier_keys, is_warning, send_slowly
from . import commands, observe, status, upper_layer
from .commands import Command, CommandError
from .find import encoding_of, find_answers
from .policy import AssociationPolicy

LOG = logging.getLogger("pacsbox.dimse")
_SERVICE_USER, _SERVICE_PROVIDER = 0x00, 0x02  # A-ABORT sources (PS3.8 9.3.8)
_UNEXPECTED_PDU = 0x02
# The requests served here: the permission each needs (DicomAlwaysAllow<...>, AllowEcho, ...) and its response.
# C-MOVE and C-GET have no context here (such associations go to pynetdicom): one on another context is refused.
_SERVICES = {commands.C_ECHO_RQ: ("Echo", commands.C_ECHO_RSP), commands.C_STORE_RQ: ("Store", commands.C_STORE_RSP),
             commands.C_FIND_RQ: ("Find", commands.C_FIND_RSP), commands.C_MOVE_RQ: ("Move", commands.C_MOVE_RSP),
             commands.C_GET_RQ: ("Get", commands.C_GET_RSP)}
_OPERATIONS = {"Echo": "C-ECHO", "Store": "C-STORE", "Find": "C-FIND", "Move": "C-MOVE", "Get": "C-GET"}
_UNDECODABLE_IDENTIFIER = 0xC310  # C-FIND failure: unable to process, the identifier cannot be decoded (pynetdicom's)
_INVALID_PDU_PARAMETER = 0x06  # A-ABORT reason (PS3.8 9.3.8)
# A command set is a few hundred bytes (PS3.7 E.1); a longer one is no command
MAXIMUM_COMMAND_SIZE = 64 * 1024
# A fragment counts with its PDV header (PS3.8 9.3.5.1), so that a flood of tiny fragments reaches the limit too
_PDV_OVERHEAD = 6


class _Refused(Exception):
    """The association was aborted while a request was being received."""


class _Message:
    """One DIMSE message being received (PS3.7 6.3, PS3.8 E.2): its command, then its data set, each in
    fragments. Sizes are checked fragment by fragment, before anything is held: a command over
    ``MAXIMUM_COMMAND_SIZE`` or a data set over ``DicomMaximumDatasetSize`` is a protocol error."""

    def __init__(self, maximum_dataset_size: int) -> None:
        self.maximum_dataset_size = maximum_dataset_size
        self.command_bytes = bytearray()
        self.command: Command | None = None
        self.context_id = 0
        self.refusal: int | None = None  # the failure status answering the request; its data set is dropped
        self.dataset = bytearray()
        self.dataset_size = 0

    def receive(self, context_id: int, header: int, fragment: memoryview,
                admit: Callable[[int, Command], int | None]) -> bool:
        """Take one presentation data value; True when the message is complete. ``admit`` decides on the
        request once its command is complete."""
        if header & 0x01:  # PS3.8 E.2: bit 0 set, a command fragment; bit 1 set, the last one
            if self.command is not None:
                raise CommandError("a command fragment inside a data set")
            if len(self.command_bytes) + len(fragment) + _PDV_OVERHEAD > MAXIMUM_COMMAND_SIZE:
                raise CommandError(f"a command set over {MAXIMUM_COMMAND_SIZE} bytes")
            self.command_bytes += fragment
            if not header & 0x02:
                return False
            self.command = commands.read_command(bytes(self.command_bytes))
            self.context_id = context_id
            self.refusal = admit(context_id, self.command)
            return not self.command.has_dataset
        if self.command is None:
            raise CommandError("a data set fragment before its command")
        if context_id != self.context_id:
            raise CommandError("a data set fragment on another presentation context than its command")
        self.dataset_size += len(fragment) + _PDV_OVERHEAD
        if self.dataset_size > self.maximum_dataset_size:
            raise CommandError(f"a data set over DicomMaximumDatasetSize ({self.maximum_dataset_size} bytes)")
        if self.refusal is None:
            self.dataset += fragment
        return bool(header & 0x02)


class DirectAssociation:
    """One association whose proposed contexts are all verification, storage or query (C-FIND)."""

    def __init__(self, archive: Archive, policy: AssociationPolicy, sock: socket.socket, address: tuple,
                 request: upper_layer.AssociationRequest, *, aet: str, timeout: float | None) -> None:
        self.archive = archive
        self.policy = policy
        self.sock = sock
        self.request = request
        self.calling_aet = request.calling_aet
        self.origin = Origin("DicomProtocol", remote_ip=str(address[0]), remote_aet=self.calling_aet, called_aet=aet)
        self.timeout = timeout
        self.maximum_dataset_size = policy.config.DicomMaximumDatasetSize
        self.acknowledge_at_once = policy.config.DicomAcknowledgeAtOnce
        self.accepted: dict[int, upper_layer.NegotiatedContext] = {}
        self.last_activity = time.monotonic()  # when the last whole PDU arrived: how idle the association is
        self._serving = False
        self._closed = False
        # fault injection and the event log (pacsbox.faults): None for an archive opened without them
        faults = getattr(archive, "faults", None)
        self.rules = faults.rules if faults is not None else None
        self.watch = AssociationWatch(faults, self.calling_aet, request.called_aet, str(address[0])) \
            if faults is not None and faults.log.size else None
        self.pdu_delay = 0.0  # seconds before each PDU sent (a fault rule's pdu_delay)
        self._fired = None  # the fault rule that fired on the request being received
        self.ending = "closed"  # how the association ended, for the event log

    def serve(self, rejection: tuple[int, int, int] | None) -> None:
        """Answer the request (already peeked at) and serve the association until it ends."""
        watch = self.watch
        try:
            upper_layer.recv_exactly(self.sock, self.request.size)
            fired = None
            if rejection is None and self.rules is not None and self.rules.active:
                fired = self._association_fault()
                rejection = fired.action.reject if fired is not None else None
            if rejection is not None:
                self.sock.sendall(upper_layer.reject(*rejection))
                if watch is not None:
                    watch.answered("rejected", rejection=rejection, fired=fired)
                return
            self._accept()
            if watch is not None:
                watch.answered("accepted", [cx.abstract_syntax for cx in self.accepted.values()], fired=fired)
            if fired is not None and fired.action.abort is not None:
                self.abort(*fired.action.abort)
                return
            self._serve_messages()
        except (OSError, upper_layer.PeerClosed) as error:  # a peer gone or silent: nothing left to answer
            LOG.info("association with %r ended: %s", self.calling_aet, error)
        except Exception:  # the server never dies from a peer: the association is aborted
            LOG.exception("association with %r aborted", self.calling_aet)
            self.abort(_SERVICE_PROVIDER)
        finally:
            self.close()
            if watch is not None and self.accepted:
                watch.ended(self.ending)

    def _association_fault(self):
        """The association rule that fires on this request (pacsbox.faults), its PDU delay taken."""
        watch = self.watch or AssociationWatch(self.archive.faults, self.calling_aet, self.request.called_aet, "")
        fired = watch.requested(cx.abstract_syntax for cx in self.request.contexts)
        self.pdu_delay = watch.pdu_delay
        return fired

    def close(self) -> None:
        """End the association's connection (also from another thread, when the server stops)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def idle_for(self, now: float) -> float:
        """Seconds since the last PDU arrived; 0 while a request is served (``admission.Association``)."""
        return 0.0 if self._serving else now - self.last_activity

    def abort_idle(self) -> None:
        """Abort from another thread (to make room for a new association): an A-ABORT if it can go at once,
        then the connection is closed, which ends the association's own thread."""
        self.ending = "aborted to make room"
        with contextlib.suppress(OSError):
            self.sock.send(upper_layer.abort(_SERVICE_PROVIDER), socket.MSG_DONTWAIT)
        self.close()

    def abort(self, source: int = _SERVICE_USER, reason: int = 0x00) -> None:
        self.ending = "aborted"
        with contextlib.suppress(OSError):
            self.sock.sendall(upper_layer.abort(source, reason))
        self.close()

    def _accept(self) -> None:
        supported = self.policy.syntaxes_for(cx.abstract_syntax for cx in self.request.contexts)
        answers = upper_layer.negotiate(self.request, supported)
        self.accepted = {cx.context_id: cx for cx in answers if cx.result == upper_layer.ACCEPTANCE}
        self._send(upper_layer.accept(self.request, answers, maximum_length=upper_layer.MAXIMUM_PDU_LENGTH))

    def _send(self, data: bytes) -> None:
        if self.pdu_delay:  # a fault rule delays each PDU
            send_slowly(self.sock.sendall, data, self.pdu_delay)
        else:
            self.sock.sendall(data)

    def _serve_messages(self) -> None:
        """Read PDUs until release or abort; each complete message is served before the next PDU is read."""
        self.sock.settimeout(self.timeout)
        message = _Message(self.maximum_dataset_size)
        while True:
            try:
                if self.acknowledge_at_once:  # (a default pynetdicom SCU waits on it: see there)
                    upper_layer.acknowledge_promptly(self.sock)
                pdu_type, body = upper_layer.read_pdu(self.sock)
            except TimeoutError:
                LOG.warning("association with %r aborted: idle for %s s", self.calling_aet, self.timeout)
                self.abort(_SERVICE_PROVIDER)
                return
            except upper_layer.PduTooLong as error:
                LOG.warning("association with %r aborted: %s", self.calling_aet, error)
                self.abort(_SERVICE_PROVIDER, _INVALID_PDU_PARAMETER)
                return
            self.last_activity = time.monotonic()
            if pdu_type == upper_layer.A_RELEASE_RQ_PDU:
                self._send(upper_layer.release_response())
                self.ending = "released"
                return
            if pdu_type == upper_layer.A_ABORT_PDU:
                self.ending = "aborted by the peer"
                return
            if pdu_type != upper_layer.P_DATA_TF_PDU:
                self.abort(_SERVICE_PROVIDER, _UNEXPECTED_PDU)
                return
            try:
                for context_id, header, fragment in upper_layer.pdvs(body):
                    if not message.receive(context_id, header, fragment, self._admit):
                        continue
                    self._serving = True
                    try:
                        assert message.command is not None
                        with observe.served(self.archive, observe.operation_of(message.command.command_field),
                                            self.calling_aet):
                            self._serve(message)
                    finally:
                        self._serving = False
                        self.last_activity = time.monotonic()
                    message = _Message(self.maximum_dataset_size)
            except _Refused:
                return  # aborted already
            except (CommandError, ValueError) as error:
                LOG.warning("association with %r aborted: %s", self.calling_aet, error)
                self.abort(_SERVICE_PROVIDER)
                return
            finally:
                del body  # the PDU's memory goes now, not when the next one has arrived

    def _admit(self, context_id: int, command: Command) -> int | None:
        """Decide on a request as soon as its command has arrived, before any of its data set is held: None to
        serve it, else the failure status answering it (its data set is then read and dropped). Raises
        ``_Refused`` once the association is aborted (a request the calling AET may not send, as Orthanc does;
        a command on a context never accepted, or of a kind not served here)."""
        if command.command_field == commands.C_CANCEL_RQ:
            return None
        context = self.accepted.get(context_id)
        service = _SERVICES.get(command.command_field)
        if context is None or service is None:
            LOG.warning("association with %r aborted: command 0x%04X on context %d", self.calling_aet,
                        command.command_field or 0, context_id)
            self.abort()
            raise _Refused
        request = service[0]
        if not self.policy.allowed(self.calling_aet, request):
            # Like Orthanc, a refused request aborts the association (permissions are per request).
            LOG.warning("%s refused: AET %r is not allowed to send it", request, self.calling_aet)
            self.abort()
            raise _Refused
        if self.policy.service_of(context.abstract_syntax) != request:
            LOG.warning("%s refused: presentation context %d is for %s", request, context_id,
                        context.abstract_syntax)
            return status.SOP_CLASS_NOT_SUPPORTED
        self._fired = None
        if self.rules is not None and self.rules.active:
            return self._request_fault(_OPERATIONS[request], command)
        return None

    def _request_fault(self, operation: str, command: Command) -> int | None:
        """Apply the rule that fires on a request, before its data set is held: an abort ends the association, a
        failure status answers it (nothing is stored), a warning status is kept for the answer (``_serve``)."""
        watch = self.watch or AssociationWatch(self.archive.faults, self.calling_aet, self.request.called_aet, "")
        fired = self._fired = watch.request_fault(operation, command.affected_sop_class_uid)
        if fired is None:
            return None
        if fired.action.abort is not None:
            watch.message(operation, None, fired, message_id=command.message_id,
                          sop_class_uid=command.affected_sop_class_uid, outcome="aborted")
            self.abort(*fired.action.abort)
            raise _Refused
        code = fired.action.dimse_status
        # a C-FIND's identifier is kept for the event log: _find answers the failure
        return code if code is not None and not is_warning(code) and operation != "C-FIND" else None

    def _serve(self, message: _Message) -> None:
        """Answer one complete request."""
        command = message.command
        assert command is not None
        if command.command_field == commands.C_CANCEL_RQ:
            return  # nothing is ever pending here
        request, response = _SERVICES[command.command_field]
        context = self.accepted[message.context_id]
        fired, self._fired = self._fired, None
        # a fault's warning status answers a request served as usual (a failure status was a refusal, in _admit,
        # except for C-FIND, answered by _find)
        warning = fired.action.dimse_status if fired is not None else None
        fields: dict = {}
        if message.refusal is not None:
            code = message.refusal
            self._respond(context.context_id, commands.encode_response(command, response, code))
        elif request == "Find":
            code, fields = self._find(context, command, message.dataset, warning)
        else:
            code = (self._store(context, command, message.dataset) if request == "Store"
                    else status.SUCCESS if request == "Echo" else status.SOP_CLASS_NOT_SUPPORTED)
            if warning is not None and code == status.SUCCESS:
                code = warning  # stored (PS3.4 B.2.3: a warning means the instance was stored)
            self._respond(context.context_id, commands.encode_response(command, response, code))
        if self.watch is not None:
            if request == "Store":
                fields["sop_instance_uid"] = command.affected_sop_instance_uid
            self.watch.message(_OPERATIONS[request], code, fired, message_id=command.message_id,
                               sop_class_uid=command.affected_sop_class_uid, **fields)

    def _respond(self, context_id: int, answer: bytes, dataset: bytes | None = None) -> None:
        message = upper_layer.p_data(context_id, answer, command=True, maximum_length=self.request.maximum_length)
        if dataset is not None:
            message += upper_layer.p_data(context_id, dataset, command=False,
                                          maximum_length=self.request.maximum_length)
        self._send(message)

    def _find(self, context: upper_layer.NegotiatedContext, command: Command, dataset: bytearray,
              fault: int | None = None) -> tuple[int, dict]:
        """Answer a C-FIND: a pending response with an identifier per match, then the final status (a fault's
        warning instead of success, or its failure alone). Returns the final status and what the event log
        records."""
        from pynetdicom.dsutils import decode  # pydicom's codec, as the pynetdicom path uses it

        encoding = encoding_of(context.transfer_syntax)
        try:
            identifier = decode(BytesIO(dataset), *encoding)
        except Exception as error:  # any corrupt identifier: a failure status, as pynetdicom answers
            LOG.warning("C-FIND refused: the identifier cannot be decoded: %s", error)
            self._respond(context.context_id, commands.encode_response(command, commands.C_FIND_RSP,
                                                                       _UNDECODABLE_IDENTIFIER))
            return _UNDECODABLE_IDENTIFIER, {}
        final = status.SUCCESS  # after the last pending answer, as pynetdicom adds it
        matches = 0
        answers = find_answers(self.archive, self.policy.config, identifier, context.transfer_syntax,
                               lambda: False, self.origin) if fault is None or is_warning(fault) else ()
        for code, _, encoded in answers:
            if code != status.PENDING:  # a failure or a cancel is the final response
                final = code
                break
            matches += 1
            self._respond(context.context_id, commands.encode_response(
                command, commands.C_FIND_RSP, code, with_dataset=True), encoded)
        if fault is not None and final == status.SUCCESS:
            final = fault
        self._respond(context.context_id, commands.encode_response(command, commands.C_FIND_RSP, final))
        return final, ({"identifier": identifier_keys(identifier), "matches": matches} if self.watch else {})

    def _store(self, context: upper_layer.NegotiatedContext, command: Command, dataset: bytearray) -> int:
        """Store the received dataset, as received, behind pacsbox's file meta information."""
        header = file_meta(command.affected_sop_class_uid, command.affected_sop_instance_uid,
                           context.transfer_syntax,
                           implementation_class_uid=upper_layer.IMPLEMENTATION_CLASS_UID,
                           implementation_version_name=upper_layer.IMPLEMENTATION_VERSION_NAME,
                           source_aet=self.calling_aet)
        part10 = b"".join([header, dataset])
        dataset.clear()  # one copy at a time
        return store_status(self.archive, part10, self.origin)


def store_status(archive: Archive, part10: bytes, origin: Origin) -> int:
    """Store a received instance; the C-STORE status that answers it (either path's)."""
    try:
        archive.store(part10, origin)
    except StorageFull as error:  # a full disk (the core reports it as such): PS3.4 C.4.2.1.4 "out of resources"
        LOG.warning("C-STORE refused: %s", error.details)
        return status.OUT_OF_RESOURCES
    except ScriptError as error:  # a failing Lua ReceivedInstanceFilter: Orthanc 1.10.1 answers A700 (measured)
        LOG.warning("C-STORE refused: the Lua filter failed: %s", error.details)
        return status.OUT_OF_RESOURCES
    except ArchiveError as error:
        LOG.warning("C-STORE refused: %s", error.details)
        return status.CANNOT_UNDERSTAND
    except Exception:  # a failing store answers a DICOM status; the association and the server go on
        LOG.exception("C-STORE failed")
        return status.OUT_OF_RESOURCES
    return status.SUCCESS
