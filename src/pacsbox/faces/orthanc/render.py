"""The core's resources rendered as Orthanc's JSON objects (GET /{level}/{id} and friends)."""

from __future__ import annotations

from typing import Any

from ...core.ids import Level
from ...core.index_rows import ResourceRow, now_iso
from ...core.series_status import expected_instances, series_status

_CHILDREN_KEY = {Level.PATIENT: "Studies", Level.STUDY: "Series", Level.SERIES: "Instances"}
_PARENT_KEY = {Level.STUDY: "ParentPatient", Level.SERIES: "ParentStudy", Level.INSTANCE: "ParentSeries"}


def resource_json(row: ResourceRow) -> dict[str, Any]:
    """One resource as Orthanc 1.10 shows it."""
    body: dict[str, Any] = {"ID": row.public_id, "MainDicomTags": row.main_tags, "Type": row.level.title}
    if row.level in _PARENT_KEY:
        body[_PARENT_KEY[row.level]] = row.parent_id
    if row.level in _CHILDREN_KEY:
        body[_CHILDREN_KEY[row.level]] = row.children
        body["IsStable"] = row.is_stable
        body["LastUpdate"] = now_iso(row.last_update)
    if row.level == Level.STUDY:
        body["PatientMainDicomTags"] = row.patient_main_tags or {}
    elif row.level == Level.SERIES:
        expected = expected_instances(row.main_tags)
        body["ExpectedNumberOfInstances"] = expected
        body["Status"] = series_status(expected, row.children_indexes)
    elif row.level == Level.INSTANCE:
        body["FileSize"] = row.file_size
        body["FileUuid"] = row.file_uuid
        body["IndexInSeries"] = row.index_in_series
    return body


def resource_path(level: Level, public_id: str) -> str:
    return f"/{level.plural}/{public_id}"


def reference_json(level: Level, public_id: str) -> dict[str, str]:
    """``{ID, Path, Type}``, as in RemainingAncestor and /tools/lookup."""
    return {"ID": public_id, "Path": resource_path(level, public_id), "Type": level.title}
