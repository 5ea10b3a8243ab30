"""A restart after ``kill -9`` (issue 24): the server answers before the sweep of what the crash left, which then
runs in the background (core.recovery) and removes only that."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox


def instance(n: int) -> bytes:
    return to_bytes(make_dataset(patient_id="SWEEP", patient_name="Doe^John", study_uid=uid("sweep-study"),
                                 series_uid=uid("sweep-series"), sop_uid=uid("sweep-sop", n), instance_number=n))


def test_after_kill_9_the_server_answers_then_sweeps_what_the_crash_left():
    server = RunningPacsbox().start()
    try:
        session = server.session()
        kept = session.post(server.url + "/instances", data=instance(1), timeout=30).json()["ID"]
        server.kill()
        store = Path(server.data_dir)
        (folder,) = {path.parent for path in store.glob("??/??/*")}
        orphans = [folder / f"{'ab' * 16}-never-committed", folder / f"{'cd' * 16}.tmp"]
        for orphan in orphans:
            orphan.write_bytes(b"left by the crash")
        server.start()
        session = server.session()
        stored = session.post(server.url + "/instances", data=instance(2), timeout=30).json()["ID"]
        deadline = time.monotonic() + 60
        while any(orphan.exists() for orphan in orphans) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [orphan.name for orphan in orphans if orphan.exists()]
        for instance_id, n in ((kept, 1), (stored, 2)):
            answer = session.get(f"{server.url}/instances/{instance_id}/file", timeout=30)
            assert answer.status_code == 200 and answer.content == instance(n)
        assert len(list(store.glob("??/??/*"))) == 2
    finally:
        server.stop()
