"""POST /data/search: XNAT's stored-search XML (``xdat:bundle``) over projects, subjects and experiments.

Supported: the root element (a project, subject or experiment type; an abstract type matches its subtypes),
search fields, and criteria (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE`` with ``%``) combined with
AND/OR child sets. Every row also carries the keys xnatpy builds object URLs from (``id``, ``project``,
``subjectid``, ``subject_id``, ``session_id``).
"""

from __future__ import annotations

import fnmatch
from typing import Any
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import xnat_date
from .access import readable_projects
from .errors import XnatError
from .params import archive_of
from .render import result_set, text_response
from .schemas import DATA_TYPES

_XDAT = "{http://nrg.wustl.edu/security}"
_MAX_BODY = 1024 * 1024
_MAX_SAVED = 1000  # saved searches kept (in memory: a restart forgets them)


def _records(request: Request, kind: str, root: str) -> list[dict[str, str]]:
    catalog = archive_of(request).catalog
    if kind == "project":
        counts: dict[tuple[str, str], int] = {}
        for experiment in catalog.list_experiments():
            modality = DATA_TYPES[experiment.xsi_type].modality if experiment.xsi_type in DATA_TYPES else None
            key = (experiment.project, {"MR": "mr", "CT": "ct", "PT": "pet"}.get(modality or "", "ut"))
            counts[key] = counts.get(key, 0) + 1
        return [{"id": p.id, "project": p.id, "insert_date": xnat_date(p.inserted), "project_owners": "",
                 "project_access": "private",
                 **{f"proj_{m}_count": str(counts.get((p.id, m), "")) for m in ("mr", "ct", "pet", "ut")},
                 **_lower(p.fields["data"])} for p in catalog.list_projects()]
    if kind == "subject":
        return [{"id": s.id, "subjectid": s.id, "subject_id": s.id, "label": s.label, "subject_label": s.label,
                 "project": s.project, "insert_date": xnat_date(s.inserted), **_lower(s.fields["data"])}
                for s in catalog.list_subjects()]
    return [{"id": e.id, "session_id": e.id, "label": e.label, "project": e.project, "subject_id": e.subject,
             "subject_label": e.subject_label, "xsitype": e.xsi_type, "insert_date": xnat_date(e.inserted),
             **_lower(e.fields["data"])}
            for e in catalog.list_experiments() if e.xsi_type in DATA_TYPES and DATA_TYPES[e.xsi_type].is_a(root)]


def _lower(data: dict[str, Any]) -> dict[str, str]:
    return {key.lower(): str(value) for key, value in data.items()}


def _field_key(schema_field: str) -> str:
    """``xnat:mrSessionData/label`` or ``xnat:mrSessionData.LABEL`` -> ``label``."""
    name = schema_field.split("/", 1)[1] if "/" in schema_field else schema_field.split(".", 1)[-1]
    return name.lower().replace("/", "_")


def _compare(value: str | None, operator: str, wanted: str) -> bool:
    if value is None:
        return operator in ("!=", "<>", "IS NULL")
    operator = operator.strip().upper()
    if operator == "LIKE":
        return fnmatch.fnmatchcase(value.lower(), wanted.lower().replace("%", "*"))
    try:
        left, right = float(value), float(wanted)
    except ValueError:
        left, right = value, wanted  # type: ignore[assignment]
    checks = {"=": left == right, "!=": left != right, "<>": left != right, "<": left < right,
              "<=": left <= right, ">": left > right, ">=": left >= right}
    if operator not in checks:
        raise XnatError(400, f"Unsupported comparison {operator!r} in a search")
    return checks[operator]


def _matches(node: ElementTree.Element, record: dict[str, str]) -> bool:
    method = (node.get("method") or "AND").upper()
    results = []
    for child in node:
        if child.tag == _XDAT + "criteria":
            field = child.findtext(_XDAT + "schema_field") or ""
            results.append(_compare(record.get(_field_key(field)), child.findtext(_XDAT + "comparison_type") or "=",
                                    child.findtext(_XDAT + "value") or ""))
        elif child.tag == _XDAT + "child_set":
            results.append(_matches(child, record))
    if not results:
        return True
    return any(results) if method == "OR" else all(results)


