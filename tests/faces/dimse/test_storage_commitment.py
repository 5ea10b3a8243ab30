"""Storage commitment (N-ACTION, N-EVENT-REPORT) in both directions between pacsbox and the real Orthanc 1.10.1,
and with pynetdicom: the same reports, the same failed references, the same REST errors."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE, evt

from pacsbox.core.commitment import CommitmentReports, Reference
from pacsbox.core.errors import InexistentItem
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"
PYNETDICOM_AET = "PYSCU"

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)


class ReportReceiver:
    """A pynetdicom commitment SCU: sends N-ACTIONs and keeps the N-EVENT-REPORTs that come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.reports: list[tuple[int, dict, str]] = []
        self.arrived = threading.Condition()
        ae = AE(ae_title=PYNETDICOM_AET)
        ae.add_supported_context(STORAGE_COMMITMENT, scu_role=True, scp_role=True)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)])

    def _on_report(self, event):
        with self.arrived:
            self.reports.append((event.event_type, event.event_information.to_json_dict(),
                                 event.assoc.requestor.ae_title.strip()))
            self.arrived.notify_all()
        return 0x0000, None

    def request(self, port: int, aet: str, transaction: str, references: list[tuple[str, str]],
                calling_aet: str = PYNETDICOM_AET) -> tuple[int | None, tuple | None]:
        """Send an N-ACTION; its status and the report that arrives for ``transaction``."""
        ae = AE(ae_title=calling_aet)
        ae.add_requested_context(STORAGE_COMMITMENT)
        info = Dataset()
        info.TransactionUID = transaction
        info.ReferencedSOPSequence = Sequence([_reference(*pair) for pair in references])
        assoc = ae.associate("127.0.0.1", port, ae_title=aet)
        assert assoc.is_established
        status, _ = assoc.send_n_action(info, 1, STORAGE_COMMITMENT, WELL_KNOWN_INSTANCE)
        if assoc.is_established:
            assoc.release()
        code = int(status.Status) if status and "Status" in status else None
        deadline = time.monotonic() + 10
        with self.arrived:
            while time.monotonic() < deadline:
                found = [r for r in self.reports if r[1].get("00081195", {}).get("Value") == [transaction]]
                if found or code != 0:
                    return code, found[0] if found else None
                self.arrived.wait(0.2)
        return code, None

    def close(self) -> None:
        self.server.shutdown()


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


@pytest.fixture(scope="module")
def network():
    """pacsbox and Orthanc, each knowing the other as ``peer`` and pynetdicom as ``pyscu``, both holding one CT
    instance; pacsbox alone holds a second one."""
    receiver = ReportReceiver()
    ours_port, reference_port = free_port(), free_port()
    pyscu = [PYNETDICOM_AET, "127.0.0.1", receiver.port]
    shared = make_dataset(patient_id="SC1", patient_name="Commit^Carl", study_uid=uid("sc", "study"),
                          series_uid=uid("sc", "series"), sop_uid=uid("sc", "instance", 1))
    only_ours = make_dataset(patient_id="SC1", patient_name="Commit^Carl", study_uid=uid("sc", "study"),
                             series_uid=uid("sc", "series"), sop_uid=uid("sc", "instance", 2), instance_number=2)
    try:
        with RunningPacsbox({"DicomPort": ours_port, "DicomModalities": {
                "peer": ["ORTHANC", "127.0.0.1", reference_port], "pyscu": pyscu}}) as ours, \
                ReferenceOrthanc(extra_config={"DicomPort": reference_port, "DicomModalities": {
                    "peer": ["PACSBOX", "127.0.0.1", ours_port], "pyscu": pyscu}}, graceful_stop=False) as reference:
            session = ours.session()
            ids = {}
            for dataset in (shared, only_ours):
                ids[str(dataset.SOPInstanceUID)] = session.post(ours.url + "/instances",
                                                                data=to_bytes(dataset)).json()["ID"]
            reference.upload(to_bytes(shared))
            yield {"ours": ours, "ours_session": session, "reference": reference, "receiver": receiver,
                   "shared": shared, "only_ours": only_ours, "ids": ids}
    finally:
        receiver.close()


