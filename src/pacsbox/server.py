"""Running a pacsbox server: the archive plus its faces, served by Uvicorn on loopback by default."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable, Iterable

from .core.config import Config


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (readable from ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the proto says TCP,
    # and without it every response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    config: Config,
    on_ready: Callable[[dict[str, str]], None] | None = None,
    preload: Callable[[], Iterable[bytes]] | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then close the archive cleanly.

    ``preload`` gives DICOM files stored before the server answers (sample data).
    """
    import uvicorn

    from .core.archive import Archive
    from .faces.dimse.scp import DicomServer
    from .faces.dimse.scu import DicomClient
    from .http_app import create_http_app

    http_socket = bind_socket(config.BindAddress, config.HttpPort)
    http_port = http_socket.getsockname()[1]
    archive = Archive(config)
    dicom_server: DicomServer | None = None
    try:
        archive.remote = DicomClient(archive, config)
        if preload is not None:
            from .core.archive import Origin

            for data in preload():
                archive.store(data, Origin("Plugins"))
        dicom_server = DicomServer(archive, config)
        dicom_port = dicom_server.start()
        app = create_http_app(archive, config, http_port=http_port, dicom_port=dicom_port)
        host = config.BindAddress if ":" not in config.BindAddress else f"[{config.BindAddress}]"
        urls = {"orthanc": f"http://{host}:{http_port}", "dicom": f"{config.DicomAet}@{host}:{dicom_port}"}

        class _Server(uvicorn.Server):
            async def startup(self, sockets=None) -> None:
                await super().startup(sockets)
                if self.started and on_ready is not None:
                    on_ready(urls)

            @contextlib.contextmanager
            def capture_signals(self):
                # Uvicorn re-raises SIGTERM after shutting down, which would skip closing the archive;
                # a stop request only asks the loop to finish, and the process exits with status 0.
                def stop(signum, frame) -> None:
                    self.should_exit = True

                previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)

        server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                        timeout_keep_alive=30, server_header=False))
        server.run(sockets=[http_socket])
    finally:
        if dicom_server is not None:
            dicom_server.stop()
        http_socket.close()
        archive.close()
