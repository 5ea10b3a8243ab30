"""Reconstructions of image sessions (XNAT's ``xnat:reconstructedImageData``): images computed from a session's
scans, held by the session under an ID of their own, with resources in the session's ``PROCESSED/<ID>``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import Experiment, _free, name_of
from .catalog_fields import apply_updates, empty_fields
from .errors import UnknownResource
from .gate import beside_reset_and_restore

if TYPE_CHECKING:
    from .catalog import Catalog

# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.catalog.archive.gate)


@dataclass(frozen=True)
class Reconstruction:
    experiment: str
    project: str
    id: str
    xsi_type: str
    fields: dict[str, Any]
    inserted: float


class Reconstructions:
    """The reconstructions of sessions (``catalog.reconstructions``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = catalog.index

    def list(self, session: Experiment) -> list[Reconstruction]:
        with self.index.reading() as db:
            rows = db.execute("SELECT id, xsi_type, fields, inserted FROM xnat_reconstructions WHERE experiment = ?"
                              " ORDER BY inserted, id", (session.id,)).fetchall()
        return [Reconstruction(session.id, session.project, r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def get(self, session: Experiment, ref: str) -> Reconstruction:
        for reconstruction in self.list(session):
            if reconstruction.id == ref:
                return reconstruction
        raise UnknownResource(f"Unknown reconstruction {ref} of session {session.id}")

    @_gated
    def put(self, session: Experiment, ref: str, xsi_type: str, updates: Mapping[str, str]
            ) -> tuple[Reconstruction, bool]:
        name_of(ref, "reconstruction ID")
        with self.index.writing() as db:
            row = db.execute("SELECT fields FROM xnat_reconstructions WHERE experiment = ? AND id = ?",
                             (session.id, ref)).fetchone()
            created = row is None
            fields = apply_updates(json.loads(row[0]) if row else empty_fields(), _free(updates), xsi_type)
            if created:
                db.execute("INSERT INTO xnat_reconstructions (experiment, id, xsi_type, fields, inserted)"
                           " VALUES (?, ?, ?, ?, ?)", (session.id, ref, xsi_type, json.dumps(fields), time.time()))
            else:
                db.execute("UPDATE xnat_reconstructions SET fields = ? WHERE experiment = ? AND id = ?",
                           (json.dumps(fields), session.id, ref))
        return self.get(session, ref), created

    @_gated
    def delete(self, session: Experiment, ref: str) -> None:
        reconstruction = self.get(session, ref)
        owner = self.catalog.resources.owner(project=session.project, experiment=session,
                                             reconstruction=reconstruction.id)
        with self.index.writing() as db:
            db.execute("DELETE FROM xnat_resources WHERE owner = ?", (owner.key,))
            db.execute("DELETE FROM xnat_reconstructions WHERE experiment = ? AND id = ?", (session.id, ref))
        self.catalog.layout.remove_tree(
            self.catalog.layout._archive(session.project, "arc001", session.label, "PROCESSED", reconstruction.id))
