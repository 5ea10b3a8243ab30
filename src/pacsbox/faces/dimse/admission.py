"""What one peer may make the DICOM server hold: connections waiting for their association request, associations,
and the PDUs and messages an association receives (``DicomMaximumConnections``, ``DicomMaximumAssociations``,
``DicomMaximumDatasetSize``, ``upper_layer.MAXIMUM_PDU_LENGTH``).

A connection costs a thread until its A-ASSOCIATE-RQ has arrived (at most ``DicomScpTimeout``): beyond
``DicomMaximumConnections`` such connections, the oldest is closed, so a flood of silent or trickling connections
(slowloris) never stops a new peer, which sends its request at once. Beyond ``DicomMaximumAssociations``
associations, the one idle the longest (no PDU for ``EVICTABLE_AFTER`` seconds) is aborted to make room; if none
is idle, the new request gets A-ASSOCIATE-RJ (transient, local limit exceeded), PS3.8 9.3.4.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from . import upper_layer

try:
    import resource
except ImportError:  # not on Windows: the descriptor limit stays the system's
    resource = None  # type: ignore[assignment]

LOG = logging.getLogger("pacsbox.dimse")
EVICTABLE_AFTER = 2.0  # seconds without a PDU after which an association may be aborted to make room
_PDV_HEADER = struct.Struct(">IBB")
_FILE_DESCRIPTOR_HEADROOM = 64  # descriptors kept for the index, the store, HTTP and the log


class Association(Protocol):
    """What admission reads of an association on either path."""

    def idle_for(self, now: float) -> float:
        """Seconds since its last PDU arrived; 0 while it serves a request."""

    def abort_idle(self) -> None:
        """Abort it, from another thread than its own, without blocking."""


class ConnectionLimits:
    """The bounded set of connections waiting for their association request, and the association slots."""

    def __init__(self, maximum_connections: int, maximum_associations: int) -> None:
        self.maximum_connections = maximum_connections
        self.maximum_associations = maximum_associations
        self._waiting: OrderedDict[int, socket.socket] = OrderedDict()
        self._lock = threading.Lock()

    def waiting(self, sock: socket.socket) -> None:
        """A new connection: closes the oldest waiting ones beyond ``maximum_connections``."""
        with self._lock:
            self._waiting[id(sock)] = sock
            while len(self._waiting) > self.maximum_connections:
                _, oldest = self._waiting.popitem(last=False)
                # Its thread wakes from its wait on the socket, finds it closed and ends; the socket is shut down
                # under the lock, so that thread cannot have closed it (and its descriptor be reused) meanwhile.
                LOG.warning("connection from %s closed: over DicomMaximumConnections (%d) connections without an "
                            "association request", _peer(oldest), self.maximum_connections)
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)

    def is_waiting(self, sock: socket.socket) -> bool:
        """Whether the connection still waits (it was not closed to make room)."""
        return id(sock) in self._waiting

    def done_waiting(self, sock: socket.socket) -> bool:
        """The connection's wait is over; False if it was closed to make room meanwhile."""
        with self._lock:
            return self._waiting.pop(id(sock), None) is not None

    def make_room(self, running: Iterable[Association]) -> tuple[bool, Association | None]:
        """Whether one more association may start beside ``running``: under the limit, or in place of the
        association idle the longest (``EVICTABLE_AFTER`` seconds at least), returned for the caller to abort."""
        running = list(running)
        if len(running) < self.maximum_associations:
            return True, None
        now = time.monotonic()
        idlest = max(running, key=lambda association: association.idle_for(now))
        idle = idlest.idle_for(now)
        if idle < EVICTABLE_AFTER:
            LOG.warning("association refused: DicomMaximumAssociations (%d) busy", self.maximum_associations)
            return False, None
        LOG.warning("association idle for %.1f s aborted: DicomMaximumAssociations (%d) reached", idle,
                    self.maximum_associations)
        return True, idlest


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "a closed peer"


class PduGuard:
    """Checks each PDU pynetdicom reads before it reads it (its DUL reads a 6-byte header, then the body): a body
    over ``MAXIMUM_PDU_LENGTH``, a command over ``MAXIMUM_COMMAND_SIZE``, or a data set over
    ``DicomMaximumDatasetSize`` ends the association with an A-ABORT at once, as on the direct path. Also records
    when the last PDU arrived."""

    def __init__(self, recv: Callable[[int], bytearray], send_abort: Callable[[], None], maximum_dataset_size: int,
                 maximum_command_size: int, before_pdu: Callable[[], None] | None = None) -> None:
        self._recv = recv
        self._before_pdu = before_pdu  # called before each PDU's header is read
        self._send_abort = send_abort
        self._limits = {True: maximum_command_size, False: maximum_dataset_size}
        self._received = {True: 0, False: 0}  # bytes of the command and the data set being received
        self._pdu_type: int | None = None  # the type of the PDU whose body comes next
        self.last_activity = time.monotonic()

    def recv(self, count: int) -> bytearray:
        if self._pdu_type is None:
            if self._before_pdu is not None:
                self._before_pdu()
            header = self._recv(count)
            if len(header) == 6:
                pdu_type, _, length = struct.unpack(">BBI", header)
                if length > upper_layer.MAXIMUM_PDU_LENGTH:
                    return self._refuse(f"a PDU declares {length} bytes, over the "
                                        f"{upper_layer.MAXIMUM_PDU_LENGTH} announced")
                self._pdu_type = pdu_type
            return header
        pdu_type, self._pdu_type = self._pdu_type, None
        body = self._recv(count)
        self.last_activity = time.monotonic()
        if pdu_type == upper_layer.P_DATA_TF_PDU:
            offset = 0
            while offset + 6 <= len(body):
                length, _, control = _PDV_HEADER.unpack_from(body, offset)
                is_command = bool(control & 0x01)
                self._received[is_command] += length + 4  # with its header, as on the direct path
                if self._received[is_command] > self._limits[is_command]:
                    kind = "command" if is_command else "data set (DicomMaximumDatasetSize)"
                    return self._refuse(f"a {kind} over {self._limits[is_command]} bytes")
                if control & 0x02:
                    self._received[is_command] = 0
                offset += 4 + length
        return body

    def _refuse(self, reason: str) -> bytearray:
        """Abort the association: the DUL reads a short PDU as a closed connection and ends it."""
        LOG.warning("association aborted: %s", reason)
        self._send_abort()
        return bytearray()


def raise_descriptor_limit(wanted: int) -> None:
    """Raise this process's soft limit of open files towards ``wanted`` (within the hard limit), so that the
    connection limits, not the descriptor limit, decide who is served."""
    if resource is None:
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted + _FILE_DESCRIPTOR_HEADROOM
        if hard != resource.RLIM_INFINITY:
            target = min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as error:
        LOG.info("the open file limit stays as it is: %s", error)
