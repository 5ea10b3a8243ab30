"""Sample data generated locally (nothing is downloaded): named, seeded, deterministic data sets, and uploads.

``generate(name, directory)`` writes a data set's files; ``add_data(name, server, method=...)`` uploads it through
one of a server's faces; ``DATASETS`` / ``names()`` list them. Importing this package imports neither numpy nor
the encoders: each generator's module is loaded when it is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .model import METHODS, SIZES, DataFile, Dataset, MissingExtra, Options, Session
from .registry import DATASETS, generate, get, names, sessions

if TYPE_CHECKING:
    from .upload import Progress, Server, UploadSummary

__all__ = [
    "DATASETS",
    "METHODS",
    "SIZES",
    "DataFile",
    "Dataset",
    "MissingExtra",
    "Options",
    "Session",
    "UploadError",
    "UploadSummary",
    "add_data",
    "ct_study",
    "generate",
    "get",
    "iter_files",
    "names",
    "sessions",
]


def add_data(name: str, server: Server, *, method: str = "xnat-import", seed: int = 0, size: str = "small",
             progress: Progress | None = None, generated: Progress | None = None, **options: Any) -> UploadSummary:
    """Generate data set ``name`` and upload it to ``server`` through ``method`` (see :mod:`.upload`)."""
    from .upload import add_data as upload

    return upload(name, server, method=method, seed=seed, size=size, progress=progress, generated=generated,
                  **options)


def iter_files(name: str, *, seed: int = 0, size: str = "small", **options: Any) -> Iterator[DataFile]:
    """Every file of a data set, in memory and in order (for preloading a server without a directory)."""
    for session in sessions(name, seed=seed, size=size, **options):
        yield from session.files


def ct_study(**arguments: Any) -> Iterator[tuple[str, bytes]]:
    """One small axial CT series as ``(file name, bytes)`` (what ``pacsbox serve --sample-data`` stores)."""
    from .ct import ct_study as series

    return series(**arguments)


def __getattr__(name: str) -> Any:
    # UploadSummary and UploadError live with the upload code; importing them on demand keeps this package light
    if name in ("UploadSummary", "UploadError"):
        from . import upload

        return getattr(upload, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
