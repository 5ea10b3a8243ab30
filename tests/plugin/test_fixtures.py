"""The fixtures through real clients, the server log in a failing test's report, and the real Orthanc engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pacsbox.lifecycle.engines import orthanc_binary
from tests.plugin.helpers import run

TINY_DICOM = """
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def tiny_dicom() -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.PatientID, ds.PatientName, ds.Modality = "PLUGIN-1", "Plugin^Test", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
"""

FIXTURE_TESTS = TINY_DICOM + """

def test_1_upload_through_orthanc_client(orthanc_client):
    assert orthanc_client.post("/instances", data=tiny_dicom()).status_code == 200
    assert len(orthanc_client.get("/instances").json()) >= 1


def test_2_clean_archive_is_empty(pacsbox_clean, orthanc_client):
    assert orthanc_client.get("/instances").json() == []
    assert orthanc_client.get("/changes").json()["Changes"] == []


def test_3_xnat_session(pacsbox_clean, xnat_session):
    assert list(xnat_session.projects) == []
    xnat_session.classes.ProjectData(parent=xnat_session, id="PLUGIN", name="Plugin project")
    xnat_session.projects.clearcache()
    assert xnat_session.projects["PLUGIN"].name == "Plugin project"


def test_4_dicom_echo(dicom_address):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="PLUGINTEST")
    ae.add_requested_context(Verification)
    association = ae.associate(dicom_address.host, dicom_address.port, ae_title=dicom_address.aet)
    assert association.is_established
    status = association.send_c_echo()
    association.release()
    assert status.Status == 0x0000


def test_5_fails_on_purpose(orthanc_client):
    orthanc_client.get("/route-named-in-the-log")
    assert False, "fails on purpose"


def test_6_fails_without_the_server():
    assert False, "fails on purpose, no pacsbox fixture"
"""


def test_fixtures_and_the_server_log_of_a_failing_test(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makepyfile(test_inner=FIXTURE_TESTS)
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines(["*test_1_upload_through_orthanc_client PASSED*",
                                 "*test_2_clean_archive_is_empty PASSED*",
                                 "*test_3_xnat_session PASSED*",
                                 "*test_4_dicom_echo PASSED*"])
    result.assert_outcomes(passed=4, failed=2)
    # the failing test that used the server shows the server's log, the other one does not
    result.stdout.fnmatch_lines(["*_ test_5_fails_on_purpose _*", "*- pacsbox server log -*", "*server.log*",
                                 '*"GET /route-named-in-the-log HTTP/1.1" 404*', "*_ test_6_fails_without*"])
    assert result.stdout.str().count("- pacsbox server log -") == 1
    section = result.stdout.str().split("- pacsbox server log -")[1].split("_ test_6_fails_without")[0]
    assert "POST /instances" not in section  # test_1's request: the section holds test_5's lines only


ORTHANC_TESTS = TINY_DICOM + """
import psutil


def test_real_orthanc(pacsbox_clean, orthanc_client, dicom_address):
    assert pacsbox_clean.engine == "orthanc"
    assert psutil.Process(pacsbox_clean.pid).name() == "Orthanc"
    assert dicom_address.aet == "PLUGINORTHANC"  # from the configuration file named in the ini file
    assert orthanc_client.get("/patients").json() == []
    assert orthanc_client.post("/instances", data=tiny_dicom()).status_code == 200
    pacsbox_clean.reset()
    assert orthanc_client.get("/patients").json() == []
"""


@pytest.mark.skipif(orthanc_binary() is None, reason="the real Orthanc is not installed: run "
                                                     "`bash scripts/install-test-deps.sh`")
def test_engine_and_config_from_the_ini_file_start_the_real_orthanc(pytester: pytest.Pytester,
                                                                    pacsbox_home: Path) -> None:
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "orthanc.json").write_text(json.dumps({"DicomAet": "PLUGINORTHANC"}))
    pytester.makeini("[pytest]\npacsbox_engine = orthanc\npacsbox_config = conf/orthanc.json\n")
    pytester.makepyfile(test_inner=ORTHANC_TESTS)
    run(pytester, "--pacsbox-stop").assert_outcomes(passed=1)


def test_a_server_that_dies_at_start_up_errors_at_once_with_its_log(pytester: pytest.Pytester,
                                                                    pacsbox_home: Path) -> None:
    (pytester.path / "bad.json").write_text(json.dumps({"BindAddress": "256.1.1.1"}))
    pytester.makepyfile(test_inner="def test_one(pacsbox_server):\n    pass\n\n"
                                   "def test_two(orthanc_client):\n    pass\n")
    result = run(pytester, "--pacsbox-config", "bad.json", "--pacsbox-startup-timeout", "60")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_one*",
                                 "pacsbox instance 'pytest-*' (builtin) exited during start-up with status 1; log *",
                                 "*cannot listen on 256.1.1.1*", "*ERROR at setup of test_two*"])
    assert "During handling" not in result.stdout.str()
    assert result.duration < 30  # noticed when the child died, not at the start-up timeout
    [instance_dir] = (pacsbox_home / "instances").iterdir()
    # the failure is kept for the session: the second test does not start it again
    assert (instance_dir / "server.log").read_text().count("--- pacsbox lifecycle: starting") == 1


DICOMWEB_TESTS = TINY_DICOM + """
import sys

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO


def test_1_dicomweb_client_stores_and_finds(pacsbox_clean, dicomweb_client):
    dataset = pydicom.dcmread(DicomBytesIO(tiny_dicom()))
    dicomweb_client.store_instances([dataset])
    [study] = dicomweb_client.search_for_studies()
    assert study["0020000D"]["Value"] == [dataset.StudyInstanceUID]
    [instance] = dicomweb_client.retrieve_study(dataset.StudyInstanceUID)
    assert instance.SOPInstanceUID == dataset.SOPInstanceUID


@pytest.fixture
def without_dicomweb_client(monkeypatch):
    for name in ("dicomweb_client", "dicomweb_client.api"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it now fails, as when it is not installed


@pytest.mark.usefixtures("without_dicomweb_client")
def test_2_without_dicomweb_client(dicomweb_client):
    pass
"""


def test_dicomweb_client_fixture_and_its_install_hint(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    pytester.makepyfile(test_inner=DICOMWEB_TESTS)
    result = run(pytester, "-v", "--pacsbox-stop")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_1_dicomweb_client_stores_and_finds PASSED*",
                                 "*ERROR at setup of test_2_without_dicomweb_client*",
                                 "*the dicomweb_client fixture needs dicomweb-client: pip install ?pacsbox?pytest??*"])
