"""XNAT's DICOM dump service (``GET /data/services/dicomdump?src=...[&field=...]``): the header of the first DICOM
file of an archived session or scan, or of a prearchive session or scan, as ResultSet rows ``tag1``, ``tag2``,
``vr``, ``value``, ``desc`` (a sequence's items are rows whose ``tag2`` names the nested element)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog_headers import dump_value, read_header
from ...core.errors import UnknownResource
from . import access, render
from .errors import XnatError
from .params import archive_of, text

if TYPE_CHECKING:  # pydicom loads on first use, not at start-up
    from pydicom.dataset import Dataset

DUMP_COLUMNS = ("tag1", "tag2", "vr", "value", "desc")


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _wanted_tags(request: Request) -> set[int] | None:
    """The ``field`` parameters as tags: keywords (``SeriesDescription``) or ``GGGGEEEE``; None for all."""
    values = [v for key, v in request.query_params.multi_items() if key.lower() == "field" for v in v.split(",")]
    if not values:
        return None
    from pydicom.datadict import tag_for_keyword  # pydicom loads on first use, not at start-up

    tags = set()
    for value in (v.strip() for v in values if v.strip()):
        tag = tag_for_keyword(value)
        if tag is None:
            digits = value.strip("()").replace(",", "")
            if len(digits) != 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise XnatError(400, f"Unknown DICOM field {value!r}: give a keyword or GGGGEEEE")
            tag = int(digits, 16)
        tags.add(tag)
    return tags


def dump_rows(dataset: Dataset, wanted: set[int] | None) -> list[dict[str, Any]]:
    rows = []
    for element in dataset:
        if wanted is not None and int(element.tag) not in wanted:
            continue
        if element.VR == "SQ":
            rows.append({"tag1": _tag_text(element.tag), "tag2": "", "vr": "SQ", "value": "", "desc": element.name})
            for item in element.value:
                for nested in item:
                    value = "" if nested.VR == "SQ" else dump_value(nested.value)
                    rows.append({"tag1": _tag_text(element.tag), "tag2": _tag_text(nested.tag), "vr": nested.VR,
                                 "value": value, "desc": nested.name})
            continue
        rows.append({"tag1": _tag_text(element.tag), "tag2": "", "vr": element.VR, "value": dump_value(element.value),
                     "desc": element.name})
    return rows


def _header_of(request: Request, source: str) -> Dataset:
    """The first header of what ``src`` names."""
    parts = [part for part in source.split("?")[0].split("/") if part]
    if parts[:1] == ["data"] or parts[:1] == ["REST"]:
        parts = parts[1:]
    catalog = archive_of(request).catalog
    if parts[:2] == ["prearchive", "projects"] and len(parts) in (5, 7):
        prearchive = catalog.importer.prearchive
        session = prearchive.session(*parts[2:5])
        scans = prearchive.scans(session)
        if len(parts) == 7:
            if parts[5] != "scans":
                raise XnatError(400, f"Unsupported src {source!r}")
            scans = [prearchive.scan(session, parts[6])]
        for scan in scans:
            for entry in scan.files:
                header = read_header(entry.disk)
                if header is not None:
                    return header
        raise UnknownResource(f"No DICOM file in {source}")
    if parts[:1] == ["archive"]:
        parts = parts[1:]
    names = dict(zip(parts[0::2], parts[1::2], strict=False))
    if len(parts) % 2 or not set(names) <= {"projects", "subjects", "experiments", "scans"} \
            or "experiments" not in names:
        raise XnatError(400, f"src must name an archived session or scan (/archive/projects/P/experiments/E"
                             f"[/scans/S]) or a prearchive session, not {source!r}")
    project = names.get("projects")
    if project is not None:
        catalog.project(project)
    subject = catalog.subject(project, names["subjects"]) if "subjects" in names else None
    experiment = catalog.experiment(project or (subject.project if subject else None), names["experiments"],
                                    subject.id if subject else None)
    access.require(request, experiment.project, "read")
    scan = names.get("scans")
    if scan is not None:
        catalog.scan(experiment, scan)
    return catalog.headers.first_header(experiment, scan)


async def dicom_dump(request: Request) -> Response:
    source = text(request, "src")
    if not source:
        raise XnatError(400, "The DICOM dump service needs src=/archive/projects/P/experiments/E[/scans/S]")
    wanted = _wanted_tags(request)
    header = await run_in_threadpool(_header_of, request, source)
    return render.result_set(request, dump_rows(header, wanted), DUMP_COLUMNS, honour_columns=False)
