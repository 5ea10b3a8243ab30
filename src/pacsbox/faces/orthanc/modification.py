"""Orthanc's modify, anonymize, merge and split routes: request bodies read into ``core.modification`` terms, the
work done by the jobs of ``core.modify_jobs``, answers shaped as Orthanc 1.10.1 shapes them.

Bodies are read as Orthanc reads them (``DicomModification::ParseModifyRequest`` and
``ParseAnonymizationRequest``): ``Force`` first, then ``Remove``, ``Replace`` (in the sorted order of its names, as
JsonCpp iterates them) and ``Keep``; the error of the first bad field is the answer. One departure, as elsewhere in
pacsbox's Orthanc face: an unknown tag name is a 400 (Orthanc answers 500), with Orthanc's code 27 kept.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.anonymization import DEFAULT_VERSION, profile
from ...core.create_dicom import MODULE_TAGS, tag_of
from ...core.errors import BadRequest, UnknownResource
from ...core.events import Origin
from ...core.ids import Level
from ...core.modification import IDENTIFIERS, DicomPath, Modification
from ...core.modify_jobs import (
    MergeStudyJob,
    ResourceModificationJob,
    SplitStudyJob,
    modify_instance_file,
)
from ...core.transcoding import CannotTranscode, check_target
from .errors import OrthancError, bad_request, bad_type, unknown_resource
from .json import json_response
from .params import archive_of, loads

_DICOM = "application/dicom"
#: What a split may replace or remove: the new study's own tags (the patient and study modules)
SPLIT_MODULES = MODULE_TAGS["Patient"] | MODULE_TAGS["Study"]


def _named(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag  # pydicom loads on first use, not at start-up

    return f"{keyword_for_tag(tag) or 'Unknown'} ({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _bad_format(details: str | None = None) -> OrthancError:
    return OrthancError(15, "Bad file format", 400, details)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of the request ("Bad file format" for anything else, as Orthanc)."""
    try:
        body = await loads(request, await request.body())
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise _bad_format()
    return body


