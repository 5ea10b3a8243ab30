"""What a test of a crash waits for after the restart: the background sweep of files the index does not reference."""

from __future__ import annotations

import time
from pathlib import Path


def swept_files(data_dir: Path, rows: int, timeout: float = 60.0) -> list[Path]:
    """The stored files once the sweep after the unclean stop is done: it runs in the background after the server
    answers (core.recovery), so the disk is read again until it holds one file per row, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        files = list(data_dir.glob("??/??/*"))
        if len(files) == rows or time.monotonic() > deadline:
            return files
        time.sleep(0.1)
