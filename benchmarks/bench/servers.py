"""Both servers started the same way: same settings, same free loopback ports scheme, same readiness probe.

One launcher for both, rather than ``tests.support``'s two helpers or ``pacsbox.lifecycle``'s managed instances:
the cold-start figure is only comparable when both servers are spawned by the same code and declared ready by the
same probe (``GET /system`` answers 200 *and* the DICOM port accepts a connection), and the benchmark must run
without the test package on the path. It does reuse the product's ``free_port`` and ``orthanc_binary``.

Equivalent settings (``SETTINGS``): SQLite index beside the files, no storage or HTTP compression, every stored file
fsync'ed (``SyncStorageArea``, Orthanc's default since 1.7.4 and pacsbox's), basic authentication on, C-FIND
allowed from any calling AET, loopback only, DICOMweb at ``/dicom-web/`` (the real Orthanc loads Debian's DICOMweb
plugin, ``DICOMWEB_PLUGIN``, so its start-up and memory figures include it as pacsbox's include its own DICOMweb
face). Both servers also get ``TCP_NODELAY=1`` in their environment (dcmtk, inside Orthanc, reads it; pacsbox sets
TCP_NODELAY on its sockets anyway). Each server's other options keep their defaults, e.g. Orthanc's 128 MB storage
cache and its 50 HTTP threads, and its plugin's ``StudiesMetadata: Full`` (metadata read from the stored files).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from pacsbox.lifecycle.engines import free_port, orthanc_binary

USER = ("admin", "admin")
CALLED_AETS = {"pacsbox": "PACSBOX", "orthanc": "ORTHANC"}
NAMES = ("pacsbox", "orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")  # Debian's orthanc-dicomweb
DICOMWEB_ROOT = "/dicom-web"  # the default root of both, given explicitly to both below

#: The options both servers are given (Orthanc's names; pacsbox reads the same keys).
SETTINGS: dict[str, Any] = {
    "StorageCompression": False,
    "HttpCompressionEnabled": False,  # Orthanc would gzip answers for requests' Accept-Encoding; pacsbox never does
    "SyncStorageArea": True,
    "OverwriteInstances": False,
    "AuthenticationEnabled": True,
    "RegisteredUsers": {USER[0]: USER[1]},
    "RemoteAccessAllowed": False,
    "DicomAlwaysAllowFind": True,
    "DicomWeb": {"Enable": True, "Root": DICOMWEB_ROOT + "/"},
}


class ServerFailed(RuntimeError):
    """A server did not start or died; the message carries the tail of its log."""


class ExitedEarly(ServerFailed):
    """The server process ended before it answered (typically: a port taken meanwhile)."""


@dataclass
class Server:
    """One running server: its process, ports and data folder."""

    name: str
    process: subprocess.Popen[bytes]
    directory: Path
    http_port: int
    dicom_port: int
    started_in: float = 0.0  # seconds from spawn to ready
    _sessions: list[requests.Session] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def aet(self) -> str:
        return CALLED_AETS[self.name]

    @property
    def pid(self) -> int:
        return self.process.pid

    def session(self) -> requests.Session:
        """A new keep-alive session with the credentials; closed when the server stops."""
        session = requests.Session()
        session.auth = USER
        self._sessions.append(session)
        return session

    def memory_kib(self) -> dict[str, int]:
        """``VmRSS`` (now) and ``VmHWM`` (peak since start) of the server process itself, in KiB."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerFailed(f"{self.name} exited with status {self.process.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        log = self.directory / "server.log"
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Kill at once: a throwaway archive needs no clean shutdown. Its folder stays until the run's folder is
        removed at the end, so that no deletion (slow on a disk mounted with ``discard``) overlaps a measure."""
        for session in self._sessions:
            session.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def storescu_path() -> str | None:
    """dcmtk's storescu; pynetdicom installs a console script of the same name, so only system folders count."""
    return shutil.which("storescu", path="/usr/bin:/usr/local/bin")


def missing_tools() -> list[str]:
    """What the benchmark needs and cannot find."""
    problems = []
    if orthanc_binary() is None:
        problems.append("the real Orthanc (Debian's orthanc package)")
    if storescu_path() is None:
        problems.append("dcmtk's storescu (Debian's dcmtk package)")
    if not DICOMWEB_PLUGIN.is_file():
        problems.append("the real Orthanc's DICOMweb plugin (Debian's orthanc-dicomweb package)")
    return problems


def _command(name: str, directory: Path, http_port: int, dicom_port: int) -> list[str]:
    config = {**SETTINGS, "Name": f"bench-{name}", "StorageDirectory": str(directory / "data"),
              "IndexDirectory": str(directory / "data"), "HttpPort": http_port, "DicomPort": dicom_port,
              "DicomAet": CALLED_AETS[name]}
    if name == "orthanc":
        config["Plugins"] = [str(DICOMWEB_PLUGIN)]
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2))
    if name == "orthanc":
        binary = orthanc_binary()
        if binary is None:
            raise ServerFailed("the real Orthanc is not installed: run `bash scripts/install-test-deps.sh`")
        return [binary, str(path)]
    # The interpreter itself, not the `pacsbox` console script: the PID measured is then the server's.
    return [sys.executable, "-m", "pacsbox", "serve", "--config", str(path)]


