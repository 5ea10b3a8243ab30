"""The XNAT catalog, built on first use: the first XNAT request (``archive.catalog``) or the first archive event
it must act on. Its modules (a few hundred milliseconds' worth of imports on a busy machine, a dozen on a quiet
one) stay out of a server's start, which only the Orthanc face may ever see.

The listener subscribes at ``open_archive`` like the catalog did, so no event is missed: an event the catalog acts
on builds it, then reaches it, on the publishing thread and in the same phase (a C-STORE's prearchive rows still
commit with the instance). Events it can tell apart without the catalog (stores from other origins) build
nothing. The tables are created at start, as before, so that a build inside a store's transaction writes no
schema.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .catalog_schema import create_tables
from .events import ArchiveReset, EventBus, InstanceStored, Phase, ResourceDeleted, UncleanStopSwept

if TYPE_CHECKING:
    from .archive import Archive
    from .catalog import Catalog


class LazyCatalog:
    """The archive's XNAT catalog (``archive.catalog``), built once, on first need, whichever thread asks first.

    It stands for the catalog: any attribute it lacks is the built catalog's (``archive.catalog.project(...)``),
    so the faces and the archive know nothing of the difference (the archive names none of its listeners).
    """

    def __init__(self, archive: Archive) -> None:
        self._archive = archive
        self._catalog: Catalog | None = None
        self._building = threading.Lock()
        create_tables(archive.index)

    @property
    def built(self) -> bool:
        """Whether the catalog exists yet (for tests and diagnostics)."""
        return self._catalog is not None

    def get(self) -> Catalog:
        """The catalog, built now if it does not exist yet."""
        catalog = self._catalog
        if catalog is None:
            with self._building:
                if self._catalog is None:
                    from .catalog import Catalog

                    self._catalog = Catalog(self._archive, tables_created=True)
                catalog = self._catalog
        return catalog

    def __getattr__(self, name: str) -> Any:
        # only for names this holder lacks: the catalog's own attributes and methods
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def subscribe(self, events: EventBus) -> None:
        """The catalog's subscriptions (``Catalog.subscribe``), each building the catalog when it must act."""
        events.subscribe(InstanceStored, self._on_instance_stored, Phase.IN_TRANSACTION)
        events.subscribe(ResourceDeleted, lambda event: self.get()._on_resource_deleted(event))
        events.subscribe(ArchiveReset, lambda event: self.get().clear())
        events.subscribe(UncleanStopSwept, lambda event: self.get().layout.sweep_temporary_files())

    def _on_instance_stored(self, event: InstanceStored) -> None:
        if event.origin.kind == "DicomProtocol":  # the only stores the catalog files (Catalog._on_instance_stored)
            self.get()._on_instance_stored(event)
