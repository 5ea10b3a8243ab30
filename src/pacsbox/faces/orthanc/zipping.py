"""Zip archives of resources in Orthanc's folder layout (patient/study/series/instance)."""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from ...core.archive import Archive
from ...core.errors import UnknownResource
from ...core.ids import Level
from ...core.index_rows import ResourceRow
from ...core.safe_paths import archive_member
from ..http_common import spool_directory

_MAX_NAME = 64


def folder_name(*values: str) -> str:
    """Orthanc's folder names: values joined by spaces, reduced to ASCII letters, digits and a few marks. A name
    of dots alone (``..`` from a hostile PatientID) is no name: the caller's fallback takes its place."""
    text = " ".join(values).replace("^", " ")
    cleaned = re.sub(r"[^A-Za-z0-9_. ]", "", text)
    name = re.sub(" +", " ", cleaned).strip()[:_MAX_NAME].strip()
    return name if name.strip(". ") else ""


def _unique(name: str, taken: set[str]) -> str:
    candidate, counter = name, 1
    while candidate in taken:
        counter += 1
        candidate = f"{name}-{counter}"
    taken.add(candidate)
    return candidate


def write_archive(archive: Archive, resources: Iterable[tuple[Level, str]], *, output: BinaryIO | None = None,
                  before_each: Callable[[int, int], None] | None = None) -> BinaryIO:
    """A temporary file (or ``output``) holding the zip of the given resources (deflated, as Orthanc writes it).

    Other requests may delete instances while the zip is written: those are left out, so that the zip holds
    whole files of what is still there; UnknownResource when nothing is left. ``before_each(done, total)`` is
    called before each instance (an archive job's progress and checkpoint; what it raises ends the archive).
    """
    # a dict keeps the first-seen order and drops instances named twice (a study and one of its series)
    wanted_instances = dict.fromkeys(
        instance_id for level, public_id in resources for instance_id in archive.instance_ids_below(level, public_id)
    )
    rows: dict[str, ResourceRow] = {}  # each ancestor described once, not once per instance

    def row_of(level: Level, public_id: str) -> ResourceRow:
        if public_id not in rows:
            rows[public_id] = archive.resource(level, public_id)
        return rows[public_id]

    if output is None:
        output = tempfile.TemporaryFile(dir=spool_directory(archive.config))
    folders: dict[str, str] = {}
    taken: dict[str, set[str]] = {}
    written = 0
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for done, instance_id in enumerate(wanted_instances):
            if before_each is not None:
                before_each(done, len(wanted_instances))
            try:
                instance = archive.resource(Level.INSTANCE, instance_id)
                series = row_of(Level.SERIES, instance.parent_id)
                study = row_of(Level.STUDY, series.parent_id)
                patient = row_of(Level.PATIENT, study.parent_id)
            except UnknownResource:  # deleted since the list was made
                continue
            path = ""
            for row, keywords, fallback in (
                (patient, ("PatientID", "PatientName"), "Unknown Patient"),
                (study, ("AccessionNumber", "StudyDescription"), "Unknown Study"),
                (series, ("Modality", "SeriesDescription"), "Unknown Series"),
            ):
                if row.public_id not in folders:
                    name = folder_name(*(row.main_tags.get(k, "") for k in keywords)) or fallback
                    folders[row.public_id] = _unique(name, taken.setdefault(path, set()))
                path = f"{path}{folders[row.public_id]}/"
            count = len(taken.setdefault(path, set()))
            modality = folder_name(series.main_tags.get("Modality", ""))[:2]
            # Orthanc names files by modality and index (MR000000.dcm), or by index alone (00000000.dcm)
            filename = f"{modality}{count:06d}.dcm" if len(modality) == 2 else f"{count:08d}.dcm"
            filename = _unique(filename, taken[path])
            try:
                # ZipFile.write opens the file before it writes the member's header: a file gone leaves no trace
                stored = archive.store_area.readable_path(instance.file_uuid, instance.file_compressed)
                zipped.write(stored, archive_member(path, filename))
            except FileNotFoundError:  # deleted since its row was read
                taken[path].discard(filename)
                continue
            written += 1
    if wanted_instances and not written:
        output.close()
        raise UnknownResource("Every instance of the archive was deleted while it was being written")
    output.seek(0)
    return output
