"""The Orthanc face's saved jobs (``SaveJobs``), rebuilt after a restart: the jobs engine learns their names at
start, and ``job_types`` (with the store and retrieve machinery it imports) loads with the first one rebuilt, not
with every server (cold start)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...core.archive import Archive

# the ``job_type`` of DicomModalityStoreJob, OrthancPeerStoreJob and the two kinds of RetrieveJob
JOB_TYPES = ("DicomModalityStore", "OrthancPeerStore", "DicomMoveScu", "DicomGetScu")


def register_loaders(archive: Archive) -> None:
    """Teach the archive's jobs engine to rebuild the saved jobs of this face."""
    for job_type in JOB_TYPES:
        archive.jobs.register_loader(job_type, functools.partial(_load, archive, job_type))


def _load(archive: Archive, job_type: str, saved: dict) -> Any:
    from .job_types import load_saved

    return load_saved(archive, job_type, saved)
