"""/dicom-web/servers: the registry (seeded from DicomWeb.Servers, changed by PUT and DELETE) and the client side
(stow, qido, get, retrieve), pacsbox -> pacsbox and pacsbox -> the real Orthanc with its DICOMweb plugin, answers
and errors compared with the plugin's own."""

from __future__ import annotations

import http.server
import threading
import time

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from pacsbox.faces.dicomweb.servers import ServerRegistry
from tests.faces.dicomweb.conftest import PLUGIN_MISSING
from tests.support.orthanc_ref import ReferenceOrthanc, have_dicomweb_plugin
from tests.support.pacsbox_proc import RunningPacsbox

COMPARED_KEYS = ("HttpStatus", "Message", "OrthancStatus", "Details")


def servers_of(remote) -> dict:
    """The same seed for pacsbox and the plugin: the array form and the object form with extra properties."""
    return {"remote": [remote.url + "/dicom-web/", *remote.auth],
            "decorated": {"Url": remote.url + "/dicom-web", "Username": remote.auth[0], "Password": remote.auth[1],
                          "HttpHeaders": {"X-Test": "1"}, "Color": "blue"}}


def uids_of(data: bytes) -> tuple[str, str, str]:
    dataset = pydicom.dcmread(DicomBytesIO(data), stop_before_pixels=True)
    return dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID


def _local(loaded_pacsbox):
    with RunningPacsbox({"DicomWeb": {"Servers": servers_of(loaded_pacsbox)}}) as server:
        yield server


def _plugin(loaded_pacsbox):
    if not have_dicomweb_plugin():
        pytest.skip(PLUGIN_MISSING)
    config = {"DicomWeb": {"Enable": True, "Servers": servers_of(loaded_pacsbox)}}
    with ReferenceOrthanc(dicomweb=True, graceful_stop=False, extra_config=config) as reference:
        yield reference


@pytest.fixture(scope="module")
def local(loaded_pacsbox):
    """An empty pacsbox whose DICOMweb client knows ``loaded_pacsbox`` (holding the corpus)."""
    yield from _local(loaded_pacsbox)


@pytest.fixture(scope="module")
def plugin(loaded_pacsbox):
    """The real Orthanc + DICOMweb plugin, with the same seed; empty."""
    yield from _plugin(loaded_pacsbox)


# Tests that count what arrived, or stow the first study they list, need both sides as empty as the seed left them,
# whatever the module's other tests stored before them (any order): a pair of their own
@pytest.fixture
def own_local(loaded_pacsbox):
    yield from _local(loaded_pacsbox)


@pytest.fixture
def own_plugin(loaded_pacsbox):
    yield from _plugin(loaded_pacsbox)


def both(local, plugin, method: str, path: str, **kwargs):
    """The same request to pacsbox and to the plugin."""
    return (local.session().request(method, local.url + "/dicom-web" + path, **kwargs),
            plugin.session.request(method, plugin.url + "/dicom-web" + path, **kwargs))


def same_error(ours, theirs) -> None:
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    mine, reference = ours.json(), theirs.json()
    assert {key: mine.get(key) for key in COMPARED_KEYS} == {key: reference.get(key) for key in COMPARED_KEYS}


def test_registry_as_the_plugin(local, plugin):
    for path in ("/servers", "/servers?expand", "/servers/remote"):
        ours, theirs = both(local, plugin, "GET", path)
        assert ours.status_code == theirs.status_code == 200
        assert ours.json() == theirs.json()
    added = {"Url": "http://127.0.0.1:9/dicom-web/", "Username": "u", "Password": "p"}
    ours, theirs = both(local, plugin, "PUT", "/servers/added", json=added)
    assert ours.status_code == theirs.status_code == 200 and ours.json() == theirs.json() == {}
    assert both(local, plugin, "GET", "/servers?expand")[0].json()["added"] == {
        "HttpHeaders": [], "Password": None, "Pkcs11": False, "Timeout": 0, "Url": added["Url"], "Username": "u"}
    ours, theirs = both(local, plugin, "POST", "/servers/added/retrieve", json={"Resources": []})
    assert ours.status_code == theirs.status_code == 200 and ours.json() == theirs.json() == {}
    ours, theirs = both(local, plugin, "DELETE", "/servers/added")
    assert ours.status_code == theirs.status_code == 200
    assert "added" not in local.session().get(local.url + "/dicom-web/servers").json()
    for method, path, kwargs in [("GET", "/servers/missing", {}), ("DELETE", "/servers/added", {}),
                                 ("PUT", "/servers/bad", {"json": {"Username": "x"}}),
                                 ("PUT", "/servers/bad", {"data": "not json"}),
                                 ("POST", "/servers/missing/qido", {"json": {"Uri": "/studies"}}),
                                 ("POST", "/servers/remote/qido", {"json": {}}),
                                 ("POST", "/servers/remote/get", {"json": {"Uri": "/studies/1.2.3/metadata"}}),
                                 ("POST", "/servers/remote/retrieve", {"json": {}}),
                                 ("POST", "/servers/remote/stow", {"json": {"Resources": ["nope"]}}),
                                 ("POST", "/servers/remote/retrieve", {"json": {"Resources": ["1.2"]}}),
                                 ("POST", "/servers/remote/qido", {"json": [1]}),
                                 ("POST", "/servers/remote/get", {"json": {"Uri": "/studies",
                                                                           "Arguments": {"limit": 1}}}),
                                 ("POST", "/servers/remote/retrieve", {"json": {"Resources": [{"Study": "1.2.3"}]}})]:
        same_error(*both(local, plugin, method, path, **kwargs))


