"""Builds an archive with the models that follow it: the one place where the core's parts are wired together.

The archive publishes events and names no listener; the XNAT catalog subscribes to them here, and the jobs engine
stops when the archive closes. The server, the CLI's data commands and tests open an archive through
``open_archive`` to get the whole core.
"""

from __future__ import annotations

from .archive import Archive
from .catalog import Catalog
from .config import Config
from .events import ArchiveClosing
from .jobs import open_jobs_engine
from .modify_jobs_saved import register as register_modification_jobs


def open_archive(config: Config) -> Archive:
    """An archive with its XNAT catalog subscribed (``archive.catalog``) and its jobs engine running
    (``archive.jobs``)."""
    archive = Archive(config)
    try:
        catalog = Catalog(archive)
        catalog.subscribe(archive.events)
        jobs = open_jobs_engine(archive)
        # the engine saves its jobs in the index: it stops before the archive closes its index
        archive.events.subscribe(ArchiveClosing, lambda event: jobs.stop())
        jobs.start()
        register_modification_jobs(jobs, archive)  # saved modify, merge and split jobs go on after a restart
    except BaseException:
        archive.close()
        raise
    archive.catalog = catalog  # the XNAT face reads the catalog from the archive it serves
    archive.jobs = jobs  # the faces submit their long operations here
    return archive
