"""/pacsbox/worklists and ``pacsbox worklists``: items made from a test are served by the worklist SCP at once;
permissions as Orthanc's (AllowFindWorklist, DicomAlwaysAllowFindWorklist); a worklist association does not
hold up storage."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pynetdicom import AE

from pacsbox.core.worklists import item_from_json, write_item
from pacsbox.faces.dimse.network import held_reactor
from tests.support.dicomgen import make_dataset, uid
from tests.support.orthanc_ref import free_port
from tests.support.pacsbox_proc import RunningPacsbox

WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ITEM = {"PatientName": "Doe^John", "PatientID": "WL1", "AccessionNumber": "ACC1",
        "ScheduledProcedureStepSequence": [{"Modality": "CT", "ScheduledStationAETitle": "CT1",
                                            "ScheduledProcedureStepStartDate": "20240101"}]}


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"DicomModalities": {
            "scanner": ["WLSCU", "127.0.0.1", 1],
            "denied": {"AET": "DENIED", "Host": "127.0.0.1", "Port": 2, "AllowFindWorklist": False}}}) as running:
        yield running, running.session()


@pytest.fixture
def clean(server):
    running, session = server
    session.delete(running.url + "/pacsbox/worklists")
    return running, session


def find(running, calling_aet: str = "WLSCU", **keys) -> tuple[list[int | None], list[Dataset]]:
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(WORKLIST_FIND)
    assoc = ae.associate("127.0.0.1", running.dicom_port, ae_title=running.aet)
    assert assoc.is_established
    identifier = Dataset()
    identifier.PatientID = keys.pop("PatientID", "")
    identifier.PatientName = ""
    step = Dataset()
    step.Modality = keys.pop("Modality", "")
    identifier.ScheduledProcedureStepSequence = Sequence([step])
    statuses, answers = [], []
    for status, answer in assoc.send_c_find(identifier, WORKLIST_FIND):
        statuses.append(int(status.Status) if status and "Status" in status else None)
        if answer is not None:
            answers.append(answer)
    if assoc.is_established:
        assoc.release()
    return statuses, answers


def test_items_from_every_form_are_served_at_once(clean):
    running, session = clean
    url = running.url + "/pacsbox/worklists"
    simplified = session.post(url, data=json.dumps(ITEM)).json()
    assert simplified["Path"] == f"/pacsbox/worklists/{simplified['ID']}"
    dicom_json = item_from_json({**ITEM, "PatientID": "WL2"}).to_json_dict()
    session.post(url, data=json.dumps(dicom_json), params={"id": "second"}).raise_for_status()
    wl_file = write_item(item_from_json({**ITEM, "PatientID": "WL3", "ScheduledProcedureStepSequence": [
        {"Modality": "MR"}]}))
    session.post(url, data=wl_file, params={"id": "third"}).raise_for_status()
    assert sorted(session.get(url).json()) == sorted([simplified["ID"], "second", "third"])
    statuses, answers = find(running, Modality="CT")
    assert statuses == [0xFF00, 0xFF00, 0x0000]
    assert sorted(a.PatientID for a in answers) == ["WL1", "WL2"]
    assert session.get(f"{url}/third").json()["ScheduledProcedureStepSequence"] == [{"Modality": "MR"}]
    assert session.get(f"{url}/third", params={"short": ""}).json()["0010,0020"] == "WL3"
    assert session.get(f"{url}/third/file").content == wl_file
    assert session.get(url, params={"expand": ""}).json()["second"]["PatientID"] == "WL2"


def test_replacing_and_removing_are_seen_by_the_next_query(clean):
    running, session = clean
    url = running.url + "/pacsbox/worklists"
    session.post(url, data=json.dumps(ITEM), params={"id": "item"}).raise_for_status()
    assert [a.PatientID for a in find(running, Modality="CT")[1]] == ["WL1"]
    session.post(url, data=json.dumps({**ITEM, "PatientID": "WL9"}), params={"id": "item"}).raise_for_status()
    assert [a.PatientID for a in find(running, Modality="CT")[1]] == ["WL9"]
    assert session.delete(f"{url}/item").json() == {}
    assert find(running) == ([0x0000], [])
    assert session.get(f"{url}/item").status_code == 404


@pytest.mark.parametrize("body,params,status", [
    (b"not json", None, 400), (b"[]", None, 400), (b"{}", None, 400), (b'{"Nope": "x"}', None, 400),
    (json.dumps(ITEM).encode(), {"id": "../escape"}, 400), (json.dumps(ITEM).encode(), {"id": ""}, 400),
])
def test_bad_items_are_refused(clean, body, params, status):
    running, session = clean
    answer = session.post(running.url + "/pacsbox/worklists", data=body, params=params)
    assert answer.status_code == status and answer.json()["HttpStatus"] == status
    assert session.get(running.url + "/pacsbox/worklists").json() == []


def test_unknown_items_are_404(clean):
    running, session = clean
    for method, path in (("GET", "nope"), ("DELETE", "nope"), ("GET", "nope/file"), ("GET", "..%2Fetc")):
        answer = session.request(method, f"{running.url}/pacsbox/worklists/{path}")
        assert answer.status_code == 404, path


def test_reset_empties_the_worklists(clean):
    running, session = clean
    session.post(running.url + "/pacsbox/worklists", data=json.dumps(ITEM)).raise_for_status()
    session.post(running.url + "/pacsbox/reset").raise_for_status()
    assert session.get(running.url + "/pacsbox/worklists").json() == []
    session.post(running.url + "/pacsbox/worklists", data=json.dumps(ITEM)).raise_for_status()
    assert len(find(running)[1]) == 1


@pytest.mark.parametrize("calling_aet", ["DENIED", "STRANGER"])
def test_who_may_not_query_worklists_is_aborted_as_by_orthanc(clean, calling_aet):
    running, _ = clean
    assert find(running, calling_aet)[0] == [None]
    assert find(running)[0] == [0x0000]  # the SCP keeps serving


def test_cli_adds_lists_and_removes(clean, tmp_path):
    running, _ = clean
    target = ["--url", running.url, "--user", "admin", "--password", "admin"]
    wl = tmp_path / "item.wl"
    wl.write_bytes(write_item(item_from_json({**ITEM, "PatientID": "CLI1"})))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pacsbox", "worklists", *args], capture_output=True,
                              text=True, timeout=60)

    added = cli("add", *target, str(wl), json.dumps({**ITEM, "PatientID": "CLI2"}))
    assert added.returncode == 0, added.stderr
    ids = added.stdout.split()
    assert len(ids) == 2
    listing = cli("ls", *target)
    assert listing.returncode == 0 and "CLI1" in listing.stdout and "CT1" in listing.stdout
    assert sorted(a.PatientID for a in find(running)[1]) == ["CLI1", "CLI2"]
    assert cli("rm", *target, ids[0]).returncode == 0
    assert [a.PatientID for a in find(running)[1]] == ["CLI2"]
    missing = cli("rm", *target, "nope")
    assert missing.returncode != 0 and "404" in missing.stderr
    assert "removed 1 item(s)" in cli("rm", *target, "--all").stdout


def test_a_worklist_association_does_not_hold_up_storage(clean):
    """C-STOREs while another association runs worklist queries without pause take about as long as alone."""
    running, session = clean
    for n in range(100):  # a large worklist: each query matches 100 files
        session.post(running.url + "/pacsbox/worklists", data=json.dumps({**ITEM, "PatientID": f"LOAD{n}"}))

    def store_times(count: int) -> list[float]:
        ae = AE(ae_title="STORESCU")
        ae.add_requested_context(CT_IMAGE_STORAGE)
        assoc = ae.associate("127.0.0.1", running.dicom_port, ae_title=running.aet)
        times = []
        with held_reactor(assoc):  # many stores on one association: pynetdicom's race (see held_reactor)
            for n in range(count):
                dataset = make_dataset(patient_id="STORE", patient_name="Store^Sue", study_uid=uid("wlload", "study"),
                                       series_uid=uid("wlload", "series"), sop_uid=uid("wlload", time.time(), n))
                dataset.file_meta = FileMetaDataset()
                dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
                started = time.perf_counter()
                assert assoc.send_c_store(dataset).Status == 0
                times.append(time.perf_counter() - started)
        assoc.release()
        return times

    alone = statistics.median(store_times(20))
    stop = threading.Event()
    queries = []

    def query_loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            find(running)
            queries.append(time.perf_counter() - started)

    worker = threading.Thread(target=query_loop)
    worker.start()
    try:
        time.sleep(0.2)
        loaded = statistics.median(store_times(20))
    finally:
        stop.set()
        worker.join()
    print(f"C-STORE median alone {alone * 1000:.1f} ms, beside worklist queries {loaded * 1000:.1f} ms; "
          f"{len(queries)} worklist queries of 100 items, median {statistics.median(queries) * 1000:.0f} ms")
    assert queries and loaded < 4 * alone + 0.05


def test_disabled_worklists_fail_as_orthanc_without_a_handler(tmp_path):
    with RunningPacsbox({"Worklists": {"Enable": False}, "DicomAlwaysAllowFindWorklist": True,
                         "DicomPort": free_port()}) as running:
        assert find(running) == ([0xC000], [])
