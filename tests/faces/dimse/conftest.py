"""Fixtures of the DICOM face tests: a pacsbox that knows the test SCU and a peer PACS, the real Orthanc alike."""

from __future__ import annotations

import pytest

from tests.support import dcmtk
from tests.support.dicom_peer import DicomPeer
from tests.support.dimse import SCU_AET
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox


def modalities(peer: DicomPeer, scu_port: int = 1) -> dict:
    """The same DicomModalities for pacsbox and the reference Orthanc: the test SCU and the peer PACS."""
    return {"DicomModalities": {"scu": [SCU_AET, "127.0.0.1", scu_port], "peer": peer.modality()}}


@pytest.fixture(scope="module")
def peer():
    """A pynetdicom PACS the servers under test send to (C-MOVE destination, C-STORE target)."""
    with DicomPeer("PEER") as running:
        yield running


@pytest.fixture(scope="module")
def dimse_pacsbox(peer):
    with RunningPacsbox(modalities(peer)) as server:
        yield server


@pytest.fixture(scope="module")
def dimse_orthanc(peer):
    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    with ReferenceOrthanc(extra_config=modalities(peer), graceful_stop=False) as server:
        yield server


@pytest.fixture(scope="session")
def needs_dcmtk():
    if not dcmtk.have_dcmtk():
        pytest.skip(dcmtk.SKIP_REASON)
