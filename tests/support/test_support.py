"""Tests of the test-support helpers: DICOM generators, reference Orthanc, comparison."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import psutil
import pydicom
import pytest
import requests
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.support import compare, dicomgen, orthanc_ref
from tests.support.compare import orthanc_id
from tests.support.orthanc_ref import (
    ORTHANC_BINARY,
    SKIP_REASON,
    ReferenceOrthanc,
    ReferenceOrthancError,
    free_port,
    have_orthanc,
)

DCMDUMP = "/usr/bin/dcmdump"
needs_orthanc = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    return dicomgen.standard_corpus()


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


# ---------------------------------------------------------------------------------------------
# dicomgen
# ---------------------------------------------------------------------------------------------


def test_uid_deterministic_and_valid() -> None:
    a = dicomgen.uid("study", "PBX-001", 1)
    assert a == dicomgen.uid("study", "PBX-001", 1)
    assert a != dicomgen.uid("study", "PBX-001", 2)
    assert a.startswith(dicomgen.UID_ROOT)
    assert len(a) <= 64
    assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in a.split("."))


def test_corpus_is_deterministic(corpus: list[tuple[str, bytes]]) -> None:
    again = dicomgen.standard_corpus()
    assert again == corpus
    names = [name for name, _ in corpus]
    assert len(names) == len(set(names))
    assert dicomgen.zip_of(corpus) == dicomgen.zip_of(again)


def test_corpus_content(corpus: list[tuple[str, bytes]]) -> None:
    files = dict(corpus)
    assert dicomgen.corpus_counts(corpus) == {
        "CountPatients": 7,
        "CountStudies": 9,
        "CountSeries": 11,
        "CountInstances": 22,
    }
    assert sum(1 for n in files if n.startswith("ct/")) == 5
    mr_series = {_read(d).SeriesInstanceUID for n, d in corpus if n.startswith("mr/")}
    assert len(mr_series) == 3
    assert len({_read(d).StudyInstanceUID for n, d in corpus if n.startswith("p2/")}) == 2

    for name, data in corpus:
        ds = _read(data)
        for keyword in (
            "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
            "StudyDescription", "ReferringPhysicianName", "InstitutionName", "SeriesDate",
            "SeriesTime", "SeriesDescription", "BodyPartExamined", "ProtocolName", "Manufacturer",
            "StationName", "ImageOrientationPatient", "ImagePositionPatient", "InstanceNumber",
            "AcquisitionNumber", "InstanceCreationDate", "InstanceCreationTime", "SliceThickness",
        ):  # fmt: skip
            assert keyword in ds, (name, keyword)
        frames = int(ds.get("NumberOfFrames", 1))
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2 * frames, name
        if name == "nometa/1.dcm":
            assert data[128:132] != b"DICM"
            assert data[:4] == b"\x08\x00\x08\x00"  # (0008,0008) ImageType, implicit VR
            assert not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta
        else:
            assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM", name
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.file_meta.ImplementationClassUID == dicomgen.IMPLEMENTATION_CLASS_UID
            assert ds.pixel_array.shape[-2:] == (ds.Rows, ds.Columns)

    assert str(_read(files["ct/1.dcm"]).SOPClassUID) == dicomgen.CT_IMAGE_STORAGE
    assert str(_read(files["mr/s1/1.dcm"]).SOPClassUID) == dicomgen.MR_IMAGE_STORAGE
    assert _read(files["p2/b/1.dcm"]).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian

    latin1 = _read(files["charset/latin1.dcm"])
    assert latin1.SpecificCharacterSet == "ISO_IR 100"
    assert str(latin1.PatientName) == "Müller^Jürgen"
    assert "Müller".encode("latin-1") in files["charset/latin1.dcm"]
    utf8 = _read(files["charset/utf8.dcm"])
    assert utf8.SpecificCharacterSet == "ISO_IR 192"
    assert "山田^太郎" in str(utf8.PatientName)
    assert "山田".encode() in files["charset/utf8.dcm"]

    seq = _read(files["seq/1.dcm"])
    assert len(seq.ReferencedImageSequence) == 2
    assert seq.ProcedureCodeSequence[0].EquivalentCodeSequence[0].CodeValue == "24627-2"
    assert seq.RequestAttributesSequence[0].ScheduledProtocolCodeSequence[1].CodeValue == "P2"
    block = seq.private_block(0x0009, "PACSBOX TEST")
    assert block[0x01].value == "private text"
    assert block[0x04].value[0].CodeValue == "PRIV"

    mf = _read(files["multiframe/1.dcm"])
    assert mf.NumberOfFrames == 3
    assert mf.pixel_array.shape == (3, mf.Rows, mf.Columns)


def test_make_dataset_and_to_bytes_options() -> None:
    ds = dicomgen.make_dataset(
        patient_id="P",
        patient_name="Test^Pat",
        study_uid=dicomgen.uid("s"),
        series_uid=dicomgen.uid("se"),
        sop_uid=dicomgen.uid("i"),
        modality="MR",
        rows=4,
        cols=6,
        extra={"StudyDescription": "custom", "PatientSex": None, 0x00091010: ("LO", "PACSBOX")},
    )
    assert ds.StudyDescription == "custom"
    assert "PatientSex" not in ds
    assert ds[0x00091010].value == "PACSBOX"
    assert len(ds.PixelData) == 4 * 6 * 2
    assert str(ds.SOPClassUID) == dicomgen.MR_IMAGE_STORAGE
    assert not hasattr(ds, "file_meta") or not ds.file_meta  # to_bytes doesn't modify ds

    for ts in (ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        back = _read(dicomgen.to_bytes(ds, transfer_syntax=ts))
        assert back.file_meta.TransferSyntaxUID == ts
        assert back.StudyDescription == "custom"
    assert (
        _read(dicomgen.to_bytes(ds, implicit_vr=True)).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    )
    assert not getattr(ds, "file_meta", None)
    raw = dicomgen.to_bytes(ds, with_meta=False, implicit_vr=False)
    assert _read(raw).PatientID == "P"
    with pytest.raises(ValueError):
        dicomgen.to_bytes(ds, transfer_syntax="1.2.840.10008.1.2.4.50")
    with pytest.raises(ValueError):
        dicomgen.to_bytes(ds, with_meta=False, transfer_syntax=DeflatedExplicitVRLittleEndian)


def test_zip_of_roundtrip(corpus: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(io.BytesIO(dicomgen.zip_of(corpus))) as zf:
        assert zf.namelist() == [name for name, _ in corpus]
        assert all(zf.read(name) == data for name, data in corpus)


@pytest.mark.skipif(not os.access(DCMDUMP, os.X_OK), reason=SKIP_REASON)
def test_corpus_readable_by_dcmdump(corpus: list[tuple[str, bytes]], tmp_path: Path) -> None:
    for name, data in corpus:
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(data)
        proc = subprocess.run(
            [DCMDUMP, "-q", str(path)],
            check=False,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=30,
        )
        assert proc.returncode == 0, (name, proc.stderr)
        assert "E:" not in proc.stderr and "W:" not in proc.stderr, (name, proc.stderr)
        assert "PatientID" in proc.stdout, name


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------


def test_normalize_and_assert_same() -> None:
    a_id, b_id = "b" * 8 + ("-" + "0" * 8) * 4, "a" * 8 + ("-" + "1" * 8) * 4
    ours = {
        "Studies": [a_id, b_id],
        "LastUpdate": "20240101T000000",
        "Nested": [{"FileUuid": "x", "TotalDiskSizeMB": 3, "Path": "/instances/x"}],
        "Expanded": [{"ID": a_id, "n": 1}, {"ID": b_id, "n": 2}],
        "Ordered": [3, 1, 2],
    }
    reference = {
        "Studies": [b_id, a_id],
        "LastUpdate": "20250101T000000",
        "Nested": [{"FileUuid": "y", "TotalDiskSizeMB": 4, "Path": "/instances/x"}],
        "Expanded": [{"ID": b_id, "n": 2}, {"ID": a_id, "n": 1}],
        "Ordered": [3, 1, 2],
    }
    n = compare.normalize(ours)
    assert n["Studies"] == sorted([a_id, b_id])
    assert n["LastUpdate"] == compare.PLACEHOLDER
    assert n["Nested"][0] == {"FileUuid": compare.PLACEHOLDER, "TotalDiskSizeMB": compare.PLACEHOLDER,
                              "Path": "/instances/x"}  # fmt: skip
    assert n["Ordered"] == [3, 1, 2]
    assert ours["LastUpdate"] == "20240101T000000"  # input untouched
    compare.assert_same(n, compare.normalize(reference))
    compare.assert_equivalent(ours, reference)

    with pytest.raises(AssertionError) as info:
        compare.assert_same({"a": 1, "b": [1, 2]}, {"a": "1", "b": [1, 2]}, context="GET /x")
    message = str(info.value)
    assert message.startswith("GET /x: pacsbox differs from Orthanc")
    assert '- "a": "1",' in message and '+ "a": 1,' in message
    with pytest.raises(AssertionError):
        compare.assert_equivalent({"Ordered": [1, 2]}, {"Ordered": [2, 1]})
    compare.assert_equivalent({"Ordered": [1, 2]}, {"Ordered": [2, 1]}, unordered_keys={"Ordered"})
    with pytest.raises(AssertionError):  # a missing volatile key is still a difference
        compare.assert_equivalent({}, {"LastUpdate": "x"})


# ---------------------------------------------------------------------------------------------
# ReferenceOrthanc
# ---------------------------------------------------------------------------------------------


def test_free_port() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@needs_orthanc
def test_reference_orthanc_accepts_corpus(corpus: list[tuple[str, bytes]]) -> None:
    with ReferenceOrthanc() as ref:
        pid, directory, config_path = ref.pid, ref.directory, ref.config_path
        assert pid is not None and directory is not None and config_path is not None
        assert psutil.Process(pid).exe() == os.path.realpath(ORTHANC_BINARY)
        assert ref.url == f"http://127.0.0.1:{ref.http_port}"
        assert ref.auth == ("admin", "admin")
        assert ref.log_path is not None and ref.log_path.exists()

        assert requests.get(ref.url + "/system", timeout=5).status_code == 401
        system = ref.session.get(ref.url + "/system", timeout=5).json()
        assert system["DicomAet"] == ref.aet == "ORTHANC"
        assert system["DicomPort"] == ref.dicom_port and system["HttpPort"] == ref.http_port
        assert system["Version"] == "1.10.1"
        with socket.create_connection(("127.0.0.1", ref.dicom_port), timeout=5):
            pass

        answers = {}
        for name, data in corpus:
            r = ref.session.post(ref.url + "/instances", data=data, timeout=30)
            assert r.status_code == 200, (name, r.status_code, r.text)
            answers[name] = r.json()
            assert answers[name]["Status"] == "Success", (name, answers[name])
            ds = _read(data)
            ids = (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
            assert answers[name]["ID"] == orthanc_id(*ids), name
            assert answers[name]["ParentPatient"] == orthanc_id(ids[0]), name
            assert answers[name]["ParentStudy"] == orthanc_id(*ids[:2]), name
            assert answers[name]["ParentSeries"] == orthanc_id(*ids[:3]), name

        stats = ref.session.get(ref.url + "/statistics", timeout=5).json()
        expected = dicomgen.corpus_counts(corpus)
        assert {k: stats[k] for k in expected} == expected
        assert int(stats["TotalDiskSize"]) == sum(len(d) for _, d in corpus)

        again = ref.upload(dict(corpus)["ct/1.dcm"])
        assert again["Status"] == "AlreadyStored"
        nometa = answers["nometa/1.dcm"]["ID"]
        meta = ref.session.get(f"{ref.url}/instances/{nometa}/metadata?expand", timeout=5).json()
        assert meta["TransferSyntax"] == ImplicitVRLittleEndian
        patient = ref.session.get(
            f"{ref.url}/patients/{answers['charset/latin1.dcm']['ParentPatient']}"
        ).json()
        assert patient["MainDicomTags"]["PatientName"] == "Müller^Jürgen"
        patient = ref.session.get(f"{ref.url}/patients/{answers['charset/utf8.dcm']['ParentPatient']}").json()
        assert patient["MainDicomTags"]["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"

    assert ref.process is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _processes_using(config_path) == []
    assert not directory.exists()


@needs_orthanc
def test_reference_orthanc_startup_failure_reports_log() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ref = ReferenceOrthanc(extra_config={"HttpPort": busy.getsockname()[1]}, graceful_stop=False)
        with pytest.raises(ReferenceOrthancError, match="already in use"):
            ref.start()
    assert ref.process is None
    assert ref.directory is not None and not ref.directory.exists()


def test_reference_orthanc_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orthanc_ref, "ORTHANC_BINARY", "/nonexistent/Orthanc")
    assert not orthanc_ref.have_orthanc()
    ref = ReferenceOrthanc()
    with pytest.raises(ReferenceOrthancError, match="install-test-deps"):
        ref.start()
    assert ref.process is None and ref.directory is None


def test_skip_reason_names_the_script() -> None:
    assert "scripts/install-test-deps.sh" in SKIP_REASON
    assert shutil.which("bash")
