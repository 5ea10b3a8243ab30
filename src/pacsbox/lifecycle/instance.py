"""A handle on one managed server: where to reach it, and what a test does with it between tests."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .home import InstancePaths, write_private
from .process import http_status, is_same_process, log_tail, port_accepts, probe_status

if TYPE_CHECKING:
    from ..faults.client import EventsClient, FaultsClient


class InstanceError(RuntimeError):
    """A managed server did not do what was asked; the message says what was checked and how to fix it."""


class InstanceNotRunning(InstanceError):
    """No live server answers under that name."""


class StartupFailed(InstanceError):
    """The server exited or did not answer during start-up (the message carries its log tail)."""


@dataclass
class Instance:
    """One named, running (or recorded) server, as stored in its ``state.json``.

    ``url``, ``auth``, ``aet``, ``dicom_host`` and ``dicom_port`` are what clients need; ``reset``,
    ``snapshot`` and ``restore`` give each test a known archive.
    """

    name: str
    engine: str
    pid: int
    created: float  # the process's start time: PID + this tells a live server from a reused PID
    host: str
    http_port: int
    dicom_port: int
    aet: str
    users: dict[str, str]
    authentication: bool
    data_dir: str
    state_dir: str
    fingerprint: str
    started_at: float
    status: str = "running"  # "starting" until the server answers
    requested_http_port: int | None = None  # None: any free port (part of the configuration's fingerprint)
    requested_dicom_port: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # True on the object `ensure` returns when that call started the process (not saved: False once reloaded)
    spawned: bool = field(default=False, repr=False, compare=False)

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The HTTP base URL (Orthanc face; XNAT at ``xnat_url``)."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def xnat_url(self) -> str:
        """Where xnatpy and pyxnat connect (the same server: XNAT's routes live under ``/data``)."""
        return self.url

    @property
    def dicom_host(self) -> str:
        return self.host

    @property
    def auth(self) -> tuple[str, str]:
        return next(iter(self.users.items()), ("", ""))

    @property
    def paths(self) -> InstancePaths:
        return InstancePaths(Path(self.state_dir))

    @property
    def log_file(self) -> Path:
        return self.paths.log_file

    # -- liveness ------------------------------------------------------------------------------------------
    def is_alive(self) -> bool:
        """The recorded process still runs (a dead or reused PID is not alive)."""
        return is_same_process(self.pid, self.created)

    def answers(self, timeout: float = 2.0) -> bool:
        """HTTP answers its probe route and the DICOM port accepts a connection (a command: its ready port
        and URL, if it has them)."""
        if self.engine == "command":
            from .command import answers

            return answers(self.settings.get("ready", {}), timeout)
        probe = "/pacsbox/health" if self.engine == "builtin" else "/system"
        status = probe_status(self.host, self.http_port, probe, self._auth_header(), timeout=timeout)
        return status == 200 and port_accepts(self.host, self.dicom_port, timeout)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_file, lines)

    # -- per-test state ------------------------------------------------------------------------------------
    def reset(self) -> dict[str, Any]:
        """Empty the archive (index, files, change log) without restarting the server."""
        self._archive_only("reset")
        if self.engine == "builtin":
            return self._call("POST", "/pacsbox/reset")
        started = time.perf_counter()
        for patient in self._call("GET", "/patients"):
            self._call("DELETE", f"/patients/{patient}")
        self._call("DELETE", "/changes")
        self._call("DELETE", "/exports")
        return {"Seconds": round(time.perf_counter() - started, 4)}

    def snapshot(self, name: str) -> dict[str, Any]:
        """Save the archive's content under ``name``."""
        self._archive_only("snapshot")
        if self.engine == "builtin":
            return self._call("PUT", f"/pacsbox/snapshots/{quote(name, safe='')}")
        from .manager import snapshot_by_copy

        return snapshot_by_copy(self, name)

    def restore(self, name: str) -> dict[str, Any]:
        """Bring back the content saved under ``name`` (the change log included)."""
        self._archive_only("restore")
        if self.engine == "builtin":
            return self._call("POST", f"/pacsbox/snapshots/{quote(name, safe='')}/restore")
        from .manager import restore_by_copy

        return restore_by_copy(self, name)

    def snapshots(self) -> list[dict[str, Any]]:
        if self.engine == "builtin":
            return self._call("GET", "/pacsbox/snapshots")
        folder = self.paths.snapshots_dir
        return [{"Name": entry.name} for entry in sorted(folder.iterdir())] if folder.is_dir() else []

    @functools.cached_property
    def faults(self) -> FaultsClient:
        """The server's fault rules (``pacsbox.faults``): ``instance.faults.add(face="dimse", operation="C-STORE",
        action={"dimse_status": 0xA700})``, ``.list()``, ``.remove(id)``, ``.clear()``."""
        from ..faults.client import FaultsClient, http_caller

        self._builtin_only("faults")
        return FaultsClient(http_caller(self.url, self._auth_header()))

    @functools.cached_property
    def events(self) -> EventsClient:
        """The server's event log: ``instance.events.list(kind="dimse")``, ``.wait_for(...)``, ``.clear()``."""
        from ..faults.client import EventsClient, http_caller

        self._builtin_only("events")
        return EventsClient(http_caller(self.url, self._auth_header()))

    def _builtin_only(self, what: str) -> None:
        if self.engine != "builtin":
            raise InstanceError(f"instance {self.name!r} runs the {self.engine} engine: {what} are pacsbox's own "
                                "(engine builtin)")

    def _archive_only(self, action: str) -> None:
        if self.engine == "command":
            raise InstanceError(f"instance {self.name!r} runs a command, which has no archive: {action} applies "
                                "to pacsbox and Orthanc instances only")

    def stop(self, grace: float = 10.0) -> bool:
        """Stop this server (its whole process tree); see :func:`pacsbox.lifecycle.stop`."""
        from .manager import stop

        return stop(self.name, grace=grace, home=self.paths.root.parent.parent)

    # -- serialisation -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """What ``pacsbox status --json`` prints (credentials included: these are throwaway test servers)."""
        data = asdict(self)
        data.pop("settings")
        data.pop("spawned")
        # the real Orthanc has no XNAT face: no URL for one
        return {**data, "url": self.url, "xnat_url": self.xnat_url if self.engine == "builtin" else None,
                "dicom": f"{self.aet}@{self.host}:{self.dicom_port}", "log_file": str(self.log_file)}

    def save(self) -> None:
        path = self.paths.state_file
        temporary = path.with_suffix(".tmp")
        record = asdict(self)
        record.pop("spawned")  # about one call, not the server
        write_private(temporary, json.dumps(record, indent=2))
        temporary.replace(path)

    @classmethod
    def load(cls, paths: InstancePaths) -> Instance | None:
        """The recorded instance, or None when there is no readable record."""
        try:
            data = json.loads(paths.state_file.read_text())
            return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data and key != "spawned"})
        except (OSError, ValueError, TypeError):
            return None

    # -- HTTP ----------------------------------------------------------------------------------------------
    def _auth_header(self) -> tuple[str, str] | None:
        return self.auth if self.authentication and self.users else None

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """One REST call as the first registered user; JSON in and out; a non-200 answer raises."""
        return self._call(method, path, payload)

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        body = json.dumps(payload).encode() if payload is not None else b"" if method in ("POST", "PUT") else None
        status, body = http_status(self.url + path, self._auth_header(), timeout=120, method=method, body=body)
        if status != 200:
            detail = body.decode("utf-8", "replace")[:500]
            try:  # Orthanc's JSON error body: its details (else its message), not the raw JSON
                answer = json.loads(body)
                detail = answer.get("Details") or answer.get("Message") or detail
            except (ValueError, AttributeError):
                pass
            raise InstanceError(f"{method} {path} on pacsbox instance {self.name!r} answered {status}: {detail}")
        return json.loads(body) if body.strip() else None
