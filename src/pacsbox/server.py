"""Running a pacsbox server: the archive plus its faces, served by Uvicorn on loopback by default.

``serve`` runs in the foreground (the CLI); ``Server`` runs the same thing in background threads of the
calling process (in-process mode for tests that want no child process).

Start-up, in order (a cold start is timed from the process's first instruction to both ports answering):
``python -m pacsbox serve`` reads its options without click (``cli_serve``); the configuration is checked; the
HTTP socket is bound but not listening; the archive opens (index, file store, jobs engine, event log) and the
DICOM port listens, and up to here nothing imports asyncio, Uvicorn, Starlette or click
(``tests/test_lazy_imports.py`` checks it); then the faces' applications are built (each route's handler module
loads on its first request, the XNAT and DICOMweb faces on theirs), Uvicorn is imported and serves, and only then
does the HTTP socket listen, so that a client connecting earlier is refused and polls again rather than waiting.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.config import Config, check_exposure

if TYPE_CHECKING:
    from .lua.engine import LuaEngine

# Values of query or path parameters that may carry a secret (``?password=``, ``;jsessionid=``, ``?token=``): the
# access log shows the parameter, never its value. Uvicorn logs the path percent-encoded (``%3B``, ``%3D``).
_SECRET_PARAMETER = re.compile(
    r"((?:[?&;]|%3B)[^=&;#?]*?(?:pass|pwd|secret|token|jsession|auth|key)[^=&;#?]*?(?:=|%3D))(?:(?!%3B|%26)[^&;#?])*",
    re.IGNORECASE)


class _RedactSecrets(logging.Filter):
    """Rewrites the request path of Uvicorn's access log records (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _SECRET_PARAMETER.sub(r"\1***", args[2]), *args[3:])
        return True


_REDACT_SECRETS = _RedactSecrets()  # one instance: addFilter ignores a filter already there


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket, listening only once served; port 0 picks a free one (readable from ``getsockname``)."""
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
    # Bound but not listening: a client that connects while the archive opens is refused at once (and polls
    # again) instead of waiting in the backlog for an application that cannot answer yet. The event loop listens
    # when Uvicorn starts serving (asyncio's Server._start_serving, with Uvicorn's deep backlog, 2048: under a
    # flood of connections a new client waits in it instead of having its SYN dropped).
    sock.set_inheritable(True)
    return sock


def raise_open_file_limit() -> int | None:
    """Raise this process's soft limit of open files to its hard limit, and return it (None where unknown).

    Every HTTP connection, DICOM association and open file takes a descriptor; the common soft limit (1024)
    would let a few hundred stalled clients starve the rest of the server.
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a sandbox may refuse; the cap on connections follows the soft limit
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def empty_spool_directory(config: Config) -> None:
    """Create ``<StorageDirectory>/tmp`` empty: bodies spooled there by a server that was killed are removed."""
    from .faces.http_common import spool_directory

    folder = Path(spool_directory(config))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


