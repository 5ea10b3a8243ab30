"""Instances received over C-STORE are routed like XNAT's DICOM receiver, end to end: storescu sends, xnatpy sees
the session in the project's prearchive (or in the unassigned one) and archives it."""

from __future__ import annotations

import time

import pytest

from tests.support import dcmtk
from tests.support.dicomgen import make_dataset, to_bytes, uid


def _write_session(folder, key: str, comments: str | None, count: int = 3) -> None:
    folder.mkdir()
    for number in range(count):
        extra = {"PatientComments": comments} if comments else {}
        dataset = make_dataset(patient_id=f"PID-{key}", patient_name=f"Received^{key}", study_uid=uid("rx", key),
                               series_uid=uid("rx-series", key), sop_uid=uid("rx-instance", key, number),
                               instance_number=number + 1, modality="MR", extra=extra)
        (folder / f"{number}.dcm").write_bytes(to_bytes(dataset))


def _wait_ready(connection, project: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = [s for s in connection.prearchive.sessions(project=project) if s.status == "READY"]
        if sessions:
            return sessions
        time.sleep(0.2)
    raise AssertionError(f"no READY prearchive session in {project}")


def test_storescu_to_project_prearchive_then_archive(xnat_server, connection, tmp_path):
    if not dcmtk.have_dcmtk():
        pytest.skip(dcmtk.SKIP_REASON)
    connection.put("/data/archive/projects/RECEIVED")
    _write_session(tmp_path / "named", "named", "Project:RECEIVED Subject:subj01 Session:sess01")
    _write_session(tmp_path / "anonymous", "anon", None)
    for folder in ("named", "anonymous"):
        result = dcmtk.run("storescu", "-aec", xnat_server.aet, "+sd", "127.0.0.1", xnat_server.dicom_port,
                           tmp_path / folder)
        assert result.returncode == 0, result.stderr
    session = _wait_ready(connection, "RECEIVED")[0]
    assert (session.subject, session.label) == ("subj01", "sess01")
    assert len(session.scans) == 1 and session.scans[0].id == "1"
    rows = connection.get_json("/data/prearchive/projects")["ResultSet"]["Result"]
    assert sorted((row["project"], row["subject"]) for row in rows) == [
        ("RECEIVED", "subj01"), ("Unassigned", "Received_anon")]
    experiment = session.archive()
    assert experiment.label == "sess01"
    connection.clearcache()
    archived = connection.projects["RECEIVED"].subjects["subj01"].experiments["sess01"]
    assert len(archived.scans["1"].resources["DICOM"].files) == 3
