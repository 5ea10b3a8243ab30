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
from dataclasses import dataclass
from io import BytesIO

from pydicom.dataset import Dataset

from ...core.archive import Archive, Origin
from ...core.dicom import file_meta
from ...core.errors import ArchiveError, ScriptError
from . import commands, observe, status, upper_layer
from .commands import Command, CommandError
from .find import find_responses
from .policy import AssociationPolicy

LOG = logging.getLogger("pacsbox.dimse")
_SERVICE_USER, _SERVICE_PROVIDER = 0x00, 0x02  # A-ABORT sources (PS3.8 9.3.8)
_UNEXPECTED_PDU = 0x02
# The requests served here: the permission each needs (DicomAlwaysAllow<...>, AllowEcho, ...) and its response.
_SERVICES = {commands.C_ECHO_RQ: ("Echo", commands.C_ECHO_RSP), commands.C_STORE_RQ: ("Store", commands.C_STORE_RSP),
             commands.C_FIND_RQ: ("Find", commands.C_FIND_RSP)}
_UNDECODABLE_IDENTIFIER = 0xC310  # C-FIND failure: unable to process, the identifier cannot be decoded (pynetdicom's)
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"


@dataclass
class _FindRequest:
    """What ``find_responses`` reads of a C-FIND request. Answers go out as they are built and nothing is read
    meanwhile, so a C-CANCEL-RQ is only seen after the last one (PS3.4 C.4.1.2.3 lets answers cross a cancel)."""

    identifier: Dataset
    is_cancelled: bool = False


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
        self.accepted: dict[int, upper_layer.NegotiatedContext] = {}
        self._closed = False

    def serve(self, rejection: tuple[int, int, int] | None) -> None:
        """Answer the request (already peeked at) and serve the association until it ends."""
        try:
            upper_layer.recv_exactly(self.sock, self.request.size)
            if rejection is not None:
                self.sock.sendall(upper_layer.reject(*rejection))
                return
            self._accept()
            self._serve_messages()
        except (OSError, upper_layer.PeerClosed) as error:  # a peer gone or silent: nothing left to answer
            LOG.info("association with %r ended: %s", self.calling_aet, error)
        finally:
            self.close()

    def close(self) -> None:
        """End the association's connection (also from another thread, when the server stops)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def abort(self, source: int = _SERVICE_USER, reason: int = 0x00) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(upper_layer.abort(source, reason))
        self.close()

    def _accept(self) -> None:
        supported = self.policy.syntaxes_for(cx.abstract_syntax for cx in self.request.contexts)
        answers = upper_layer.negotiate(self.request, supported)
        self.accepted = {cx.context_id: cx for cx in answers if cx.result == upper_layer.ACCEPTANCE}
        self.sock.sendall(upper_layer.accept(self.request, answers, maximum_length=0))

    def _serve_messages(self) -> None:
        """Read PDUs until release or abort; each complete message is served before the next PDU is read."""
        self.sock.settimeout(self.timeout)
        command_fragments: list[memoryview] = []
        dataset_fragments: list[memoryview] = []
        command: Command | None = None
        while True:
            try:
                pdu_type, body = upper_layer.read_pdu(self.sock)
            except TimeoutError:
                LOG.warning("association with %r aborted: idle for %s s", self.calling_aet, self.timeout)
                self.abort(_SERVICE_PROVIDER)
                return
            if pdu_type == upper_layer.A_RELEASE_RQ_PDU:
                self.sock.sendall(upper_layer.release_response())
                return
            if pdu_type == upper_layer.A_ABORT_PDU:
                return
            if pdu_type != upper_layer.P_DATA_TF_PDU:
                self.abort(_SERVICE_PROVIDER, _UNEXPECTED_PDU)
                return
            try:
                for context_id, header, fragment in upper_layer.pdvs(body):
                    if header & 0x01:  # PS3.8 E.2: bit 0 set, a command fragment; bit 1 set, the last one
                        command_fragments.append(fragment)
                        if not header & 0x02:
                            continue
                        command = commands.read_command(b"".join(command_fragments))
                        command_fragments.clear()
                        if command.has_dataset:
                            continue
                    elif command is None:
                        raise CommandError("a data set fragment before its command")
                    else:
                        dataset_fragments.append(fragment)
                        if not header & 0x02:
                            continue
                    with observe.served(self.archive, observe.operation_of(command.command_field), self.calling_aet):
                        served = self._serve(context_id, command, dataset_fragments)
                    if not served:
                        return
                    command = None
                    dataset_fragments.clear()
            except (CommandError, ValueError) as error:
                LOG.warning("association with %r aborted: %s", self.calling_aet, error)
                self.abort(_SERVICE_PROVIDER)
                return

    def _serve(self, context_id: int, command: Command, dataset: list[memoryview]) -> bool:
        """Answer one request; False when the association was aborted."""
        if command.command_field == commands.C_CANCEL_RQ:
            return True  # nothing is ever pending here
        context = self.accepted.get(context_id)
        service = _SERVICES.get(command.command_field)
        if context is None or service is None:
            LOG.warning("association with %r aborted: command 0x%04X on context %d", self.calling_aet,
                        command.command_field or 0, context_id)
            self.abort()
            return False
        request, response = service
        if not self.policy.allowed(self.calling_aet, request):
            # Like Orthanc, a refused request aborts the association (permissions are per request).
            LOG.warning("%s refused: AET %r is not allowed to send it", request, self.calling_aet)
            self.abort()
            return False
        if request == "Find":
            self._find(context, command, dataset)
            return True
        code = self._store(context, command, dataset) if request == "Store" else status.SUCCESS
        self._respond(context.context_id, commands.encode_response(command, response, code))
        return True

    def _respond(self, context_id: int, answer: bytes, dataset: bytes | None = None) -> None:
        message = upper_layer.p_data(context_id, answer, command=True, maximum_length=self.request.maximum_length)
        if dataset is not None:
            message += upper_layer.p_data(context_id, dataset, command=False,
                                          maximum_length=self.request.maximum_length)
        self.sock.sendall(message)

    def _find(self, context: upper_layer.NegotiatedContext, command: Command, dataset: list[memoryview]) -> None:
        """Answer a C-FIND: a pending response with an identifier per match, then the final status."""
        from pynetdicom.dsutils import decode, encode  # pydicom's codec, as the pynetdicom path uses it

        syntax = context.transfer_syntax
        encoding = (syntax == _IMPLICIT_VR_LITTLE_ENDIAN, syntax != _EXPLICIT_VR_BIG_ENDIAN,
                    syntax == _DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        try:
            identifier = decode(BytesIO(b"".join(dataset)), *encoding)
        except Exception as error:  # any corrupt identifier: a failure status, as pynetdicom answers it
            LOG.warning("C-FIND refused: the identifier cannot be decoded: %s", error)
            self._respond(context.context_id, commands.encode_response(command, commands.C_FIND_RSP,
                                                                       _UNDECODABLE_IDENTIFIER))
            return
        for code, answer in find_responses(self.archive, self.policy.config, _FindRequest(identifier),
                                         self.origin):
            encoded = encode(answer, *encoding) if answer is not None else None
            self._respond(context.context_id, commands.encode_response(
                command, commands.C_FIND_RSP, code, with_dataset=encoded is not None), encoded)
            if code != status.PENDING:  # a failure or a cancel is the final response
                return
        # the matches are over: the final response, which pynetdicom adds after the last pending one
        self._respond(context.context_id, commands.encode_response(command, commands.C_FIND_RSP, status.SUCCESS))

    def _store(self, context: upper_layer.NegotiatedContext, command: Command, dataset: list[memoryview]) -> int:
        """Store the received dataset, as received, behind pacsbox's file meta information."""
        header = file_meta(command.affected_sop_class_uid, command.affected_sop_instance_uid,
                           context.transfer_syntax,
                           implementation_class_uid=upper_layer.IMPLEMENTATION_CLASS_UID,
                           implementation_version_name=upper_layer.IMPLEMENTATION_VERSION_NAME,
                           source_aet=self.calling_aet)
        return store_status(self.archive, b"".join([header, *dataset]), self.origin)


def store_status(archive: Archive, part10: bytes, origin: Origin) -> int:
    """Store a received instance; the C-STORE status that answers it (either path's)."""
    try:
        archive.store(part10, origin)
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
