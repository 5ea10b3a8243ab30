"""The one check ``pacsbox serve`` and the lifecycle manager make of a data folder before anything starts."""

from __future__ import annotations

import os
from pathlib import Path


def data_folder_problem(folder: Path, option: str) -> str | None:
    """Create ``folder`` if missing; one line saying why it cannot be used (naming ``option``, what chose it), or
    None when it can be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK | os.X_OK)
    except OSError as error:
        return (f"cannot create the data folder {folder} ({option}): {error.strerror or error}; "
                "choose a writable folder")
    if not writable:
        return f"cannot write the data folder {folder} ({option}): permission denied; choose a writable folder"
    return None
