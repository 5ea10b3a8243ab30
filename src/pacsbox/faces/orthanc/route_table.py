"""The Orthanc face's route table: every route's path, methods, handler (named, not imported) and bound arguments.

The one place the face's routes are declared. Each handler is named ``"module:attribute"``: a module name without a
dot is a module of this package (``"system:system"`` is ``pacsbox.faces.orthanc.system.system``), one with a dot is
a full module name. ``app.routes()`` builds the Starlette routes from this table without importing a handler's
module; the module is imported when a request first reaches one of its routes (a server answering GET /system loads
a handful of the face's ~45 modules, not all of them).

Order matters: Starlette (and ``faces/route_index.py``'s router, which keeps Starlette's choice) takes the first
route whose pattern matches, so a route is listed before any other whose pattern would also match its paths.
``upload=True`` marks a route whose body is a file (MaximumUploadSize rather than MaximumRequestBodySize).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ...core.ids import Level
from .tools_settings import LOG_CATEGORIES


class RouteEntry(NamedTuple):
    """One route of the table (``handler`` receives the request, then ``bound`` as keyword arguments)."""

    path: str
    methods: tuple[str, ...]
    handler: str  # "module:attribute", see the module's docstring
    bound: dict[str, Any]
    upload: bool


HEALTH_PATH = "/pacsbox/health"  # the one route without authentication, for readiness probes
_ID = "{id}"
_PARENTS = (Level.PATIENT, Level.STUDY, Level.SERIES)
_SETTINGS = (  # each GET and PUT by tools_settings.get_<name>, put_<name>
    "default-encoding", "accepted-transfer-syntaxes", "unknown-sop-class-accepted", "metrics", "log-level")


def _entry(path: str, methods: str, handler: str, *, upload: bool = False, **bound: Any) -> RouteEntry:
    """A table entry; ``methods`` is space-separated ("GET", "PUT POST")."""
    return RouteEntry(path, tuple(methods.split()), handler, bound, upload)


def _relative_name(level: Level, is_child: bool) -> str:
    return level.plural if is_child else level.title.lower()


@functools.cache
def table() -> tuple[RouteEntry, ...]:
    """Orthanc's REST routes that pacsbox serves (its 1.10 API), in matching order."""
    r = _entry
    entries = [
        r(HEALTH_PATH, "GET", "app:health"),
        # pacsbox's own: reset, snapshots (admin.py), fault injection (pacsbox.faults.routes)
        r("/pacsbox/reset", "POST", "admin:reset"),
        r("/pacsbox/snapshots", "GET", "admin:list_snapshots"),
        r("/pacsbox/snapshots/{name}", "PUT POST", "admin:save_snapshot"),
        r("/pacsbox/snapshots/{name}", "DELETE", "admin:delete_snapshot"),
        r("/pacsbox/snapshots/{name}/restore", "POST", "admin:restore_snapshot"),
        r("/system", "GET", "system:system"),
        r("/statistics", "GET", "system:statistics"),
        r("/changes", "GET", "system:changes"),
        r("/changes", "DELETE", "system:clear_changes"),
        r("/exports", "GET", "system:exports"),
        r("/exports", "DELETE", "system:clear_exports"),
        r("/instances", "POST", "instances:upload", upload=True),
        r("/tools/find", "POST", "tools:find"),
        r("/tools/lookup", "POST", "tools:lookup"),
        r("/tools/create-archive", "POST", "tools:create_archive"),
        r("/tools/create-dicom", "POST", "create_dicom:create_dicom", upload=True),  # its JSON carries files
        r("/tools/bulk-content", "POST", "bulk:bulk_content"),
        r("/tools/bulk-delete", "POST", "bulk:bulk_delete"),
        r("/pacsbox/faults", "GET", "pacsbox.faults.routes:list_rules"),
        r("/pacsbox/faults", "POST", "pacsbox.faults.routes:add_rule"),
        r("/pacsbox/faults", "DELETE", "pacsbox.faults.routes:clear_rules"),
        r("/pacsbox/faults/{id}", "GET", "pacsbox.faults.routes:get_rule"),
        r("/pacsbox/faults/{id}", "DELETE", "pacsbox.faults.routes:delete_rule"),
        r("/pacsbox/events", "GET", "pacsbox.faults.routes:list_events"),
        r("/pacsbox/events", "DELETE", "pacsbox.faults.routes:clear_events"),
        r("/pacsbox/events/last", "GET", "pacsbox.faults.routes:last_event"),
    ]
    # run-time settings (tools_settings.py)
    for setting in _SETTINGS:
        attribute = setting.replace("-", "_")
        entries += [r(f"/tools/{setting}", "GET", f"tools_settings:get_{attribute}"),
                    r(f"/tools/{setting}", "PUT", f"tools_settings:put_{attribute}")]
    for category in LOG_CATEGORIES:
        entries += [r(f"/tools/log-level-{category}", "GET", "tools_settings:get_category_level", category=category),
                    r(f"/tools/log-level-{category}", "PUT", "tools_settings:put_category_level", category=category)]
    # the server and its tools (tools_info.py)
    entries += [
        r("/tools", "GET", "tools_info:list_tools"),
        r("/tools/now", "GET", "tools_info:now"),
        r("/tools/now-local", "GET", "tools_info:now_local"),
        r("/tools/generate-uid", "GET", "tools_info:generate_uid_route"),
        r("/tools/dicom-conformance", "GET", "tools_info:dicom_conformance"),
        r("/tools/dicom-echo", "POST", "tools_info:dicom_echo"),
        r("/tools/invalidate-tags", "POST", "tools_info:invalidate_tags"),
        r("/tools/metrics-prometheus", "GET", "tools_info:metrics_prometheus"),
        r("/tools/reset", "POST", "tools_info:reset"),
        r("/tools/shutdown", "POST", "tools_info:shutdown"),
        r("/plugins", "GET", "tools_info:list_plugins"),
        r("/plugins/{id}", "GET", "tools_info:plugin"),
    ]
    # modify, anonymize, merge, split (modification.py)
    entries += [r(f"/{level.plural}/{_ID}/{verb}", "POST", "modification:modify", level=level,
                  anonymize=verb == "anonymize") for level in Level for verb in ("modify", "anonymize")]
    entries += [
        r("/tools/bulk-modify", "POST", "modification:bulk", anonymize=False),
        r("/tools/bulk-anonymize", "POST", "modification:bulk", anonymize=True),
        r(f"/studies/{_ID}/merge", "POST", "modification:merge"),
        r(f"/studies/{_ID}/split", "POST", "modification:split"),
        r(f"/patients/{_ID}/protected", "GET", "resources:get_protected"),
        r(f"/patients/{_ID}/protected", "PUT", "resources:put_protected"),
    ]
    # DICOM modalities (modalities.py) and the queries sent to them (queries.py)
    modality, query, answer = f"/modalities/{_ID}", f"/queries/{_ID}", f"/queries/{_ID}/answers/{{index}}"
    entries += [
        r("/modalities", "GET", "modalities:list_modalities"),
        r(modality, "GET", "modalities:operations"),
        r(modality, "PUT", "modalities:put_modality"),
        r(modality, "DELETE", "modalities:delete_modality"),
        r(f"{modality}/configuration", "GET", "modalities:configuration"),
        r(f"{modality}/echo", "POST", "modalities:echo"),
        r(f"{modality}/store", "POST", "modalities:store"),
        r(f"{modality}/move", "POST", "modalities:move"),
        r(f"{modality}/get", "POST", "modalities:get"),
        r(f"{modality}/query", "POST", "queries:create"),
        r("/queries", "GET", "queries:list_queries"),
        r(query, "GET", "queries:operations"),
        r(query, "DELETE", "queries:delete"),
        r(f"{query}/answers", "GET", "queries:answers"),
        r(f"{query}/level", "GET", "queries:level"),
        r(f"{query}/modality", "GET", "queries:modality"),
        r(f"{query}/query", "GET", "queries:original_query"),
        r(f"{query}/retrieve", "POST", "queries:retrieve_all"),
        r(answer, "GET", "queries:answer_operations"),
        r(f"{answer}/content", "GET", "queries:answer_content"),
        r(f"{answer}/retrieve", "POST", "queries:retrieve_answer"),
    ]
    entries += [r(f"{answer}/query-{level.plural}", "POST", "queries:child_query", target=level)
                for level in (Level.STUDY, Level.SERIES, Level.INSTANCE)]
    # C-FIND and C-STORE without a query object (scu_finds.py), storage commitment (commitment.py), worklists
    entries += [
        r(f"{modality}/find-worklist", "POST", "scu_finds:find_worklist"),
        r(f"{modality}/find", "POST", "scu_finds:find_tree"),
        r(f"{modality}/store-straight", "POST", "scu_finds:store_straight", upload=True),
        r(f"{modality}/storage-commitment", "POST", "commitment:request_commitment"),
        r(f"/storage-commitment/{_ID}", "GET", "commitment:report"),
        r(f"/storage-commitment/{_ID}/remove", "POST", "commitment:remove"),
    ]
    worklists = "/pacsbox/worklists"
    entries += [
        r(worklists, "POST", "worklists:create"),
        r(worklists, "GET", "worklists:list_items"),
        r(worklists, "DELETE", "worklists:delete_all"),
        r(f"{worklists}/{_ID}", "GET", "worklists:read"),
        r(f"{worklists}/{_ID}", "DELETE", "worklists:delete"),
        r(f"{worklists}/{_ID}/file", "GET", "worklists:read_file"),
    ]
    entries += [r(f"{modality}/find-{level.title.lower()}", "POST", "scu_finds:find_level", level=level)
                for level in Level]
    # Orthanc peers (peers.py)
    peer = f"/peers/{_ID}"
    entries += [
        r("/peers", "GET", "peers:list_peers"),
        r(peer, "GET", "peers:operations"),
        r(peer, "PUT", "peers:put_peer"),
        r(peer, "DELETE", "peers:delete_peer"),
        r(f"{peer}/configuration", "GET", "peers:configuration"),
        r(f"{peer}/system", "GET", "peers:system"),
        r(f"{peer}/store", "POST", "peers:store"),
        r(f"{peer}/store-straight", "POST", "peers:store_straight", upload=True),
    ]
    # an instance's file and tags (instances.py, tag_answers.py)
    instance = f"/instances/{_ID}"
    entries += [
        r(f"{instance}/file", "GET", "instances:file"),
        r(f"{instance}/tags", "GET", "tag_answers:tags"),
        r(f"{instance}/simplified-tags", "GET", "tag_answers:simplified_tags"),
        r(f"{instance}/header", "GET", "instances:header"),
        r(f"{instance}/frames", "GET", "instances:frames"),
        r(f"{instance}/content", "GET", "instances:content"),
        r(instance + "/content/{path:path}", "GET", "instances:content"),
    ]
    # the resources of each level, their metadata and relatives (resources.py), shared tags and archives
    for level in Level:
        one = f"/{level.plural}/{_ID}"
        entries += [
            r(f"/{level.plural}", "GET", "resources:list_resources", level=level),
            r(one, "GET", "resources:get_resource", level=level),
            r(one, "DELETE", "resources:delete_resource", level=level),
            r(f"{one}/statistics", "GET", "resources:statistics", level=level),
            r(f"{one}/metadata", "GET", "resources:list_metadata", level=level),
            r(one + "/metadata/{name}", "GET", "resources:get_metadata", level=level),
            r(one + "/metadata/{name}", "PUT", "resources:put_metadata", level=level),
            r(one + "/metadata/{name}", "DELETE", "resources:delete_metadata", level=level),
        ]
        entries += [r(f"{one}/{_relative_name(other, other > level)}", "GET", "resources:related", level=level,
                      target=other) for other in Level if other != level]
        if level in _PARENTS:
            entries += [r(f"{one}/shared-tags", "GET", "instances:shared_tags", level=level),
                        r(f"{one}/archive", "GET POST", "tools:resource_archive", level=level)]
    entries.append(r("/tools/execute-script", "POST", "lua:execute_script"))
    # attachments of every level (attachments.py)
    for level in Level:
        one = f"/{level.plural}/{_ID}"
        named = one + "/attachments/{name}"
        entries += [
            r(f"{one}/attachments", "GET", "attachments:list_attachments", level=level),
            r(named, "GET", "attachments:operations", level=level),
            r(named, "PUT", "attachments:put", upload=True, level=level),
            r(named, "DELETE", "attachments:delete", level=level),
            r(f"{named}/info", "GET", "attachments:info", level=level),
            r(f"{named}/data", "GET", "attachments:data", level=level),
            r(f"{named}/compressed-data", "GET", "attachments:data", level=level, as_stored=True),
            r(f"{named}/verify-md5", "POST", "attachments:verify_md5", level=level),
            r(f"{named}/compress", "POST", "attachments:set_compressed", level=level, compressed=True),
            r(f"{named}/uncompress", "POST", "attachments:set_compressed", level=level, compressed=False),
        ]
        entries += [r(f"{named}/{field}", "GET", "attachments:one_value", level=level, field=field)
                    for field in ("md5", "size", "is-compressed", "compressed-md5", "compressed-size")]
    # views of a resource's DICOM content (resource_views.py)
    entries += [
        r(f"{instance}/pdf", "GET", "resource_views:pdf"),
        r(f"{instance}/export", "POST", "resource_views:export"),
        r(f"/series/{_ID}/ordered-slices", "GET", "resource_views:ordered_slices"),
        r(f"/studies/{_ID}/module-patient", "GET", "resource_views:module", level=Level.STUDY,
          module_level=Level.PATIENT),
        r("/tools/reconstruct", "POST", "resource_views:reconstruct_all"),
    ]
    for level in Level:
        one = f"/{level.plural}/{_ID}"
        entries += [r(f"{one}/module", "GET", "resource_views:module", level=level, module_level=level),
                    r(f"{one}/reconstruct", "POST", "resource_views:reconstruct_resource", level=level)]
        if level != Level.INSTANCE:
            entries.append(r(f"{one}/instances-tags", "GET", "resource_views:instances_tags", level=level))
    # DICOMDIR media (media.py)
    entries += [r("/tools/create-media", "POST", "media:create_media", extended=False),
                r("/tools/create-media-extended", "POST", "media:create_media", extended=True)]
    entries += [r(f"/{level.plural}/{_ID}/media", "GET POST", "media:resource_media", level=level)
                for level in _PARENTS]
    # decoded frames and images (images.py)
    frame = f"{instance}/frames/{{frame}}"
    for base in (instance, frame):
        entries += [r(f"{base}/{kind}", "GET", "images:image", kind=kind)
                    for kind in ("preview", "rendered", "image-uint8", "image-uint16", "image-int16")]
        entries.append(r(f"{base}/matlab", "GET", "images:matlab"))
    entries += [
        r(frame, "GET", "images:frame_children"),
        r(f"{frame}/raw", "GET", "images:raw"),
        r(f"{frame}/raw.gz", "GET", "images:raw_gz"),
        r(f"{frame}/numpy", "GET", "images:numpy_frame"),
        r(f"{instance}/numpy", "GET", "images:numpy_instance"),
        r(f"/series/{_ID}/numpy", "GET", "images:numpy_series"),
    ]
    # jobs (jobs.py)
    entries += [r("/jobs", "GET", "jobs:list_jobs"), r(f"/jobs/{_ID}", "GET", "jobs:get_job")]
    entries += [r(f"/jobs/{_ID}/{action}", "POST", "jobs:act", action=action)
                for action in ("pause", "cancel", "resume", "resubmit")]
    entries.append(r(f"/jobs/{_ID}/{{key}}", "GET", "jobs:output"))
    return tuple(entries)


def upload_routes() -> list[tuple[str, tuple[str, ...]]]:
    """(path, methods) of the routes whose body is a file, for ``http_common.UploadRoutes``."""
    return [(entry.path, entry.methods) for entry in table() if entry.upload]


def module_of(handler: str) -> str:
    """The full name of the module of a table entry's ``handler``."""
    module = handler.partition(":")[0]
    return module if "." in module else f"{__package__}.{module}"


def handler_modules() -> list[str]:
    """Every module the table's handlers live in (the warm-start template imports them all)."""
    return sorted({module_of(entry.handler) for entry in table()})