def test_dead_server(local, plugin):
    both(local, plugin, "PUT", "/servers/dead", json={"Url": "http://127.0.0.1:1/"})
    same_error(*both(local, plugin, "POST", "/servers/dead/qido", json={"Uri": "/studies"}))
    assert local.session().get(local.url + "/system").status_code == 200


def test_qido_and_get_as_the_plugin(local, plugin, corpus):
    study = uids_of(corpus[0][1])[0]
    for body in ({"Uri": "/studies"}, {"Uri": "studies", "Arguments": {"StudyInstanceUID": study}},
                 {"Uri": f"/studies/{study}/series", "Arguments": {"includefield": "all"}}):
        ours, theirs = both(local, plugin, "POST", "/servers/decorated/qido", json=body)
        assert ours.status_code == theirs.status_code == 200
        assert ours.json() == theirs.json() and ours.json()
    ours, theirs = both(local, plugin, "POST", "/servers/remote/get", json={"Uri": f"/studies/{study}/metadata"})
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"] and ours.content == theirs.content


def test_retrieve_then_stow_pacsbox_to_pacsbox_and_to_the_plugin(own_local, own_plugin, corpus):
    local, plugin = own_local, own_plugin
    study, series, instance = uids_of(corpus[0][1])
    other_study = uids_of(corpus[-1][1])[0]
    resources = [{"Study": study, "Series": series, "Instance": instance}, {"Study": other_study}]
    ours, theirs = both(local, plugin, "POST", "/servers/remote/retrieve", json={"Resources": resources})
    assert ours.status_code == theirs.status_code == 200
    assert ours.json() == theirs.json() and int(ours.json()["ReceivedInstancesCount"]) >= 2
    session = local.session()
    local_instances = session.get(local.url + "/instances?expand").json()
    assert len(local_instances) == int(ours.json()["ReceivedInstancesCount"])
    assert instance in {item["MainDicomTags"]["SOPInstanceUID"] for item in local_instances}
    # and back out: pacsbox -> a second pacsbox, and pacsbox -> the real plugin, by Orthanc IDs
    with RunningPacsbox() as target:
        for name, url, auth in [("target", target.url, target.auth), ("orthanc", plugin.url, plugin.auth)]:
            entry = {"Url": url + "/dicom-web/", "Username": auth[0], "Password": auth[1]}
            assert session.put(local.url + f"/dicom-web/servers/{name}", json=entry).status_code == 200
        patient = local_instances[0]["ParentSeries"]
        study_id = session.get(local.url + f"/series/{patient}").json()["ParentStudy"]
        stowed = session.post(local.url + "/dicom-web/servers/target/stow", json={"Resources": [study_id]})
        expected = len(session.get(local.url + f"/studies/{study_id}/instances").json())
        assert stowed.status_code == 200 and stowed.json() == {"InstancesCount": str(expected), "NetworkSizeMB": "0"}
        assert len(target.session().get(target.url + "/instances").json()) == expected
        before = len(plugin.session.get(plugin.url + "/instances").json())
        every = [item["ID"] for item in local_instances]
        stowed = session.post(local.url + "/dicom-web/servers/orthanc/stow", json={"Resources": every})
        assert stowed.status_code == 200 and stowed.json()["InstancesCount"] == str(len(every))
        assert len(plugin.session.get(plugin.url + "/instances").json()) >= max(before, len(every))


@pytest.mark.parametrize("servers", [["x"], {"bad": {"Username": "u"}}, {"bad": ["http://h/", "u"]}])
def test_bad_seed_is_refused(servers):
    with pytest.raises(ValueError, match=r"DicomWeb\.Servers"):
        ServerRegistry(servers)