def _wait_report(session, url: str, transaction: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        report = session.get(f"{url}/storage-commitment/{transaction}").json()
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def _commit(session, url: str, body: dict) -> dict:
    answer = session.post(f"{url}/modalities/peer/storage-commitment", data=json.dumps(body))
    assert answer.status_code == 200, answer.text
    transaction = answer.json()["ID"]
    assert answer.json()["Path"] == f"/storage-commitment/{transaction}" and transaction.startswith("2.25.")
    return _wait_report(session, url, transaction)


def test_round_trips_with_failed_references_match_orthanc(network):
    """pacsbox asks Orthanc, Orthanc asks pacsbox: the same report on both sides (apart from the remote AET)."""
    shared = network["shared"]
    body = {"DicomInstances": [[str(shared.SOPClassUID), str(shared.SOPInstanceUID)],
                               {"SOPClassUID": "1.2.3", "SOPInstanceUID": str(shared.SOPInstanceUID)},
                               {"SOPClassUID": str(shared.SOPClassUID), "SOPInstanceUID": "1.2.3.4"}]}
    ours = _commit(network["ours_session"], network["ours"].url, body)
    theirs = _commit(network["reference"].session, network["reference"].url, body)
    assert ours["RemoteAET"] == "ORTHANC" and theirs["RemoteAET"] == "PACSBOX"
    del ours["RemoteAET"], theirs["RemoteAET"]
    assert ours == theirs
    assert ours["Status"] == "Failure" and [f["FailureReason"] for f in ours["Failures"]] == [0x0119, 0x0112]
    assert ours["Success"] == [{"SOPClassUID": str(shared.SOPClassUID), "SOPInstanceUID": str(shared.SOPInstanceUID)}]


def test_remove_after_success_deletes_the_committed_instances(network):
    ours, session, shared = network["ours"], network["ours_session"], network["shared"]
    instance_id = network["ids"][str(shared.SOPInstanceUID)]
    report = _commit(session, ours.url, {"Resources": [instance_id]})
    assert report["Status"] == "Success" and len(report["Success"]) == 1
    transaction = session.post(f"{ours.url}/modalities/peer/storage-commitment",
                               data=json.dumps({"Resources": [instance_id]})).json()["ID"]
    _wait_report(session, ours.url, transaction)
    assert session.post(f"{ours.url}/storage-commitment/{transaction}/remove").json() == {}
    assert session.get(f"{ours.url}/instances/{instance_id}").status_code == 404
    assert session.get(f"{ours.url}/instances/{network['ids'][str(network['only_ours'].SOPInstanceUID)]}").ok
    session.post(ours.url + "/instances", data=to_bytes(shared))  # back, for the other tests


def test_store_with_storage_commitment_as_orthanc(network):
    """POST /modalities/{id}/store with "StorageCommitment": true answers the transaction to follow."""
    shared = network["shared"]
    answers = []
    for url, session in ((network["ours"].url, network["ours_session"]),
                         (network["reference"].url, network["reference"].session)):
        [instance_id] = session.post(f"{url}/tools/lookup", data=str(shared.SOPInstanceUID)).json()[:1]
        answer = session.post(f"{url}/modalities/peer/store", data=json.dumps(
            {"Resources": [instance_id["ID"]], "StorageCommitment": True, "Synchronous": True})).json()
        report = _wait_report(session, url, answer["StorageCommitmentTransactionUID"])
        answers.append((sorted(answer), report["Status"], report["Success"]))
    assert answers[0] == answers[1]
    assert answers[0][1] == "Success"


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/modalities/peer/storage-commitment", {}),
    ("POST", "/modalities/peer/storage-commitment", {"DicomInstances": "x"}),
    ("POST", "/modalities/peer/storage-commitment", {"DicomInstances": [["a"]]}),
    ("POST", "/modalities/peer/storage-commitment", {"Resources": ["nonexistent"]}),
    ("POST", "/modalities/peer/storage-commitment", []),
    ("GET", "/storage-commitment/nope", None),
    ("POST", "/storage-commitment/nope/remove", None),
])
def test_errors_are_orthancs(network, method, path, body):
    data = None if body is None else json.dumps(body)
    ours = network["ours_session"].request(method, network["ours"].url + path, data=data)
    theirs = network["reference"].session.request(method, network["reference"].url + path, data=data)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())


def test_remove_after_a_failure_is_refused_as_orthanc_does(network):
    body = {"DicomInstances": [[str(network["shared"].SOPClassUID), "1.2.3.4.5"]]}
    bodies = []
    for url, session in ((network["ours"].url, network["ours_session"]),
                         (network["reference"].url, network["reference"].session)):
        transaction = session.post(f"{url}/modalities/peer/storage-commitment", data=json.dumps(body)).json()["ID"]
        assert _wait_report(session, url, transaction)["Status"] == "Failure"
        answer = session.post(f"{url}/storage-commitment/{transaction}/remove")
        bodies.append((answer.status_code, answer.json()["OrthancStatus"],
                       answer.json()["Details"].replace(transaction, "UID")))
    assert bodies[0] == bodies[1]


def test_pynetdicom_gets_the_same_report_from_both(network):
    """A pynetdicom SCU asks each SCP; the N-EVENT-REPORTs that come back (new associations) are the same."""
    receiver, shared, only_ours = network["receiver"], network["shared"], network["only_ours"]
    references = [(str(shared.SOPClassUID), str(shared.SOPInstanceUID)),
                  (str(only_ours.SOPClassUID), str(only_ours.SOPInstanceUID)),  # unknown to Orthanc
                  (str(shared.SOPClassUID), "1.2.3.999")]
    reports = []
    for server in (network["ours"], network["reference"]):
        code, report = receiver.request(server.dicom_port, server.aet, uid("sc", "transaction", server.aet),
                                        references)
        assert code == 0 and report is not None
        reports.append(report)
    (our_type, ours, our_aet), (their_type, theirs, their_aet) = reports
    assert (our_aet, their_aet) == ("PACSBOX", "ORTHANC")
    assert our_type == 2 and their_type == 2
    failed = ours.pop("00081198")["Value"]
    assert [item["00081155"]["Value"][0] for item in failed] == ["1.2.3.999"]
    assert failed[0]["00081197"]["Value"] == [0x0112]
    assert len(ours["00081199"]["Value"]) == 2  # pacsbox holds both instances
    theirs.pop("00081198")
    assert len(theirs.pop("00081199")["Value"]) == 1
    ours.pop("00081199")
    assert ours.pop("00081195") != theirs.pop("00081195")  # each its transaction
    assert ours == theirs