def _answers(probe: requests.Session, url: str) -> bool:
    try:
        return probe.get(url + "/system", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start(name: str, root: Path, timeout: float = 60.0, attempts: int = 3, interval: float = 0.005) -> Server:
    """Spawn ``name`` (``pacsbox`` or ``orthanc``) on free ports with a new folder under ``root``; return once both
    of its ports answer, probed every ``interval`` seconds. A server that exits while starting is tried again on new
    ports: on a shared machine another process may take a port between ``free_port`` and the server's bind."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(name, root, timeout, interval)
        except ExitedEarly:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _start_once(name: str, root: Path, timeout: float, interval: float) -> Server:
    directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    command = _command(name, directory, http_port, dicom_port)
    began = time.perf_counter()
    server = Server(name, _spawn(command, directory), directory, http_port, dicom_port)
    _wait_ready(server, began, timeout, interval)
    return server


def respawn(server: Server, timeout: float = 300.0) -> float:
    """Start ``server`` again on its folder, configuration and ports, after its process ended (stopped cleanly or
    killed); returns the seconds from spawn to ready, both ports answering."""
    command = _command(server.name, server.directory, server.http_port, server.dicom_port)
    began = time.perf_counter()
    server.process = _spawn(command, server.directory)
    _wait_ready(server, began, timeout, 0.005)
    return server.started_in


def _spawn(command: list[str], directory: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TCP_NODELAY": "1", "PYTHONUNBUFFERED": "1"}
    with open(directory / "server.log", "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=directory, env=env, start_new_session=True)


def _wait_ready(server: Server, began: float, timeout: float, interval: float) -> None:
    """Probe both ports every ``interval`` seconds until they answer; ``server.started_in`` says when they did."""
    name, process, dicom_port = server.name, server.process, server.dicom_port
    probe = requests.Session()
    probe.auth = USER
    try:
        http_ready = dicom_ready = False
        while not (http_ready and dicom_ready):
            if process.poll() is not None:
                raise ExitedEarly(f"{name} exited with status {process.returncode} while starting\n"
                                  f"{server.log_tail()}")
            if time.perf_counter() - began > timeout:
                raise ServerFailed(f"{name} was not ready within {timeout:g} s\n{server.log_tail()}")
            http_ready = http_ready or _answers(probe, server.url)
            dicom_ready = dicom_ready or _accepts(dicom_port)
            if not (http_ready and dicom_ready):
                time.sleep(interval)
        server.started_in = time.perf_counter() - began
    except BaseException:
        server.stop()
        raise
    finally:
        probe.close()


def version_of(server: Server) -> str:
    """The version the server reports in ``GET /system``."""
    session = server.session()
    return str(session.get(server.url + "/system", timeout=10).json().get("Version", "?"))
