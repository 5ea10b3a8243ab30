"""dcmtk's network tools (echoscu, storescu, findscu, movescu, getscu) as the test suites call them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# pynetdicom installs console scripts with the same names (storescu, findscu...); only dcmtk's are wanted here.
_DIRECTORIES = ("/usr/bin", "/usr/local/bin")
SKIP_REASON = "needs dcmtk: run `bash scripts/install-test-deps.sh` (installs Debian's dcmtk and orthanc)"


def tool(name: str) -> str | None:
    """The path of a dcmtk tool, or None when dcmtk is not installed."""
    for directory in _DIRECTORIES:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None


def have_dcmtk() -> bool:
    return all(tool(name) for name in ("echoscu", "storescu", "findscu", "movescu", "getscu"))


def run(name: str, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a dcmtk tool; the result keeps stdout/stderr for assertions and failure messages."""
    path = tool(name)
    if path is None:
        raise FileNotFoundError(SKIP_REASON)
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=timeout)
