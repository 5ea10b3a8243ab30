"""Lua differential suite: the same LuaScripts file and the same scripts on the real Orthanc 1.10.1 and on pacsbox.

Compared: what /tools/execute-script prints (print's format, ParseJson/DumpJson numbers, REST calls from Lua),
error answers (syntax and runtime errors), the callbacks' effects on the archive (OnStoredInstance writing
metadata), ReceivedInstanceFilter refusing instances over REST and over C-STORE, IncomingHttpRequestFilter, and
that a filter defined through execute-script is never called.
"""

from __future__ import annotations

import io
import json
import time

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from pacsbox.faces.dimse.network import held_reactor
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

# loaded first: the second file's definitions replace these (they would refuse everything)
FIRST_SCRIPT = """
function ReceivedInstanceFilter(dicom, origin, info) return false end
function OnStoredInstance(instanceId, tags, metadata, origin)
  RestApiPut("/instances/" .. instanceId .. "/metadata/Sample", "first")
end
"""

SCRIPT = """
print("LuaScripts file loaded")
function ReceivedInstanceFilter(dicom, origin, info)
  -- refuse a patient, over any face; what the server tells about the instance must match too
  if dicom.PatientID == "FILTERERROR" then error("the filter failed") end
  return dicom.PatientID ~= "REFUSED" and info.HasPixelData == true
    and info.TransferSyntaxUID == "1.2.840.10008.1.2.1" and origin.RequestOrigin ~= nil
end
function OnStoredInstance(instanceId, tags, metadata, origin)
  -- the callback's effect on the archive: a user metadata naming who sent the instance
  RestApiPut("/instances/" .. instanceId .. "/metadata/Sample",
             DumpJson(origin) .. ":" .. tags.PatientID .. ":" .. metadata.SopClassUid)
end
function OnStableSeries(seriesId, tags, metadata)
  RestApiPut("/series/" .. seriesId .. "/metadata/Sample", "stable:" .. tags.Modality .. ":" .. metadata.RemoteAET)
end
function IncomingFindRequestFilter(query, origin)
  if query["0010,0020"] == "REWRITTEN" and origin.RemoteAet == "LUATEST" then query["0010,0020"] = "FINDME" end
  return query
end
function OutgoingFindRequestFilter(query, aet)
  if query["0010,0020"] == "OUTGOING" then query["0010,0020"] = "FINDME2" end
  return query
end
function IncomingHttpRequestFilter(method, uri, ip, username, headers)
  return not (uri == "/patients" and headers["x-refuse"] == "yes")
end
"""


def instance(key: str) -> bytes:
    return to_bytes(make_dataset(patient_id=key, patient_name=f"Name^{key}", study_uid=uid("lua-study", key),
                                 series_uid=uid("lua-series", key), sop_uid=uid("lua-instance", key)))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lua")
    (folder / "first.lua").write_text(FIRST_SCRIPT)
    (folder / "callbacks.lua").write_text(SCRIPT)
    scripts = [str(folder / "first.lua"), str(folder / "callbacks.lua")]
    config = {"ExecuteLuaEnabled": True, "LuaScripts": scripts, "UserMetadata": {"Sample": 1024},
              "StableAge": 1, "DicomAlwaysAllowFind": True, "DicomAet": "LUASERVER"}
    with ReferenceOrthanc(extra_config=config, graceful_stop=False) as reference, RunningPacsbox(config) as ours:
        yield ours, reference


def _both(servers, method: str, path: str, **kwargs):
    ours, reference = servers
    mine = ours.session().request(method, ours.url + path, timeout=30, **kwargs)
    theirs = reference.session.request(method, reference.url + path, timeout=30, **kwargs)
    return mine, theirs


def _run(servers, script: str):
    return _both(servers, "POST", "/tools/execute-script", data=script)


