"""Builds an archive with the models that follow it: the one place where the core's parts are wired together.

The archive publishes events and names no listener; the XNAT catalog subscribes to them here, and the jobs engine
stops when the archive closes and forgets its finished jobs when the archive is reset. The server, the CLI's data
commands and tests open an archive through ``open_archive`` to get the whole core.
"""

from __future__ import annotations

from .archive import Archive
from .catalog_lazy import LazyCatalog
from .commitment import CommitmentReports
from .config import Config
from .events import ArchiveClosing, ArchiveReset
from .jobs import open_jobs_engine
from .modify_jobs_saved import register as register_modification_jobs
from .worklists import WorklistFolder, WorklistSettings


def open_archive(config: Config) -> Archive:
    """An archive with its XNAT catalog subscribed (``archive.catalog``, built on first use), its jobs engine running
    (``archive.jobs``), its fault rules and event log (``archive.faults``)."""
    archive = Archive(config)
    try:
        catalog = LazyCatalog(archive)  # its modules load on the first XNAT request or event it acts on
        catalog.subscribe(archive.events)
        from ..faults.state import install as install_faults  # the event log subscribes too; sets archive.faults

        install_faults(archive, config)
        jobs = open_jobs_engine(archive)
        # the engine saves its jobs in the index: it stops before the archive closes its index
        archive.events.subscribe(ArchiveClosing, lambda event: jobs.stop())
        archive.events.subscribe(ArchiveReset, lambda event: jobs.forget_finished())  # per-test isolation
        jobs.start()
        register_modification_jobs(jobs, archive)  # saved modify, merge and split jobs go on after a restart
    except BaseException:
        archive.close()
        raise
    archive.catalog = catalog  # the XNAT face reads the catalog from the archive it serves (built on first use)
    archive.jobs = jobs  # the faces submit their long operations here
    _add_worklists_and_commitment(archive, config)
    return archive


def _add_worklists_and_commitment(archive: Archive, config: Config) -> None:
    """The worklist items (``archive.worklists``) and storage commitment reports (``archive.commitments``) the
    DICOM and Orthanc faces share; a reset empties both (the worklists only in the archive's own folder)."""
    try:
        worklists = WorklistFolder(WorklistSettings.from_config(config.Worklists, config.storage_path))
    except ValueError:
        archive.close()
        raise
    archive.worklists = worklists
    archive.commitments = commitments = CommitmentReports(config.StorageCommitmentReportsSize)

    def on_reset(event: ArchiveReset) -> None:
        if worklists.settings.own_folder:
            worklists.clear()
        commitments.clear()

    archive.events.subscribe(ArchiveReset, on_reset)
