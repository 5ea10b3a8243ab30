"""The installed real Orthanc run by the same lifecycle API, and linked with a pacsbox as its DICOM peer."""

from __future__ import annotations

import pytest
import requests

from pacsbox.datasets import ct_study
from pacsbox.lifecycle import ensure, get_instance, stop
from pacsbox.lifecycle.engines import ORTHANC_MISSING, orthanc_binary
from pacsbox.lifecycle.topology import link
from tests.lifecycle.conftest import is_gone

pytestmark = pytest.mark.skipif(orthanc_binary() is None, reason=ORTHANC_MISSING)


def _count(instance) -> int:
    return requests.get(instance.url + "/statistics", auth=instance.auth, timeout=30).json()["CountInstances"]


def test_the_real_orthanc_started_used_reset_snapshotted_and_stopped(home):
    orthanc = ensure("real", {"DicomAet": "REALORTHANC"}, engine="orthanc", home=home)
    system = requests.get(orthanc.url + "/system", auth=orthanc.auth, timeout=30).json()
    assert system["DicomAet"] == "REALORTHANC" and system["Name"] == "real" and "PacsboxVersion" not in system
    assert ensure("real", {"DicomAet": "REALORTHANC"}, engine="orthanc", home=home).pid == orthanc.pid
    for _, data in ct_study(slices=2, size=16):
        requests.post(orthanc.url + "/instances", data=data, auth=orthanc.auth, timeout=30).raise_for_status()
    orthanc.snapshot("two")
    orthanc = get_instance("real", home=home)  # the copy restarts it, on the same ports
    assert _count(orthanc) == 2
    orthanc.reset()
    assert _count(orthanc) == 0
    orthanc.restore("two")
    assert _count(get_instance("real", home=home)) == 2
    pid = get_instance("real", home=home).pid
    assert stop("real", home=home) is True
    assert is_gone(pid)


@pytest.mark.parametrize("sender_engine", ["builtin", "orthanc"])
def test_two_linked_instances_store_to_each_other(home, sender_engine):
    receiver_engine = "orthanc" if sender_engine == "builtin" else "builtin"
    sender = ensure("sender", {"DicomAet": "SENDER"}, engine=sender_engine, home=home)
    receiver = ensure("receiver", {"DicomAet": "RECEIVER"}, engine=receiver_engine, home=home)
    link(sender, receiver)
    for _, data in ct_study(slices=2, size=16):
        requests.post(sender.url + "/instances", data=data, auth=sender.auth, timeout=30).raise_for_status()
    study = requests.get(sender.url + "/studies", auth=sender.auth, timeout=30).json()[0]
    answer = requests.post(f"{sender.url}/modalities/receiver/store", data=study, auth=sender.auth, timeout=60)
    assert answer.status_code == 200, answer.text
    assert _count(receiver) == 2
    echo = requests.post(f"{receiver.url}/modalities/sender/echo", data="{}", auth=receiver.auth, timeout=60)
    assert echo.status_code == 200, echo.text
    # and as HTTP peers: the receiver sends the study back over REST after the sender forgot it
    requests.delete(f"{sender.url}/studies/{study}", auth=sender.auth, timeout=30).raise_for_status()
    back = requests.post(f"{receiver.url}/peers/sender/store", data=study, auth=receiver.auth, timeout=60)
    assert back.status_code == 200 and back.json()["InstancesCount"] == 2, back.text
    assert _count(sender) == 2