@pytest.mark.parametrize("script", [
    'print("hello")',
    'print(1, 2, "x")',
    'print("", "a")',
    'print("a", "", "b", nil, true)',
    'print()',
    'x = 41',  # prints nothing: an empty answer
    'print(1.5, 10 // 3, 7 / 2, 2^53, _VERSION)',
    'print(ParseJson("{\\"a\\": 8042}").a)',
    'print(DumpJson(ParseJson("{\\"a\\": 8042, \\"b\\": [1, 2.5], \\"c\\": null, \\"d\\": true, \\"e\\": {}}")))',
    'print(DumpJson({1.5, "2", " 3 ", "0x10", "1e2", "abc", true}))',
    'print(DumpJson({[1] = 1, [3] = 3}), DumpJson({a = 1}, true), DumpJson({}), DumpJson("x"), DumpJson(nil))',
    'print(DumpJson(1e20), DumpJson(0.1), DumpJson(2^63))',
    'print(ParseJson("not json"), ParseJson("[1,2]")[2], ParseJson("12345678901234567890"))',
    'PrintRecursive({1, {2, 3}})',
    'PrintRecursive("leaf")',
    'print(RestApiGet("/nonexistent"), RestApiPut("/nonexistent", "x"), RestApiDelete("/nonexistent"))',
    'print(RestApiPost("/tools/find", "not json"))',
    'print(ParseJson(RestApiGet("/system")).ApiVersion)',
    'print(ParseJson(RestApiGet("/system", true)).Version)',
    'print(type(RestApiGet("/system", false, {["X-Anything"] = "1"})))',
    'print(type(CallSystem), type(HttpGet), type(HttpPost), type(HttpPut), type(HttpDelete), type(Delete))',
    'print(type(SendToModality), type(SendToPeer), type(SetHttpCredentials), type(GenerateDicomUid))',
    'print(GetOrthancConfiguration().ExecuteLuaEnabled, GetOrthancConfiguration().UserMetadata.Sample)',
])
def test_execute_script_prints_as_orthanc(servers, script):
    mine, theirs = _run(servers, script)
    assert (mine.status_code, mine.text) == (theirs.status_code, theirs.text), script
    assert mine.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("script", [
    'error("boom")',
    'this is not lua',
    'local t = nil; t.x = 1',
    'print(undefined_function())',
    'error({code = 1})',  # not a message: Orthanc's generic internal error
])
def test_script_errors_answer_as_orthanc(servers, script):
    mine, theirs = _run(servers, script)
    assert mine.status_code == theirs.status_code == 500
    keys = ("HttpStatus", "Message", "OrthancError", "OrthancStatus", "Method", "Uri", "Details")
    assert {k: mine.json().get(k) for k in keys} == {k: theirs.json().get(k) for k in keys}
    assert _both(servers, "GET", "/system")[0].status_code == 200  # still serving


def test_state_persists_between_scripts(servers):
    _run(servers, "kept = 7")
    mine, theirs = _run(servers, "print(kept * 6)")
    assert mine.text == theirs.text == "42\n"


def test_rest_calls_from_lua_see_the_archive(servers):
    for server_answer in _both(servers, "POST", "/instances", data=instance("FOUND")):
        assert server_answer.status_code == 200
    script = ('local found = ParseJson(RestApiPost("/tools/find", DumpJson({Level = "Patient", '
              'Query = {PatientID = "FOUND"}, Expand = true})))\n'
              'print(#found, found[1].MainDicomTags.PatientID, found[1].MainDicomTags.PatientName)')
    mine, theirs = _run(servers, script)
    assert (mine.status_code, mine.text) == (theirs.status_code, theirs.text) == (200, "1, FOUND, Name^FOUND\n")


def _metadata(server_session, url: str, instance_id: str, level: str = "instances") -> str | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # callbacks run after the upload's answer, on their own thread
        answer = server_session.get(f"{url}/{level}/{instance_id}/metadata/Sample")
        if answer.status_code == 200:
            return answer.text
        time.sleep(0.05)
    return None


