"""The web faces start light (issue 24): importing the Orthanc, XNAT and DICOMweb faces and building their
applications over an archive, then answering GET /system, loads none of pydicom, numpy, pynetdicom, lupa or Pillow;
the XNAT and DICOMweb faces load their modules (and the XNAT schemas) with their first request, and even that loads
no heavy module; and route patterns are compiled when a request needs them, not when the applications are built.

Each check runs in a fresh interpreter (the test process has long imported everything), which reports the first
import chain of each heavy module it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("pydicom", "numpy", "pynetdicom", "lupa", "PIL")
# The Orthanc face's modules that building its app and answering GET /system may load: the app, its route table
# (which names the handlers of the ~30 route modules without importing them), what create_app wires (errors, the
# Lua filter, the peer registry, saved-job loaders, the /tags cache, request metrics) and GET /system's handler.
ORTHANC_MODULES_FOR_SYSTEM = {
    "app", "route_table", "tools_settings",  # the route table takes the log categories' names from tools_settings
    "errors", "json", "params", "render", "request_metrics", "lua", "zipping",
    "saved_job_types",  # the names of the saved jobs; job_types, peers and scu_params load with their routes
    "tag_answers", "system", "quick_reads",  # the lean path of small reads (http_protocol)
}

# Records, for each heavy package, the pacsbox frames of the stack that first imported it; then builds the faces.
_PROBE = textwrap.dedent("""
    import asyncio, importlib.abc, json, sys, tempfile, traceback

    HEAVY = {heavy!r}
    chains = {{}}

    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.partition(".")[0]
            if top in HEAVY and top not in chains:
                chains[top] = [f"{{f.filename.rpartition('/src/')[2] or f.filename}}:{{f.lineno}} {{f.line}}"
                               for f in traceback.extract_stack()[:-1] if "pacsbox" in f.filename]
            return None

    sys.meta_path.insert(0, Watch())

    from pacsbox.core.assembly import open_archive
    from pacsbox.core.config import config_from_mapping
    from pacsbox.faces.dicomweb.app import create_app as dicomweb_app
    from pacsbox.faces.orthanc.app import create_app as orthanc_app
    from pacsbox.faces.xnat.app import create_app as xnat_app

    config = config_from_mapping({{"HttpPort": 0, "DicomPort": 0, "StorageDirectory": tempfile.mkdtemp(),
                                   "AuthenticationEnabled": False}})
    archive = open_archive(config)
    report = {{}}
    try:
        orthanc, xnat, dicomweb = orthanc_app(archive, config), xnat_app(archive, config), dicomweb_app(archive, config)
        report["built"] = dict(chains)
        report["xnat_schemas_at_start"] = "pacsbox.faces.xnat.schemas" in sys.modules
        report["dicomweb_routes_at_start"] = "pacsbox.faces.dicomweb.routing" in sys.modules

        async def get(app, path):
            scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                     "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}}
            sent = []

            async def receive():
                return {{"type": "http.request", "body": b"", "more_body": False}}

            async def send(message):
                sent.append(message)

            await app(scope, receive, send)
            return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

        status, body = asyncio.run(get(orthanc, "/system"))
        report["system"] = [status, json.loads(body).get("ApiVersion")]
        report["answered"] = dict(chains)
        report["orthanc_modules_after_system"] = sorted(name for name in sys.modules
                                                        if name.startswith("pacsbox.faces.orthanc."))
        from pacsbox.faces.orthanc.app import routes
        report["compiled_orthanc_routes"] = sum("path_regex" in vars(route) for route in routes())
        report["orthanc_routes"] = len(routes())
        xnat.app, dicomweb.app  # what their first request builds
        report["first_request_built"] = dict(chains)
        report["xnat_schemas_after_build"] = "pacsbox.faces.xnat.schemas" in sys.modules
        report["resources_before_patients"] = "pacsbox.faces.orthanc.resources" in sys.modules
        status, body = asyncio.run(get(orthanc, "/patients"))  # a route whose module GET /system did not load
        report["patients"] = [status, json.loads(body)]
        report["resources_after_patients"] = "pacsbox.faces.orthanc.resources" in sys.modules
    finally:
        archive.close()
    print(json.dumps(report))
""").format(heavy=HEAVY)


@pytest.fixture(scope="module")
def report() -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _chains(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{heavy} first imported by:\n    " + "\n    ".join(chain) for heavy, chain in found.items())


def test_faces_start_answer_and_build_without_heavy_modules(report):
    assert not report["built"], "importing the faces and building their apps imported:\n" + _chains(report["built"])
    assert report["system"][0] == 200 and report["system"][1], report["system"]
    assert not report["answered"], "answering GET /system imported:\n" + _chains(report["answered"])
    assert not report["first_request_built"], ("building the XNAT and DICOMweb apps (their first request) "
                                               "imported:\n" + _chains(report["first_request_built"]))


def test_xnat_and_dicomweb_load_with_their_first_request_and_routes_compile_when_tried(report):
    assert not report["xnat_schemas_at_start"], "the XNAT schemas were parsed before the face's first request"
    assert not report["dicomweb_routes_at_start"], "the DICOMweb routes were loaded before the face's first request"
    assert report["xnat_schemas_after_build"], "building the XNAT app did not load its schemas"
    # GET /system tried the few routes of its shape; the other ~240 patterns are not compiled yet
    assert 1 <= report["compiled_orthanc_routes"] <= 10 < report["orthanc_routes"], report


def test_orthanc_route_modules_load_with_the_first_request_that_reaches_them(report):
    loaded = {name.removeprefix("pacsbox.faces.orthanc.") for name in report["orthanc_modules_after_system"]}
    unexpected = sorted(loaded - ORTHANC_MODULES_FOR_SYSTEM)
    assert not unexpected, f"building the Orthanc app and answering GET /system loaded, needlessly: {unexpected}"
    assert "system" in loaded  # GET /system's handler, imported by its request
    # another route's module is imported by its first request, which it answers
    assert not report["resources_before_patients"], "resources.py was loaded before a request reached its routes"
    assert report["patients"] == [200, []], report["patients"]
    assert report["resources_after_patients"]
