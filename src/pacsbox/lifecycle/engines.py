"""The servers the lifecycle manager can run: pacsbox itself (``builtin``) and the installed real Orthanc."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import PACSBOX_ONLY_KEYS
from .home import InstancePaths, write_private

ORTHANC_CANDIDATES = ("Orthanc", "/usr/sbin/Orthanc", "/usr/bin/Orthanc")
ORTHANC_MISSING = ("the real Orthanc is not installed: run `bash scripts/install-test-deps.sh` (Debian's orthanc "
                   "package) or put the Orthanc binary on PATH")


@dataclass
class Launch:
    """How to start one server and how to tell it is ready."""

    command: list[str]
    http_port: int | None  # None: the server picks one and reports it in the ready file
    dicom_port: int | None
    probe_path: str  # an HTTP route that answers 200 once the server serves
    env: dict[str, str] = field(default_factory=dict)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class BuiltinEngine:
    """``pacsbox serve`` in a child process; it binds free ports itself and reports them when it listens."""

    name = "builtin"
    default_aet = "PACSBOX"

    def launch(self, paths: InstancePaths, settings: dict[str, Any], data_dir: Path,
               http_port: int | None, dicom_port: int | None) -> Launch:
        config = {**settings, "StorageDirectory": str(data_dir), "HttpPort": http_port or 0,
                  "DicomPort": dicom_port or 0}
        write_private(paths.config_file, json.dumps(config, indent=2))
        command = [sys.executable, "-m", "pacsbox", "serve", "--config", str(paths.config_file),
                   "--log-file", str(paths.log_file), "--ready-file", str(paths.ready_file), "--access-log"]
        return Launch(command, None, None, "/pacsbox/health")

    @staticmethod
    def supports_admin_routes() -> bool:
        return True


class OrthancEngine:
    """The installed Orthanc binary with a generated configuration; ports are chosen here (Orthanc cannot
    report a port it picked)."""

    name = "orthanc"
    default_aet = "ORTHANC"

    def launch(self, paths: InstancePaths, settings: dict[str, Any], data_dir: Path,
               http_port: int | None, dicom_port: int | None) -> Launch:
        binary = orthanc_binary()
        if binary is None:
            raise FileNotFoundError(ORTHANC_MISSING)
        http_port, dicom_port = http_port or free_port(), dicom_port or free_port()
        pacsbox_only = PACSBOX_ONLY_KEYS | {"SyncStorageArea"}  # (Orthanc's own default kept for the engine)
        config = {
            "Name": paths.name,
            "RemoteAccessAllowed": False,  # Orthanc 1.10 binds every interface; this keeps clients to loopback
            "AuthenticationEnabled": True,
            "RegisteredUsers": {"admin": "admin"},
            "DicomAet": self.default_aet,
            "Plugins": [],
            **{key: value for key, value in settings.items() if key not in pacsbox_only},
            "StorageDirectory": str(data_dir),
            "IndexDirectory": str(data_dir),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
        }
        write_private(paths.config_file, json.dumps(config, indent=2))
        return Launch([binary, str(paths.config_file)], http_port, dicom_port, "/system")

    @staticmethod
    def supports_admin_routes() -> bool:
        return False


def orthanc_binary() -> str | None:
    """Where the real Orthanc is installed, if it is."""
    for candidate in ORTHANC_CANDIDATES:
        found = shutil.which(candidate)
        if found and os.access(found, os.X_OK):
            return found
    return None


ENGINES: dict[str, BuiltinEngine | OrthancEngine] = {"builtin": BuiltinEngine(), "orthanc": OrthancEngine()}


def engine_named(name: str) -> BuiltinEngine | OrthancEngine:
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}") from None
