"""Assessors of image sessions (XNAT's ``xnat:imageAssessorData`` and its kinds, e.g. ``xnat:qcAssessmentData``):
experiments of their session's subject and project, with their own accession ID, that name their session
(``imageSession_ID``). Their resources live in the session's folder, under ``ASSESSORS/<label>``, as on XNAT."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import Experiment, _free, label_of
from .catalog_fields import apply_updates, empty_fields
from .errors import BadRequest, UnknownResource
from .gate import beside_reset_and_restore

if TYPE_CHECKING:
    from .catalog import Catalog

ASSESSED = "assessor_of"  # the key of an assessor's fields that names its session

# XNAT writes wait for a reset or restore (and they for them): core.gate
_gated = beside_reset_and_restore(lambda self: self.catalog.archive.gate)


def is_assessor(experiment: Experiment) -> bool:
    return bool(experiment.fields.get(ASSESSED))


class Assessors:
    """The assessors of sessions (``catalog.assessors``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = catalog.index

    def list(self, session: Experiment) -> list[Experiment]:
        return [e for e in self.catalog.list_experiments(session.project)
                if e.fields.get(ASSESSED) == session.id]

    def get(self, session: Experiment, ref: str) -> Experiment:
        """An assessor of ``session`` by accession ID or label."""
        for assessor in self.list(session):
            if ref in (assessor.id, assessor.label):
                return assessor
        raise UnknownResource(f"Unknown assessor {ref} of session {session.id}")

    def session_of(self, assessor: Experiment) -> Experiment:
        return self.catalog.experiment(None, assessor.fields[ASSESSED])

    @_gated
    def put(self, session: Experiment, ref: str, xsi_type: str | None, updates: Mapping[str, str]
            ) -> tuple[Experiment, bool]:
        """Create an assessor labelled ``ref`` (of ``xsi_type``) of a session, or update the one ``ref`` names."""
        if is_assessor(session):
            raise BadRequest(f"{session.id} is an assessor: assessors assess image sessions")
        try:
            assessor, created = self.get(session, ref), False
        except UnknownResource:
            if not xsi_type:
                raise BadRequest("Creating an assessor needs its type: add ?xsiType=xnat:qcAssessmentData") from None
            with self.index.writing() as db:
                subject = self.catalog._subject(db, None, session.subject)
                fields = {**empty_fields(), ASSESSED: session.id}
                assessor = self.catalog._insert_experiment(db, subject, label_of(ref, "assessor label"), xsi_type,
                                                           fields, None)
            created = True
        with self.index.writing() as db:
            fields = apply_updates(assessor.fields, _free(updates), assessor.xsi_type)
            fields[ASSESSED] = session.id
            db.execute("UPDATE xnat_experiments SET fields = ? WHERE id = ?", (json.dumps(fields), assessor.id))
        if created:
            self.folder(session, assessor.label).mkdir(parents=True, exist_ok=True)
        return self.catalog.experiment(None, assessor.id), created

    @_gated
    def delete(self, session: Experiment, ref: str) -> None:
        assessor = self.get(session, ref)
        with self.index.writing() as db:
            db.execute("DELETE FROM xnat_experiments WHERE id = ?", (assessor.id,))
        self.catalog.layout.remove_tree(self.folder(session, assessor.label))

    @staticmethod
    def delete_rows_of(db: sqlite3.Connection, session_id: str) -> None:
        """Inside the deletion of a session: its assessors go with it (their folders are inside its folder)."""
        db.execute("DELETE FROM xnat_experiments WHERE json_extract(fields, '$.assessor_of') = ?", (session_id,))

    def folder(self, session: Experiment, label: str) -> Path:
        return self.catalog.layout._archive(session.project, "arc001", session.label, "ASSESSORS", label)