def parse_bundle(body: bytes) -> ElementTree.Element:
    """An ``xdat:bundle`` search document: 413 when too large, 400 when malformed or of an unsupported root."""
    if len(body) > _MAX_BODY:
        raise XnatError(413, "The search document is too large")
    try:
        bundle = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise XnatError(400, f"The search body is not an xdat:bundle XML document: {error}") from None
    root = (bundle.findtext(_XDAT + "root_element_name") or "").strip()
    data_type = DATA_TYPES.get(root)
    if data_type is None or data_type.kind not in ("project", "subject", "experiment"):
        raise XnatError(400, f"Unsupported search root element {root!r}: search projects, subjects or experiments")
    return bundle


async def search(request: Request) -> Response:
    return run_bundle(request, parse_bundle(await request.body()))


def run_bundle(request: Request, bundle: ElementTree.Element) -> Response:
    """The rows a search document finds, as a listing."""
    root = (bundle.findtext(_XDAT + "root_element_name") or "").strip()
    data_type = DATA_TYPES[root]
    records = _records(request, data_type.kind, root)
    readable = readable_projects(request)  # a user finds only what the user may read
    if readable is not None:
        records = [record for record in records if record.get("project") in readable]
    where = bundle.find(_XDAT + "search_where")
    if where is not None:
        try:
            records = [record for record in records if _matches(where, record)]
        except RecursionError:  # child sets nested thousands deep
            raise XnatError(400, "The search criteria are nested too deeply") from None
    fields = [(field.findtext(_XDAT + "field_ID") or "").strip() for field in bundle.findall(_XDAT + "search_field")]
    base = {"project": ("id", "project"), "subject": ("subjectid", "subject_id", "label", "project"),
            "experiment": ("session_id", "subject_id", "label", "project", "xsitype")}[data_type.kind]
    columns = list(dict.fromkeys([*(_field_key(f) for f in fields if f), *base]))
    return result_set(request, [{column: record.get(column, "") for column in columns} for record in records],
                      columns, honour_columns=False)


# -- saved searches (pyxnat's manage.search.save / saved / get / delete) ------------------------------------------
def _saved(request: Request) -> dict[str, dict[str, Any]]:
    return request.app.state.saved_searches


def _one_saved(request: Request) -> dict[str, Any]:
    found = _saved(request).get(request.path_params["search_id"])
    if found is None:
        raise XnatError(404, f"No saved search {request.path_params['search_id']!r}")
    return found


async def list_saved(request: Request) -> Response:
    rows = [{"id": s["id"], "brief_description": s["brief_description"], "description": s["description"],
             "root_element_name": s["root"]} for s in _saved(request).values()]
    return result_set(request, rows, ("id", "brief_description", "description", "root_element_name"),
                      honour_columns=False)


async def put_saved(request: Request) -> Response:
    body = await request.body()
    bundle = parse_bundle(body)  # a malformed document is a 400 and replaces nothing
    search_id = request.path_params["search_id"]
    saved = _saved(request)
    if search_id not in saved and len(saved) >= _MAX_SAVED:
        raise XnatError(507, f"At most {_MAX_SAVED} saved searches are kept")
    saved[search_id] = {"id": search_id, "xml": body,
                        "brief_description": bundle.get("brief-description") or search_id,
                        "description": bundle.get("description") or "",
                        "root": (bundle.findtext(_XDAT + "root_element_name") or "").strip()}
    return text_response("")


async def get_saved(request: Request) -> Response:
    return Response(_one_saved(request)["xml"], media_type="text/xml")


async def saved_results(request: Request) -> Response:
    return run_bundle(request, parse_bundle(_one_saved(request)["xml"]))


async def delete_saved(request: Request) -> Response:
    _one_saved(request)
    del _saved(request)[request.path_params["search_id"]]
    return text_response("")
