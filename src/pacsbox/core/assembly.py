"""Builds an archive with the models that follow it: the one place where the core's parts are wired together.

The archive publishes events and names no listener; the XNAT catalog subscribes to them here. The server, the
CLI's data commands and tests open an archive through ``open_archive`` to get the whole core.
"""

from __future__ import annotations

from .archive import Archive
from .catalog import Catalog
from .config import Config


def open_archive(config: Config) -> Archive:
    """An archive with its XNAT catalog subscribed (``archive.catalog``)."""
    archive = Archive(config)
    try:
        catalog = Catalog(archive)
        catalog.subscribe(archive.events)
    except BaseException:
        archive.close()
        raise
    archive.catalog = catalog  # the XNAT face reads the catalog from the archive it serves
    return archive
