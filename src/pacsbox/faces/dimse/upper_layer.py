"""The DICOM upper layer on a plain socket (PS3.8 9): reading and writing PDUs, and A-ASSOCIATE negotiation.

Only the plain association request is decoded here (PS3.8 9.3.2: presentation contexts, maximum length,
implementation class and version); a request with any other item (role selection, extended negotiation, user
identity, asynchronous operations) is left to pynetdicom. pynetdicom decodes a request into validated UID objects
(~20 ms for the ~120 contexts storescu proposes); this reads its bytes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ... import __version__

# PS3.7 D.3.3.2; a UUID-derived UID (PS3.5 B.2), so no registered root is needed
IMPLEMENTATION_CLASS_UID = "2.25.52866604236141863274981416590666453567"
IMPLEMENTATION_VERSION_NAME = f"PACSBOX_{__version__}"[:16]
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1

# PS3.8 9.3.1 PDU types
A_ASSOCIATE_RQ_PDU = 0x01
P_DATA_TF_PDU = 0x04
A_RELEASE_RQ_PDU = 0x05
A_ABORT_PDU = 0x07

# PS3.8 9.3.3.2 presentation context results
ACCEPTANCE = 0x00
ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03
TRANSFER_SYNTAXES_NOT_SUPPORTED = 0x04

_HEADER = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_PDV_HEADER = struct.Struct(">IBB")
_PEEK_LIMIT = 1024 * 1024  # larger first PDUs are refused: a real association request is a few KiB
# The largest PDU pacsbox receives, announced in every A-ASSOCIATE-AC (PS3.8 D.1); a peer sending a longer one is
# aborted before its body is read. Large enough that a PDU costs little next to its copy, small enough to hold
# one per association.
MAXIMUM_PDU_LENGTH = 1024 * 1024
_FIRST_ALLOCATION = 16 * 1024 * 1024
_FIRST_PAUSE, _LONGEST_PAUSE = 0.001, 0.25  # seconds between looks at a request arriving in parts
# User information sub-items of a plain request (PS3.7 D.3.3.1-2): maximum length, implementation class and version
_PLAIN_USER_ITEMS = frozenset({0x51, 0x52, 0x55})


# Linux's TCP_QUICKACK (absent elsewhere: there the kernel's own ACK timing stays)
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def acknowledge_promptly(sock: socket.socket) -> None:
    """Have the kernel acknowledge what the peer sends at once, not on its delayed-ACK timer.

    A peer with Nagle's algorithm on (pynetdicom's SCU, by default) holds a request's data set PDU until its
    command PDU is acknowledged, and Linux delays that ACK by up to 40 ms in request-answer traffic, hoping to send
    it with the answer, which needs the data set: every C-STORE or C-FIND of such a peer then takes 40 ms more (as
    it does against Orthanc). The setting does not last (the kernel goes back to delaying once it sees answers
    follow requests), so it is made again before each PDU is read; an ACK already pending goes out at once. Only
    with ``DicomAcknowledgeAtOnce`` (off by default: see there).
    """
    if _QUICKACK is not None:
        with contextlib.suppress(OSError):  # (a socket already closed: the read that follows says so)
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


class PeerClosed(ConnectionError):
    """The peer closed the connection in the middle of a PDU, or between two."""


class PduTooLong(ValueError):
    """A PDU longer than the maximum length pacsbox announced (a protocol error: the association is aborted)."""


def recv_exactly(sock: socket.socket, size: int) -> bytearray:
    """Exactly ``size`` bytes from the socket, in as few system calls as the kernel allows. Past 16 MiB the buffer
    grows with what arrives: a length is the peer's word, and a PDU declaring 4 GiB then stalling costs no 4 GiB."""
    buffer = bytearray(min(size, _FIRST_ALLOCATION))
    view = memoryview(buffer)
    received = 0
    while received < size:
        if received == len(buffer):
            view.release()
            buffer += bytes(min(len(buffer), size - len(buffer)))  # doubled, up to the declared size
            view = memoryview(buffer)
        count = sock.recv_into(view[received:])
        if count == 0:
            raise PeerClosed("the peer closed the connection")
        received += count
    return buffer


def read_pdu(sock: socket.socket, maximum_length: int = MAXIMUM_PDU_LENGTH) -> tuple[int, bytearray]:
    """The next PDU: its type and its body (after the 6-byte header). A body declared longer than
    ``maximum_length`` raises ``PduTooLong`` before any of it is read."""
    pdu_type, _, length = _HEADER.unpack(recv_exactly(sock, 6))
    if length > maximum_length:
        raise PduTooLong(f"a PDU of type 0x{pdu_type:02X} declares {length} bytes, over the {maximum_length} "
                         "announced")
    return pdu_type, recv_exactly(sock, length)


