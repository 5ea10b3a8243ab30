"""pynetdicom as pacsbox uses it: its process-wide options, an application entity with ``TCP_NODELAY``, and its
requestor's reactor held while requests go out.

Without ``TCP_NODELAY`` each small DIMSE message waits for the peer's delayed ACK (~40 ms) under Nagle's algorithm,
which dominates C-ECHO, C-FIND and small C-STORE round trips.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association


def configure_pynetdicom() -> None:
    """Set pacsbox's process-wide pynetdicom options (both the SCP and the SCU call it as they load)."""
    # Files are sent as stored: pynetdicom streams the bytes after the file meta information instead of decoding
    # and re-encoding the data set (its documented option). Outgoing C-STOREs, and the SCP's C-MOVE and C-GET
    # sub-operations, are byte-exact.
    pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True


class NoDelayAE(AE):
    """An AE whose outgoing association sockets (as SCU, and for C-MOVE sub-operations) disable Nagle."""

    def _create_socket(self, assoc, address, tls_args):
        association_socket = super()._create_socket(assoc, address, tls_args)
        association_socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return association_socket


class _HeldCheckpoint(threading.Event):
    """A reactor checkpoint that pynetdicom's send_*() cannot open (``held_reactor``)."""

    def set(self) -> None:
        """What send_*() calls as it returns: ignored while held."""

    def open(self) -> None:
        threading.Event.set(self)


@contextlib.contextmanager
def held_reactor(association: Association) -> Iterator[Association]:
    """Keep pynetdicom's requestor reactor paused while a run of requests goes out on ``association``.

    pynetdicom 3 lets its reactor thread run again as each send_*() returns, and the next send_*() only checks a flag
    the reactor sets as it pauses. When that thread runs late (a loaded machine, the GIL), the flag still says
    paused, the request goes out, and the reactor, resuming, can take the answer off the queue and drop it
    ("Received unexpected C-STORE service message"): the send_*() then waits out its DIMSE timeout without a status
    although the server answered (pydicom/pynetdicom#875). Held, the reactor stays paused until the run ends and
    every answer reaches the send_*() waiting for it; a release or abort by the peer still reaches that send_*()
    through the DIMSE queue. Re-entrant: a hold inside another one changes nothing.
    """
    released = association._reactor_checkpoint
    if isinstance(released, _HeldCheckpoint):  # already held further up: the outer hold goes on, nothing to wait for
        yield association
        return
    held = _HeldCheckpoint()
    released.clear()
    association._reactor_checkpoint = held
    # pynetdicom reads its own flag only: wait until the reactor has turned once since the clear (running, then
    # paused again), so that it is blocked on a checkpoint nobody opens, not about to read the queue
    deadline, running = time.monotonic() + 10, False
    while association.is_alive() and time.monotonic() < deadline:
        if not association._is_paused:
            running = True
        elif running:
            break
        time.sleep(0.0001)
    try:
        yield association
    finally:
        association._reactor_checkpoint = released
        released.set()
        held.open()
