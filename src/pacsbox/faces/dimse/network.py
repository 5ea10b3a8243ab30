"""pynetdicom's application entity with ``TCP_NODELAY`` on every socket it opens.

Without it each small DIMSE message waits for the peer's delayed ACK (~40 ms) under Nagle's algorithm, which
dominates C-ECHO, C-FIND and small C-STORE round trips.
"""

from __future__ import annotations

import socket

from pynetdicom import AE


class NoDelayAE(AE):
    """An AE whose outgoing association sockets (as SCU, and for C-MOVE sub-operations) disable Nagle."""

    def _create_socket(self, assoc, address, tls_args):
        association_socket = super()._create_socket(assoc, address, tls_args)
        association_socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return association_socket
