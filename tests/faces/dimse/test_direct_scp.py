"""The direct path: associations that only verify, store and find, served without pynetdicom's reactor (direct_scp).

Fragmented PDUs both ways, failures answered without ending the association, release, abort, idle timeout,
requests it leaves to pynetdicom, finds answered as pynetdicom's path answers them, and a server stop with
associations open.
"""

from __future__ import annotations

import io
import time

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pynetdicom import AE, build_role

from pacsbox.faces.dimse.network import held_reactor
from tests.support import dcmtk
from tests.support.dicom_peer import dataset_bytes
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.dimse import SCU_AET, comparable_answers, echo, query
from tests.support.pacsbox_proc import RunningPacsbox

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"DicomScpTimeout": 2, "DicomAlwaysAllowFind": True}) as running:
        yield running


def ct(key: str, **options):
    dataset = make_dataset(patient_id=f"PBX-SP-{key}", patient_name="Storage^Path", study_uid=uid("sp-study", key),
                           series_uid=uid("sp-series", key), sop_uid=uid("sp-instance", key), **options)
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = EXPLICIT
    return dataset


def associate(server, maximum_pdu: int = 16384, roles=None):
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.maximum_pdu_size = maximum_pdu
    ae.add_requested_context(CT_STORAGE, EXPLICIT)
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet, ext_neg=roles)
    assert assoc.is_established
    return assoc


def stored_bytes(server, dataset) -> bytes:
    found = server.session().post(server.url + "/tools/lookup", data=str(dataset.SOPInstanceUID)).json()
    assert len(found) == 1
    return server.session().get(f"{server.url}/instances/{found[0]['ID']}/file").content


def test_responses_are_fragmented_to_a_small_maximum_pdu(server):
    """A peer receiving PDUs of 64 bytes gets each response in several fragments."""
    assoc = associate(server, maximum_pdu=64)
    dataset = ct("small-pdu")
    with held_reactor(assoc):  # several requests on one association: pynetdicom's race (see held_reactor)
        assert assoc.send_c_store(dataset).Status == 0x0000
        assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert assoc.is_released


def test_a_dataset_in_many_pdus_arrives_byte_for_byte(server, needs_dcmtk, tmp_path):
    data = to_bytes(ct("many-pdus", rows=256, cols=256))
    (tmp_path / "ct.dcm").write_bytes(data)
    result = dcmtk.run("storescu", "-aet", SCU_AET, "-aec", server.aet, "--max-send-pdu", "4096", "127.0.0.1",
                       server.dicom_port, tmp_path / "ct.dcm")
    assert result.returncode == 0, result.stderr
    assert dataset_bytes(stored_bytes(server, dcmread(io.BytesIO(data)))) == dataset_bytes(data)


def test_an_unstorable_instance_is_answered_and_the_association_goes_on(server):
    assoc = associate(server)
    broken = ct("broken")
    del broken.StudyInstanceUID
    with held_reactor(assoc):
        assert assoc.send_c_store(broken).Status == 0xC000  # cannot understand, as Orthanc answers
        assert assoc.send_c_store(ct("after-broken")).Status == 0x0000
    assoc.release()


def test_the_same_instance_twice_is_success_both_times(server):
    assoc = associate(server)
    with held_reactor(assoc):
        assert assoc.send_c_store(ct("twice")).Status == 0x0000
        assert assoc.send_c_store(ct("twice")).Status == 0x0000  # AlreadyStored is a success over DICOM
    assoc.release()


def test_a_peer_abort_leaves_the_server_serving(server):
    assoc = associate(server)
    assoc.abort()
    assert echo(server.dicom_port, server.aet) == 0x0000


def test_an_idle_association_is_aborted_after_the_scp_timeout(server):
    assoc = associate(server)
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.1)
    assert assoc.is_aborted  # DicomScpTimeout is 2 s here


def test_role_selection_is_negotiated_by_pynetdicom(server):
    """A request with SCP/SCU role selection items takes pynetdicom's path, and is answered the same way."""
    assoc = associate(server, roles=[build_role(CT_STORAGE, scu_role=True, scp_role=True)])
    assert assoc.send_c_store(ct("roles")).Status == 0x0000
    assoc.release()


