"""Slowloris on the DICOM port (issue 15): thousands of connections that never finish their A-ASSOCIATE-RQ, and
associations that stall, must not stop a new peer.

Connections still waiting for their association request are capped by ``DicomMaximumConnections`` (the oldest is
closed to make room), so their threads and descriptors stay bounded; associations are capped by
``DicomMaximumAssociations``: the longest idle is aborted to make room, and when every one is busy a new request
gets A-ASSOCIATE-RJ (transient, local limit exceeded). ``DicomScpTimeout`` is long here: the caps do the work.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest
from pydicom.dataset import FileMetaDataset
from pynetdicom import AE

from tests.support.dicomgen import make_dataset, uid
from tests.support.dimse import SCU_AET, echo
from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    SUCCESS,
    VERIFICATION,
    RawAssociation,
    associate_rq,
    settle,
    threads_and_fds,
)

HALF_OPEN = 3000
MAXIMUM_CONNECTIONS = 256  # the default
MAXIMUM_ASSOCIATIONS = 8
EVICTABLE_AFTER = 2.0  # admission.EVICTABLE_AFTER
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
DIRECT = [(1, VERIFICATION, [IMPLICIT_LE]), (3, CT_IMAGE_STORAGE, [EXPLICIT_LE])]
PYNETDICOM = [*DIRECT, (5, STUDY_MOVE, [IMPLICIT_LE])]  # a move context sends the association to pynetdicom


@pytest.fixture(scope="module")
def server():
    config = {"DicomScpTimeout": 60, "DicomMaximumAssociations": MAXIMUM_ASSOCIATIONS, "StableAge": 100_000}
    with RunningPacsbox(config) as running:
        assert echo(running.dicom_port, running.aet) == SUCCESS
        yield running


@pytest.fixture(scope="module")
def baseline(server):
    time.sleep(0.5)
    return threads_and_fds(server)


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors():
    """This test process holds thousands of sockets: its own soft limit is raised for the module."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = HALF_OPEN + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit of open files ({hard}) is under {wanted}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _ct(key: str):
    dataset = make_dataset(patient_id=f"PBX-SL-{key}", patient_name="Slow^Loris", study_uid=uid("sl-st", key),
                           series_uid=uid("sl-se", key), sop_uid=uid("sl-in", key))
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = EXPLICIT_LE
    return dataset


def _echo_and_store(server: RunningPacsbox, key: str, through_pynetdicom: bool = False) -> tuple[int, int]:
    """A new pynetdicom peer's C-ECHO and C-STORE statuses (on pynetdicom's path when ``through_pynetdicom``)."""
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_LE)
    if through_pynetdicom:
        ae.add_requested_context(STUDY_MOVE)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established, "a new peer could not associate"
    try:
        return int(assoc.send_c_echo().Status), int(assoc.send_c_store(_ct(key)).Status)
    finally:
        assoc.release()


def _was_aborted(association: RawAssociation) -> bool:
    """Whether the server sent an A-ABORT or closed the connection."""
    association.sock.settimeout(0.5)
    try:
        return association.read_pdu()[0] in (0x07, 0)
    except TimeoutError:
        return False


def _open_half_open(server: RunningPacsbox, count: int) -> list[socket.socket]:
    """``count`` connections: a third silent, a third with a few bytes of a request, a third with all of it but
    its last byte."""
    request = associate_rq(DIRECT)
    sockets = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", server.dicom_port), timeout=10)
        if number % 3 == 1:
            sock.sendall(request[:10])
        elif number % 3 == 2:
            sock.sendall(request[:-1])
        sockets.append(sock)
    return sockets


class LowDescriptors:
    """Descriptor numbers under 1024 kept free while thousands of sockets are opened: pynetdicom's client waits
    on its socket with select(), which takes no descriptor over 1023."""

    def __init__(self, count: int = 64) -> None:
        self.held = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]

    def release(self) -> None:
        for descriptor in self.held:
            os.close(descriptor)
        self.held = []


