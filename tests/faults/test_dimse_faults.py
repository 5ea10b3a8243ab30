"""DICOM faults through dcmtk (storescu, findscu, movescu, echoscu) and pynetdicom against a spawned pacsbox, on
both association paths (the direct one, and pynetdicom's for associations that also propose C-MOVE/C-GET): what
the client saw, what the archive kept (a failure status stores nothing, a warning stores), and what the event log
recorded."""

from __future__ import annotations

import io
import time

import pytest
import requests
from pydicom import dcmread
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsbox.faces.dimse.network import held_reactor
from tests.faults.conftest import USERS
from tests.support import dcmtk
from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.dimse import SCU_AET, negotiate, query
from tests.support.pacsbox_proc import RunningPacsbox

STUDY = uid("faults-dimse", "study")  # three instances stored before the tests: what C-MOVE and C-GET retrieve
STORED = [uid("faults-dimse", "stored", n) for n in range(3)]
SENT_STUDY = uid("faults-dimse", "sent")  # what the tests send


def _file(sop_uid: str, study: str = SENT_STUDY) -> bytes:
    return to_bytes(make_dataset(patient_id="FAULTS-D" if study == STUDY else "FAULTS-SENT",
                                 patient_name="FAULT^DIMSE", study_uid=study, series_uid=uid(study, "series"),
                                 sop_uid=sop_uid, rows=4, cols=4))


@pytest.fixture(scope="module")
def peer():
    with DicomPeer("PEER") as running:
        yield running


@pytest.fixture(scope="module")
def server(peer):
    config = {"RegisteredUsers": USERS, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
              "DicomAlwaysAllowGet": True, "DicomModalities": {"peer": peer.modality()}}
    with RunningPacsbox(config) as running:
        session = running.session()
        for sop_uid in STORED:
            assert session.post(running.url + "/instances", data=_file(sop_uid, STUDY), timeout=30).ok
        yield running


@pytest.fixture(scope="module")
def needs_dcmtk():
    if not dcmtk.have_dcmtk():
        pytest.skip(dcmtk.SKIP_REASON)


def _stored(server, sop_uid: str) -> bool:
    found = requests.post(server.url + "/tools/lookup", data=sop_uid, auth=server.auth, timeout=30).json()
    return bool(found)


def _ae(*contexts) -> AE:
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def _dataset(sop_uid: str):
    return dcmread(io.BytesIO(_file(sop_uid)))


def test_storescu_facing_a700_stores_nothing(server, faults, events, needs_dcmtk, tmp_path):
    rule = faults.add({"face": "dimse", "operation": "C-STORE", "action": {"dimse_status": 42752}})
    paths = []
    for n in range(2):
        paths.append(tmp_path / f"{n}.dcm")
        paths[-1].write_bytes(_file(uid("faults-dimse", "refused", n)))
    result = dcmtk.run("storescu", "-v", "--no-halt", "-aet", SCU_AET, "-aec", server.aet, "127.0.0.1",
                       server.dicom_port, *paths)
    output = result.stdout + result.stderr
    assert output.count("Received Store Response (Refused: OutOfResources") == 2, output
    assert not any(_stored(server, uid("faults-dimse", "refused", n)) for n in range(2))
    stores = events.list(kind="dimse", operation="C-STORE")
    assert [(e["status"], e["fault"], e["sop_instance_uid"]) for e in stores] == [
        (0xA700, rule["id"], uid("faults-dimse", "refused", n)) for n in range(2)]
    association = events.list(kind="association")[0]
    assert association["calling_aet"] == SCU_AET and association["outcome"] == "accepted"
    assert CTImageStorage in association["accepted_contexts"]
    assert events.list(kind="association-end")[0]["outcome"] == "released"
    assert events.list(kind="stored") == []


