"""Run the REAL Orthanc (Debian package ``orthanc``) as a reference server for differential tests.

Usage::

    from tests.support.orthanc_ref import ReferenceOrthanc, have_orthanc, SKIP_REASON

    with ReferenceOrthanc(extra_config={"OverwriteInstances": True}) as ref:
        ref.session.post(ref.url + "/instances", data=dicom_bytes).json()

Each instance gets its own temporary directory (configuration, storage, index, log), free
loopback ports, and is stopped (terminate, wait, kill) and cleaned up on exit.  Orthanc 1.10
binds all interfaces (``RemoteAccessAllowed`` is false, so only loopback clients are served);
tests only talk to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "DEFAULT_AET",
    "DEFAULT_USERS",
    "DICOMWEB_PLUGIN",
    "ORTHANC_BINARY",
    "SKIP_REASON",
    "ReferenceOrthanc",
    "ReferenceOrthancError",
    "free_port",
    "have_dicomweb_plugin",
    "have_orthanc",
]

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"  # Debian's orthanc-dicomweb
SKIP_REASON = (
    "needs the real Orthanc: run `bash scripts/install-test-deps.sh` (installs Debian's orthanc and dcmtk)"
)
DEFAULT_AET = "ORTHANC"
DEFAULT_USERS: dict[str, str] = {"admin": "admin"}


# Orthanc 1.10.1 closes a keep-alive connection after about 0.8 s without a request (CivetWeb's fixed 500 ms
# keep-alive timeout), without a word to the client: a request sent on it just then fails with "Remote end closed
# connection without response". The reference's session starts on a new connection after this long idle: the
# server counts its 500 ms from when it sent the last answer, earlier than the client had read it on a loaded
# machine, so the margin is wide; a new loopback connection costs well under a millisecond.
IDLE_BEFORE_NEW_CONNECTION = 0.1


class _NewConnectionAfterIdle(HTTPAdapter):
    """An adapter that drops its pooled connections once they idled ``IDLE_BEFORE_NEW_CONNECTION`` seconds, as a
    client that knows the server's keep-alive timeout does: no request is ever sent on a connection the server may
    be closing, and none is retried."""

    def __init__(self) -> None:
        super().__init__()
        self._last_used = 0.0

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def] - requests' own signature
        if time.monotonic() - self._last_used > IDLE_BEFORE_NEW_CONNECTION:
            self.poolmanager.clear()
        try:
            return super().send(request, **kwargs)
        finally:
            self._last_used = time.monotonic()


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have_orthanc() -> bool:
    """True when the real Orthanc binary is installed and executable."""
    return os.path.isfile(ORTHANC_BINARY) and os.access(ORTHANC_BINARY, os.X_OK)


def have_dicomweb_plugin() -> bool:
    """True when the real Orthanc and its DICOMweb plugin (Debian ``orthanc-dicomweb``) are installed."""
    return have_orthanc() and os.path.isfile(DICOMWEB_PLUGIN)


class ReferenceOrthancError(RuntimeError):
    """The reference Orthanc did not start (the message carries the tail of its log)."""


class ReferenceOrthanc:
    """A throwaway real Orthanc process, as a context manager.

    Args:
        extra_config: configuration keys merged over the defaults (e.g. ``{"DicomModalities":
            {...}}``, ``{"AuthenticationEnabled": False}``, ``{"RegisteredUsers": {...}}``).
        users: registered users (default ``{"admin": "admin"}``); the first one is used for
            :attr:`auth` and :attr:`session`.  ``None``/empty disables authentication unless
            ``extra_config`` says otherwise.
        aet: ``DicomAet`` (default ``"ORTHANC"``).
        name: Orthanc's ``Name``.
        startup_timeout: seconds to wait for ``GET /system`` to answer.
        keep_dir: keep the temporary directory after stop (for debugging).
        dicomweb: load the DICOMweb plugin (roots ``/dicom-web/`` and ``/wado``, its defaults).
        graceful_stop: stop with SIGTERM and wait (Orthanc 1.10 needs about 3.5 s: its HTTP and
            DICOM servers take 2 s and 1 s to wind down); ``False`` sends SIGKILL at once, which
            is fine for a throwaway server whose directory is deleted anyway.

    Attributes (valid after :meth:`start`):
        url: ``http://127.0.0.1:<http_port>`` (no trailing slash).
        auth: ``(user, password)`` or ``None`` when authentication is disabled.
        http_port, dicom_port, aet, log_path, config_path, directory, config, process.
        session: a ``requests.Session`` with :attr:`auth` set.
    """

    def __init__(
        self,
        *,
        extra_config: dict[str, Any] | None = None,
        users: dict[str, str] | None = DEFAULT_USERS,
        aet: str = DEFAULT_AET,
        name: str = "pacsbox-reference",
        startup_timeout: float = 60.0,
        keep_dir: bool = False,
        graceful_stop: bool = True,
        dicomweb: bool = False,
    ) -> None:
        self.extra_config: dict[str, Any] = dict(extra_config or {})
        self.users: dict[str, str] = dict(users or {})
        self.aet = aet
        self.name = name
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.graceful_stop = graceful_stop
        self.dicomweb = dicomweb

        self.directory: Path | None = None
        self.config_path: Path | None = None
        self.log_path: Path | None = None
        self.config: dict[str, Any] = {}
        self.http_port = 0
        self.dicom_port = 0
        self.url = ""
        self.auth: tuple[str, str] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._session: requests.Session | None = None
        self._log_file: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> ReferenceOrthanc:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """PID of the Orthanc process (``None`` before start)."""
        return self.process.pid if self.process is not None else None

    @property
    def session(self) -> requests.Session:
        """A ``requests.Session`` authenticated as the first registered user (never reusing a connection Orthanc's
        keep-alive timeout may be closing)."""
        if self._session is None:
            self._session = requests.Session()
            self._session.mount("http://", _NewConnectionAfterIdle())
            if self.auth is not None:
                self._session.auth = self.auth
        return self._session

    def _build_config(self) -> dict[str, Any]:
        assert self.directory is not None
        config: dict[str, Any] = {
            "Name": self.name,
            "StorageDirectory": str(self.directory / "storage"),
            "IndexDirectory": str(self.directory / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": dict(self.users),
            "Plugins": [DICOMWEB_PLUGIN] if self.dicomweb else [],
        }
        if self.dicomweb:
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado"}
        config.update(self.extra_config)
        return config

    def start(self) -> None:
        """Write the configuration, launch Orthanc and wait until ``GET /system`` answers.

        Raises:
            ReferenceOrthancError: Orthanc missing, exited early, or not ready in time.
        """
        if self.process is not None:
            raise ReferenceOrthancError("already started")
        if not have_orthanc():
            raise ReferenceOrthancError(SKIP_REASON)
        self.directory = Path(tempfile.mkdtemp(prefix="pacsbox-ref-orthanc-"))
        self.http_port = int(self.extra_config.get("HttpPort") or free_port())
        self.dicom_port = int(self.extra_config.get("DicomPort") or free_port())
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        self.aet = str(self.extra_config.get("DicomAet", self.aet))
        self.config = self._build_config()
        self.url = f"http://127.0.0.1:{self.http_port}"
        users = self.config.get("RegisteredUsers") or {}
        if self.config.get("AuthenticationEnabled") and users:
            self.auth = next(iter(users.items()))
        else:
            self.auth = None

        self.config_path = self.directory / "orthanc.json"
        self.config_path.write_text(json.dumps(self.config, indent=2), encoding="utf-8")
        self.log_path = self.directory / "orthanc.log"
        self._log_file = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [ORTHANC_BINARY, str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # Ctrl-C in the test runner doesn't hit it mid-request
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        probe = requests.Session()
        if self.auth is not None:
            probe.auth = self.auth
        try:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise ReferenceOrthancError(
                        f"Orthanc exited with code {code} during startup\n{self.log_tail()}"
                    )
                try:
                    r = probe.get(self.url + "/system", timeout=1.0)
                    if r.status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise ReferenceOrthancError(
                        f"Orthanc did not answer GET /system within {self.startup_timeout:g} s\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.01)
        finally:
            probe.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Orthanc and remove the temp directory (unless ``keep_dir``).

        Graceful (default): SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.  With
        ``graceful_stop=False``: SIGKILL at once.  Always reaps the process.  Idempotent.
        """
        if self._session is not None:
            self._session.close()
            self._session = None
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None and not self.graceful_stop:
                proc.kill()
                proc.wait(timeout=timeout)
            elif proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.directory is not None and not self.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Orthanc's log (stdout+stderr)."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        if self._log_file is not None:
            self._log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def upload(self, data: bytes) -> dict[str, Any]:
        """``POST /instances`` one DICOM file; return the JSON answer (raises on HTTP error)."""
        r = self.session.post(self.url + "/instances", data=data, timeout=30)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.process is not None else "stopped"
        return f"<ReferenceOrthanc {self.url or '(not started)'} {state}>"
