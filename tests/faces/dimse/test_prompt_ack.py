"""With ``DicomAcknowledgeAtOnce``, a default pynetdicom SCU (Nagle's algorithm on) is answered as fast as one with
``TCP_NODELAY``.

Such a peer sends a request's data set only once its command PDU is acknowledged; without
``upper_layer.acknowledge_promptly`` Linux holds that ACK up to 40 ms, so each C-STORE took ~45 ms instead of ~5
(as it does against Orthanc). Both ways a server reads PDUs are checked: its own direct path and pynetdicom's (an
association with a role selection item goes there). The figure compared is a ratio between two clients of the same
server, taken in alternating blocks, never a time: the effect is ten-fold, the bound two-fold.
"""

from __future__ import annotations

import io
import socket
import sys
import time

import pytest
from pydicom import dcmread
from pynetdicom import AE, build_role

from pacsbox.faces.dimse.network import held_reactor
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_QUICKACK is Linux's")

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
BLOCKS, STORES_PER_BLOCK = 4, 8


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"DicomAcknowledgeAtOnce": True}) as running:
        yield running


def _datasets(key: str) -> list:
    return [dcmread(io.BytesIO(to_bytes(make_dataset(
        patient_id="ACK", patient_name="Prompt^Ack", study_uid=uid("ack-st", key), series_uid=uid("ack-se", key),
        sop_uid=uid(f"ack-{key}", number), instance_number=number + 1, rows=4, cols=4))))
        for number in range(BLOCKS * STORES_PER_BLOCK)]


def _associate(server: RunningPacsbox, *, nagle: bool, pynetdicom_path: bool):
    entity = AE(ae_title="ACKSCU")
    entity.add_requested_context(CT_IMAGE_STORAGE)
    roles = [build_role(CT_IMAGE_STORAGE, scu_role=True)] if pynetdicom_path else None
    association = entity.associate("127.0.0.1", server.dicom_port, ae_title=server.aet, ext_neg=roles)
    assert association.is_established
    if not nagle:
        association.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return association


@pytest.mark.parametrize("pynetdicom_path", [False, True], ids=["direct", "pynetdicom"])
def test_a_nagle_client_stores_as_fast_as_a_nodelay_one(server, pynetdicom_path):
    spent = {True: 0.0, False: 0.0}
    associations = {nagle: _associate(server, nagle=nagle, pynetdicom_path=pynetdicom_path) for nagle in spent}
    datasets = {nagle: _datasets(f"{pynetdicom_path}-{nagle}") for nagle in spent}
    try:
        for block in range(BLOCKS):
            for nagle in (True, False) if block % 2 else (False, True):
                chunk = datasets[nagle][block * STORES_PER_BLOCK:(block + 1) * STORES_PER_BLOCK]
                with held_reactor(associations[nagle]):
                    began = time.perf_counter()
                    for dataset in chunk:
                        assert associations[nagle].send_c_store(dataset).Status == 0x0000
                    spent[nagle] += time.perf_counter() - began
    finally:
        for association in associations.values():
            association.release()
    assert spent[True] < 2 * spent[False], (
        f"{BLOCKS * STORES_PER_BLOCK} C-STOREs took {spent[True]:.2f} s with Nagle's algorithm on, "
        f"{spent[False]:.2f} s with TCP_NODELAY: the command PDU's ACK waits for the delayed-ACK timer")
