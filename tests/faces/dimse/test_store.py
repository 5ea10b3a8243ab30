"""C-ECHO and C-STORE through dcmtk and pynetdicom: what arrives is what the REST face serves, byte for byte."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pynetdicom import AE

from pacsbox.faces.dimse.network import held_reactor
from tests.support import dcmtk
from tests.support.compare import orthanc_id
from tests.support.dicom_peer import dataset_bytes
from tests.support.dicomgen import make_dataset, standard_corpus, to_bytes, uid
from tests.support.dimse import SCU_AET, echo

EXPLICIT_BIG_ENDIAN = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
DEFLATED = "1.2.840.10008.1.2.1.99"


def _dataset(key: str, **options):
    return make_dataset(patient_id=f"PBX-{key}", patient_name=f"Syntax^{key}", study_uid=uid("study", key),
                        series_uid=uid("series", key), sop_uid=uid("instance", key), **options)


def big_endian_file() -> bytes:
    dataset = _dataset("BE", modality="MR")
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = EXPLICIT_BIG_ENDIAN
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True, little_endian=False, implicit_vr=False)
    return buffer.getvalue()


def jpeg_file() -> bytes:
    """A JPEG Baseline instance; its frame is not a real JPEG stream, which an archive storing as-is never notices."""
    dataset = _dataset("JPEG", modality="OT")
    dataset.PixelData = encapsulate([b"\xff\xd8\xff\xe0" + bytes(60) + b"\xff\xd9"])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = JPEG_BASELINE
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True, little_endian=True, implicit_vr=False)
    return buffer.getvalue()


def sent_files() -> dict[str, bytes]:
    """CT, MR, multi-frame SC and JPEG objects in implicit, explicit, deflated, big endian and JPEG syntaxes."""
    files = {name.replace("/", "_"): data for name, data in standard_corpus() if not name.startswith("nometa")}
    files["deflated.dcm"] = to_bytes(_dataset("DEFL", modality="CT"), transfer_syntax=DEFLATED)
    files["bigendian.dcm"] = big_endian_file()
    files["jpeg.dcm"] = jpeg_file()
    return files


def instance_id(data: bytes) -> str:
    dataset = dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    return orthanc_id(dataset.PatientID, dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)


def test_echoscu(dimse_pacsbox, needs_dcmtk):
    result = dcmtk.run("echoscu", "-aet", SCU_AET, "-aec", dimse_pacsbox.aet, "127.0.0.1", dimse_pacsbox.dicom_port)
    assert result.returncode == 0, result.stderr
    assert echo(dimse_pacsbox.dicom_port, dimse_pacsbox.aet, calling_aet="ANYONE") == 0x0000


def test_storescu_folder_arrives_byte_for_byte(fresh_dimse_pacsbox, needs_dcmtk, tmp_path):
    server = fresh_dimse_pacsbox
    files = sent_files()
    # storescu sends little endian unless told to propose another syntax first.
    proposals = {"jpeg.dcm": "-xy", "deflated.dcm": "-xd", "bigendian.dcm": "-xb"}
    for option in ("-x=", "-xy", "-xd", "-xb"):
        folder = tmp_path / option.strip("-=")
        folder.mkdir()
        for name, data in files.items():
            if proposals.get(name, "-x=") == option:
                (folder / name).write_bytes(data)
        result = dcmtk.run("storescu", "-aet", SCU_AET, "-aec", server.aet, option, "+sd", "+r", "127.0.0.1",
                           server.dicom_port, folder, timeout=120)
        assert result.returncode == 0, result.stderr
    session = server.session()
    assert sorted(session.get(server.url + "/instances").json()) == sorted(instance_id(d) for d in files.values())
    for name, data in files.items():
        instance = instance_id(data)
        stored = session.get(f"{server.url}/instances/{instance}/file").content
        if name == "deflated.dcm":  # storescu deflates again, with its own compression settings
            assert dcmread(io.BytesIO(stored)) == dcmread(io.BytesIO(data))
        else:
            assert dataset_bytes(stored) == dataset_bytes(data), name
        meta = dcmread(io.BytesIO(stored), stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID, name
        assert meta.SourceApplicationEntityTitle == SCU_AET
        metadata = session.get(f"{server.url}/instances/{instance}/metadata?expand").json()
        assert metadata["Origin"] == "DicomProtocol"
        assert metadata["RemoteAET"] == SCU_AET
        assert metadata["CalledAET"] == server.aet
        assert metadata["RemoteIP"] == "127.0.0.1"
        assert metadata["TransferSyntax"] == str(meta.TransferSyntaxUID)


def test_dicom_and_rest_ingest_give_the_same_instance(fresh_dimse_pacsbox, spawned_pacsbox):
    """The same file stored over DICOM in one server and over REST in another: same IDs, same tags."""
    data = standard_corpus()[0][1]
    ae = AE(ae_title=SCU_AET)
    dataset = dcmread(io.BytesIO(data))
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", fresh_dimse_pacsbox.dicom_port, ae_title=fresh_dimse_pacsbox.aet)
    assert assoc.is_established
    assert assoc.send_c_store(dataset).Status == 0x0000
    assoc.release()
    assert spawned_pacsbox.session().post(spawned_pacsbox.url + "/instances", data=data).ok
    instance = instance_id(data)
    over_dicom = fresh_dimse_pacsbox.session().get(f"{fresh_dimse_pacsbox.url}/instances/{instance}")
    over_rest = spawned_pacsbox.session().get(f"{spawned_pacsbox.url}/instances/{instance}")
    assert over_dicom.status_code == over_rest.status_code == 200
    assert over_dicom.json()["ParentSeries"] == over_rest.json()["ParentSeries"]
    for route in ("tags", "simplified-tags"):
        ours = fresh_dimse_pacsbox.session().get(f"{fresh_dimse_pacsbox.url}/instances/{instance}/{route}").json()
        theirs = spawned_pacsbox.session().get(f"{spawned_pacsbox.url}/instances/{instance}/{route}").json()
        assert ours == theirs


def test_parallel_associations_store_concurrently(fresh_dimse_pacsbox):
    """Four associations at once, each with its own series: every instance stored, none lost."""
    import threading

    server = fresh_dimse_pacsbox
    failures: list[str] = []

    def send(worker: int) -> None:
        ae = AE(ae_title=f"SCU{worker}")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        with held_reactor(assoc):  # four SCUs in one process: pynetdicom's own race would lose answers
            for number in range(25):
                dataset = make_dataset(patient_id=f"P{worker}", patient_name="Para^Llel",
                                       study_uid=uid("ps", worker), series_uid=uid("pse", worker),
                                       sop_uid=uid("pi", worker, number), instance_number=number + 1)
                dataset.file_meta = FileMetaDataset()
                dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
                status = assoc.send_c_store(dataset).Status
                if status != 0:
                    failures.append(f"{worker}/{number}: {status:04x}")
        assoc.release()

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert server.session().get(server.url + "/statistics").json()["CountInstances"] == 100


@pytest.fixture
def fresh_dimse_pacsbox(peer):
    from tests.faces.dimse.conftest import modalities
    from tests.support.pacsbox_proc import RunningPacsbox

    with RunningPacsbox(modalities(peer)) as server:
        yield server