class DeletingServer(http.server.ThreadingHTTPServer):
    """A DICOMweb store that takes DELETE, as dcm4chee and the cloud stores do (Orthanc does not): it records each
    path and answers 404 for UIDs that start with "9"."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_DELETE(self) -> None:
                server.deleted.append(self.path)
                self.send_response(404 if "/9" in self.path else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/dw/"


def test_delete_as_the_plugin(local, plugin):
    store = DeletingServer()
    try:
        for name, properties in [("deleting", {"HasDelete": True}), ("textual", {"HasDelete": "true"}),
                                 ("plain", {}), ("odd", {"HasDelete": "yes"})]:
            ours, theirs = both(local, plugin, "PUT", f"/servers/{name}", json={"Url": store.url, **properties})
            assert ours.status_code == theirs.status_code == 200
        for name in ("deleting", "textual", "plain"):
            ours, theirs = both(local, plugin, "GET", f"/servers/{name}")
            assert theirs.json() == ours.json()
        assert ("delete" in ours.json()) is False and "delete" in local.session().get(
            local.url + "/dicom-web/servers/deleting").json()
        same_error(*both(local, plugin, "GET", "/servers/odd"))  # a Boolean property that is neither
        targets = [{"Level": "Study", "StudyInstanceUID": "1.2"},
                   {"Level": "series", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.3"},
                   {"Level": "INSTANCE", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.3",
                    "SOPInstanceUID": "1.4"}]
        for target in targets:
            ours, theirs = both(local, plugin, "POST", "/servers/deleting/delete", json=target)
            assert ours.status_code == theirs.status_code == 200 and ours.json() == theirs.json() == {}
        assert store.deleted[0::2] == store.deleted[1::2] == [
            "/dw/studies/1.2", "/dw/studies/1.2/series/1.3", "/dw/studies/1.2/series/1.3/instances/1.4"]
        for name, body in [("deleting", {"Level": "Study", "StudyInstanceUID": "9.9"}),  # the store's 404
                           ("plain", {"Level": "Study", "StudyInstanceUID": "1.2"}), ("plain", "x"),
                           ("deleting", {"Level": "Study"}), ("deleting", [1]),
                           ("deleting", {"Level": "Patient", "StudyInstanceUID": "1"}),
                           ("deleting", {"Level": "Series", "StudyInstanceUID": "1"}),
                           ("deleting", {"Level": "Instance", "StudyInstanceUID": "1", "SeriesInstanceUID": "2"}),
                           ("deleting", {"Level": "Study", "StudyInstanceUID": 5}), ("missing", {})]:
            kwargs = {"data": body} if isinstance(body, str) else {"json": body}
            same_error(*both(local, plugin, "POST", f"/servers/{name}/delete", **kwargs))
        # a UID cannot reach another path of the store: it is one path segment
        hostile = {"Level": "Study", "StudyInstanceUID": "../../admin?x=1"}
        assert local.session().post(local.url + "/dicom-web/servers/deleting/delete", json=hostile).status_code == 200
        assert store.deleted[-1] == "/dw/studies/..%2F..%2Fadmin%3Fx%3D1"
    finally:
        store.shutdown()
        store.server_close()


def test_plugins_list_dicomweb_as_orthanc_with_its_plugin(local, plugin):
    ours, theirs = local.session().get(local.url + "/plugins"), plugin.session.get(plugin.url + "/plugins")
    assert ours.status_code == theirs.status_code == 200
    assert ours.json() == theirs.json() == ["explorer.js", "dicom-web"]
    ours = local.session().get(local.url + "/plugins/dicom-web")
    theirs = plugin.session.get(plugin.url + "/plugins/dicom-web")
    assert ours.status_code == theirs.status_code == 200
    same = ("Description", "ID", "Version")
    assert {key: ours.json()[key] for key in same} == {key: theirs.json()[key] for key in same}
    assert local.session().get(local.url + "/system").json()["PluginsEnabled"] is True
def _finished(session, url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 20
    while (job := session.get(f"{url}/jobs/{job_id}").json())["State"] not in ("Success", "Failure"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_asynchronous_transfers_are_jobs_as_the_plugin(own_local, own_plugin, corpus):
    """"Asynchronous": true on retrieve and stow (to a live and a dead server): the same job types, Content,
    errors and answers as the DICOMweb plugin 1.7."""
    local, plugin = own_local, own_plugin
    study = uids_of(corpus[0][1])[0]
    dead = {"Url": "http://127.0.0.1:1/dicom-web/"}
    seen = []
    for server, session in ((local, local.session()), (plugin, plugin.session)):
        url = server.url
        assert session.put(f"{url}/dicom-web/servers/dead", json=dead).status_code == 200
        jobs = {}
        for name, target, path, body in (
                ("retrieve", "remote", "retrieve", {"Resources": [{"Study": study}], "Asynchronous": True}),
                ("retrieve dead", "dead", "retrieve", {"Resources": [{"Study": study}], "Synchronous": False}),
                ("retrieve none", "remote", "retrieve", {"Resources": [], "Asynchronous": True})):
            answer = session.post(f"{url}/dicom-web/servers/{target}/{path}", json=body)
            assert answer.status_code == 200 and answer.json()["Path"] == f".././../jobs/{answer.json()['ID']}"
            jobs[name] = answer.json()["ID"]
        for job_id in jobs.values():  # the retrieved study is there before the stows list what to send
            _finished(session, url, job_id)
        studies = session.get(f"{url}/studies").json()
        for name, target in (("stow", "remote"), ("stow dead", "dead")):
            answer = session.post(f"{url}/dicom-web/servers/{target}/stow",
                                  json={"Resources": studies[:1], "Asynchronous": True, "Priority": 2})
            jobs[name] = answer.json()["ID"]
        found = {name: _finished(session, url, job_id) for name, job_id in jobs.items()}
        summary = {name: (job["Type"], job["State"], job["ErrorCode"], job["ErrorDescription"], job["ErrorDetails"],
                          job["Priority"], sorted(job["Content"])) for name, job in found.items()}
        summary["failed Content"] = {key: found["retrieve dead"]["Content"][key]
                                     for key in ("FunctionErrorCode", "FunctionErrorDescription")}
        summary["bad Asynchronous"] = session.post(f"{url}/dicom-web/servers/remote/stow",
                                                   json={"Resources": [], "Asynchronous": "x"}).json()["OrthancStatus"]
        seen.append(summary)
    assert seen[0] == seen[1]
    assert seen[0]["retrieve"][:2] == ("DicomWebWadoRetrieveClient", "Success")
    assert seen[0]["stow dead"][:3] == ("DicomWebStowClient", "Failure", 1)


def test_wado_jobs_as_the_plugin(local, plugin, corpus):
    """POST /servers/{id}/wado: a WADO-RS retrieval of one URI, stored, as a job that runs in the background
    unless asked to be synchronous; its answers, Content and failures as the plugin's."""
    study, series, instance = uids_of(corpus[1][1])
    other_study = uids_of(corpus[2][1])[0]
    seen = []
    for server, session in ((local, local.session()), (plugin, plugin.session)):
        url = server.url + "/dicom-web/servers"
        synchronous = session.post(f"{url}/remote/wado", json={"Uri": f"/studies/{study}/series/{series}/instances/"
                                                                      f"{instance}", "Synchronous": True})
        assert synchronous.status_code == 200, synchronous.text
        found = {"synchronous": synchronous.json()}
        for name, target, body in (("study", "remote", {"Uri": f"studies/{other_study}", "Arguments": {}}),
                                   ("unknown study", "remote", {"Uri": "/studies/1.2.3"}),
                                   ("metadata", "remote", {"Uri": f"/studies/{other_study}/metadata"}),
                                   ("unknown server", "nowhere", {"Uri": "/studies/1.2.3", "Priority": 3})):
            answer = session.post(f"{url}/{target}/wado", json=body)
            assert answer.status_code == 200 and answer.json()["Path"] == f".././../jobs/{answer.json()['ID']}"
            job = _finished(session, server.url, answer.json()["ID"])
            found[name] = (job["Type"], job["State"], job["ErrorCode"], job["Priority"], job["Content"])
        instances = session.get(server.url + "/instances?expand").json()
        found["stored"] = sorted(item["MainDicomTags"]["SOPInstanceUID"] for item in instances
                                 if item["MainDicomTags"]["SOPInstanceUID"] == instance
                                 or session.get(server.url + f"/instances/{item['ID']}/study").json()
                                 ["MainDicomTags"]["StudyInstanceUID"] == other_study)
        found["failures"] = [
            {key: answer.json().get(key) for key in COMPARED_KEYS} | {"status": answer.status_code}
            for answer in (session.post(f"{url}/remote/wado", json=body) for body in (
                {"Uri": "/studies/1.2.3", "Synchronous": True}, {"Uri": 5}, {}, [1], {"Uri": "/x", "Priority": "x"},
                {"Uri": "/x", "Synchronous": "x"}))]
        found["not json"] = session.post(f"{url}/remote/wado", data="x").json()["Details"]
        seen.append(found)
    assert seen[0] == seen[1]
    assert seen[0]["study"][:2] == ("DicomWebWadoRetrieveClient", "Success")
    assert seen[0]["unknown server"][4]["FunctionErrorDetails"] == "Inexistent server: nowhere"
    assert len(seen[0]["stored"]) > 1
