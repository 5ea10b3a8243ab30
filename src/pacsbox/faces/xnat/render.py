"""XNAT's shapes: ResultSet listings (JSON or CSV), single objects (``items``), and the rows of each type."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...core.catalog import Experiment, Project, Scan, Subject, xnat_date
from ...core.catalog_files import FileEntry, Resource
from .errors import XnatError
from .params import response_format, text
from .schemas import DATA_TYPES


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(json.dumps(content, ensure_ascii=False), status_code=status_code, media_type="application/json")


def object_response(request: Request, body: dict[str, Any]) -> Response:
    """One object in XNAT's JSON (``items``), or with ``format=xml`` as its XML document (pyxnat reads that)."""
    fmt = response_format(request)
    if fmt == "xml":
        from .xml_render import object_xml

        return Response(object_xml(body), media_type="text/xml")
    return json_response(body)  # JSON for json and any other format, as before xml was served


def text_response(body: str, status_code: int = 200) -> Response:
    return PlainTextResponse(body, status_code=status_code)


# Query parameters that are options of a listing, never filters on its rows.
_LISTING_OPTIONS = frozenset({"format", "columns", "xsitype", "req_format", "sortby", "sortorder", "limit", "offset",
                              "accept-not-found", "recursive", "locator", "all", "concealhiddenfields"})


def result_set(request: Request, rows: Sequence[dict[str, Any]], columns: Sequence[str], *,
               honour_columns: bool = True, title: str = "") -> Response:
    """``{"ResultSet": {"Result": rows, "totalRecords": "N"}}``, or the same rows as CSV (``format=csv``).

    Other query parameters that name a column filter the rows (``?project=P``, ``?label=S*``), as XNAT's
    listings do. With ``columns=a,b`` (listings of projects, subjects, experiments and scans) the rows keep
    those columns, and their URI. ``columns`` names the columns of an empty CSV listing."""
    rows = _filtered(request, rows)
    wanted = [c.strip() for c in text(request, "columns").split(",") if c.strip()]
    if wanted and honour_columns and wanted != ["DEFAULT"]:  # DEFAULT: XNAT's default columns
        # XNAT adds the type and URI to what was asked (pyxnat reads xsiType from such listings)
        wanted = [_column_name(name, columns) for name in wanted]
        columns = list(dict.fromkeys([*wanted, *(key for key in ("xsiType", "URI") if key in columns)]))
        rows = [{key: _pick(row, key) for key in columns} for row in rows]
    fmt = response_format(request)
    if fmt == "csv":
        return Response(to_csv(rows, columns), media_type="text/csv")
    if fmt not in ("json", "html", "xml"):
        raise XnatError(400, f"Unsupported format {fmt!r} for a listing: use json or csv")
    # XNAT's default for listings is an HTML table; pacsbox answers JSON for html and xml too, since every
    # client of a test server parses JSON (and a 2xx HTML body is an error to xnatpy and pyxnat).
    body: dict[str, Any] = {"Result": list(rows), "totalRecords": str(len(rows))}
    if title:
        body["title"] = title
    return json_response({"ResultSet": body})


def _column_name(name: str, columns: Sequence[str]) -> str:
    """The name a requested column has in XNAT's answer: ``xnat:mrSessionData/subject_id`` is the listing's
    ``subject_ID`` column (pyxnat reads it by that name); other names stay as asked."""
    if ":" not in name.split("/", 1)[0] or "/" not in name:
        return name
    if is_scan_column(name):  # one row per scan: XNAT names these columns by their lower-case path
        return name.lower()
    leaf = name.rsplit("/", 1)[-1].lower()
    return next((column for column in columns if column.lower() == leaf), name)


def is_scan_column(name: str) -> bool:
    """Whether a listing column names a field of a scan type (``xnat:mrScanData/ID``)."""
    data_type = DATA_TYPES.get(name.split("/", 1)[0]) if "/" in name else None
    return data_type is not None and data_type.kind == "scan"


class Row(dict):
    """A listing row that also knows its object's other fields: pyxnat reads any attribute through a listing's
    ``columns=ID,<xsiType>/<path>``, which XNAT answers from the object's data."""

    def __init__(self, columns: dict[str, Any], fields: dict[str, Any] | None = None) -> None:
        super().__init__(columns)
        self.fields = fields or {}