class _Runtime:
    """The archive, the DICOM server and the HTTP server of one pacsbox, bound but not yet serving HTTP."""

    def __init__(self, config: Config, preload: Callable[[], Iterable[bytes]] | None = None,
                 access_log: bool = False, *, http_socket: socket.socket | None = None,
                 reload_config: Callable[[], Config] | None = None) -> None:
        from .core.archive import Origin
        from .core.assembly import open_archive
        from .faces.dimse.scp import DicomServer
        from .faces.dimse.scu import DicomClient
        from .http_app import create_http_app
        from .http_protocol import HttpLimits, protocol_for
        from .import_guard import install as install_import_guard
        from .uvicorn_parts import Config as UvicornConfig
        from .uvicorn_parts import Server as UvicornServer
        self.config = config
        self.access_log = access_log
        self.reload_config = reload_config  # what /tools/reset reads again (None: the same configuration)
        self.restart_requested = False
        self.log_level = "default"  # GET /tools/log-level (the loggers' levels belong to the process)
        check_exposure(config)
        install_import_guard()  # the libraries loaded on first use are imported by one thread at a time
        self.http_limits = HttpLimits.from_config(config, raise_open_file_limit())
        empty_spool_directory(config)
        try:
            self.http_socket = http_socket or bind_socket(config.BindAddress, config.HttpPort)
        except OSError as error:
            raise OSError(error.errno, f"{error.strerror} (HttpPort, --http-port)") from None
        self.http_port = self.http_socket.getsockname()[1]
        self.archive = open_archive(config)
        self.dicom_server: DicomServer | None = None
        self.lua: LuaEngine | None = None
        try:
            if config.LuaScripts or config.ExecuteLuaEnabled:  # else no Lua can ever run: no engine, no modules
                from .lua.engine import LuaEngine

                self.lua = LuaEngine(self.archive, config)  # loads LuaScripts before anything is received
            self.archive.remote = DicomClient(self.archive, config)
            if getattr(self.archive, "faults", None) is not None:  # outgoing operations go to the event log
                from .faults.dimse import RecordedRemote

                self.archive.remote = RecordedRemote(self.archive.remote, self.archive.faults)
            for data in preload() if preload is not None else ():
                self.archive.store(data, Origin("Plugins"))
            self.dicom_server = DicomServer(self.archive, config)
            try:
                self.dicom_port = self.dicom_server.start()
            except OSError as error:  # name the port and what chose it, as for HTTP below
                raise OSError(error.errno, f"cannot listen for DICOM on {config.BindAddress}:{config.DicomPort} "
                                           f"(DicomPort, --dicom-port): {error.strerror or error}") from None
            app = create_http_app(self.archive, config, http_port=self.http_port, dicom_port=self.dicom_port,
                                  control=self, lua_engine=self.lua)
            if self.lua is not None:
                self.lua.start()  # Initialize, then callbacks and filters
        except BaseException:
            self.close()
            raise
        host = config.BindAddress if ":" not in config.BindAddress else f"[{config.BindAddress}]"
        self.urls = {"orthanc": f"http://{host}:{self.http_port}",
                     "dicom": f"{config.DicomAet}@{host}:{self.dicom_port}"}
        self.ready = threading.Event()
        self.on_ready: Callable[[dict[str, str]], None] | None = None
        runtime = self

        class _Server(UvicornServer):
            async def startup(self, sockets=None) -> None:
                await super().startup(sockets)
                if self.started:
                    runtime.ready.set()
                    if runtime.archive.recovery is not None:  # after an unclean stop: the sweep, once ready
                        runtime.archive.recovery.start()
                    if runtime.on_ready is not None:
                        runtime.on_ready(runtime.urls)

            @contextlib.contextmanager
            def capture_signals(self):
                # Uvicorn re-raises SIGTERM after shutting down, which would skip closing the archive;
                # a stop request only asks the loop to finish, and the process exits with status 0.
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return

                def stop(signum, frame) -> None:
                    self.should_exit = True

                previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)

        self.http_server = _Server(UvicornConfig(
            app, http=protocol_for(self.http_limits), log_level="info" if access_log else "warning",
            access_log=access_log, lifespan="off", timeout_keep_alive=config.HttpKeepAliveTimeout,
            server_header=False, proxy_headers=False,
            ws="none"))  # as Orthanc: no WebSocket; an Upgrade header is ignored, whatever libraries are installed
        logging.getLogger("uvicorn.access").addFilter(_REDACT_SECRETS)  # after uvicorn.Config set up its logging

    def serve_http(self) -> None:
        """Serve HTTP until ``stop`` (or SIGINT/SIGTERM in the main thread)."""
        # a duplicate: Uvicorn closes the sockets it served on, and a restart serves this one again
        self.http_server.run(sockets=[self.http_socket.dup()])

    def stop(self) -> None:
        self.http_server.should_exit = True

    def close(self, keep_http_socket: bool = False) -> None:
        if self.dicom_server is not None:
            self.dicom_server.stop()
        if not keep_http_socket:
            self.http_socket.close()
        if self.lua is not None:
            self.lua.close()  # Finalize while the archive is still open
        self.archive.close()

    # -- what the faces may ask (http_app.ServerControl) -----------------------------------------------------
    def shutdown(self) -> None:
        self.restart_requested = False  # a shutdown wins over a reset asked before it
        self._stop_accepting()
        self.stop()  # Uvicorn finishes the answers in progress, then serve_http returns

    def restart(self) -> None:
        self.restart_requested = True
        self._stop_accepting()
        self.stop()

    def _stop_accepting(self) -> None:
        """Accept no new connection from now on (Uvicorn would until its next tick, 0.1 s later): a request sent
        after the answer waits in the socket's backlog for the restarted server, or is refused after a shutdown.
        Called on the event loop, by the route's handler."""
        for server in getattr(self.http_server, "servers", ()):
            server.close()

    def dicom_conformance(self) -> str:
        from .faces.dimse.conformance import conformance_statement

        if self.dicom_server is None:
            return ""
        return conformance_statement(self.dicom_server.policy)

    def restarted(self) -> _Runtime:
        """Close this runtime and open a new one from the configuration read again, on the same ports and
        address (the HTTP socket stays open meanwhile: connections wait in its backlog)."""
        config = self.reload_config() if self.reload_config is not None else self.config
        config = config.with_overrides(HttpPort=self.http_port, DicomPort=self.dicom_port,
                                       BindAddress=self.config.BindAddress)
        self.close(keep_http_socket=True)
        restarted = _Runtime(config, access_log=self.access_log, http_socket=self.http_socket,
                             reload_config=self.reload_config)
        restarted.log_level = self.log_level
        return restarted


def _serve_with_restarts(runtime: _Runtime, on_restart: Callable[[_Runtime], None] | None = None) -> _Runtime:
    """Serve until stopped other than by /tools/reset; returns the last runtime, not closed."""
    while True:
        try:
            runtime.serve_http()
        except BaseException:
            runtime.close()
            raise
        if not runtime.restart_requested:
            return runtime
        runtime = runtime.restarted()
        if on_restart is not None:
            on_restart(runtime)


