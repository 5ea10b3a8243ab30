"""Cold start (issue 24): what ``pacsbox serve`` imports to answer ``GET /system`` imports none of pydicom, numpy,
pynetdicom, lupa or Pillow; they load on the first request that needs them, and that request is answered as before.

Each check runs in a fresh interpreter (this one has imported everything already): it starts what ``serve`` starts
(the CLI's modules, then ``pacsbox.server.Server``, which builds the same runtime in this process), asks over HTTP,
and reports what it saw as JSON. An import hook records, for each heavy package, the pacsbox modules on the stack
when it was first imported: a failure names the chain that brought it in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HEAVY = ("pydicom", "numpy", "pynetdicom", "lupa", "PIL")

# Run in the child: the hook, then what `pacsbox serve` imports and starts, then GET /system.
_PRELUDE = textwrap.dedent("""
    import importlib.abc, json, sys, traceback, urllib.request, base64
    HEAVY = %r
    chains = {}

    class RecordFirstImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top in HEAVY and top not in chains:
                chains[top] = [f"{frame.filename.split('/src/')[-1]}:{frame.lineno}"
                               for frame in traceback.extract_stack()[:-1] if "/pacsbox/" in frame.filename]
            return None  # the normal finders import it

    sys.meta_path.insert(0, RecordFirstImport())

    import pacsbox.cli, pacsbox.cli_common, pacsbox.core.config, pacsbox.core.config_check, pacsbox.server
    import pacsbox.lifecycle.logfile  # managed instances serve with --log-file
    from pacsbox.server import Server

    server = Server({"HttpPort": 0, "DicomPort": 0, "AuthenticationEnabled": True,
                     "RegisteredUsers": {"alice": "secret"}}).start()
    token = base64.b64encode(b"alice:secret").decode()

    def call(method, path, body=None):
        request = urllib.request.Request(server.url + path, data=body, method=method,
                                         headers={"Authorization": "Basic " + token})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())

    report = {"port": server.http_port}
    report["system"] = call("GET", "/system")
    report["loaded"] = {top: chains.get(top) for top in HEAVY if top in sys.modules}
""") % (HEAVY,)


def _run_child(script: str, tmp_path: Path) -> dict:
    path = tmp_path / "child.py"
    path.write_text(_PRELUDE + textwrap.dedent(script) + "\nserver.stop()\nprint(json.dumps(report))\n")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _offenders(loaded: dict) -> str:
    return "\n".join(f"{top} imported by: {' -> '.join(chain or ['(outside pacsbox)'])}"
                     for top, chain in loaded.items())


def test_serving_get_system_imports_no_dicom_image_or_lua_library(tmp_path):
    report = _run_child("", tmp_path)
    status, system = report["system"]
    assert status == 200
    assert system["HttpPort"] == report["port"]
    assert system["DicomAet"] == "PACSBOX" and system["ApiVersion"] >= 1 and "Version" in system
    assert not report["loaded"], "importing what `pacsbox serve` needs to answer GET /system loaded:\n" + \
        _offenders(report["loaded"])


def _instance(patient_name: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    dataset.PatientName, dataset.PatientID = patient_name, "LAZY-1"
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.Modality = "OT"
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_lazily_started_server_stores_and_reads_tags_on_first_use(tmp_path):
    (tmp_path / "instance.dcm").write_bytes(_instance("Lazy^Loaded"))
    report = _run_child("""
        report["before"] = sorted(top for top in HEAVY if top in sys.modules)
        status, stored = call("POST", "/instances", open("instance.dcm", "rb").read())
        report["stored"] = status, stored
        report["tags"] = call("GET", f"/instances/{stored['ID']}/tags?simplify")
        report["after"] = sorted(top for top in HEAVY if top in sys.modules)
    """, tmp_path)
    status, stored = report["stored"]
    assert status == 200 and stored["Status"] == "Success"
    status, tags = report["tags"]
    assert status == 200
    assert tags["PatientName"] == "Lazy^Loaded" and tags["PatientID"] == "LAZY-1" and tags["Modality"] == "OT"
    assert "pydicom" in report["after"]  # loaded by the first use, in the same process that started without it


def test_plain_tables_agree_with_pydicom():
    """The values the readers hold as plain constants, so as not to import pydicom at start, are pydicom's."""
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ImplicitVRLittleEndian,
        JPEGLSLossless,
        JPEGLSNearLossless,
    )
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

    from pacsbox.core import dicom_nesting, transcoding

    assert set(dicom_nesting.VR_NAMES) == {vr.value for vr in VR if len(vr.value) == 2}
    assert set(dicom_nesting.EXPLICIT_VR_LENGTH_32) == {str(vr) for vr in EXPLICIT_VR_LENGTH_32}
    uncompressed = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
    assert set(transcoding.UNCOMPRESSED) == uncompressed
    assert set(transcoding.JPEG_LS) == {JPEGLSLossless, JPEGLSNearLossless}
    assert str(transcoding.JPEG_LS_NEAR_LOSSLESS) == JPEGLSNearLossless
    # the per-element loops tell a raw element from a converted one as a tuple (RawDataElement is a NamedTuple)
    assert issubclass(RawDataElement, tuple) and not issubclass(DataElement, tuple)


