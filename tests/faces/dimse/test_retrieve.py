"""C-MOVE and C-GET: pacsbox sends what it stored, byte for byte, to a pynetdicom peer, to the real Orthanc and to
the C-GET SCU; its statuses match Orthanc's for the same requests."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pynetdicom import AE, build_role
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.support import dcmtk
from tests.support.dicom_peer import dataset_bytes
from tests.support.dicomgen import standard_corpus
from tests.support.dimse import SCU_AET, query
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc

CORPUS = dict(standard_corpus())
MR_STUDY = [data for name, data in CORPUS.items() if name.startswith("mr/")]
CT_SERIES = [data for name, data in CORPUS.items() if name.startswith("ct/")]


def _uid(data: bytes, keyword: str) -> str:
    return str(dcmread(io.BytesIO(data), stop_before_pixels=True)[keyword].value)


@pytest.fixture(scope="module")
def loaded(dimse_pacsbox, dimse_orthanc, peer):
    for data in CORPUS.values():
        assert dimse_pacsbox.session().post(dimse_pacsbox.url + "/instances", data=data).ok
        dimse_orthanc.upload(data)
    return dimse_pacsbox, dimse_orthanc, peer


def c_move(server, identifier, destination: str, model=StudyRootQueryRetrieveInformationModelMove) -> list[int]:
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    try:
        return [int(status.Status) for status, _ in assoc.send_c_move(identifier, destination, model)]
    finally:
        assoc.release()


def _received(peer) -> dict[str, bytes]:
    return {item.sop_instance_uid: item.data for item in peer.received}


def test_c_move_study_to_peer_is_byte_identical_to_orthancs(loaded):
    pacsbox, orthanc, peer = loaded
    identifier = query("STUDY", StudyInstanceUID=_uid(MR_STUDY[0], "StudyInstanceUID"))
    results = {}
    for server in (pacsbox, orthanc):
        peer.clear()
        statuses = c_move(server, identifier, peer.aet)
        assert statuses[-1] == 0x0000
        results[server is pacsbox] = _received(peer)
    ours, theirs = results[True], results[False]
    assert sorted(ours) == sorted(_uid(d, "SOPInstanceUID") for d in MR_STUDY)
    assert ours == theirs
    for data in MR_STUDY:
        assert ours[_uid(data, "SOPInstanceUID")] == dataset_bytes(data)


def test_c_move_unknown_destination_and_bad_identifier_statuses_match_orthanc(loaded):
    pacsbox, orthanc, _ = loaded
    series = query("SERIES", SeriesInstanceUID=_uid(CT_SERIES[0], "SeriesInstanceUID"))
    # PS3.4 C.4.2.1.5 names 0xA801 "Move Destination unknown"; Orthanc 1.10 answers 0xC000 (unable to process).
    # pacsbox keeps the standard's specific status: both are failures that tell the SCU nothing was sent.
    assert c_move(pacsbox, series, "NOBODY") == [0xA801]
    assert c_move(orthanc, series, "NOBODY") == [0xC000]
    no_key = query("SERIES", StudyInstanceUID=_uid(CT_SERIES[0], "StudyInstanceUID"))
    assert c_move(pacsbox, no_key, "PEER")[-1] == c_move(orthanc, no_key, "PEER")[-1]


def test_c_move_patient_root_instance_list(loaded):
    pacsbox, _, peer = loaded
    peer.clear()
    wanted = [_uid(d, "SOPInstanceUID") for d in CT_SERIES[:3]]
    identifier = query("IMAGE", PatientID="PBX-001", StudyInstanceUID=_uid(CT_SERIES[0], "StudyInstanceUID"),
                       SeriesInstanceUID=_uid(CT_SERIES[0], "SeriesInstanceUID"), SOPInstanceUID=wanted)
    assert c_move(pacsbox, identifier, peer.aet, PatientRootQueryRetrieveInformationModelMove)[-1] == 0x0000
    assert sorted(_received(peer)) == sorted(wanted)


def test_movescu_to_peer(loaded, needs_dcmtk):
    pacsbox, _, peer = loaded
    peer.clear()
    result = dcmtk.run("movescu", "-aet", SCU_AET, "-aec", pacsbox.aet, "-aem", peer.aet, "-S",
                       "-k", "QueryRetrieveLevel=SERIES",
                       "-k", f"StudyInstanceUID={_uid(CT_SERIES[0], 'StudyInstanceUID')}",
                       "-k", f"SeriesInstanceUID={_uid(CT_SERIES[0], 'SeriesInstanceUID')}",
                       "127.0.0.1", pacsbox.dicom_port)
    assert result.returncode == 0, result.stderr
    assert sorted(_received(peer)) == sorted(_uid(d, "SOPInstanceUID") for d in CT_SERIES)


def test_movescu_to_a_real_orthanc(peer, needs_dcmtk):
    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    from tests.faces.dimse.conftest import modalities
    from tests.support.pacsbox_proc import RunningPacsbox

    with ReferenceOrthanc(aet="TARGET", graceful_stop=False) as target:
        config = modalities(peer)
        config["DicomModalities"]["target"] = {"AET": "TARGET", "Host": "127.0.0.1", "Port": target.dicom_port}
        with RunningPacsbox(config) as pacsbox:
            for data in MR_STUDY:
                assert pacsbox.session().post(pacsbox.url + "/instances", data=data).ok
            result = dcmtk.run("movescu", "-aet", SCU_AET, "-aec", pacsbox.aet, "-aem", "TARGET", "-S",
                               "-k", "QueryRetrieveLevel=STUDY",
                               "-k", f"StudyInstanceUID={_uid(MR_STUDY[0], 'StudyInstanceUID')}",
                               "127.0.0.1", pacsbox.dicom_port)
            assert result.returncode == 0, result.stderr
        stored = target.session.get(target.url + "/instances?expand").json()
        assert sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in stored) == \
            sorted(_uid(d, "SOPInstanceUID") for d in MR_STUDY)
        for instance in stored:
            metadata = target.session.get(f"{target.url}/instances/{instance['ID']}/metadata?expand").json()
            assert metadata["RemoteAET"] == pacsbox.aet
            assert metadata["Origin"] == "DicomProtocol"


def test_getscu_series(loaded, needs_dcmtk, tmp_path):
    pacsbox, _, _ = loaded
    result = dcmtk.run("getscu", "-aet", SCU_AET, "-aec", pacsbox.aet, "-S", "-od", tmp_path,
                       "-k", "QueryRetrieveLevel=SERIES",
                       "-k", f"StudyInstanceUID={_uid(CT_SERIES[0], 'StudyInstanceUID')}",
                       "-k", f"SeriesInstanceUID={_uid(CT_SERIES[0], 'SeriesInstanceUID')}",
                       "127.0.0.1", pacsbox.dicom_port)
    assert result.returncode == 0, result.stderr
    got = {_uid(p.read_bytes(), "SOPInstanceUID"): dataset_bytes(p.read_bytes()) for p in tmp_path.iterdir()}
    assert got == {_uid(d, "SOPInstanceUID"): dataset_bytes(d) for d in CT_SERIES}


def test_pynetdicom_c_get_study(loaded):
    from pynetdicom import evt

    pacsbox, _, _ = loaded
    received: dict[str, bytes] = {}

    def on_store(event) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.encoded_dataset(include_meta=False)
        return 0x0000

    ae = AE(ae_title=SCU_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    sop_classes = sorted({_uid(d, "SOPClassUID") for d in MR_STUDY})
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    roles = [build_role(sop_class, scp_role=True) for sop_class in sop_classes]
    assoc = ae.associate("127.0.0.1", pacsbox.dicom_port, ae_title=pacsbox.aet, ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    identifier = query("STUDY", StudyInstanceUID=_uid(MR_STUDY[0], "StudyInstanceUID"))
    statuses = [int(s.Status) for s, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000
    assert received == {_uid(d, "SOPInstanceUID"): dataset_bytes(d) for d in MR_STUDY}