def _pick(row: dict[str, Any], name: str) -> Any:
    """A column by name, or by its last path segment, case-insensitively (``xnat:mrSessionData/subject_id``
    is the ``subject_ID`` column); else a field of the row's object by its path (``xnat:mrScanData/frames``)."""
    if name in row:
        return row[name]
    lowered = {key.lower(): value for key, value in row.items()}
    found = lowered.get(name.lower(), lowered.get(name.rsplit("/", 1)[-1].lower()))
    if found is not None:
        return found
    fields = getattr(row, "fields", {})
    path = name.split("/", 1)[1] if ":" in name.split("/", 1)[0] and "/" in name else name
    return fields.get(path, fields.get(path.rsplit("/", 1)[-1], ""))


def _filtered(request: Request, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    if not rows:
        return rows
    keys = {key.lower(): key for key in rows[0]}
    filters = []
    for name, value in request.query_params.multi_items():
        if name.lower() in _LISTING_OPTIONS:
            continue
        if name == "xnat:subjectData/label" and "subject_label" in keys:
            column = "subject_label"
        else:
            column = keys.get(name.rsplit("/", 1)[-1].lower(), "")
        if column:
            filters.append((column, value.lower()))
    if not filters:
        return rows
    return [row for row in rows
            if all(fnmatch.fnmatchcase(str(row.get(column, "")).lower(), pattern) for column, pattern in filters)]


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header line, also for an empty listing (pyxnat reads the header first)."""
    out = io.StringIO()
    header = list(rows[0]) if rows else list(columns)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row.get(key) for key in header])
    return out.getvalue()


def items(xsi_type: str, data_fields: dict[str, Any], inserted: float,
          children: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """One object as XNAT's JSON renders it: data fields, child objects and meta."""
    return {"items": [item(xsi_type, data_fields, inserted, children)]}


def item(xsi_type: str, data_fields: dict[str, Any], inserted: float | None,
         children: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    meta: dict[str, Any] = {"xsi:type": xsi_type, "isHistory": False}
    if inserted is not None:
        meta["start_date"] = xnat_date(inserted)
    return {"children": list(children), "meta": meta, "data_fields": data_fields}


def field_children(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Nested objects (demographics) and lists (custom fields) of an object, as ``children`` entries."""
    children = []
    for name, child in fields.get("children", {}).items():
        entries = [item(child.get("xsi_type") or "", dict(values), None) for values in child["items"] if values]
        if entries:
            children.append({"field": name, "items": entries})
    return children


# -- rows and objects of each type ------------------------------------------------------------------------
PROJECT_COLUMNS = ("ID", "secondary_ID", "name", "description", "pi_firstname", "pi_lastname", "URI")
SUBJECT_COLUMNS = ("ID", "project", "label", "insert_date", "insert_user", "gender", "handedness", "yob", "URI")
EXPERIMENT_COLUMNS = ("ID", "project", "subject_ID", "subject_label", "date", "xsiType",
                      "xnat:subjectassessordata/id", "label", "insert_date", "URI")
SCAN_COLUMNS = ("xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description", "URI")
RESOURCE_COLUMNS = ("xnat_abstractresource_id", "label", "element_name", "category", "cat_id", "cat_desc", "format",
                    "content", "tags", "file_count", "file_size")
FILE_COLUMNS = ("Name", "Size", "URI", "collection", "file_tags", "file_format", "file_content", "cat_ID", "digest")
def project_uri(project: str) -> str:
    return f"/data/projects/{project}"


def subject_uri(subject: Subject) -> str:
    return f"/data/projects/{subject.project}/subjects/{subject.id}"


def experiment_uri(experiment: Experiment) -> str:
    return f"/data/projects/{experiment.project}/subjects/{experiment.subject}/experiments/{experiment.id}"


def project_row(project: Project) -> dict[str, Any]:
    data = project.fields["data"]
    return {"ID": project.id, "secondary_ID": data.get("secondary_ID", project.id), "name": data.get("name", ""),
            "description": data.get("description", ""), "pi_firstname": data.get("PI/firstname", ""),
            "pi_lastname": data.get("PI/lastname", ""), "URI": project_uri(project.id)}


def project_object(project: Project) -> dict[str, Any]:
    data = {"ID": project.id, **project.fields["data"]}
    return items("xnat:projectData", data, project.inserted, field_children(project.fields))


def subject_row(subject: Subject) -> dict[str, Any]:
    demographics = next(iter(subject.fields.get("children", {}).get("demographics", {}).get("items", [{}])), {})
    return {"ID": subject.id, "project": subject.project, "label": subject.label,
            "insert_date": xnat_date(subject.inserted), "insert_user": "admin",
            "gender": demographics.get("gender", ""), "handedness": demographics.get("handedness", ""),
            "yob": demographics.get("yob", ""), "URI": subject_uri(subject)}


def subject_object(subject: Subject) -> dict[str, Any]:
    data = {"ID": subject.id, "label": subject.label, "project": subject.project, **subject.fields["data"]}
    return items("xnat:subjectData", data, subject.inserted, field_children(subject.fields))


def experiment_row(experiment: Experiment) -> dict[str, Any]:
    data = experiment.fields["data"]
    return Row({"ID": experiment.id, "project": experiment.project, "subject_ID": experiment.subject,
                "subject_label": experiment.subject_label, "date": data.get("date", ""),
                "xsiType": experiment.xsi_type, "xnat:subjectassessordata/id": experiment.id,
                "label": experiment.label, "insert_date": xnat_date(experiment.inserted),
                "URI": experiment_uri(experiment)}, data)


def experiment_object(experiment: Experiment, scans: Sequence[Scan]) -> dict[str, Any]:
    data = {"ID": experiment.id, "label": experiment.label, "project": experiment.project,
            "subject_ID": experiment.subject, **experiment.fields["data"]}
    if experiment.fields.get("assessor_of"):  # an assessor names its session, and is no subject assessor
        del data["subject_ID"]
        data["imageSession_ID"] = experiment.fields["assessor_of"]
    children = field_children(experiment.fields)
    if scans:
        children.append({"field": "scans/scan",
                         "items": [item(scan.xsi_type, scan_data(scan), scan.inserted) for scan in scans]})
    return items(experiment.xsi_type, data, experiment.inserted, children)


def scan_data(scan: Scan) -> dict[str, Any]:
    return {"ID": scan.id, "image_session_ID": scan.experiment, "project": scan.project,
            "xnat_imagescandata_id": f"{scan.experiment}_{scan.id}", **scan.fields["data"]}


def scan_row(scan: Scan, base_uri: str) -> dict[str, Any]:
    data = scan.fields["data"]
    return Row({"xnat_imagescandata_id": f"{scan.experiment}_{scan.id}", "ID": scan.id,
                "type": data.get("type", ""), "quality": data.get("quality", ""), "xsiType": scan.xsi_type,
                "note": data.get("note", ""), "series_description": data.get("series_description", ""),
                "URI": f"{base_uri}/{scan.id}"}, data)


def scan_object(scan: Scan) -> dict[str, Any]:
    return items(scan.xsi_type, scan_data(scan), scan.inserted, field_children(scan.fields))


def resource_row(resource: Resource) -> dict[str, Any]:
    fields = resource.fields
    return {"xnat_abstractresource_id": str(resource.rid), "label": resource.label,
            "element_name": "xnat:resourceCatalog", "category": resource.owner.kind, "cat_id": str(resource.rid),
            "cat_desc": "", "format": fields.get("format", ""), "content": fields.get("content", ""),
            "tags": fields.get("tags", ""), "file_count": str(resource.file_count),
            "file_size": str(resource.file_size)}


def resource_object(resource: Resource) -> dict[str, Any]:
    data = {key: value for key, value in resource_row(resource).items() if key not in ("element_name", "category")}
    return items("xnat:resourceCatalog", data, resource.inserted)


def file_row(entry: FileEntry, resource: Resource, resource_uri: str) -> dict[str, Any]:
    fields = entry.fields
    return {"Name": entry.path.rsplit("/", 1)[-1], "Size": str(entry.size),
            "URI": f"{resource_uri}/files/{quote(entry.path)}", "collection": resource.label,
            "file_tags": fields.get("tags", ""), "file_format": fields.get("format", ""),
            "file_content": fields.get("content", ""), "cat_ID": str(resource.rid), "digest": entry.md5}
