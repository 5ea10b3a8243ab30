"""SIGKILL in the middle of ingest, over REST and over C-STORE: after a restart every acknowledged instance is
there with identical bytes, no index row lacks its file, and files of unacknowledged writes are gone.

The default run kills the server 4 times during a 500-instance ingest over REST and a 400-instance one over
C-STORE (pynetdicom's SCU is the slow side there); ``PACSBOX_LONG_TESTS=1`` kills it 12 times during 6,000. Each
kill comes after a random number of stores acknowledged in that round (not after a fixed time), so it always falls
in the middle of writes however fast or loaded the machine is, and the ingest need not be longer than the kills.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import random
import threading
import time
from pathlib import Path

import pytest
import requests
from pydicom import dcmread

from pacsbox.faces.dimse.network import held_reactor
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.recovery import swept_files

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
TOTALS = {"rest": 6000, "dicom": 6000} if LONG else {"rest": 500, "dicom": 400}
KILLS = 12 if LONG else 4
# a kill comes once this many stores of the round are acknowledged (random within the range): writes are then
# under way on both clients; KILLS times the upper bound stays well below the totals, so rounds after the kills
# remain to finish the ingest
ACKS_BEFORE_KILL = (100, 350) if LONG else (25, 80)
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@functools.cache  # made once: each is sent, maybe sent again after a kill, and compared at the end
def _payload(number: int) -> bytes:
    return to_bytes(make_dataset(patient_id=f"CRASH{number // 200}", patient_name="Crash^Test",
                                 study_uid=uid("crash-st", number // 200), series_uid=uid("crash-se", number // 50),
                                 sop_uid=uid("crash-in", number), instance_number=number % 50 + 1, rows=4, cols=4))


class Ledger:
    """What the clients were told: SOP instance UID → MD5 of the bytes sent, for acknowledged stores only."""

    def __init__(self) -> None:
        self.acknowledged: dict[str, tuple[int, str]] = {}
        self.changed = threading.Condition()
        self.associations: list = []  # the DICOM clients' open associations, to wake after a kill

    def record(self, number: int, data: bytes) -> None:
        with self.changed:
            self.acknowledged[uid("crash-in", number)] = (number, hashlib.md5(data).hexdigest())
            self.changed.notify_all()

    def wait_for(self, count: int, workers: list[threading.Thread], timeout: float = 120.0) -> None:
        """Until ``count`` stores are acknowledged (or every client has stopped, or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.acknowledged) < count and any(w.is_alive() for w in workers):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{len(self.acknowledged)} of {count} stores acknowledged in {timeout} s"
                self.changed.wait(min(remaining, 0.5))


def _send_rest(server: RunningPacsbox, numbers: list[int], ledger: Ledger, stop: threading.Event) -> None:
    session = server.session()
    for number in numbers:
        if stop.is_set():
            return
        data = _payload(number)
        try:
            answer = session.post(server.url + "/instances", data=data, timeout=10)
        except requests.RequestException:
            return  # the server died under us: this one is not acknowledged
        if answer.status_code == 200:
            ledger.record(number, data)


def _send_dicom(server: RunningPacsbox, numbers: list[int], ledger: Ledger, stop: threading.Event) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="CRASHER")
    ae.add_requested_context(CT_IMAGE_STORAGE)
    association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    if not association.is_established:
        return
    ledger.associations.append(association)
    try:
        with held_reactor(association):  # (pynetdicom's own race would lose answers: see held_reactor)
            for number in numbers:
                if stop.is_set() or not association.is_established:
                    return
                data = _payload(number)
                dataset = dcmread(io.BytesIO(data))
                try:
                    status = association.send_c_store(dataset)
                except RuntimeError:  # the association died with the server
                    return
                if status and getattr(status, "Status", None) == 0:
                    ledger.record(number, data)
    finally:
        if association.is_established:
            association.abort()


def _wake_dicom_clients(ledger: Ledger) -> None:
    """A C-STORE waiting for its answer when the server dies would wait out pynetdicom's 30 s DIMSE timeout: its
    reader thread can end without posting the "connection gone" marker it posts on an abort. Post that marker
    (``(None, None)`` on the association's DIMSE queue, as pynetdicom's own abort handlers do), so the waiting
    store returns at once as not acknowledged."""
    for association in ledger.associations:
        association.dimse.msg_queue.put((None, None))
    ledger.associations.clear()


def _check(server: RunningPacsbox, ledger: Ledger, over_dicom: bool, *, contents: bool) -> int:
    """Acknowledged instances present, index and disk in agreement; with ``contents``, bytes compared too."""
    session = server.session()
    instances = session.get(server.url + "/instances?expand", timeout=60).json()
    by_uid = {row["MainDicomTags"]["SOPInstanceUID"]: row["ID"] for row in instances}
    missing = set(ledger.acknowledged) - set(by_uid)
    assert not missing, f"{len(missing)} acknowledged instances lost"
    for sop_uid, (number, digest) in ledger.acknowledged.items() if contents else ():
        content = session.get(f"{server.url}/instances/{by_uid[sop_uid]}/file", timeout=30).content
        if over_dicom:  # C-STORE carries the dataset, the file meta is the receiver's: compare the elements
            assert dcmread(io.BytesIO(content)) == dcmread(io.BytesIO(_payload(number))), sop_uid
        else:
            assert hashlib.md5(content).hexdigest() == digest, sop_uid
    stored_files = swept_files(Path(server.data_dir), len(by_uid))
    assert not [p for p in stored_files if p.name.endswith(".tmp")], "temporary files survived the restart"
    # one file per index row (none missing, none left over from an unacknowledged write)
    assert len(stored_files) == len(by_uid), "the index and the files on disk disagree"
    for instance_id in by_uid.values() if contents else ():
        assert session.get(f"{server.url}/instances/{instance_id}/file", timeout=30).status_code == 200
    return len(by_uid)


@pytest.mark.parametrize("face", ["rest", "dicom"])
def test_sigkill_during_ingest_loses_nothing_acknowledged(face):
    rng = random.Random(2026)
    ledger = Ledger()
    total = TOTALS[face]
    sender = _send_rest if face == "rest" else _send_dicom
    with RunningPacsbox() as server:
        kills = 0
        for _ in range(KILLS + 3):  # each round resends what is not yet acknowledged; the first KILLS end in a kill
            pending = [n for n in range(total) if uid("crash-in", n) not in ledger.acknowledged]
            if not pending:
                break
            stop = threading.Event()
            workers = [threading.Thread(target=sender, args=(server, pending[i::2], ledger, stop)) for i in range(2)]
            for worker in workers:
                worker.start()
            if kills < KILLS:
                ledger.wait_for(len(ledger.acknowledged) + rng.randint(*ACKS_BEFORE_KILL), workers)
                assert any(worker.is_alive() for worker in workers), "the ingest ended before the kill"
                server.kill()  # in the middle of writes
                kills += 1
                stop.set()
                _wake_dicom_clients(ledger)
            for worker in workers:
                worker.join(300)
            if server.process is None or server.process.poll() is not None:
                server.start()  # same data directory: recovery runs at start-up
                _check(server, ledger, over_dicom=face == "dicom", contents=False)
        stored = _check(server, ledger, over_dicom=face == "dicom", contents=True)
    assert kills == KILLS and len(ledger.acknowledged) == total == stored
    print(f"{face}: {kills} kills during a {total}-instance ingest, all {stored} acknowledged and stored, 0 lost")