def test_the_scp_reports_through_a_job_as_orthanc(network):
    """Each N-ACTION received is a StorageCommitmentScp job in /jobs, with Orthanc's Content keys."""
    jobs = []
    body = {"DicomInstances": [[str(network["shared"].SOPClassUID), str(network["shared"].SOPInstanceUID)]]}
    for requester, session in ((network["reference"], network["reference"].session),
                               (network["ours"], network["ours_session"])):
        _commit(session, requester.url, body)  # each asks the other, whose SCP answers through a job
    for server, session in ((network["ours"], network["ours_session"]),
                            (network["reference"], network["reference"].session)):
        deadline = time.monotonic() + 15  # the job ends just after its report went out: wait for it
        while True:
            listed = [job for job in session.get(server.url + "/jobs", params={"expand": ""}).json()
                      if job["Type"] == "StorageCommitmentScp"]
            if (listed and all(job["State"] not in ("Pending", "Running") for job in listed)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert listed and all(job["State"] == "Success" for job in listed)
        # /jobs is not in time order: the job of the commitment asked above is the one from the other server
        requester = "ORTHANC" if server is network["ours"] else "PACSBOX"
        asked = [job for job in listed if job["Content"]["RemoteAet"] == requester]
        assert asked, listed
        jobs.append(sorted(asked[-1]["Content"]))
    assert jobs[0] == jobs[1]


def test_all_committed_is_event_type_1(network):
    shared = network["shared"]
    code, report = network["receiver"].request(network["ours"].dicom_port, "PACSBOX", uid("sc", "all-ok"),
                                               [(str(shared.SOPClassUID), str(shared.SOPInstanceUID))])
    assert code == 0 and report[0] == 1 and "00081198" not in report[1]


def test_unknown_calling_aet_is_refused_and_the_scp_keeps_serving(network):
    """Neither server reports to an AET it does not know: N-ACTION from one is refused (the association ends)."""
    receiver, shared = network["receiver"], network["shared"]
    outcomes = []
    for server in (network["ours"], network["reference"]):
        code, report = receiver.request(server.dicom_port, server.aet, uid("sc", "nobody", server.aet),
                                        [(str(shared.SOPClassUID), str(shared.SOPInstanceUID))],
                                        calling_aet="NOBODY")
        outcomes.append((code, report))
    assert outcomes[0] == outcomes[1] == (None, None)
    code, report = receiver.request(network["ours"].dicom_port, "PACSBOX", uid("sc", "after"), [])
    assert code == 0 and report is not None


def test_reports_keep_the_last_ones():
    reports = CommitmentReports(2)
    for n in range(3):
        reports.open(f"1.{n}", "PEER")
    assert reports.complete("1.2", "PEER", [Reference("1.2.840", "9.9")])
    assert reports.get("1.2").status == "Success"
    with pytest.raises(InexistentItem) as refused:
        reports.get("1.0")
    assert refused.value.details == "No storage commitment transaction with UID: 1.0"
    assert not reports.complete("1.0", "PEER", [])


@pytest.mark.parametrize("action_type,with_transaction", [(1, False), (2, True)], ids=["no-transaction-uid",
                                                                                      "unknown-action-type"])
def test_malformed_requests_get_orthancs_answer(network, action_type, with_transaction):
    """An N-ACTION Orthanc cannot serve gets no status: Orthanc drops the association (an unknown action type) or
    stops answering (no TransactionUID: the SCU times out); pacsbox aborts at once in both cases."""
    statuses = []
    for server in (network["ours"], network["reference"]):
        ae = AE(ae_title=PYNETDICOM_AET)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 3
        ae.add_requested_context(STORAGE_COMMITMENT)
        info = Dataset()
        if with_transaction:
            info.TransactionUID = uid("sc", "malformed", server.aet)
        info.ReferencedSOPSequence = Sequence([_reference("1.2.3", "4.5.6")])
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        status, _ = assoc.send_n_action(info, action_type, STORAGE_COMMITMENT, WELL_KNOWN_INSTANCE)
        statuses.append(int(status.Status) if status and "Status" in status else None)
        if assoc.is_established:
            assoc.release()
    assert statuses[0] == statuses[1] == None  # noqa: E711
    code, report = network["receiver"].request(network["ours"].dicom_port, "PACSBOX", uid("sc", "then"), [])
    assert code == 0 and report is not None  # the SCP keeps serving
