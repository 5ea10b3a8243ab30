"""What the index hands out: a resource's row (and the SQL that reads it), the change log's and the export log's
entries, a new resource being stored, the constraints of a find; and Orthanc's timestamps. The archive and the faces
share these types without reaching into the index itself."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .ids import Level

# Index.describe_one and describe_below: a resource's row, its parent's ID, its DICOM file, its patient's tags
# (studies) and its children's IDs and indexes in the order of their iid (the aggregates read an ordered subquery)
DESCRIBE = (
    "SELECT r.iid, r.public_id, r.level, r.main_tags, p.public_id, r.last_update, r.is_stable, r.is_protected,"
    " r.index_in_series, a.uuid, a.size, pat.main_tags, a.compression,"
    " (SELECT group_concat(public_id, ',') FROM (SELECT public_id FROM resources WHERE parent = r.iid ORDER BY iid)),"
    " (SELECT group_concat(ifnull(index_in_series, ''), ',') FROM"
    "  (SELECT index_in_series FROM resources WHERE parent = r.iid ORDER BY iid))"
    " FROM resources r LEFT JOIN resources p ON p.iid = r.parent"
    " LEFT JOIN attachments a ON a.iid = r.iid AND a.content_type = 1"
    " LEFT JOIN resources pat ON pat.iid = r.patient AND r.level = 1 "
)
# the same columns for an instance, which has no children and shows no patient tags: two subqueries and a join less
DESCRIBE_INSTANCE = (
    "SELECT r.iid, r.public_id, r.level, r.main_tags, p.public_id, r.last_update, r.is_stable, r.is_protected,"
    " r.index_in_series, a.uuid, a.size, NULL, a.compression, NULL, NULL"
    " FROM resources r LEFT JOIN resources p ON p.iid = r.parent"
    " LEFT JOIN attachments a ON a.iid = r.iid AND a.content_type = 1 "
)


def described(found: tuple) -> ResourceRow:
    """A row of ``DESCRIBE`` as a ResourceRow."""
    (iid, public_id, level_number, main_tags, parent_id, last_update, stable, protected, index, file_uuid,
     file_size, patient_tags, compression, children, children_indexes) = found
    row = ResourceRow(iid=iid, public_id=public_id, level=Level(level_number), main_tags=json.loads(main_tags),
                      parent_id=parent_id, last_update=last_update, is_stable=bool(stable),
                      is_protected=bool(protected), index_in_series=index, file_uuid=file_uuid,
                      file_size=file_size, file_compressed=bool(compression),
                      patient_main_tags=json.loads(patient_tags) if patient_tags else None)
    if children:  # (public IDs are hexadecimal with dashes: a comma never appears in one)
        row.children = children.split(",")
        row.children_indexes = [int(number) if number else None for number in children_indexes.split(",")]
    return row


def now_iso(timestamp: float | None = None) -> str:
    """Orthanc's timestamp format (``20261121T163021``), in UTC."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if timestamp is None else timestamp))


@dataclass
class ResourceRow:
    """What the index knows of one resource, as the archive service hands it to faces."""

    iid: int
    public_id: str
    level: Level
    main_tags: dict[str, str]
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    last_update: float = 0.0
    is_stable: bool = False
    is_protected: bool = False
    index_in_series: int | None = None
    file_uuid: str | None = None
    file_size: int | None = None
    file_compressed: bool = False  # the DICOM file is stored zlib-compressed (StorageCompression)
    patient_main_tags: dict[str, str] | None = None  # studies only
    children_indexes: list[int | None] = field(default_factory=list)  # series only


@dataclass(frozen=True)
class NewResource:
    """One level of an instance being stored: its ID, main tags and lookup values."""

    level: Level
    public_id: str
    main_tags: dict[str, str]


@dataclass(frozen=True)
class Change:
    seq: int
    change_type: str
    level: Level
    public_id: str
    date: str


@dataclass(frozen=True)
class Export:
    seq: int
    level: Level
    public_id: str
    remote_modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    date: str


@dataclass(frozen=True)
class TagConstraint:
    """One condition of a find on a main tag held at ``tag_level``; ``kind`` says how ``values`` match.

    kinds: ``exact`` (one value), ``list`` (any of values), ``wildcard`` (a GLOB pattern), ``range`` (values =
    [low, high], either may be empty).
    """

    tag: str
    tag_level: Level
    kind: str
    values: tuple[str, ...]
    case_sensitive: bool = True