def test_on_stored_instance_and_filter_over_rest(servers):
    ours, reference = servers
    for key in ("STORED", "REFUSED"):
        mine, theirs = _both(servers, "POST", "/instances", data=instance(key))
        assert mine.status_code == theirs.status_code == 200
        assert mine.json() == {k: v for k, v in theirs.json().items()}, key
    assert mine.json()["Status"] == "FilteredOut"
    stored_id = _both(servers, "POST", "/tools/lookup", data=uid("lua-instance", "STORED"))[1].json()[0]["ID"]
    assert _metadata(ours.session(), ours.url, stored_id) == _metadata(reference.session, reference.url, stored_id)
    origin = '{"RemoteIp":"127.0.0.1","RequestOrigin":"RestApi","Username":"admin"}'
    assert _metadata(ours.session(), ours.url, stored_id) == f"{origin}:STORED:{CT_IMAGE}"
    mine, theirs = _both(servers, "POST", "/tools/lookup", data=uid("lua-instance", "REFUSED"))
    assert mine.json() == theirs.json() == []  # nothing stored
    mine, theirs = _both(servers, "POST", "/instances", data=instance("FILTERERROR"))
    assert mine.status_code == theirs.status_code == 500
    keys = ("OrthancStatus", "Message", "Details")
    assert {k: mine.json()[k] for k in keys} == {k: theirs.json()[k] for k in keys}
    assert mine.json()["Details"].endswith(": the filter failed")


def _cstore(port: int, aet: str, keys: list[str]) -> list[int]:
    ae = AE(ae_title="LUATEST")
    ae.add_requested_context(CT_IMAGE)
    association = ae.associate("127.0.0.1", port, ae_title=aet)
    assert association.is_established
    try:
        with held_reactor(association):  # several stores on one association: pynetdicom's race (see held_reactor)
            return [association.send_c_store(pydicom.dcmread(io.BytesIO(instance(key)))).Status for key in keys]
    finally:
        association.release()


def test_filter_over_c_store(servers):
    ours, reference = servers
    keys = ["CSTORED", "REFUSED", "FILTERERROR"]
    statuses = _cstore(ours.dicom_port, ours.aet, keys)
    assert statuses == _cstore(reference.dicom_port, reference.aet, keys) == [0, 0, 0xA700]
    for key, expected in (("CSTORED", 1), ("REFUSED", 0), ("FILTERERROR", 0)):
        mine, theirs = _both(servers, "POST", "/tools/lookup", data=uid("lua-instance", key))
        assert len(mine.json()) == len(theirs.json()) == expected, key
    stored_id = _both(servers, "POST", "/tools/lookup", data=uid("lua-instance", "CSTORED"))[1].json()[0]["ID"]
    assert _metadata(ours.session(), ours.url, stored_id) == _metadata(reference.session, reference.url, stored_id)
    origin = {"CalledAet": ours.aet, "RemoteAet": "LUATEST", "RemoteIp": "127.0.0.1", "RequestOrigin": "DicomProtocol"}
    expected = f"{json.dumps(origin, separators=(',', ':'))}:CSTORED:{CT_IMAGE}"
    assert _metadata(ours.session(), ours.url, stored_id) == expected


def test_filter_defined_by_execute_script_is_never_called(servers):
    # the main state's OnStoredInstance is replaced, the filter state's ReceivedInstanceFilter is not touched
    script = 'function ReceivedInstanceFilter() return false end'
    assert [a.status_code for a in _run(servers, script)] == [200, 200]
    mine, theirs = _both(servers, "POST", "/instances", data=instance("AFTERDEFINE"))
    assert mine.json()["Status"] == theirs.json()["Status"] == "Success"


def test_incoming_http_request_filter(servers):
    mine, theirs = _both(servers, "GET", "/patients", headers={"X-Refuse": "yes"})
    assert (mine.status_code, mine.text) == (theirs.status_code, theirs.text) == (403, "")
    mine, theirs = _both(servers, "GET", "/patients", headers={"X-Refuse": "no"})
    assert mine.status_code == theirs.status_code == 200


def test_execute_script_is_off_by_default():
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox() as ours:
        mine = ours.session().post(ours.url + "/tools/execute-script", data='print(1)')
        theirs = reference.session.post(reference.url + "/tools/execute-script", data='print(1)')
        assert (mine.status_code, mine.text) == (theirs.status_code, theirs.text) == (403, "")


def test_on_stable_series(servers):
    ours, reference = servers
    _both(servers, "POST", "/instances", data=instance("STABLE"))
    series_id = _both(servers, "POST", "/tools/lookup", data=uid("lua-series", "STABLE"))[1].json()[0]["ID"]
    mine = _metadata(ours.session(), ours.url, series_id, "series")
    assert mine == _metadata(reference.session, reference.url, series_id, "series") == "stable:CT:"


