"""Association policy and refusals, compared with the real Orthanc under the same configuration: called AET
checks, unknown calling AETs, per-service permissions, unknown SOP classes. The server keeps serving after each."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pynetdicom import AE

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.dimse import SCU_AET, echo, negotiate
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
UNKNOWN_SOP_CLASS = "1.2.826.0.1.3680043.10.1137.999.1"  # a made-up storage class no dictionary knows

CONFIGS = {
    "default": {},
    "strict": {"DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False},
    "unknown-sop": {"UnknownSopClassAccepted": True},
    "no-echo": {"DicomAlwaysAllowEcho": False},
    "no-store": {"DicomAlwaysAllowStore": False},
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def servers(request):
    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    config = {**CONFIGS[request.param], "DicomModalities": {"scu": [SCU_AET, "127.0.0.1", 1]}}
    with RunningPacsbox(config) as pacsbox, ReferenceOrthanc(extra_config=config, graceful_stop=False) as orthanc:
        yield request.param, pacsbox, orthanc


CASES = {
    "known SCU, every service": (SCU_AET, None, [VERIFICATION, CT_STORAGE, STUDY_FIND, STUDY_MOVE]),
    "unknown SCU, every service": ("STRANGER", None, [VERIFICATION, CT_STORAGE, STUDY_FIND, STUDY_MOVE]),
    "unknown SCU, find only": ("STRANGER", None, [STUDY_FIND]),
    "unknown SCU, echo only": ("STRANGER", None, [VERIFICATION]),
    "wrong called AET": (SCU_AET, "SOMEONEELSE", [VERIFICATION, CT_STORAGE]),
    "unknown SOP class": (SCU_AET, None, [VERIFICATION, UNKNOWN_SOP_CLASS]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_negotiation_matches_orthanc(servers, case):
    _, pacsbox, orthanc = servers
    calling, called, syntaxes = CASES[case]
    ours = negotiate(pacsbox.dicom_port, called or pacsbox.aet, syntaxes, calling_aet=calling)
    theirs = negotiate(orthanc.dicom_port, called or orthanc.aet, syntaxes, calling_aet=calling)
    assert ours == theirs
    assert echo(pacsbox.dicom_port, pacsbox.aet) == 0x0000, "the server keeps serving"


def test_unknown_sop_class_is_stored_only_when_accepted(servers):
    name, pacsbox, _ = servers
    dataset = make_dataset(patient_id="PBX-PRIVATE", patient_name="Private^Class", study_uid=uid("pc-study"),
                           series_uid=uid("pc-series"), sop_uid=uid("pc-instance"), sop_class_uid=UNKNOWN_SOP_CLASS)
    dataset = dcmread(io.BytesIO(to_bytes(dataset)))
    ae = AE(ae_title=SCU_AET)
    ae.add_requested_context(UNKNOWN_SOP_CLASS, "1.2.840.10008.1.2.1")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", pacsbox.dicom_port, ae_title=pacsbox.aet)
    assert assoc.is_established
    accepted = UNKNOWN_SOP_CLASS in [cx.abstract_syntax for cx in assoc.accepted_contexts]
    assert accepted == (name == "unknown-sop")
    if accepted:
        assert assoc.send_c_store(dataset).Status == 0x0000
    assoc.release()
    found = pacsbox.session().post(pacsbox.url + "/tools/lookup", data=str(dataset.SOPInstanceUID)).json()
    assert len(found) == (1 if accepted else 0)


def _request_outcome(port: int, called: str, kind: str, storage_only: bool = False) -> tuple[bool, object]:
    """Send one request as an unknown AET: (association still up afterwards, the status or None). A storage-only
    association (verification and storage contexts) is served by pacsbox's direct path, as is one that only finds;
    any other goes to pynetdicom."""
    from tests.support.dimse import query

    data = to_bytes(make_dataset(patient_id="PBX-POL", patient_name="Pol^Icy", study_uid=uid("pol-study"),
                                 series_uid=uid("pol-series"), sop_uid=uid("pol-instance", kind)))
    dataset = dcmread(io.BytesIO(data))
    ae = AE(ae_title="STRANGER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for syntax in (VERIFICATION,) if storage_only else (VERIFICATION, STUDY_FIND, STUDY_MOVE):
        ae.add_requested_context(syntax)
    ae.add_requested_context(CT_STORAGE, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    identifier = query("STUDY", StudyInstanceUID=str(dataset.StudyInstanceUID))
    if kind == "echo":
        result = assoc.send_c_echo()
        status = result.get("Status") if result else None
    elif kind == "store":
        result = assoc.send_c_store(dataset)
        status = result.get("Status") if result else None
    elif kind == "find":
        status = [s.get("Status") if s else None for s, _ in assoc.send_c_find(identifier, STUDY_FIND)][-1]
    else:
        status = [s.get("Status") if s else None for s, _ in assoc.send_c_move(identifier, "STRANGER", STUDY_MOVE)][-1]
    alive = assoc.is_established
    if alive:
        assoc.release()
    return alive, status


@pytest.mark.parametrize("kind", ["echo", "store", "find", "move"])
def test_requests_of_an_unknown_aet_match_orthanc(servers, kind):
    name, pacsbox, orthanc = servers
    if name == "strict":
        pytest.skip("an unknown AET cannot associate at all under the strict configuration")
    ours = _request_outcome(pacsbox.dicom_port, pacsbox.aet, kind)
    theirs = _request_outcome(orthanc.dicom_port, orthanc.aet, kind)
    assert ours == theirs
    assert echo(pacsbox.dicom_port, pacsbox.aet) == 0x0000, "the server keeps serving"


@pytest.mark.parametrize("kind", ["echo", "store"])
def test_requests_of_an_unknown_aet_on_a_storage_association_match_orthanc(servers, kind):
    name, pacsbox, orthanc = servers
    if name == "strict":
        pytest.skip("an unknown AET cannot associate at all under the strict configuration")
    ours = _request_outcome(pacsbox.dicom_port, pacsbox.aet, kind, storage_only=True)
    theirs = _request_outcome(orthanc.dicom_port, orthanc.aet, kind, storage_only=True)
    assert ours == theirs
    assert echo(pacsbox.dicom_port, pacsbox.aet) == 0x0000, "the server keeps serving"
