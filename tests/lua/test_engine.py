"""Lua on a real (in-process) pacsbox server: limits, sandbox, errors, callbacks and jobs; the server keeps serving.

The real Orthanc has no limits to compare with (an endless loop there hangs its Lua state): these answers are
pacsbox's own, in Orthanc's error format (500, OrthancStatus 2031, Lua's message in Details).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from pacsbox.core.ids import Level
from pacsbox.server import Server
from tests.support.dicomgen import make_dataset, to_bytes, uid

LIMITS = {"ExecuteLuaEnabled": True, "LuaMaximumExecutionTime": 0.5, "LuaMaximumOutputSize": 10_000,
          "LuaMaximumMemory": 64 * 1024 * 1024}


def instance(key: str) -> bytes:
    return to_bytes(make_dataset(patient_id=key, patient_name=f"Name^{key}", study_uid=uid("e-study", key),
                                 series_uid=uid("e-series", key), sop_uid=uid("e-instance", key)))


class Client:
    def __init__(self, server: Server) -> None:
        self.url = server.url
        self.session = requests.Session()
        self.session.auth = server.auth

    def run(self, script: str) -> requests.Response:
        return self.session.post(self.url + "/tools/execute-script", data=script, timeout=30)

    def lua_error(self, script: str) -> str:
        answer = self.run(script)
        assert answer.status_code == 500, answer.text
        body = answer.json()
        assert (body["OrthancStatus"], body["Message"]) == (2031, "Cannot execute a Lua command")
        assert self.session.get(self.url + "/system", timeout=10).status_code == 200  # still serving
        return body["Details"]


def _server(tmp_path: Path, script: str = "", **config) -> Server:
    scripts = []
    if script:
        path = tmp_path / "script.lua"
        path.write_text(script)
        scripts.append(str(path))
    return Server({**LIMITS, "LuaScripts": scripts, **config}, data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with _server(tmp_path_factory.mktemp("lua")) as server:
        yield Client(server)


@pytest.mark.parametrize("script", [
    "while true do end",
    "while true do pcall(function() while true do end end) end",  # pcall cannot swallow the time limit
    "local f = coroutine.wrap(function() while true do end end) f()",
    "local function f() return f() end f()",  # an endless tail call
])
def test_endless_scripts_end_with_an_error(client, script):
    started = time.monotonic()
    assert "LuaMaximumExecutionTime" in client.lua_error(script)
    assert time.monotonic() - started < 5
    assert client.run("print('after')").text == "after\n"  # the state is usable again


def test_output_and_memory_are_bounded(client):
    assert "LuaMaximumOutputSize" in client.lua_error("for i = 1, 1000 do print(string.rep('x', 100)) end")
    assert "LuaMaximumOutputSize" in client.lua_error("print(string.rep('x', 20000))")
    assert "not enough memory" in client.lua_error("local s = string.rep('x', 1e9)")
    # many allocations, each allowed, that add up past LuaMaximumMemory (fast: a hundred 1 MB strings)
    many = "local t = {} for i = 1, 100 do t[i] = string.rep('y', 1e6) .. i end"
    assert "not enough memory" in client.lua_error(many)
    assert client.run("print(#string.rep('x', 5000))").text == "5000\n"


@pytest.mark.parametrize(("script", "expected"), [
    ("os.execute('true')", "os.execute is refused by pacsbox: set LuaSystemCallsAllowed to true"),
    ("io.popen('true')", "io.popen is refused"),
    ("CallSystem('true', {})", "CallSystem is refused by pacsbox: set LuaSystemCallsAllowed to true"),
    ("io.open('/tmp/pacsbox-lua-test', 'w')", "io.open for writing is refused"),
    ("os.remove('/tmp/pacsbox-lua-test')", "os.remove is refused"),
    ("os.exit(1)", "os.exit is refused"),
    ("io.read()", "io.read (standard input) is refused"),
    ("this is not lua", "syntax error near 'is'"),
    ("local t = nil; t.x = 1", "attempt to index a nil value (local 't')"),
    ("Delete('x')", "Delete can only be called from a Lua callback"),
])
def test_refused_and_broken_scripts(client, script, expected):
    details = client.lua_error(script)
    assert expected in details
    assert details.startswith('[string "line"]:1: ')  # with the line, as Orthanc reports Lua errors


def test_sandbox_leaves_no_way_out(client):
    answer = client.run("print(debug, python, package.loadlib, io.stdin, type(RestApiGet))")
    assert answer.text == "nil, nil, nil, nil, function\n"
    assert client.run("print(io.open('/etc/hostname') ~= nil)").text == "true\n"  # reading stays allowed
    assert client.lua_error("print(RestApiGet.__globals__)")  # a function, not a Python object


@pytest.mark.parametrize(("script", "expected"), [
    # a precompiled chunk is never loaded: Lua 5.3 does not verify bytecode, and a crafted one crashes it
    ("assert(load(string.dump(function() return 1 end)))", "attempt to load a binary chunk"),
    ("assert(load('\\27Lua' .. string.rep('x', 100)))", "attempt to load a binary chunk"),
    ("dofile()", "dofile on standard input is refused"),
    ("loadfile()", "loadfile on standard input is refused"),
    # a finalizer runs with the time limit's hook off: one that never returns would hold the state for ever
    ("setmetatable({}, {__gc = function() while true do end end})", "__gc metamethods are refused"),
])
def test_what_would_escape_the_limits_is_refused(client, script, expected):
    started = time.monotonic()
    assert expected in client.lua_error(script)
    assert time.monotonic() - started < 5
    assert client.run("print(load('return 1 + 1')(), setmetatable({}, {__index = {a = 3}}).a)").text == "2, 3\n"


def test_unknown_routes_are_nil_and_rest_calls_are_in_process(client):
    answer = client.run("print(RestApiGet('/nonexistent'), RestApiPost('/tools/find', '{}'), "
                        "ParseJson(RestApiGet('/statistics')).CountPatients)")
    assert answer.text == "nil, nil, 0.0\n"


def test_one_script_at_a_time_per_state(client):
    client.run("counter = 0")
    answers: list[requests.Response] = []

    def bump() -> None:
        answers.append(client.run("local before = counter for i = 1, 1e5 do end counter = before + 1"))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4
    assert client.run("print(counter)").text == "4\n"


def test_callbacks_jobs_and_errors(tmp_path):
    marker = tmp_path / "finalized.txt"
    script = f"""
    initialized = "yes"
    beats = 0
    function Initialize() initialized = "by Initialize" end
    function Finalize() local f = io.open("{marker}", "w") f:write("finalized") f:close() end
    function OnHeartBeat() beats = beats + 1 end
    function OnStoredInstance(instanceId, tags, metadata, origin)
      if tags.PatientID == "DELETED" then Delete(instanceId) end
      if tags.PatientID == "FAILING" then error("callback failed") end
      if tags.PatientID == "LOOPING" then while true do end end
    end
    function ReceivedInstanceFilter(dicom, origin, info)
      if dicom.PatientID == "FILTERERROR" then error("filter failed") end
      return true
    end
    """
    server = _server(tmp_path, script, LuaHeartBeatPeriod=1, LuaFileWritesAllowed=True)
    with server:
        client = Client(server)
        assert client.run("print(initialized)").text == "by Initialize\n"
        for key in ("DELETED", "FAILING", "LOOPING", "KEPT"):
            answer = client.session.post(server.url + "/instances", data=instance(key))
            assert answer.status_code == 200 and answer.json()["Status"] == "Success"
        answer = client.session.post(server.url + "/instances", data=instance("FILTERERROR"))
        assert answer.status_code == 500  # as Orthanc: the upload fails with the filter's Lua error
        assert answer.json()["Details"] == '[string "line"]:13: filter failed'  # the line in the file
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.archive.statistics()["instances"] != 3:
            time.sleep(0.05)
        kept = {row.main_tags["PatientID"] for row in server.archive.list_resources(Level.PATIENT)}
        # the callback's job deleted one; the failing and the endless callbacks lost nothing
        assert kept == {"FAILING", "LOOPING", "KEPT"}
        assert client.run("print('still serving')").text == "still serving\n"
        time.sleep(1.5)
        assert int(client.run("print(beats)").text) >= 1
    assert marker.read_text() == "finalized"


def test_a_broken_lua_scripts_file_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match=r"LuaScripts: .*script.lua: \[string \"line\"\]:1: syntax error"):
        _server(tmp_path, "this is not lua").start()


def test_lua_scripts_are_relative_to_the_configuration_file(tmp_path):
    from pacsbox.core.config import load_config

    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a.lua").write_text("loaded = 'a'")
    config_file = tmp_path / "orthanc.json"
    config_file.write_text('{"LuaScripts": ["scripts/a.lua", "/absolute/b.lua"]}')
    assert load_config(config_file).LuaScripts == (str(tmp_path / "scripts" / "a.lua"), "/absolute/b.lua")


@pytest.mark.parametrize(("key", "value"), [("LuaMaximumExecutionTime", 0), ("LuaMaximumMemory", 1000),
                                            ("LuaMaximumOutputSize", "big"), ("LuaScripts", "one.lua")])
def test_bad_lua_options_are_refused(key, value):
    from pacsbox.core.config import config_from_mapping

    with pytest.raises(ValueError, match=key):
        config_from_mapping({key: value})


def test_tools_reset_restarts_lua(tmp_path):
    """/tools/reset restarts the server as Orthanc does: Finalize, then the LuaScripts loaded anew and Initialize."""
    marker = tmp_path / "finalized.txt"
    script = f"""
    function Initialize() counter = 0 end
    function Finalize() local f = io.open("{marker}", "a") f:write("F") f:close() end
    """
    with _server(tmp_path, script, LuaFileWritesAllowed=True) as server:
        client = Client(server)
        client.run("counter = counter + 5")
        assert client.run("print(counter)").text == "5\n"
        assert client.session.post(server.url + "/tools/reset", timeout=30).status_code == 200
        client = Client(server)  # new connections: the old server's keep-alive ones are gone
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                answer = client.run("print(counter)")
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        assert answer.text == "0\n"
        assert marker.read_text() == "F"
