"""Removing a run's folder quickly: many threads, deepest folders first.

A benchmark archive holds up to 100,000 files in tens of thousands of folders (Orthanc makes one or two per file).
Where the disk is mounted with ``discard``, each folder removed waits ~2 ms for the device, so one thread needs
minutes; the waits overlap when 16 threads remove separate branches (measured: 800 folders 2.4 s -> 0.1 s).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

WORKERS = 16
DEPTH = 4  # run folder / server folder / data / ab / cd: branches from here down are removed in parallel


def remove_tree(root: Path) -> None:
    """Delete ``root`` and everything under it; errors (already gone, busy) are ignored, as for a temp folder."""
    remove = partial(shutil.rmtree, ignore_errors=True)
    with ThreadPoolExecutor(WORKERS) as pool:
        for depth in range(DEPTH, 0, -1):
            branches = [path for path in root.glob("/".join("*" * depth)) if path.is_dir()]
            list(pool.map(remove, branches))
    remove(root)