def test_saved_job_types_are_the_jobs_own():
    """The jobs engine learns to rebuild saved modification jobs by these names, without importing the jobs."""
    from pacsbox.core.modify_jobs import MergeStudyJob, ResourceModificationJob, SplitStudyJob
    from pacsbox.core.modify_jobs_saved import JOB_TYPES

    assert (ResourceModificationJob.job_type, MergeStudyJob.job_type, SplitStudyJob.job_type) == JOB_TYPES


def test_the_orthanc_faces_saved_job_types_are_its_jobs_own():
    """The Orthanc face's store and retrieve jobs, learnt by name at start without importing them."""
    from pacsbox.faces.orthanc.job_types import DicomModalityStoreJob, OrthancPeerStoreJob
    from pacsbox.faces.orthanc.saved_job_types import JOB_TYPES

    assert (DicomModalityStoreJob.job_type, OrthancPeerStoreJob.job_type, "DicomMoveScu", "DicomGetScu") == JOB_TYPES


def test_the_xnat_catalog_loads_on_the_first_store_it_files_and_loses_none(tmp_path):
    """A REST store builds no catalog; the first C-STORE (which XNAT's DICOM receiver files in the prearchive, in
    the store's transaction) builds it and is filed, though no XNAT request came before it."""
    (tmp_path / "rest.dcm").write_bytes(_instance("Rest^Stored"))
    (tmp_path / "received.dcm").write_bytes(_instance("Received^Anon"))
    report = _run_child("""
        def catalog_modules():
            return sorted(name for name in sys.modules
                          if name.startswith("pacsbox.core.catalog")  # its holder and tables load at start
                          and name not in ("pacsbox.core.catalog_lazy", "pacsbox.core.catalog_schema"))

        report["at_start"] = catalog_modules()
        report["rest"] = call("POST", "/instances", open("rest.dcm", "rb").read())[0]
        report["after_rest_store"] = catalog_modules()
        from pydicom import dcmread
        from pynetdicom import AE

        dataset = dcmread("received.dcm")
        ae = AE(ae_title="SENDER")
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
        association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        report["c_store"] = association.send_c_store(dataset).Status
        association.release()
        report["after_c_store"] = "pacsbox.core.catalog" in sys.modules
        with server.archive.index.reading() as db:  # the site's prearchive is for XNAT's administrators only
            report["prearchive"] = db.execute("SELECT project, subject, source FROM xnat_prearchive").fetchall()
        report["projects"] = call("GET", "/data/projects?format=json")[0]
    """, tmp_path)
    assert report["at_start"] == [], report["at_start"]
    assert report["rest"] == 200 and report["after_rest_store"] == []
    assert report["c_store"] == 0 and report["after_c_store"]
    assert report["prearchive"] == [["Unassigned", "Received_Anon", "dicom"]]
    assert report["projects"] == 200