def serve(
    config: Config,
    on_ready: Callable[[dict[str, str]], None] | None = None,
    preload: Callable[[], Iterable[bytes]] | None = None,
    access_log: bool = False,
    reload_config: Callable[[], Config] | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM) or asked to stop (``POST /tools/shutdown``), then close the
    archive cleanly. ``POST /tools/reset`` restarts in place, with the configuration ``reload_config`` gives.

    ``preload`` gives DICOM files stored before the server answers (sample data); ``on_ready`` receives the
    URLs (``orthanc`` and ``dicom``) once both ports accept connections.
    """
    runtime = _Runtime(config, preload, access_log, reload_config=reload_config)
    runtime.on_ready = on_ready
    _serve_with_restarts(runtime).close()


class Server:
    """A pacsbox server in background threads of this process: ``with Server() as server: ...``.

    Free loopback ports and a temporary data directory unless the configuration says otherwise. The
    handle offers what a managed instance offers (``url``, ``auth``, ``aet``, ``dicom_port``, ``reset``,
    ``snapshot``, ``restore``), calling the archive directly instead of over HTTP.
    """

    def __init__(self, config: Config | dict[str, Any] | None = None, *, data_dir: str | Path | None = None,
                 startup_timeout: float = 30.0) -> None:
        from .core.config import config_from_mapping

        if config is None or isinstance(config, dict):
            config = config_from_mapping({"HttpPort": 0, "DicomPort": 0, **(config or {})})
        self._temporary: Any = None
        if data_dir is None and config.StorageDirectory == Config.StorageDirectory:
            import tempfile

            self._temporary = tempfile.TemporaryDirectory(prefix="pacsbox-")
            data_dir = self._temporary.name
        if data_dir is not None:
            config = config.with_overrides(StorageDirectory=str(data_dir))
        self.config = config
        self.startup_timeout = startup_timeout
        self._runtime: _Runtime | None = None
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------------------
    def start(self) -> Server:
        """Bind, open the archive and serve; returns once both ports answer."""
        self._runtime = runtime = _Runtime(self.config)
        for cached in ("faults", "events"):  # clients of the previous start's port
            self.__dict__.pop(cached, None)

        def serve() -> None:
            _serve_with_restarts(runtime, on_restart=lambda restarted: setattr(self, "_runtime", restarted))

        self._thread = threading.Thread(target=serve, name="pacsbox-http", daemon=True)
        self._thread.start()
        if not runtime.ready.wait(self.startup_timeout):
            self.stop()
            raise RuntimeError(f"the in-process pacsbox did not serve HTTP within {self.startup_timeout:g} s")
        return self

    def stop(self) -> None:
        """Stop serving and close the archive (its files stay unless the directory was temporary)."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.stop()
            if self._thread is not None:
                self._thread.join(timeout=10)
            runtime.close()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what clients need -------------------------------------------------------------------------------
    @property
    def _running(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("the server is not running; use start() or a with block")
        return self._runtime

    @property
    def url(self) -> str:
        """Base URL of the Orthanc face (the XNAT face is at ``url + '/data'``)."""
        return self._running.urls["orthanc"]

    @property
    def auth(self) -> tuple[str, str]:
        return next(iter(self.config.RegisteredUsers.items()), ("", ""))

    @property
    def aet(self) -> str:
        return self.config.DicomAet

    @property
    def dicom_host(self) -> str:
        return self.config.BindAddress

    @property
    def http_port(self) -> int:
        return self._running.http_port

    @property
    def dicom_port(self) -> int:
        return self._running.dicom_port

    @property
    def archive(self):
        """The archive itself, for tests that want to look behind the faces."""
        return self._running.archive

    def reset(self) -> None:
        """Empty the archive: index, files, change log."""
        self._running.archive.reset()

    @functools.cached_property
    def faults(self):
        """The fault rules (``pacsbox.faults.client.FaultsClient``), over this server's own REST routes."""
        from .faults.client import FaultsClient, http_caller

        return FaultsClient(http_caller(self.url, self.auth if self.config.AuthenticationEnabled else None))

    @functools.cached_property
    def events(self):
        """The event log (``pacsbox.faults.client.EventsClient``): ``list``, ``wait_for``, ``clear``."""
        from .faults.client import EventsClient, http_caller

        return EventsClient(http_caller(self.url, self.auth if self.config.AuthenticationEnabled else None))

    def snapshot(self, name: str) -> dict[str, Any]:
        """Save the archive's current content under ``name``."""
        from .core.snapshots import Snapshots

        return Snapshots(self._running.archive).save(name)

    def restore(self, name: str) -> dict[str, Any]:
        """Bring back the content saved under ``name``."""
        from .core.snapshots import Snapshots

        return Snapshots(self._running.archive).restore(name)