def _cfind_patient_ids(port: int, aet: str, patient_id: str) -> list[str]:
    ae = AE(ae_title="LUATEST")
    ae.add_requested_context(STUDY_ROOT_FIND)
    association = ae.associate("127.0.0.1", port, ae_title=aet)
    assert association.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id
    query.StudyInstanceUID = ""
    try:
        return [str(answer.PatientID) for status, answer in association.send_c_find(query, STUDY_ROOT_FIND)
                if status is not None and status.Status in (0xFF00, 0xFF01)]
    finally:
        association.release()


def test_incoming_find_request_filter_rewrites_the_query(servers):
    ours, reference = servers
    _both(servers, "POST", "/instances", data=instance("FINDME"))
    mine = _cfind_patient_ids(ours.dicom_port, ours.aet, "REWRITTEN")
    assert mine == _cfind_patient_ids(reference.dicom_port, reference.aet, "REWRITTEN") == ["FINDME"]


def test_outgoing_find_request_filter_rewrites_what_is_sent(servers):
    ours, reference = servers
    target = [reference.aet, "127.0.0.1", reference.dicom_port]  # both ask the real Orthanc
    for answer in _both(servers, "PUT", "/modalities/target", json=target):
        assert answer.status_code == 200
    reference.session.post(reference.url + "/instances", data=instance("FINDME2"))
    found = []
    for answer, url, session in zip(_both(servers, "POST", "/modalities/target/query",
                                          json={"Level": "Study", "Query": {"PatientID": "OUTGOING"}}),
                                    (ours.url, reference.url), (ours.session(), reference.session), strict=True):
        assert answer.status_code == 200, answer.text
        path = answer.json()["Path"]
        found.append([session.get(f"{url}{path}/answers/{n}/content?simplify").json()["PatientID"]
                      for n in session.get(f"{url}{path}/answers").json()])
    assert found[0] == found[1] == ["FINDME2"]


def test_http_functions_reach_a_server(servers):
    """HttpGet/HttpPost/HttpDelete with SetHttpCredentials, each server asking the other over loopback (the real
    Orthanc never answers a script that asks itself: its Lua lock is held while its HTTP filter waits for it)."""
    answers = []
    ours, reference = servers
    for server_url, session, target in ((ours.url, ours.session(), reference.url),
                                        (reference.url, reference.session, ours.url)):
        script = (f'SetHttpCredentials("admin", "admin")\n'
                  f'print(ParseJson(HttpGet("{target}/system")).ApiVersion)\n'
                  f'print(ParseJson(HttpPost("{target}/tools/lookup", "nothing-has-this-id"))[1])\n'
                  f'print(HttpGet("{target}/nonexistent"), HttpDelete("{target}/patients/nonexistent"))\n'
                  f'print(HttpGet("http://127.0.0.1:1/"))')
        answer = session.post(server_url + "/tools/execute-script", data=script, timeout=30)
        answers.append((answer.status_code, answer.text))
    assert answers[0] == (200, "16.0\nnil\nnil\nnil\n")
    assert answers[1] == answers[0]


def test_uploads_from_lua_have_the_lua_origin(servers, tmp_path):
    path = tmp_path / "from-lua.dcm"
    path.write_bytes(instance("FROMLUA"))
    script = (f'local f = io.open("{path}", "rb") local body = f:read("a") f:close()\n'
              'print(ParseJson(RestApiPost("/instances", body)).Status)')
    mine, theirs = _run(servers, script)
    assert (mine.status_code, mine.text) == (theirs.status_code, theirs.text) == (200, "Success\n")
    instance_id = _both(servers, "POST", "/tools/lookup", data=uid("lua-instance", "FROMLUA"))[1].json()[0]["ID"]
    mine, theirs = _both(servers, "GET", f"/instances/{instance_id}/metadata?expand")
    keys = ("Origin", "RemoteIP", "RemoteAET", "CalledAET", "HttpUsername")
    assert {k: mine.json().get(k) for k in keys} == {k: theirs.json().get(k) for k in keys}
    assert mine.json()["Origin"] == "Lua"
    ours, reference = servers
    mine = _metadata(ours.session(), ours.url, instance_id)
    assert mine == _metadata(reference.session, reference.url, instance_id)
    assert mine == f'{{"RequestOrigin":"Lua"}}:FROMLUA:{CT_IMAGE}'