def test_thousands_of_half_open_connections_leave_room_for_a_new_peer(server, baseline, tally):
    low = LowDescriptors()
    sockets = _open_half_open(server, HALF_OPEN)
    low.release()
    try:
        tally.count("DICOM slowloris", "half-open", None)
        started = time.monotonic()
        assert _echo_and_store(server, "during") == (SUCCESS, SUCCESS)
        assert _echo_and_store(server, "during-pynetdicom", through_pynetdicom=True) == (SUCCESS, SUCCESS)
        assert time.monotonic() - started < 20
        threads, fds = threads_and_fds(server)
        # one thread and one descriptor per waiting connection, at most DicomMaximumConnections of them
        assert threads < baseline[0] + MAXIMUM_CONNECTIONS + 64, threads
        assert fds < baseline[1] + MAXIMUM_CONNECTIONS + 64, fds
    finally:
        for sock in sockets:
            sock.close()
    after = settle(server, baseline, (4, 8), timeout=30)
    assert after[0] <= baseline[0] + 4 and after[1] <= baseline[1] + 8, (baseline, after)


def test_the_oldest_waiting_connection_is_closed_first(server):
    """Beyond DicomMaximumConnections, the first connections opened are the ones closed."""
    sockets = _open_half_open(server, MAXIMUM_CONNECTIONS + 50)
    try:
        closed = [False] * len(sockets)
        for sock in sockets:
            sock.setblocking(False)
        deadline = time.monotonic() + 30  # the server closes them as it accepts the newer ones: slower when loaded
        while not all(closed[:40]) and time.monotonic() < deadline:
            time.sleep(0.05)
            for index, sock in enumerate(sockets):
                if not closed[index]:
                    try:
                        sock.recv(64)  # an A-ABORT, or the end of the connection
                        closed[index] = True
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed[index] = True
        assert all(closed[:40]), closed[:40]
        assert not any(closed[-MAXIMUM_CONNECTIONS // 2:])
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("stalled_on", ["direct", "pynetdicom", "both"])
def test_stalled_associations_make_room_for_a_new_one(server, stalled_on, tally):
    """DicomMaximumAssociations associations accepted, then silent: a new peer is served in place of the one idle
    the longest, on either path."""
    contexts = {"direct": [DIRECT], "pynetdicom": [PYNETDICOM], "both": [DIRECT, PYNETDICOM]}[stalled_on]
    stalled = []
    try:
        for number in range(MAXIMUM_ASSOCIATIONS):
            association = RawAssociation(server.dicom_port)
            association.associate(contexts[number % len(contexts)], called=server.aet)
            stalled.append(association)
        tally.count("DICOM slowloris", "stalled associations", None)
        time.sleep(EVICTABLE_AFTER + 0.5)
        for number in range(3):
            assert _echo_and_store(server, f"evict-{stalled_on}-{number}",
                                   through_pynetdicom=bool(number % 2)) == (SUCCESS, SUCCESS)
        aborted = sum(1 for association in stalled if _was_aborted(association))
        assert 1 <= aborted <= 3, aborted  # one aborted per new association, no more
    finally:
        for association in stalled:
            association.close()


def test_when_every_association_is_busy_a_new_one_is_rejected_then_served(server, tally):
    """No association idle: A-ASSOCIATE-RJ, transient, local limit exceeded (PS3.8 9.3.4); served once one ends."""
    busy = [RawAssociation(server.dicom_port) for _ in range(MAXIMUM_ASSOCIATIONS)]
    stop = threading.Event()

    def keep_busy(association: RawAssociation) -> None:
        while not stop.is_set():
            assert association.c_echo() == SUCCESS
            time.sleep(0.1)

    workers = []
    try:
        for association in busy:
            association.associate(DIRECT, called=server.aet)
            workers.append(threading.Thread(target=keep_busy, args=(association,), daemon=True))
            workers[-1].start()
        time.sleep(EVICTABLE_AFTER + 0.5)
        tally.count("DICOM slowloris", "busy associations", None)
        with socket.create_connection(("127.0.0.1", server.dicom_port), timeout=10) as sock:
            sock.sendall(associate_rq(DIRECT, called=server.aet))
            answer = sock.recv(10)
        assert answer[:1] == b"\x03" and answer[7:10] == bytes([0x02, 0x03, 0x02]), answer  # A-ASSOCIATE-RJ
    finally:
        stop.set()
        for worker in workers:
            worker.join(5)
        for association in busy:
            association.release()
            association.close()
    assert echo(server.dicom_port, server.aet) == SUCCESS
