"""SIGKILL in the middle of a snapshot restore, a reset or a snapshot save, while clients upload: after a
restart every listed instance serves its file, the disk holds exactly the listed files, no staging or temporary
litter is left, and the archive is in the state before or the state after (never a mix).

The kill points are spread over the operation: the delay steps from 0 to a bit past how long the operation took
when measured unkilled under the same load. The default run kills restore and reset at 3 points each and save at 2;
``PACSBOX_LONG_TESTS=1`` at 20, 20 and 10.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest
import requests

from pacsbox.core.storage import FRESH_FOLDER
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
POINTS = {"restore": 20, "reset": 20, "save": 10} if LONG else {"restore": 3, "reset": 3, "save": 2}
BASE = 100  # instances in the snapshot


def _payload(tag: str, number: int) -> bytes:
    return to_bytes(make_dataset(patient_id=f"SW-{tag}-{number // 50}", patient_name="Switch^Test",
                                 study_uid=uid(f"sw-st-{tag}", number // 50),
                                 series_uid=uid(f"sw-se-{tag}", number // 25), sop_uid=uid(f"sw-in-{tag}", number),
                                 instance_number=number % 25 + 1, rows=4, cols=4))


def _upload(session: requests.Session, url: str, tag: str, count: int) -> None:
    for number in range(count):
        session.post(url + "/instances", data=_payload(tag, number), timeout=30).raise_for_status()


class Uploaders:
    """Two clients uploading new instances until stopped; a 5xx answer is recorded (only a dead server is fine)."""

    def __init__(self, server: RunningPacsbox, tag: str) -> None:
        self.server, self.tag = server, tag
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(2)]

    def _run(self, worker: int) -> None:
        session = self.server.session()
        number = worker
        while not self.stop.is_set():
            try:
                answer = session.post(self.server.url + "/instances", data=_payload(self.tag, number), timeout=30)
            except requests.RequestException:
                return  # killed under us
            if answer.status_code >= 500:
                self.errors.append(f"{answer.status_code}: {answer.text[:200]}")
            number += 2

    def __enter__(self) -> Uploaders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def _listed(session: requests.Session, url: str) -> set[str]:
    return set(session.get(url + "/instances", timeout=60).json())


def _check_consistent(server: RunningPacsbox) -> set[str]:
    """Every listed instance serves its file (with its stored MD5), the disk holds those files and nothing else,
    no litter anywhere; returns the listed IDs."""
    session = server.session()
    listed = session.get(server.url + "/instances?expand", timeout=60).json()
    for row in listed:
        answer = session.get(f"{server.url}/instances/{row['ID']}/file", timeout=30)
        assert answer.status_code == 200, (row["ID"], answer.status_code, answer.text[:200])
        assert answer.content[128:132] == b"DICM" and len(answer.content) == row["FileSize"], row["ID"]
    data = Path(server.data_dir)
    deadline = time.monotonic() + 60  # after a kill the sweep runs once the server answers (core.recovery)
    while len(stored := list(data.glob("??/??/*"))) != len(listed) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in stored if not p.is_file() or "." in p.name], "temporary files left in the store"
    assert len(stored) == len(listed), f"{len(stored)} files on disk for {len(listed)} listed instances"
    litter = [p.name for p in data.iterdir() if p.name.startswith(".") and p.name != FRESH_FOLDER]
    assert not litter, f"staging litter in the data folder: {litter}"
    snapshots = data / "snapshots"
    if snapshots.is_dir():
        entries = list(snapshots.iterdir())
        shown = {os.readlink(p) for p in entries if p.is_symlink()}
        stray = [p.name for p in entries if not p.is_symlink() and p.name not in shown]
        assert not stray, f"snapshot litter: {stray}"
    return {row["ID"] for row in listed}


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _kill_during(server: RunningPacsbox, request, delay: float) -> None:
    """Send the admin request from a thread, SIGKILL the server ``delay`` seconds later, restart it."""
    thread = threading.Thread(target=lambda: _swallow(request), daemon=True)
    thread.start()
    time.sleep(delay)
    server.kill()
    thread.join(30)
    server.start()


def _swallow(request) -> None:
    with contextlib.suppress(requests.RequestException):  # the kill cuts the connection
        request()


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox() as running:
        session = running.session()
        _upload(session, running.url, "base", BASE)
        session.put(running.url + "/pacsbox/snapshots/base", timeout=60).raise_for_status()
        yield running


def _diverge(server: RunningPacsbox, round_number: int) -> set[str]:
    """Make the archive differ from the snapshot (a restore then links, removes and swaps rows): new instances,
    some of the snapshot's deleted. Returns the IDs listed afterwards."""
    session = server.session()
    _upload(session, server.url, f"extra{round_number}", 20)
    for instance_id in sorted(_listed(session, server.url))[:10]:
        session.delete(f"{server.url}/instances/{instance_id}", timeout=30)
    return _listed(session, server.url)


