"""pynetdicom as pacsbox uses it: its process-wide options, and an application entity with ``TCP_NODELAY``.

Without ``TCP_NODELAY`` each small DIMSE message waits for the peer's delayed ACK (~40 ms) under Nagle's algorithm,
which dominates C-ECHO, C-FIND and small C-STORE round trips.
"""

from __future__ import annotations

import socket

from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config


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
