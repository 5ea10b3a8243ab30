"""Rebuilding the index's view of resources from their stored files (Orthanc's ``/reconstruct`` routes).

The files are the truth: reconstructing reads each instance's file again and rewrites the main DICOM tags (and
their lookup rows) of the instance and its ancestors, as ingesting it would have written them. Metadata,
attachments and the change log are kept. ``ReconstructFiles`` stores each file again as the configuration now
asks (``StorageCompression`` on or off).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .dicom import parse_instance
from .errors import UnknownResource
from .ids import Level
from .index_find import fold

if TYPE_CHECKING:
    from .archive import Archive


def reconstruct(archive: Archive, level: Level | None = None, public_id: str | None = None, *,
                files: bool = False) -> int:
    """Reconstruct one resource (with what is below it), or the whole archive (``level`` None); returns the
    number of instances read."""
    if level is None:
        instance_ids = archive.list_ids(Level.INSTANCE)
    else:
        instance_ids = archive.instance_ids_below(level, public_id or "")
    done = 0
    for instance_id in instance_ids:
        try:
            _reconstruct_instance(archive, instance_id, files)
        except UnknownResource:  # deleted meanwhile: nothing left to reconstruct
            continue
        done += 1
    return done


def _reconstruct_instance(archive: Archive, instance_id: str, files: bool) -> None:
    parsed = parse_instance(archive.instance_bytes(instance_id), archive.settings.default_encoding)
    with archive.gate.shared(), archive.index.writing() as db:
        for resource_level, resource_id in zip(Level, parsed.ids, strict=True):
            iid = archive.index.find_iid(db, resource_id, resource_level)
            if iid is None:
                raise UnknownResource(f"Unknown instance: {instance_id}")
            tags = parsed.main_tags[resource_level]
            db.execute("UPDATE resources SET main_tags = ? WHERE iid = ?", (json.dumps(tags, ensure_ascii=False), iid))
            db.execute("DELETE FROM lookup WHERE iid = ?", (iid,))
            db.executemany("INSERT INTO lookup (iid, tag, value, folded) VALUES (?, ?, ?, ?)",
                           [(iid, tag, value, fold(value)) for tag, value in tags.items()])
    if files:
        row = archive.resource(Level.INSTANCE, instance_id)
        if row.file_compressed != bool(archive.config.StorageCompression):
            archive.attachments.set_compressed(Level.INSTANCE, instance_id, "dicom",
                                               bool(archive.config.StorageCompression))