def _delays(duration: float, points: int) -> list[float]:
    """Kill points from the very start to a little past the measured end (the HTTP round trip included)."""
    span = max(duration * 1.3, 0.05)
    return [span * i / (points - 1) for i in range(points)]


def test_sigkill_during_restore_leaves_old_or_new_state(server):
    session = server.session()

    def restore():
        session.post(server.url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()

    restore()
    snapshot_ids = _listed(session, server.url)
    assert len(snapshot_ids) == BASE
    _diverge(server, 0)
    with Uploaders(server, "load-restore-timed"):
        duration = _timed(restore)
    outcomes = {"old": 0, "new": 0}
    for point, delay in enumerate(_delays(duration, POINTS["restore"])):
        before = _diverge(server, point + 1)
        with Uploaders(server, f"load-restore{point}") as load:
            time.sleep(0.05)
            _kill_during(server, lambda: requests.post(server.url + "/pacsbox/snapshots/base/restore",
                                                       auth=server.auth, timeout=60), delay)
        assert not load.errors, load.errors[:3]
        session = server.session()
        after = _check_consistent(server)
        if snapshot_ids <= after and not (before - snapshot_ids) & after:
            outcomes["new"] += 1
        else:
            assert before <= after, f"kill at {delay:.3f}s: neither the old nor the restored state"
            outcomes["old"] += 1
    print(f"restore of {BASE} instances ({duration * 1000:.0f} ms) killed at {POINTS['restore']} points: {outcomes}")
    session.post(server.url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()
    assert _check_consistent(server) == snapshot_ids


def test_sigkill_during_reset_leaves_old_or_empty_state(server):
    session = server.session()
    session.post(server.url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()
    with Uploaders(server, "load-reset-timed"):
        duration = _timed(lambda: session.post(server.url + "/pacsbox/reset", timeout=60).raise_for_status())
    outcomes = {"old": 0, "empty": 0}
    for point, delay in enumerate(_delays(duration, POINTS["reset"])):
        session = server.session()
        session.post(server.url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()
        before = _diverge(server, 100 + point)
        with Uploaders(server, f"load-reset{point}") as load:
            time.sleep(0.05)
            _kill_during(server, lambda: requests.post(server.url + "/pacsbox/reset", auth=server.auth, timeout=60),
                         delay)
        assert not load.errors, load.errors[:3]
        after = _check_consistent(server)
        if before <= after:
            outcomes["old"] += 1
        else:
            # emptied: only uploads that came after the reset may be there, never a survivor of the old state
            assert not before & after, f"kill at {delay:.3f}s: a reset that kept part of the old state"
            outcomes["empty"] += 1
    print(f"reset ({duration * 1000:.0f} ms) killed at {POINTS['reset']} points: {outcomes}")


def test_sigkill_during_snapshot_save_keeps_old_or_new_snapshot(server):
    for delay in _delays(_save_duration(server), POINTS["save"]):
        session, url = server.session(), server.url
        session.post(url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()
        session.put(url + "/pacsbox/snapshots/saved", timeout=60).raise_for_status()
        old = _listed(session, url)
        _upload(session, url, "save-extra", 30)
        new = _listed(session, url)
        _kill_during(server, lambda: requests.put(server.url + "/pacsbox/snapshots/saved", auth=server.auth,
                                                  timeout=60), delay)
        _check_consistent(server)
        session, url = server.session(), server.url
        names = [entry["Name"] for entry in session.get(url + "/pacsbox/snapshots", timeout=30).json()]
        assert "saved" in names, names
        session.post(url + "/pacsbox/snapshots/saved/restore", timeout=60).raise_for_status()
        assert _check_consistent(server) in (old, new), f"kill at {delay:.3f}s: a snapshot neither old nor new"


def _save_duration(server: RunningPacsbox) -> float:
    session = server.session()
    session.post(server.url + "/pacsbox/snapshots/base/restore", timeout=60).raise_for_status()
    return _timed(lambda: session.put(server.url + "/pacsbox/snapshots/probe", timeout=60).raise_for_status())