def peek_pdu(sock: socket.socket, timeout: float | None,
             still_wanted: Callable[[], bool] = lambda: True) -> bytes | None:
    """The first PDU a peer sent, left in the socket; None if it is not all there within ``timeout`` seconds,
    if the connection closed, if it is too large to peek at, or once ``still_wanted()`` is false (the connection
    was closed to make room: a shut down socket may still show what the peer had sent). The socket is left
    blocking, as it was accepted."""
    try:
        return _peek_pdu(sock, timeout, still_wanted)
    finally:
        sock.settimeout(None)


def _peek_pdu(sock: socket.socket, timeout: float | None, still_wanted: Callable[[], bool]) -> bytes | None:
    deadline = time.monotonic() + (timeout if timeout else 30.0)
    wanted = 6
    seen, pause = 0, _FIRST_PAUSE
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not still_wanted():
            return None
        sock.settimeout(remaining)  # a blocking peek, not select(): any descriptor number works
        try:
            data = sock.recv(wanted, socket.MSG_PEEK)
        except TimeoutError:
            return None
        if not data or not still_wanted():
            return None
        if wanted == 6 and len(data) == 6:
            wanted = 6 + _HEADER.unpack(data)[2]
            if wanted > _PEEK_LIMIT:
                return None
            continue
        if len(data) >= wanted:
            return data
        # The rest of the PDU is on its way. The socket stays readable with the part already there, so the wait
        # doubles while nothing more arrives: a peer trickling its request costs a few checks a second, not a
        # thousand.
        pause = _FIRST_PAUSE if len(data) > seen else min(2 * pause, _LONGEST_PAUSE)
        seen = len(data)
        if _peer_closed_within(sock, min(pause, max(remaining, 0))):
            return None  # the peer closed its side: the rest will never come


def _peer_closed_within(sock: socket.socket, seconds: float) -> bool:
    """Wait ``seconds``, or less if the peer closes its side meanwhile (said by poll()'s POLLRDHUP where there
    is one: a peek cannot see the end of the connection behind the bytes waiting to be read)."""
    hang_up = getattr(select, "POLLRDHUP", 0)
    if not hang_up:
        time.sleep(seconds)
        return False
    poller = select.poll()
    poller.register(sock, hang_up)  # POLLHUP and POLLERR are always reported
    return bool(poller.poll(seconds * 1000))


def pdvs(body: bytearray) -> Iterator[tuple[int, int, memoryview]]:
    """The presentation data values of a P-DATA-TF body: (context ID, message control header, fragment)."""
    view = memoryview(body)
    offset, end = 0, len(body)
    while offset < end:
        length, context_id, header = _PDV_HEADER.unpack_from(body, offset)
        if length < 2 or offset + 4 + length > end:
            raise ValueError("a presentation data value overruns its P-DATA-TF PDU")
        yield context_id, header, view[offset + 6:offset + 4 + length]
        offset += 4 + length


def p_data(context_id: int, payload: bytes, *, command: bool, maximum_length: int) -> bytes:
    """P-DATA-TF PDUs carrying one whole command or dataset, fragmented to the peer's maximum PDU length."""
    room = maximum_length - 6 if maximum_length else len(payload) or 1  # 6: the PDV's length, ID and header
    room = max(room, 1)
    pdus = []
    for start in range(0, max(len(payload), 1), room):
        fragment = payload[start:start + room]
        last = start + room >= len(payload)
        header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
        pdus.append(_HEADER.pack(P_DATA_TF_PDU, 0, len(fragment) + 6)
                    + _PDV_HEADER.pack(len(fragment) + 2, context_id, header) + fragment)
    return b"".join(pdus)


def reject(result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4)."""
    return _HEADER.pack(0x03, 0, 4) + bytes([0, result, source, reason])


def release_response() -> bytes:
    """An A-RELEASE-RP PDU (PS3.8 9.3.7)."""
    return _HEADER.pack(0x06, 0, 4) + bytes(4)


def abort(source: int = 0x00, reason: int = 0x00) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8); source 0 is the service user, 2 the service provider."""
    return _HEADER.pack(A_ABORT_PDU, 0, 4) + bytes([0, 0, source, reason])


