"""A size-capped log for a detached server: stdout and stderr go to one file, rotated when it grows too big."""

from __future__ import annotations

import os
import threading
from pathlib import Path

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_BACKUPS = 2


def redirect_output(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, period: float = 1.0) -> None:
    """Point file descriptors 1 and 2 at ``path`` (append) and keep it under ``max_bytes``.

    Rotation works on the descriptors themselves (rename, reopen, dup2), so everything the process writes —
    Python's logging, uvicorn, tracebacks, C libraries — lands in the current file, and ``server.log.1`` and
    ``server.log.2`` keep the previous ones.
    """
    _point_at(path)

    def watch() -> None:
        while True:
            threading.Event().wait(period)
            try:
                if os.fstat(2).st_size > max_bytes:
                    _rotate(path)
            except OSError:
                continue  # a full disk or a vanished folder must not kill the server

    threading.Thread(target=watch, name="pacsbox-log-rotation", daemon=True).start()


def _point_at(path: Path) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for target in (1, 2):
        os.dup2(descriptor, target)
    os.close(descriptor)


def _rotate(path: Path) -> None:
    rotate_file(path)
    _point_at(path)


def rotate_file(path: Path) -> None:
    """``log`` becomes ``log.1``, ``log.1`` becomes ``log.2``; the oldest is dropped (the writer reopens)."""
    for number in range(_BACKUPS, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        newer = path if number == 1 else path.with_name(f"{path.name}.{number - 1}")
        if newer.exists():
            os.replace(newer, older)
