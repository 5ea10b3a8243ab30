"""Where managed instances live: ``$PACSBOX_HOME`` (default ``~/.pacsbox``), one folder per named instance."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_NAME = "default"


def pacsbox_home() -> Path:
    """``$PACSBOX_HOME``, else ``~/.pacsbox``."""
    return Path(os.environ.get("PACSBOX_HOME") or Path.home() / ".pacsbox")


def check_name(name: str) -> str:
    """An instance name is a folder name: letters, digits, ``.``, ``_``, ``-`` (1-64, not starting with a dot)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid instance name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class InstancePaths:
    """The state folder of one named instance and the files in it."""

    root: Path

    @classmethod
    def of(cls, name: str, home: Path | None = None) -> InstancePaths:
        return cls((home or pacsbox_home()) / "instances" / check_name(name))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_file(self) -> Path:
        """The configuration the engine reads (written at each start)."""
        return self.root / "config.json"

    @property
    def state_file(self) -> Path:
        """PID, process start time, ports, fingerprint: what reuse and stop rely on."""
        return self.root / "state.json"

    @property
    def ready_file(self) -> Path:
        """Written by a builtin server once it listens: its PID and resolved ports."""
        return self.root / "ready.json"

    @property
    def exit_file(self) -> Path:
        """Written by a server forked by the warm-start template when it exits: its PID and exit status."""
        return self.root / "exit.json"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def default_data_dir(self) -> Path:
        return self.root / "data"

    @property
    def snapshots_dir(self) -> Path:
        """Snapshots of an engine that cannot take its own (the real Orthanc's storage, copied)."""
        return self.root / "snapshots"


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner may read: the generated configuration and the state record hold the
    RegisteredUsers' passwords (the manager needs them to call the server)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def instance_names(home: Path | None = None) -> list[str]:
    """Names of every instance with a state folder, sorted."""
    folder = (home or pacsbox_home()) / "instances"
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and _NAME.fullmatch(entry.name))
