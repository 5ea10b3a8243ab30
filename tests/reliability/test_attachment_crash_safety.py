"""SIGKILL while clients put attachments: after a restart every acknowledged attachment is there with its bytes,
and the files on disk are exactly those the index references (no file of an unacknowledged write survives the
sweep, no row lacks its file). Run plain and with StorageCompression."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox
from tests.support.recovery import swept_files

KILLS = {False: 2, True: 1}  # kills per run, plain and compressed (each restart costs ~3 s)
INSTANCES = 6
LEVELS = ("patients", "studies", "series", "instances")


def _instance(number: int) -> bytes:
    return to_bytes(make_dataset(patient_id=f"ATT{number % 2}", patient_name="Attach^Crash",
                                 study_uid=uid("att-st", number % 2), series_uid=uid("att-se", number % 3),
                                 sop_uid=uid("att-in", number), instance_number=number + 1, rows=4, cols=4))


def _body(key: tuple[str, int]) -> bytes:
    rng = random.Random(f"{key[0]}{key[1]}")
    return rng.randbytes(rng.randint(0, 48 * 1024))


def _writer(server: RunningPacsbox, keys: list[tuple[str, int]], acknowledged: dict, stop: threading.Event) -> None:
    session = server.session()
    for path, number in keys:
        if stop.is_set():
            return
        try:
            answer = session.put(f"{server.url}{path}/attachments/{number}", data=_body((path, number)), timeout=10)
        except requests.RequestException:
            return  # the server died under us: not acknowledged
        if answer.status_code == 200:
            acknowledged[(path, number)] = hashlib.md5(_body((path, number))).hexdigest()


def _check(server: RunningPacsbox, acknowledged: dict, resources: list[str]) -> None:
    session = server.session()
    for (path, number), digest in acknowledged.items():
        answer = session.get(f"{server.url}{path}/attachments/{number}/data", timeout=10)
        assert answer.status_code == 200, (path, number)
        assert hashlib.md5(answer.content).hexdigest() == digest, (path, number)
        assert session.post(f"{server.url}{path}/attachments/{number}/verify-md5").status_code == 200
    rows = sum(len(session.get(f"{server.url}{path}/attachments").json()) for path in resources)
    files = swept_files(Path(server.data_dir), rows)
    assert not [p for p in files if p.name.endswith(".tmp")], "temporary files survived the restart"
    assert len(files) == rows, "the index and the files on disk disagree"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_sigkill_while_putting_attachments(compressed):
    rng = random.Random(18)
    acknowledged: dict[tuple[str, int], str] = {}
    with RunningPacsbox({"StorageCompression": compressed}) as server:
        session = server.session()
        for number in range(INSTANCES):
            assert session.post(f"{server.url}/instances", data=_instance(number)).status_code == 200
        resources = [f"/{level}/{public_id}" for level in LEVELS
                     for public_id in session.get(f"{server.url}/{level}").json()]
        keys = [(path, number) for number in range(1024, 1024 + 12) for path in resources]
        rng.shuffle(keys)
        for round_number in range(KILLS[compressed] + 1):
            pending = [key for key in keys if key not in acknowledged]
            stop = threading.Event()
            workers = [threading.Thread(target=_writer, args=(server, pending[i::2], acknowledged, stop))
                       for i in range(2)]
            for worker in workers:
                worker.start()
            if round_number < KILLS[compressed]:
                # after a random number of this round's writes are acknowledged, not a fixed time: the kill lands
                # during writes however loaded the machine is
                _wait_for_acknowledged(acknowledged, len(acknowledged) + rng.randint(5, 30), workers)
                assert any(worker.is_alive() for worker in workers), "the writes ended before the kill"
                server.kill()  # in the middle of writes
                stop.set()
            for worker in workers:
                worker.join(120)
            if server.process is None or server.process.poll() is not None:
                server.start()  # same data directory: the sweep runs at start-up
            _check(server, acknowledged, resources)
        assert len(acknowledged) == len(keys)


def _wait_for_acknowledged(acknowledged: dict, count: int, workers: list[threading.Thread],
                           timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(acknowledged) < count and any(worker.is_alive() for worker in workers):
        assert time.monotonic() < deadline, f"{len(acknowledged)} of {count} writes acknowledged in {timeout} s"
        time.sleep(0.005)