def find_over(server, identifier, *, syntax: str = EXPLICIT, with_move_context: bool = False,
              maximum_pdu: int = 16384) -> list:
    """C-FIND answers over an association proposing one find context (served directly), or a find and a move
    context (an association pynetdicom serves)."""
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.maximum_pdu_size = maximum_pdu
    ae.add_requested_context(STUDY_FIND, syntax)
    if with_move_context:
        ae.add_requested_context(STUDY_MOVE, syntax)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    try:
        return [(int(st.Status), ds) for st, ds in assoc.send_c_find(identifier, STUDY_FIND)]
    finally:
        assoc.release()


@pytest.fixture(scope="module")
def two_studies(server):
    assoc = associate(server)
    with held_reactor(assoc):
        for key in ("find-a", "find-b"):
            for number in range(3):
                dataset = ct(f"{key}-{number}", instance_number=number + 1)
                dataset.StudyInstanceUID, dataset.SeriesInstanceUID = uid("sp-study", key), uid("sp-series", key)
                dataset.PatientID = "PBX-SP-FIND"
                assert assoc.send_c_store(dataset).Status == 0x0000
    assoc.release()


@pytest.mark.parametrize("syntax", [EXPLICIT, IMPLICIT, DEFLATED, BIG_ENDIAN])
@pytest.mark.parametrize("keys", [
    dict(PatientID="PBX-SP-FIND", StudyInstanceUID="", PatientName="", NumberOfStudyRelatedInstances="",
         ModalitiesInStudy=""),
    dict(PatientID="PBX-SP-F*", StudyInstanceUID="", SliceThickness=""),  # a key read from a stored file
    dict(PatientID="NO-SUCH-PATIENT", StudyInstanceUID=""),
])
def test_find_answers_are_those_of_the_pynetdicom_path(server, two_studies, syntax, keys):
    identifier = query("STUDY", **keys)
    direct = find_over(server, identifier, syntax=syntax)
    through_pynetdicom = find_over(server, identifier, syntax=syntax, with_move_context=True)
    assert comparable_answers(direct, ignore=()) == comparable_answers(through_pynetdicom, ignore=())
    assert direct[-1][0] == 0x0000 and all(code == 0xFF00 for code, _ in direct[:-1])
    if keys["PatientID"] != "NO-SUCH-PATIENT":
        assert len(direct) == 3


def test_find_answers_are_fragmented_to_a_small_maximum_pdu(server, two_studies):
    answers = find_over(server, query("STUDY", PatientID="PBX-SP-FIND", StudyInstanceUID="", PatientName=""),
                        maximum_pdu=64)
    assert [code for code, _ in answers] == [0xFF00, 0xFF00, 0x0000]


def test_a_bad_find_is_answered_and_the_association_goes_on(server, two_studies):
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(STUDY_FIND)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    try:
        with held_reactor(assoc):
            bad_level = [int(st.Status) for st, _ in assoc.send_c_find(query("BOGUS", StudyInstanceUID=""),
                                                                        STUDY_FIND)]
            assert bad_level == [0xC000]  # unable to process, as Orthanc answers
            good = [int(st.Status) for st, _ in assoc.send_c_find(
                query("STUDY", PatientID="PBX-SP-FIND", StudyInstanceUID=""), STUDY_FIND)]
        assert good == [0xFF00, 0xFF00, 0x0000]
    finally:
        assoc.release()


def test_stopping_the_server_ends_open_storage_associations(tmp_path):
    from pacsbox.core.archive import Archive
    from pacsbox.core.config import Config
    from pacsbox.faces.dimse.scp import DicomServer

    config = Config(StorageDirectory=str(tmp_path / "storage"), DicomPort=0)
    archive = Archive(config)
    dicom = DicomServer(archive, config)
    dicom.start()
    try:
        ae = AE(ae_title=SCU_AET)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate("127.0.0.1", dicom.port, ae_title=config.DicomAet)
        assert assoc.is_established and assoc.send_c_echo().Status == 0x0000
        dicom.stop()
        deadline = time.monotonic() + 10
        while assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not assoc.is_established
    finally:
        dicom.stop()
        archive.close()
