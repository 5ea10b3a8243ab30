"""The DICOM server of one archive: its port listens from start, and the services behind it (``scp_services``:
pynetdicom, pydicom, the presentation contexts) load when the first association request arrives.

Starting costs a socket: a server that no DICOM peer calls never imports pynetdicom or pydicom, and a connection
closed without a word (a port probe, a readiness check) loads nothing. Until the services are loaded, connections
are accepted here and handed to them in order once they are; connections made while they load wait in the
listening socket's backlog, then the services accept them like every later one. None is lost or refused here.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING

from .admission import raise_descriptor_limit

if TYPE_CHECKING:
    from ...core.archive import Archive
    from ...core.config import Config
    from .policy import AssociationPolicy
    from .scp_services import ServiceClassProvider

LOG = logging.getLogger("pacsbox.dimse")
LISTEN_BACKLOG = 1024  # a burst of connections (or those made while the services load) waits, not refused
SILENCE_BEFORE_LOADING = 0.5  # seconds a connection may stay silent before the services load all the same
_STOP_WAIT = 30.0  # seconds ``stop`` waits for a load in progress (one to two seconds on a loaded machine)


class DicomServer:
    """The SCP of one archive, listening on ``config.BindAddress``/``config.DicomPort`` (0: a free port)."""

    def __init__(self, archive: Archive, config: Config) -> None:
        self.archive = archive
        self.config = config
        self.port = 0
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None  # written by ``stop`` to end the wait
        self._thread: threading.Thread | None = None
        self._provider: ServiceClassProvider | None = None
        self._loading = threading.Lock()  # one load of the services, whoever asks first
        self._lock = threading.Lock()  # guards _stopped and _serving
        self._serving: ServiceClassProvider | None = None
        self._stopped = False

    def start(self) -> int:
        """Listen (the services load in the listening thread on the first connection); returns the bound port."""
        raise_descriptor_limit(self.config.DicomMaximumConnections + 3 * self.config.DicomMaximumAssociations)
        self._listener = listening_socket(self.config.BindAddress, self.config.DicomPort)
        self.port = self._listener.getsockname()[1]
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, args=(self._listener, self._wake[0]),
                                        name=f"pacsbox-dicom-{self.port}", daemon=True)
        self._thread.start()
        return self.port

    def services(self) -> ServiceClassProvider:
        """The services behind the port, loaded now if no association has loaded them yet."""
        provider = self._provider
        if provider is None:
            with self._loading:
                if self._provider is None:
                    from .scp_services import ServiceClassProvider

                    self._provider = ServiceClassProvider(self.archive, self.config)
                provider = self._provider
        return provider

    @property
    def policy(self) -> AssociationPolicy:
        """The association policy (the conformance statement reads its contexts); loads the services."""
        return self.services().policy

    def _serve(self, listener: socket.socket, wake: socket.socket) -> None:
        """Wait for the first association, load the services, hand them the connections accepted meanwhile (in
        order) and let them serve the listening socket."""
        pending: dict[socket.socket, tuple[object, float]] = {}
        try:
            self._await_first_association(listener, wake, pending)
            with self._lock:
                if self._stopped:
                    raise _Stopped
            provider = self.services()
            with self._lock:  # from here ``stop`` stops the provider, which may not be serving yet
                if self._stopped:
                    raise _Stopped
                self._serving = provider
            listener.setblocking(True)
            provider.serve(listener, [(sock, address) for sock, (address, _) in pending.items()])
        except _Stopped:
            for sock in pending:
                _close(sock)
        except Exception:  # never expected: the peers waiting are refused rather than left hanging
            if not self._stopped:
                LOG.exception("the DICOM services failed to load or to serve; the DICOM port is closed")
            for sock in pending:
                _close(sock)
            _close(listener)

    def _await_first_association(self, listener: socket.socket, wake: socket.socket,
                                 pending: dict[socket.socket, tuple[object, float]]) -> None:
        """Accept connections into ``pending`` until one sends something (an association request: a DICOM peer
        speaks first), one has stayed silent for ``SILENCE_BEFORE_LOADING``, or there are more than
        DicomMaximumConnections; a connection closed without a word (a port probe, a readiness check) is closed
        and loads nothing. The services then apply their own rules to every pending connection."""
        listener.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                deadline = min((opened + SILENCE_BEFORE_LOADING for _, opened in pending.values()), default=None)
                ready = selector.select(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if self._stopped:
                    raise _Stopped
                spoke = False
                for key, _ in ready:
                    sock = key.fileobj
                    if sock is listener:
                        try:
                            connection, address = listener.accept()
                        except (BlockingIOError, ConnectionError):  # gone before it was accepted
                            continue
                        except OSError:  # out of descriptors (a flood): the services' own loop copes with it
                            return
                        connection.setblocking(True)
                        pending[connection] = (address, time.monotonic())
                        selector.register(connection, selectors.EVENT_READ)
                    elif sock is not wake:
                        try:
                            first = sock.recv(1, socket.MSG_PEEK)
                        except OSError:
                            first = b""  # reset: as good as closed
                        if first:
                            spoke = True
                            continue
                        selector.unregister(sock)
                        del pending[sock]
                        _close(sock)
                silent_too_long = deadline is not None and time.monotonic() >= deadline and pending
                if spoke or silent_too_long or len(pending) > self.config.DicomMaximumConnections:
                    return

    def stop(self) -> None:
        """Stop listening (the port is free on return) and end the associations served directly."""
        with self._lock:
            self._stopped = True
            serving = self._serving
        if self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"\0")
        if serving is not None:
            serving.stop()  # ends its accept loop and closes the listening socket
        if self._listener is not None:
            _close(self._listener)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(_STOP_WAIT)
        if self._wake is not None:
            for end in self._wake:
                end.close()
            self._wake = None


class _Stopped(Exception):
    """``stop`` came while the services were awaited or loading."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (0: a free port), with Nagle off for the accepted sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Delayed ACKs against Nagle's algorithm cost ~40 ms per small DIMSE response; accepted sockets inherit it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