def test_a_sender_retrying_after_a700_stores_once(server, faults, events):
    faults.add({"face": "dimse", "operation": "C-STORE", "first": 1, "action": {"dimse_status": 0xA700}})
    sop_uid = uid("faults-dimse", "retried")
    assoc = _ae(CTImageStorage).associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    statuses = []
    try:
        with held_reactor(assoc):  # two stores on one association: pynetdicom's race (see held_reactor)
            for _ in range(3):  # the sender's retry loop
                statuses.append(int(assoc.send_c_store(_dataset(sop_uid)).Status))
                if statuses[-1] == 0:
                    break
    finally:
        assoc.release()
    assert statuses == [0xA700, 0x0000]
    assert _stored(server, sop_uid)
    assert [e["status"] for e in events.list(kind="dimse", operation="C-STORE")] == [0xA700, 0]
    assert events.wait_for(kind="stored", sop_instance_uid=sop_uid)["calling_aet"] == SCU_AET


@pytest.mark.parametrize("path", ["direct", "pynetdicom"])
def test_a_warning_status_is_answered_and_the_instance_is_stored(server, faults, events, path):
    faults.add({"face": "dimse", "operation": "C-STORE", "action": {"dimse_status": 0xB007}})
    refused = faults.add({"face": "dimse", "operation": "C-STORE", "calling_aet": "SOMEONE-ELSE",
                          "action": {"dimse_status": 0xA700}})
    sop_uid = uid("faults-dimse", "warned", path)
    # a C-MOVE context besides sends the association to pynetdicom's path
    contexts = [CTImageStorage] + ([StudyRootQueryRetrieveInformationModelMove] if path == "pynetdicom" else [])
    assoc = _ae(*contexts).associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    try:
        assert int(assoc.send_c_store(_dataset(sop_uid)).Status) == 0xB007
    finally:
        assoc.release()
    assert _stored(server, sop_uid)
    assert events.list(kind="dimse", operation="C-STORE")[0]["status"] == 0xB007
    assert [r["fired"] for r in faults.list() if r["id"] == refused["id"]] == [0]  # another calling AET


def test_a_failure_on_the_pynetdicom_path_stores_nothing(server, faults, events):
    faults.add({"face": "dimse", "operation": "C-STORE", "action": {"dimse_status": 0xC000}})
    sop_uid = uid("faults-dimse", "refused-pynetdicom")
    assoc = _ae(CTImageStorage, StudyRootQueryRetrieveInformationModelMove).associate(
        "127.0.0.1", server.dicom_port, ae_title=server.aet)
    try:
        assert int(assoc.send_c_store(_dataset(sop_uid)).Status) == 0xC000
    finally:
        assoc.release()
    assert not _stored(server, sop_uid)
    assert events.list(kind="dimse", operation="C-STORE")[0]["status"] == 0xC000


