"""The SQL of a find on main tags (``Index.find``): indexed starts on DICOM identifiers, the lookup table for the
rest, lists of any length, and the folded values of case-insensitive matches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .ids import Level
from .index_rows import TagConstraint

# the column of a resource's row that holds its ancestor (or itself) at each level
ANCESTOR_COLUMN = {Level.PATIENT: "patient", Level.STUDY: "study", Level.SERIES: "series", Level.INSTANCE: "iid"}


def find_sql(level: Level, constraints: Iterable[TagConstraint],
             modalities_in_study: TagConstraint | None = None) -> tuple[str, list[object]]:
    """The query of ``Index.find`` and its parameters."""
    starts: list[str] = []  # indexed clauses on identifiers, which the query starts from
    start_params: list[object] = []
    clauses: list[str] = []
    params: list[object] = []
    for constraint in constraints:
        start = _identifier_start(constraint, level)
        if start is not None:
            starts.append(start[0])
            start_params.extend(start[1])
            continue
        condition, values = _match_sql(constraint)
        clauses.append(
            f"EXISTS (SELECT 1 FROM lookup l WHERE l.iid = r.{ANCESTOR_COLUMN[constraint.tag_level]}"
            f" AND l.tag = ? AND {condition})"
        )
        params.extend([constraint.tag, *values])
    if modalities_in_study is not None:
        condition, values = _match_sql(modalities_in_study)
        clauses.append(
            "EXISTS (SELECT 1 FROM resources s JOIN lookup l ON l.iid = s.iid WHERE s.parent = r.iid"
            f" AND l.tag = 'Modality' AND {condition})"
        )
        params.extend(values)
    # With an identifier to start from, unary + keeps SQLite off the level index (it would scan the level).
    level_clause = "+r.level = ?" if starts else "r.level = ?"
    sql = f"SELECT r.iid FROM resources r WHERE {' AND '.join([*starts, level_clause, *clauses])} ORDER BY r.iid"
    return sql, [*start_params, int(level), *params]


def fold(value: str) -> str:
    """The case-insensitive form of a value for matching."""
    return value.casefold()


def _match_sql(constraint: TagConstraint) -> tuple[str, list[str]]:
    column = "l.value" if constraint.case_sensitive else "l.folded"
    values = list(constraint.values if constraint.case_sensitive else (fold(v) for v in constraint.values))
    if constraint.kind == "exact":
        return f"{column} = ?", values
    if constraint.kind == "list":
        return f"{column} IN {_value_list(values)}", _list_params(values)
    if constraint.kind == "wildcard":
        return f"{column} GLOB ?", values
    if constraint.kind == "range":
        low, high = values
        parts, bounds = [], []
        if low:
            parts.append(f"{column} >= ?")
            bounds.append(low)
        if high:
            parts.append(f"{column} <= ?")
            bounds.append(high)
        return (" AND ".join(parts) or "1"), bounds
    raise ValueError(constraint.kind)


def _identifier_start(constraint: TagConstraint, level: Level) -> tuple[str, list[object]] | None:
    """An indexed clause for an exact match on a DICOM identifier of the resource or its parent, else None.

    The tag goes into the SQL as a literal: SQLite uses a partial index only when the query names its tags.
    (UIDs always match case-sensitively, so only a case-insensitive PatientID or AccessionNumber is left out.)
    """
    if constraint.tag not in _IDENTIFIERS or constraint.kind not in ("exact", "list") or not constraint.case_sensitive:
        return None
    values = list(constraint.values)
    matching = f"SELECT iid FROM lookup WHERE tag = '{constraint.tag}' AND value IN {_value_list(values)}"
    if constraint.tag_level == level:
        return f"r.iid IN ({matching})", _list_params(values)
    for _ in range(level - constraint.tag_level - 1):  # down to the parents of the level, by resources_by_parent
        matching = f"SELECT iid FROM resources WHERE parent IN ({matching})"
    return f"r.parent IN ({matching})", _list_params(values)


# Lists longer than this go to SQLite as one JSON array (``json_each``) instead of one variable per value: a
# query holds at most 32,766 variables, and a C-FIND may list thousands of UIDs in several keys.
_INLINE_LIST = 64


def _value_list(values: Sequence[str]) -> str:
    if len(values) <= _INLINE_LIST:
        return f"({','.join('?' * len(values))})"
    return "(SELECT value FROM json_each(?))"


def _list_params(values: Sequence[str]) -> list[str]:
    return list(values) if len(values) <= _INLINE_LIST else [json.dumps(list(values))]


_IDENTIFIERS = frozenset({"PatientID", "StudyInstanceUID", "AccessionNumber", "SeriesInstanceUID", "SOPInstanceUID"})