def _boolean(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _bad_format(f"Member \"{name}\" should be a Boolean value")
    return value


def _string(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad_format(f"Member \"{name}\" should be a string")
    return value


def _tag(name: str) -> int:
    try:
        return tag_of(name)
    except Exception:  # OutOfRange("Unknown DICOM tag")
        raise OrthancError(27, "Unknown DICOM tag", 400, None) from None


def _path(name: str) -> DicomPath | None:
    """A tag inside sequence items (``Sequence[1].Tag``, ``Sequence[*].Tag``), as Orthanc's DicomPath reads it;
    None for a plain tag."""
    if "." not in name:
        return None
    *parents, last = name.split(".")
    prefix = []
    for parent in parents:
        if "[" not in parent or not parent.endswith("]"):
            raise OrthancError(3, "Parameter out of range", 400, "Parent path doesn't contain an index")
        tag_name, index = parent[:-1].split("[", 1)
        if index != "*" and not (index.isascii() and index.isdigit()):
            raise OrthancError(3, "Parameter out of range", 400, f"Not a valid index in parent path: [{index}]")
        prefix.append((_tag(tag_name), None if index == "*" else int(index)))
    return DicomPath(tuple(prefix), _tag(last))


def _tags(body: dict, name: str, force: bool, verb: str) -> list[tuple[str, int | DicomPath]]:
    value = body[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(None)  # type: ignore[arg-type]
    tags: list[tuple[str, int | DicomPath]] = []
    for text in value:
        path = _path(text)
        if path is not None:
            tags.append((text, path))
            continue
        tag = _tag(text)
        if not force and tag in IDENTIFIERS:
            raise bad_request(f"Marking tag \"{text}\" as to be {verb} requires the \"Force\" option to be set to "
                              "true")
        tags.append((text, tag))
    return tags


def _read_changes(body: dict, modification: Modification, force: bool) -> None:
    """Remove, Replace, Keep and PrivateCreator, in Orthanc's order."""
    if "Remove" in body:
        for _, tag in _tags(body, "Remove", force, "removed"):
            if isinstance(tag, DicomPath):
                modification.remove_path(tag)
            else:
                modification.remove(tag)
    if "Replace" in body:
        replace = body["Replace"]
        if not isinstance(replace, dict):
            raise bad_request(None)  # type: ignore[arg-type]
        for name in sorted(replace):
            path = _path(name)
            tag = path.tag if path is not None else _tag(name)
            if path is None and not force and tag in IDENTIFIERS:
                raise bad_request(f"Marking tag \"{name}\" as to be replaced requires the \"Force\" option to be "
                                  "set to true")
            value = replace[name]
            if not (value is None or isinstance(value, (str, list))):
                raise bad_type(f"Bad Parameter type for tag {tag >> 16:04x},{tag & 0xFFFF:04x}")
            if isinstance(value, list) and not all(isinstance(item, dict) for item in value):
                raise bad_type(None)  # type: ignore[arg-type]
            if path is not None:
                modification.replace_path(path, value)
            else:
                modification.replace(tag, value)
    if "Keep" in body:
        for _, tag in _tags(body, "Keep", force, "kept"):
            if not isinstance(tag, DicomPath):  # (a path to keep is accepted and does nothing, as in Orthanc)
                modification.keep(tag)
    modification.private_creator = _string(body, "PrivateCreator") or ""


def read_modify(body: dict, level: Level) -> Modification:
    """A /modify body."""
    force = _boolean(body, "Force", False)
    modification = Modification(level, remove_private_tags=_boolean(body, "RemovePrivateTags", False))
    _read_changes(body, modification, force)
    _check(modification)
    return modification


def _check(modification: Modification) -> None:
    try:
        modification.check()
    except BadRequest as error:
        raise bad_request(error.details) from None  # type: ignore[arg-type]


def read_anonymize(body: dict) -> Modification:
    """An /anonymize body: the profile of ``DicomVersion``, then the request's own changes."""
    force = _boolean(body, "Force", False)
    version = body.get("DicomVersion", DEFAULT_VERSION)
    if not isinstance(version, str):
        raise _bad_format()
    modification = Modification.anonymization(profile(version))
    _read_changes(body, modification, force)
    if _boolean(body, "KeepPrivateTags", False):
        modification.keep_private_tags()
    _check(modification)
    return modification


def _transcode(body: dict) -> str | None:
    target = _string(body, "Transcode")
    return check_target(target) if target else None


def _origin(request: Request) -> Origin:
    return Origin("RestApi", remote_ip=request.client.host if request.client else "",
                  http_username=getattr(request.state, "user", "") or "")


async def _submit(request: Request, body: dict, job) -> Response:
    """Run a job through the archive's jobs engine as Orthanc runs its REST jobs: synchronously unless asked
    otherwise (``Synchronous`` wins over ``Asynchronous``), at ``Priority``."""
    synchronous = _boolean(body, "Synchronous", True) if "Synchronous" in body else \
        not _boolean(body, "Asynchronous", False)
    priority = body.get("Priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _bad_format("Integer value expected in field: Priority")
    jobs = archive_of(request).jobs
    if not synchronous:
        job_id = jobs.submit(job, priority)
        return json_response({"ID": job_id, "Path": f"/jobs/{job_id}"})
    return json_response(await jobs.run_and_wait(job, priority))


# -- the routes ---------------------------------------------------------------------------------------------------
async def modify(request: Request, level: Level, anonymize: bool) -> Response:
    """POST /{level}/{id}/modify and /anonymize; at the instance level the modified file is the answer."""
    body = await _body(request)
    modification = read_anonymize(body) if anonymize else read_modify(body, level)
    transcode_to = _transcode(body)
    archive = archive_of(request)
    public_id = request.path_params["id"]
    if not archive.exists(level, public_id):
        raise unknown_resource()
    if level == Level.INSTANCE:
        modification.level = Level.INSTANCE if not anonymize else Level.PATIENT
        try:
            data = await run_in_threadpool(modify_instance_file, archive, public_id, modification, transcode_to)
        except CannotTranscode as error:  # a transcoding Orthanc cannot do either: its 500
            raise OrthancError(-1, "Internal error", 500, str(error)) from None
        return Response(data, media_type=_DICOM)
    job = ResourceModificationJob(archive, modification, [(level, public_id)], bulk=False,
                                  keep_source=_boolean(body, "KeepSource", True), origin=_origin(request),
                                  transcode_to=transcode_to, permissive=_boolean(body, "Permissive", False))
    return await _submit(request, body, job)


async def bulk(request: Request, anonymize: bool) -> Response:
    """POST /tools/bulk-modify and /tools/bulk-anonymize."""
    body = await _body(request)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise _bad_format("List of strings expected in field: Resources")
    level = Level.INSTANCE
    if "Level" in body:
        if not isinstance(body["Level"], str):
            raise _bad_format("Member \"Level\" should be a string")
        try:
            level = Level.parse(body["Level"])
        except ValueError:
            raise OrthancError(3, "Parameter out of range", 400) from None
    modification = read_anonymize(body) if anonymize else read_modify(body, level)
    archive = archive_of(request)
    targets = []
    for public_id in resources:
        try:
            targets.append((archive.level_of(public_id), public_id))
        except UnknownResource:
            raise unknown_resource() from None
    job = ResourceModificationJob(archive, modification, targets, bulk=True,
                                  keep_source=_boolean(body, "KeepSource", True), origin=_origin(request),
                                  transcode_to=_transcode(body), permissive=_boolean(body, "Permissive", False))
    return await _submit(request, body, job)


async def merge(request: Request) -> Response:
    """POST /studies/{id}/merge: series or instances of other studies moved into this one."""
    body = await _body(request)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise _bad_format("List of strings expected in field: Resources")
    job = await run_in_threadpool(lambda: MergeStudyJob(
        archive_of(request), request.path_params["id"], resources,
        keep_source=_boolean(body, "KeepSource", False), origin=_origin(request)))
    return await _submit(request, body, job)


async def split(request: Request) -> Response:
    """POST /studies/{id}/split: series or instances of this study moved into a new one."""
    body = await _body(request)
    archive = archive_of(request)
    study = request.path_params["id"]
    if not archive.exists(Level.STUDY, study):
        raise unknown_resource(f"Cannot split unknown study {study}")
    selected: list[str] = []
    for field, level in (("Series", Level.SERIES), ("Instances", Level.INSTANCE)):
        values = body.get(field, [])
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            raise _bad_format(f"List of strings expected in field: {field}")
        for public_id in values:
            if not archive.exists(level, public_id):
                raise unknown_resource()
            if archive.related(level, public_id, Level.STUDY)[0].public_id != study:
                raise unknown_resource(f"This {level.title.lower()} does not belong to the study to be split: "
                                       f"{public_id}")
            selected += [i for i in archive.instance_ids_below(level, public_id) if i not in selected]
    if not body.get("Series") and not body.get("Instances"):
        raise bad_request("Both the \"Series\" and the \"Instances\" fields are missing")
    changes = Modification(Level.STUDY)
    _read_changes(body, changes, force=False)
    for tag in sorted(changes.replacements.keys() | changes.removals):
        if tag not in SPLIT_MODULES:
            verb = "modify" if tag in changes.replacements else "remove"
            raise OrthancError(3, "Parameter out of range", 400, f"Cannot {verb} the following tag while splitting "
                               f"a study (not in the patient/study modules): {_named(tag)}")
    job = SplitStudyJob(archive, study, selected, changes, keep_source=_boolean(body, "KeepSource", False),
                        origin=_origin(request))
    return await _submit(request, body, job)