@dataclass
class ProposedContext:
    """One presentation context of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str] = field(default_factory=list)


@dataclass
class NegotiatedContext:
    """The answer to one proposed context (PS3.8 9.3.3.2): a result, and the transfer syntax when accepted."""

    context_id: int
    abstract_syntax: str
    result: int
    transfer_syntax: str


@dataclass
class AssociationRequest:
    """A decoded A-ASSOCIATE-RQ: what the negotiation and the policy read from it."""

    size: int  # bytes of the PDU, header included
    called_field: bytes  # the 16-byte AE title fields, sent back as received (PS3.8 9.3.3)
    calling_field: bytes
    contexts: list[ProposedContext] = field(default_factory=list)
    maximum_length: int = 0  # the largest PDU the peer receives; 0: no limit
    plain: bool = True  # version 1, DICOM's application context, no item pacsbox leaves to pynetdicom

    @property
    def calling_aet(self) -> str:
        return self.calling_field.decode("ascii", "replace").strip()

    @property
    def called_aet(self) -> str:
        return self.called_field.decode("ascii", "replace").strip()


def _text(value: bytes) -> str:
    return value.decode("ascii").strip(" \x00")


def read_request(data: bytes) -> AssociationRequest | None:
    """Decode an A-ASSOCIATE-RQ PDU (PS3.8 9.3.2); None if ``data`` is not one or is malformed."""
    if len(data) < 74 or data[0] != A_ASSOCIATE_RQ_PDU:
        return None
    request = AssociationRequest(len(data), data[10:26], data[26:42])
    request.plain = data[6:8] == b"\x00\x01"
    try:
        application_context = None
        for item_type, body in _items(data, 74, len(data)):
            if item_type == 0x10:
                application_context = _text(body)
            elif item_type == 0x20:
                context = ProposedContext(body[0], "")
                for sub_type, sub_body in _items(body, 4, len(body)):
                    if sub_type == 0x30:
                        context.abstract_syntax = _text(sub_body)
                    elif sub_type == 0x40:
                        context.transfer_syntaxes.append(_text(sub_body))
                request.plain &= bool(context.abstract_syntax and context.transfer_syntaxes)
                request.contexts.append(context)
            elif item_type == 0x50:
                for sub_type, sub_body in _items(body, 0, len(body)):
                    if sub_type == 0x51 and len(sub_body) == 4:
                        request.maximum_length = struct.unpack(">I", sub_body)[0]
                    request.plain &= sub_type in _PLAIN_USER_ITEMS
            else:
                request.plain = False
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    request.plain &= application_context == APPLICATION_CONTEXT_NAME and bool(request.contexts)
    return request


def _items(data: bytes, offset: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The (type, body) of each item (or sub-item) between ``offset`` and ``end`` (PS3.8 9.3.2)."""
    while offset < end:
        if offset + 4 > end:
            raise ValueError("an item header runs past its PDU")
        item_type, _, length = _ITEM.unpack_from(data, offset)
        if offset + 4 + length > end:
            raise ValueError("an item runs past its PDU")
        yield item_type, data[offset + 4:offset + 4 + length]
        offset += 4 + length


def negotiate(request: AssociationRequest, supported: Mapping[str, Sequence[str]]) -> list[NegotiatedContext]:
    """Answer each proposed context, by context ID (PS3.8 9.3.3.2): accepted with the first transfer syntax of
    ``supported`` the peer proposed, else rejected. There is no role selection in a plain request, so every
    context has the default roles (the peer is the SCU), PS3.7 D.3.3.4."""
    answers = []
    for context in sorted(request.contexts, key=lambda cx: cx.context_id):
        syntaxes = supported.get(context.abstract_syntax)
        chosen = next((ts for ts in syntaxes if ts in context.transfer_syntaxes), None) if syntaxes else None
        if chosen is not None:
            answers.append(NegotiatedContext(context.context_id, context.abstract_syntax, ACCEPTANCE, chosen))
            continue
        result = ABSTRACT_SYNTAX_NOT_SUPPORTED if syntaxes is None else TRANSFER_SYNTAXES_NOT_SUPPORTED
        answers.append(NegotiatedContext(context.context_id, context.abstract_syntax, result,
                                         context.transfer_syntaxes[0]))
    return answers


def _item(item_type: int, body: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(body)) + body


def accept(request: AssociationRequest, answers: list[NegotiatedContext], maximum_length: int) -> bytes:
    """The A-ASSOCIATE-AC PDU answering ``request`` (PS3.8 9.3.3): accepted contexts first, as pynetdicom orders
    them, then the user information (maximum length, implementation class and version, PS3.7 D.3.3)."""
    ordered = [a for a in answers if a.result == ACCEPTANCE] + [a for a in answers if a.result != ACCEPTANCE]
    items = [_item(0x10, APPLICATION_CONTEXT_NAME.encode())]
    for answer in ordered:
        items.append(_item(0x21, bytes([answer.context_id, 0, answer.result, 0])
                           + _item(0x40, answer.transfer_syntax.encode())))
    items.append(_item(0x50, _item(0x51, struct.pack(">I", maximum_length))
                       + _item(0x52, IMPLEMENTATION_CLASS_UID.encode())
                       + _item(0x55, IMPLEMENTATION_VERSION_NAME.encode())))
    body = (b"\x00\x01\x00\x00" + request.called_field + request.calling_field + bytes(32) + b"".join(items))
    return _HEADER.pack(0x02, 0, len(body)) + body