def test_findscu_sees_the_failure_and_the_log_the_query(server, faults, events, needs_dcmtk):
    rule = faults.add({"face": "dimse", "operation": "C-FIND", "action": {"dimse_status": 0xA900}})
    result = dcmtk.run("findscu", "-v", "-aet", SCU_AET, "-aec", server.aet, "-S", "-k", "QueryRetrieveLevel=STUDY",
                       "-k", "PatientID=FAULTS-D", "-k", "StudyInstanceUID", "127.0.0.1", server.dicom_port)
    output = result.stdout + result.stderr
    assert "Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in output, output  # 0xA900
    find = events.list(kind="dimse", operation="C-FIND")[0]
    assert (find["status"], find["fault"], find["identifier"]["PatientID"]) == (0xA900, rule["id"], "FAULTS-D")
    faults.clear()
    assoc = _ae(StudyRootQueryRetrieveInformationModelFind).associate("127.0.0.1", server.dicom_port,
                                                                      ae_title=server.aet)
    try:
        answers = list(assoc.send_c_find(query("STUDY", PatientID="FAULTS-D", StudyInstanceUID=""),
                                         StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    assert [int(s.Status) for s, _ in answers] == [0xFF00, 0]
    assert events.list(kind="dimse", operation="C-FIND")[-1]["matches"] == 1


def test_a_rejected_association_says_why(server, faults, events, needs_dcmtk):
    rule = faults.add({"face": "dimse", "action": {"reject": {"result": 1, "source": 1, "reason": 3}}})
    result = dcmtk.run("echoscu", "-aet", SCU_AET, "-aec", server.aet, "127.0.0.1", server.dicom_port)
    assert result.returncode != 0 and "Association Rejected" in result.stdout + result.stderr
    # (negotiate reads the rejection the server sent: pynetdicom may call a rejection at once an abort)
    outcome = negotiate(server.dicom_port, server.aet, [str(Verification)])
    assert outcome.rejected and outcome.reject_reason == (1, 1, 3)
    rejections = events.list(kind="association", outcome="rejected")
    assert len(rejections) == 2
    assert rejections[0]["rejection"] == {"result": 1, "source": 1, "reason": 3}
    assert rejections[0]["fault"] == rule["id"]


def _ended(assoc) -> None:
    deadline = time.monotonic() + 5
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not assoc.is_established


@pytest.mark.parametrize("path", ["direct", "pynetdicom"])
def test_an_aborted_association_or_store(server, faults, events, path):
    extra = [StudyRootQueryRetrieveInformationModelMove] if path == "pynetdicom" else []
    faults.add({"face": "dimse", "operation": "association", "first": 1, "action": {"abort": True}})
    _ended(_ae(Verification, *extra).associate("127.0.0.1", server.dicom_port, ae_title=server.aet))
    assert events.wait_for(kind="association", outcome="accepted")["fault"]
    faults.clear()
    rule = faults.add({"face": "dimse", "operation": "C-STORE", "action": {"abort": {"source": 2, "reason": 0}}})
    sop_uid = uid("faults-dimse", "aborted", path)
    assoc = _ae(CTImageStorage, *extra).associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    answer = assoc.send_c_store(_dataset(sop_uid))
    assert "Status" not in answer  # no answer: the association is gone
    _ended(assoc)
    assert not _stored(server, sop_uid)
    assert events.wait_for(kind="dimse", operation="C-STORE", outcome="aborted")["fault"] == rule["id"]


@pytest.mark.parametrize("path", ["direct", "pynetdicom"])
def test_delayed_pdus_slow_each_answer(server, faults, events, path):
    extra = [StudyRootQueryRetrieveInformationModelMove] if path == "pynetdicom" else []
    faults.add({"face": "dimse", "action": {"pdu_delay": 0.3}})
    started = time.monotonic()
    assoc = _ae(Verification, *extra).associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    try:
        assert int(assoc.send_c_echo().Status) == 0
    finally:
        assoc.release()
    assert time.monotonic() - started >= 0.9  # A-ASSOCIATE-AC, C-ECHO-RSP and A-RELEASE-RP each 0.3 s late
    assert events.list(kind="association")[0]["fault"]


def test_a_delay_and_a_status_on_c_echo(server, faults, events, needs_dcmtk):
    faults.add({"face": "dimse", "operation": "C-ECHO", "first": 1, "action": {"delay": 0.5}})
    started = time.monotonic()
    assert dcmtk.run("echoscu", "-aet", SCU_AET, "-aec", server.aet, "127.0.0.1", server.dicom_port).returncode == 0
    assert time.monotonic() - started >= 0.5
    faults.add({"face": "dimse", "operation": "C-ECHO", "action": {"dimse_status": 0x0211}})
    assoc = _ae(Verification).associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    try:
        assert int(assoc.send_c_echo().Status) == 0x0211
    finally:
        assoc.release()
    assert [e["status"] for e in events.list(kind="dimse", operation="C-ECHO")] == [0, 0x0211]


def _c_move(server, destination: str = "PEER"):
    assoc = _ae(StudyRootQueryRetrieveInformationModelMove).associate("127.0.0.1", server.dicom_port,
                                                                      ae_title=server.aet)
    try:
        return list(assoc.send_c_move(query("STUDY", StudyInstanceUID=STUDY), destination,
                                      StudyRootQueryRetrieveInformationModelMove))
    finally:
        assoc.release()


def test_a_c_move_with_a_failed_sub_operation(server, peer, faults, events):
    peer.clear()
    rule = faults.add({"face": "dimse", "operation": "C-MOVE", "action": {"failed_suboperations": 1}})
    final, identifier = _c_move(server)[-1]
    assert int(final.Status) == 0xB000  # PS3.4 C.4.2.1.5: sub-operations complete, one or more failures
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 1)
    assert list(identifier.FailedSOPInstanceUIDList) == [STORED[0]] or identifier.FailedSOPInstanceUIDList == STORED[0]
    assert sorted(item.sop_instance_uid for item in peer.received) == sorted(STORED[1:])
    move = events.wait_for(kind="dimse", operation="C-MOVE")
    assert move["fault"] == rule["id"] and move["move_destination"] == "PEER" and move["status"] == 0xB000
    assert move["suboperations"] == {"completed": 2, "failed": 1, "warning": 0}
    assert move["identifier"]["StudyInstanceUID"] == STUDY


def test_movescu_sees_the_failed_count(server, peer, faults, events, needs_dcmtk):
    peer.clear()
    faults.add({"face": "dimse", "operation": "C-MOVE", "action": {"failed_suboperations": 2}})
    result = dcmtk.run("movescu", "-v", "-aet", SCU_AET, "-aec", server.aet, "-aem", peer.aet, "-S",
                       "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                       "127.0.0.1", server.dicom_port)
    output = result.stdout + result.stderr
    assert "Received Final Move Response (Warning: SubOperationsCompleteOneOrMoreFailures)" in output, output
    assert len(peer.received) == 1
    assert events.wait_for(kind="dimse", operation="C-MOVE")["suboperations"] == {"completed": 1, "failed": 2,
                                                                                  "warning": 0}


def test_a_c_move_answered_with_a_failure(server, peer, faults, events):
    peer.clear()
    faults.add({"face": "dimse", "operation": "C-MOVE", "action": {"dimse_status": 0xA701}})
    final, _ = _c_move(server)[-1]
    assert int(final.Status) == 0xA701 and peer.received == []
    assert events.wait_for(kind="dimse", operation="C-MOVE")["status"] == 0xA701


def test_a_c_get_with_a_failed_sub_operation(server, faults, events):
    faults.add({"face": "dimse", "operation": "C-GET", "action": {"failed_suboperations": 1}})
    received = []
    ae = _ae(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)

    def on_store(event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet,
                         ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        final, _ = list(assoc.send_c_get(query("STUDY", StudyInstanceUID=STUDY),
                                         StudyRootQueryRetrieveInformationModelGet))[-1]
    finally:
        assoc.release()
    assert int(final.Status) == 0xB000 and final.NumberOfFailedSuboperations == 1
    assert sorted(received) == sorted(STORED[1:])
    assert events.wait_for(kind="dimse", operation="C-GET")["suboperations"]["failed"] == 1


def test_outgoing_operations_are_recorded(server, peer, events):
    session = server.session()
    assert session.post(server.url + "/modalities/peer/echo", json={}, timeout=30).ok
    instance = requests.post(server.url + "/tools/lookup", data=STORED[0], auth=server.auth, timeout=30).json()[0]
    assert session.post(server.url + "/modalities/peer/store", json=[instance["ID"]], timeout=30).ok
    echo, store = events.list(kind="scu")
    assert (echo["operation"], echo["aet"], echo["result"]) == ("C-ECHO", "PEER", "success")
    assert (store["operation"], store["instances"], store["failed"]) == ("C-STORE", 1, 0)