def test_a_server_without_lua_loads_no_lua_module_and_refuses_scripts(tmp_path):
    """Without LuaScripts or ExecuteLuaEnabled no Lua can ever run: the engine's modules stay out of the process,
    and POST /tools/execute-script answers 403 with an empty body, as Orthanc does. The Orthanc face's job and
    peer modules stay out too."""
    report = _run_child("""
        report["lua_modules"] = sorted(name for name in sys.modules if name.startswith("pacsbox.lua"))
        # what a server that runs no job and sends to no peer never needs (their routes import them on first use)
        report["out_of_start"] = sorted(name for name in sys.modules if name in (
            "pacsbox.faces.orthanc.job_types", "pacsbox.faces.orthanc.peers", "pacsbox.faces.orthanc.scu_params"))
        report["peers"] = call("GET", "/peers")
        request = urllib.request.Request(server.url + "/tools/execute-script", data=b"print(1)", method="POST",
                                         headers={"Authorization": "Basic " + token})
        try:
            urllib.request.urlopen(request, timeout=60)
            report["script"] = None
        except urllib.error.HTTPError as error:
            report["script"] = error.code, error.read().decode()
    """, tmp_path)
    assert report["lua_modules"] == []
    assert report["out_of_start"] == []
    assert report["peers"] == [200, []]  # the peers' routes load their module on first use
    assert report["script"] == [403, ""]


# Run in a child as `python -m pacsbox serve ...`: a hook records, for each module watched, the files on the stack
# when it was first imported; once GET /system answers, the report is written and the server is stopped.
_SERVE_CHILD = textwrap.dedent("""
    import base64, importlib.abc, json, os, runpy, signal, sys, threading, traceback, urllib.request
    WATCHED, PORT, REPORT = %r, %d, %r
    chains = {}

    class RecordFirstImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name in WATCHED and name not in chains:
                chains[name] = [frame.filename for frame in traceback.extract_stack()[:-1]]
            return None

    sys.meta_path.insert(0, RecordFirstImport())

    def probe():
        request = urllib.request.Request(f"http://127.0.0.1:{PORT}/system",
                                         headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
        while True:
            try:
                status = urllib.request.urlopen(request, timeout=5).status
                break
            except OSError:
                threading.Event().wait(0.02)
        with open(REPORT, "w") as report:
            json.dump({"status": status, "chains": chains, "loaded": sorted(set(WATCHED) & set(sys.modules))}, report)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe, daemon=True).start()
    sys.argv = ["pacsbox", *sys.argv[1:]]
    runpy.run_module("pacsbox", run_name="__main__", alter_sys=True)
""")


def test_serve_reads_its_command_line_without_click(tmp_path):
    """``python -m pacsbox serve`` with plain options runs ``cli_serve`` and never ``pacsbox.cli``, and Uvicorn is
    loaded without its own command line (``pacsbox.uvicorn_parts``): a serving process never imports click."""
    from tests.support.orthanc_ref import free_port

    port = free_port()
    (tmp_path / "config.json").write_text(json.dumps({"RegisteredUsers": {"a": "b"}, "AuthenticationEnabled": True}))
    watched = ["click", "pacsbox.cli", "pacsbox.cli_common", "uvicorn"]
    script = tmp_path / "serve_child.py"
    script.write_text(_SERVE_CHILD % (watched, port, str(tmp_path / "report.json")))
    done = subprocess.run([sys.executable, str(script), "serve", "--config", str(tmp_path / "config.json"),
                           "--data-dir", str(tmp_path / "data"), "--http-port", str(port), "--dicom-port", "0"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == 200
    assert "uvicorn" in report["loaded"]
    assert not {"click", "pacsbox.cli", "pacsbox.cli_common"} & set(report["loaded"]), report["chains"]


def test_the_archive_and_the_dicom_port_open_without_the_http_stack(tmp_path):
    """What a server needs before its HTTP face (the configuration, the archive with its jobs engine and event
    log, the DICOM listener accepting) imports no event loop, web framework or command line library: a start
    path may listen and answer before any of them loads (issue 24's cold start)."""
    script = textwrap.dedent("""
        import json, socket, sys
        from pacsbox.core.assembly import open_archive
        from pacsbox.core.config import config_from_mapping
        from pacsbox.faces.dimse.scp import DicomServer
        from pacsbox.faces.dimse.scu import DicomClient

        config = config_from_mapping({"StorageDirectory": "data", "HttpPort": 0, "DicomPort": 0})
        archive = open_archive(config)
        archive.remote = DicomClient(archive, config)
        server = DicomServer(archive, config)
        port = server.start()
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))
        server.stop()
        archive.close()
        print(json.dumps(loaded))
    """)
    avoided = ["asyncio", "uvloop", "uvicorn", "starlette", "anyio", "click", *HEAVY]
    done = subprocess.run([sys.executable, "-c", script, *avoided], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
