"""Differential tests of the informational and server-control /tools routes and /plugins against the real Orthanc
1.10.1: the listing, metrics and metrics-prometheus (parsed by prometheus_client, counts equal to /statistics),
now, now-local, generate-uid, dicom-conformance (what it lists is what the SCP accepts), dicom-echo,
invalidate-tags, reset (the configuration is read again, data kept) and shutdown (the process ends; the
lifecycle manager sees it stopped)."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pynetdicom import AE

from tests.support import dcmtk
from tests.support.dicomgen import standard_corpus
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

from .tools_support import Pair, storescu

pytestmark = pytest.mark.skipif(not (have_orthanc() and dcmtk.have_dcmtk()), reason=SKIP_REASON)

UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PROMETHEUS_TYPE = "text/plain; version=0.0.4"


@pytest.fixture(scope="module")
def pair():
    """The real Orthanc without plugins, and pacsbox without its DICOMweb face (which /plugins would list)."""
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox({"DicomWeb": {"Enable": False}}) as ours:
        yield Pair(ours, reference)


@pytest.fixture
def own_pair():
    """A pair of its own, for a test that counts what both servers did since they started (metrics) or restarts
    them (reset): the shared one has seen whatever the tests before it did, in a shuffled order."""
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox({"DicomWeb": {"Enable": False}}) as ours:
        yield Pair(ours, reference)


# -- /tools and /plugins ------------------------------------------------------------------------------------------

def test_tools_lists_what_is_served_in_orthancs_order(pair):
    ours, theirs = pair.call("GET", "/tools")
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]
    ours, theirs = ours.json(), theirs.json()
    assert ours == sorted(ours) and set(ours) <= set(theirs), set(ours) - set(theirs)
    mine = {"accepted-transfer-syntaxes", "default-encoding", "dicom-conformance", "dicom-echo", "generate-uid",
            "invalidate-tags", "log-level", "metrics", "metrics-prometheus", "now", "now-local", "reset", "shutdown",
            "unknown-sop-class-accepted", *(f"log-level-{c}" for c in ("dicom", "generic", "http", "jobs", "lua",
                                                                          "plugins", "sqlite"))}
    assert mine <= set(ours), mine - set(ours)
    for name in ours:  # each listed child is a route (none takes DELETE), never an unknown one
        assert pair.ours_session.delete(f"{pair.ours.url}/tools/{name}").status_code == 405, name


@pytest.mark.parametrize("path", ["/plugins", "/plugins/explorer.js", "/plugins/foo", "/plugins/explorer.js/x"])
def test_plugins(pair, path):
    pair.compare("GET", path)


def test_system_advertises_what_is_served(pair):
    system = pair.ours_session.get(pair.ours.url + "/system").json()
    assert system["Version"] == "1.10.1"
    assert system["PluginsEnabled"] is True and system["StorageAreaPlugin"] is None
    assert system["DatabaseBackendPlugin"] is None and system["CheckRevisions"] is False
    assert set(system) >= set(pair.reference_session.get(pair.reference.url + "/system").json())


# -- metrics ------------------------------------------------------------------------------------------------------

def _metrics(response: requests.Response) -> dict[str, float]:
    assert response.status_code == 200 and response.headers["Content-Type"] == PROMETHEUS_TYPE
    assert "# " not in response.text  # Orthanc writes neither TYPE nor HELP
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            assert sample.timestamp is not None and abs(sample.timestamp - time.time()) < 3600, sample
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}" if labels else sample.name
            values[key] = sample.value
    return values


def test_metrics_switch_and_prometheus_text(own_pair):
    pair = own_pair
    pair.compare("GET", "/tools/metrics")
    for body in ("bogus", "0", ""):
        pair.compare("PUT", "/tools/metrics", data=body)
        pair.compare("GET", "/tools/metrics")
    ours, theirs = pair.compare("GET", "/tools/metrics-prometheus")  # disabled: empty on both
    assert ours.text == theirs.text == ""
    pair.compare("PUT", "/tools/metrics", data="true")
    pair.compare("GET", "/tools/metrics")

    for name, data in standard_corpus()[:5]:
        assert all(r.status_code == 200 for r in pair.call("POST", "/instances", data=data)), name
    servers = ((pair.ours.aet, pair.ours.dicom_port), (pair.reference.aet, pair.reference.dicom_port))
    for aet, port in servers:
        assert storescu(aet, port, standard_corpus()[6][1]).returncode == 0
        assert dcmtk.run("echoscu", "-aec", aet, "127.0.0.1", str(port)).returncode == 0
    ours, theirs = (_metrics(r) for r in pair.call("GET", "/tools/metrics-prometheus"))
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for side, values in (("ours", ours), ("theirs", theirs)):
        session, url = (pair.ours_session, pair.ours.url) if side == "ours" else \
            (pair.reference_session, pair.reference.url)
        statistics = session.get(url + "/statistics").json()
        for level in ("Patients", "Studies", "Series", "Instances"):
            assert values[f"orthanc_count_{level.lower()}"] == statistics[f"Count{level}"], (side, level)
        assert values["orthanc_disk_size_mb"] == pytest.approx(int(statistics["TotalDiskSize"]) / 2**20)
        assert values["orthanc_rest_api_active_requests"] == 1  # this very request
    assert ours["pacsbox_dimse_requests_total{operation=C-STORE}"] == 1
    assert ours["pacsbox_dimse_requests_total{operation=C-ECHO}"] == 1
    assert ours["pacsbox_rest_api_requests_total{method=POST,status=2xx}"] >= 5
    assert ours["orthanc_store_dicom_duration_ms"] >= 0 and ours["orthanc_rest_api_duration_ms"] >= 0


# -- now, generate-uid, invalidate-tags ---------------------------------------------------------------------------

@pytest.mark.parametrize("path,zone", [("/tools/now", datetime.timezone.utc), ("/tools/now-local", None)])
def test_now(pair, path, zone):
    expected = datetime.datetime.now(zone)
    # the two servers are asked one after the other, so their answers (to the second) differ when the two requests
    # straddle a second's boundary, more often on a loaded machine: ask again until both fell within one second
    for _attempt in range(5):
        ours, theirs = pair.call("GET", path)
        if ours.text == theirs.text:
            break
    assert ours.status_code == theirs.status_code == 200, (ours.text, theirs.text)
    assert ours.headers.get("Content-Type") == theirs.headers.get("Content-Type")
    assert ours.text == theirs.text
    for response in (ours, theirs):
        stamp = datetime.datetime.strptime(response.text, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
        assert abs((stamp - expected).total_seconds()) < 5, response.text


@pytest.mark.parametrize("level", ["patient", "study", "series", "instance", "", "bogus", "Study"])
def test_generate_uid(pair, level):
    path = f"/tools/generate-uid?level={level}"
    ours, theirs = pair.call("GET", path)
    assert ours.status_code == theirs.status_code, path
    assert ours.headers.get("Content-Type") == theirs.headers.get("Content-Type")
    if theirs.status_code == 200:
        shape = UUID if level == "patient" else UID
        assert shape.match(ours.text) and shape.match(theirs.text) and len(ours.text) <= 64, (ours.text, theirs.text)
        assert pair.ours_session.get(pair.ours.url + path).text != ours.text
    else:
        assert ours.text == theirs.text == ""
    pair.compare("GET", "/tools/generate-uid")


def test_invalidate_tags(pair):
    pair.compare("POST", "/tools/invalidate-tags")
    pair.compare("POST", "/tools/invalidate-tags", data="ignored")


# -- dicom-echo, dicom-conformance ----------------------------------------------------------------------------------

def test_dicom_echo(pair):
    for aet, port in ((pair.ours.aet, pair.ours.dicom_port), (pair.reference.aet, pair.reference.dicom_port)):
        for body in ({"AET": aet, "Host": "127.0.0.1", "Port": port}, [aet, "127.0.0.1", port],
                     {"AET": aet, "Host": "127.0.0.1", "Port": port, "Timeout": 5}):
            pair.compare("POST", "/tools/dicom-echo", data=json.dumps(body))
    for body in ("{}", "bogus", '{"AET": "X", "Host": "127.0.0.1"}', '{"AET": 1, "Host": "h", "Port": 1}',
                 '["X", "127.0.0.1"]', '{"AET": "X", "Host": "127.0.0.1", "Port": 70000}'):
        pair.compare("POST", "/tools/dicom-echo", data=body)
    closed = json.dumps({"AET": "NOBODY", "Host": "127.0.0.1", "Port": 1})
    ours, theirs = pair.call("POST", "/tools/dicom-echo", data=closed)
    assert ours.status_code == theirs.status_code == 500
    assert ours.json()["OrthancStatus"] == theirs.json()["OrthancStatus"] == 9


def test_dicom_conformance_lists_what_the_scp_accepts(pair):
    ours, theirs = pair.call("GET", "/tools/dicom-conformance")  # each states its own
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"] == "text/plain"
    text = ours.text
    section = text.split("C-Store SCP Conformance", 1)[1].split("Conformance", 1)[0]
    storage = re.findall(r"\| ([0-9.]+)$", section, re.MULTILINE)
    assert len(storage) > 100
    syntaxes = re.findall(r"\| ([0-9.]+)$", text.split("Transfer Syntaxes", 1)[1], re.MULTILINE)
    assert "1.2.840.10008.1.2.1" in syntaxes
    accepted = _accepted_storage_classes(pair.ours.aet, pair.ours.dicom_port, storage, syntaxes[0])
    assert accepted == set(storage)
    unknown = "1.2.826.0.1.3680043.9.7.1"
    assert unknown not in storage and not _accepted_storage_classes(pair.ours.aet, pair.ours.dicom_port, [unknown],
                                                                    syntaxes[0])
    # a narrowed list shows in the statement at once
    pair.both("PUT", "/tools/accepted-transfer-syntaxes", data='["1.2.840.10008.1.2"]')
    try:
        narrowed = pair.ours_session.get(pair.ours.url + "/tools/dicom-conformance").text
        assert re.findall(r"\| ([0-9.]+)$", narrowed.split("Transfer Syntaxes", 1)[1], re.MULTILINE) == \
            ["1.2.840.10008.1.2"]
    finally:
        pair.both("PUT", "/tools/accepted-transfer-syntaxes", data="*")


def _accepted_storage_classes(aet: str, port: int, sop_classes: list[str], syntax: str) -> set[str]:
    """The SOP classes a real association accepts, proposed 120 at a time (at most 128 contexts each)."""
    accepted: set[str] = set()
    for start in range(0, len(sop_classes), 120):
        ae = AE(ae_title="CONFORMANCE")
        for uid in sop_classes[start:start + 120]:
            ae.add_requested_context(uid, syntax)
        association = ae.associate("127.0.0.1", port, ae_title=aet)
        if association.is_established:
            accepted |= {str(cx.abstract_syntax) for cx in association.accepted_contexts}
            association.release()
    return accepted


# -- methods ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,method", [
    ("/tools", "POST"), ("/tools/now", "POST"), ("/tools/generate-uid", "PUT"), ("/tools/dicom-conformance", "POST"),
    ("/tools/dicom-echo", "GET"), ("/tools/invalidate-tags", "GET"), ("/tools/metrics-prometheus", "PUT"),
    ("/tools/reset", "GET"), ("/tools/shutdown", "GET"), ("/plugins", "DELETE"),
])
def test_wrong_methods_are_405_with_the_same_allow(pair, path, method):
    ours, theirs = pair.call(method, path)
    assert ours.status_code == theirs.status_code == 405
    allowed = [{m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD"} for r in (ours, theirs)]
    assert allowed[0] == allowed[1], allowed


# -- reset and shutdown -------------------------------------------------------------------------------------------

def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not come back in time")


def test_reset_reads_the_configuration_again_and_keeps_the_data(own_pair):
    """Both servers restart: on a pair of their own."""
    pair = own_pair
    pair.both("POST", "/instances", data=standard_corpus()[0][1])
    before = pair.same_counts()
    pair.both("PUT", "/tools/default-encoding", data="Utf8")
    config_path = pair.ours.directory / "config.json"
    config = json.loads(config_path.read_text().split("\n", 1)[1])
    config_path.write_text(json.dumps({**config, "Name": "renamed-by-reset"}))

    pair.both("PUT", "/tools/log-level", data="verbose")

    pair.compare("POST", "/tools/reset")
    for session, url in ((pair.ours_session, pair.ours.url), (pair.reference_session, pair.reference.url)):
        _wait_for(lambda s=session, u=url: s.get(u + "/tools/default-encoding", timeout=2).text == "Latin1")
    assert pair.same_counts() == before
    pair.compare("GET", "/tools/log-level")  # the process's log settings outlive the restart
    pair.compare("GET", "/tools/log-level-http")
    system = pair.ours_session.get(pair.ours.url + "/system").json()
    assert system["Name"] == "renamed-by-reset"
    assert system["HttpPort"] == int(pair.ours.url.rsplit(":", 1)[1]) and system["DicomPort"] == pair.ours.dicom_port
    assert dcmtk.run("echoscu", "-aec", pair.ours.aet, "127.0.0.1", str(pair.ours.dicom_port)).returncode == 0


def test_shutdown_stops_both_processes_cleanly(tmp_path):
    with ReferenceOrthanc() as reference, RunningPacsbox() as ours:
        for server, session in ((ours, ours.session()), (reference, reference.session)):
            response = session.post(server.url + "/tools/shutdown", timeout=10)
            assert (response.status_code, response.json()) == (200, {})
        assert ours.process.wait(20) == 0 and reference.process.wait(20) == 0
        assert "Traceback" not in ours.output()


def test_shutdown_is_seen_by_the_lifecycle_manager(tmp_path):
    home = tmp_path / "home"
    env = {**__import__("os").environ, "PACSBOX_HOME": str(home)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pacsbox", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    started = cli("start", "--name", "shut", "--json")
    assert started.returncode == 0, started.stderr
    try:
        info = json.loads(started.stdout)
        assert cli("status", "shut").returncode == 0
        response = requests.post(info["url"] + "/tools/shutdown", auth=("admin", "admin"), timeout=10)
        assert response.status_code == 200
        _wait_for(lambda: cli("status", "shut").returncode == 3)
    finally:
        cli("stop", "shut")


def test_reset_of_an_in_process_server_keeps_its_handle():
    from pacsbox.server import Server

    with Server() as server:
        session = requests.Session()
        session.auth = server.auth
        assert session.put(server.url + "/tools/default-encoding", data="Utf8", timeout=10).text == "Utf8"
        assert session.post(server.url + "/tools/reset", timeout=10).status_code == 200
        _wait_for(lambda: session.get(server.url + "/tools/default-encoding", timeout=2).text == "Latin1")
        assert server.archive.settings.default_encoding == "Latin1"  # the handle follows the restarted runtime
        assert session.get(server.url + "/statistics", timeout=10).status_code == 200
