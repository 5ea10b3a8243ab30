"""STOW-RS onto a full disk: 507 (Orthanc's "The file storage is full"), what was stored stays, the server serves.

The storage area is a 3 MiB tmpfs mounted for the test (root only; skipped where mounting is not allowed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import requests

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .stow_bodies import STOW_TYPE, body, instance, study_uid


@pytest.fixture
def server_on_small_disk():
    server = RunningPacsbox()
    server.data_dir.mkdir(parents=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(server.data_dir)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("needs root and tmpfs mounts for a small disk")
    try:
        yield server.start()
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(server.data_dir)], capture_output=True)
        shutil.rmtree(server.directory, ignore_errors=True)


def test_full_disk_is_507_and_loses_nothing(server_on_small_disk):
    server = server_on_small_disk
    post = dict(auth=server.auth, headers={"Content-Type": STOW_TYPE})
    small = requests.post(server.url + "/dicom-web/studies", data=body([instance("small", 1)]), **post)
    assert small.status_code == 200
    big = to_bytes(make_dataset(patient_id="BIG", patient_name="Big^Ben", study_uid=uid("big-study"),
                                series_uid=uid("big-series"), sop_uid=uid("big-instance"), rows=1500, cols=1500))
    answer = requests.post(server.url + "/dicom-web/studies", data=body([big]), **post)
    assert answer.status_code == 507 and answer.json()["Message"] == "The file storage is full"
    session = server.session()
    assert len(session.get(f"{server.url}/dicom-web/studies?StudyInstanceUID={study_uid('small')}").json()) == 1
    assert session.get(f"{server.url}/dicom-web/studies?StudyInstanceUID={uid('big-study')}").json() == []
