"""Sharing a subject or an experiment into other projects (XNAT's ``/projects/P/subjects/S/projects/Q``): the
object keeps its primary project, its accession ID and its folders; the project it is shared into lists it,
and finds it by ID or by the label it has there. Rows only: nothing moves on disk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .catalog import label_of
from .errors import BadRequest, Conflict, UnknownResource
from .gate import beside_reset_and_restore

if TYPE_CHECKING:
    from .catalog import Catalog

Kind = Literal["subject", "experiment"]
_TABLE = {"subject": "xnat_subjects", "experiment": "xnat_experiments"}

# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.catalog.archive.gate)


@dataclass(frozen=True)
class Share:
    project: str
    label: str
    primary: bool


class Sharing:
    """The shares of subjects and experiments (``catalog.sharing``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = catalog.index

    def projects_of(self, kind: Kind, object_id: str) -> list[Share]:
        """The object's primary project, then the projects it is shared into."""
        with self.index.reading() as db:
            row = db.execute(f"SELECT project, label FROM {_TABLE[kind]} WHERE id = ?", (object_id,)).fetchone()
            if row is None:
                raise UnknownResource(f"Unknown {kind}: {object_id}")
            shares = db.execute("SELECT project, label FROM xnat_shares WHERE kind = ? AND id = ? ORDER BY project",
                                (kind, object_id)).fetchall()
        return [Share(row[0], row[1], True)] + [Share(project, label, False) for project, label in shares]

    @_gated
    def share(self, kind: Kind, object_id: str, project: str, label: str | None = None) -> tuple[Share, bool]:
        """Share an object into ``project`` (under ``label``, its own by default). Returns the share and whether
        it is new. 404 for a project that does not exist, 409 for a label taken there, 400 for its own project."""
        with self.index.writing() as db:
            self.catalog._project(db, project)
            row = db.execute(f"SELECT project, label FROM {_TABLE[kind]} WHERE id = ?", (object_id,)).fetchone()
            if row is None:
                raise UnknownResource(f"Unknown {kind}: {object_id}")
            if row[0] == project:
                raise BadRequest(f"The {kind} {object_id} already belongs to project {project}")
            label = label_of(label or row[1], "label")
            existing = db.execute("SELECT label FROM xnat_shares WHERE kind = ? AND id = ? AND project = ?",
                                  (kind, object_id, project)).fetchone()
            if existing is not None and existing[0] == label:
                return Share(project, label, False), False
            taken = db.execute(f"SELECT 1 FROM {_TABLE[kind]} WHERE project = ? AND label = ?",
                               (project, label)).fetchone() or \
                db.execute("SELECT 1 FROM xnat_shares WHERE kind = ? AND project = ? AND label = ? AND id != ?",
                           (kind, project, label, object_id)).fetchone()
            if taken:
                raise Conflict(f"The label {label!r} is already used in project {project}")
            db.execute("INSERT INTO xnat_shares (kind, id, project, label) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT(kind, id, project) DO UPDATE SET label = excluded.label",
                       (kind, object_id, project, label))
        return Share(project, label, False), existing is None

    @_gated
    def unshare(self, kind: Kind, object_id: str, project: str) -> None:
        with self.index.writing() as db:
            row = db.execute(f"SELECT project FROM {_TABLE[kind]} WHERE id = ?", (object_id,)).fetchone()
            if row is not None and row[0] == project:
                raise BadRequest(f"Project {project} is the primary project of {object_id}: delete the {kind}"
                                 " instead")
            gone = db.execute("DELETE FROM xnat_shares WHERE kind = ? AND id = ? AND project = ?",
                              (kind, object_id, project)).rowcount
        if not gone:
            raise UnknownResource(f"The {kind} {object_id} is not shared into project {project}")

    def label_in(self, kind: Kind, object_id: str, project: str) -> str | None:
        """The object's label in a project it is shared into (None if it is not)."""
        with self.index.reading() as db:
            row = db.execute("SELECT label FROM xnat_shares WHERE kind = ? AND id = ? AND project = ?",
                             (kind, object_id, project)).fetchone()
        return row[0] if row else None
