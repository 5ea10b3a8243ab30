"""The event log in-process: bounded (oldest dropped), paged by ``seq``, filtered, secrets masked, waited for."""

from __future__ import annotations

import asyncio
import threading
import time

from pacsbox.faults.eventlog import EventLog, redact


def test_the_log_keeps_the_last_events_only_and_seq_goes_on():
    log = EventLog(size=10)
    for number in range(25):
        log.record("http", "orthanc", number=number)
    kept = log.events()
    assert len(kept) == 10 and [event["number"] for event in kept] == list(range(15, 25))
    assert [event["seq"] for event in kept] == list(range(16, 26))
    log.clear()
    log.record("http", "orthanc")
    assert [event["seq"] for event in log.events()] == [26]


def test_since_limit_face_and_kind():
    log = EventLog()
    log.record("http", "orthanc")
    log.record("dimse", "dimse", operation="C-STORE")
    log.record("http", "xnat")
    assert [e["seq"] for e in log.events(since=1)] == [2, 3]
    assert [e["seq"] for e in log.events(limit=2)] == [1, 2]
    assert [e["face"] for e in log.events(faces=["xnat", "dimse"])] == ["dimse", "xnat"]
    assert [e["kind"] for e in log.events(kinds=["dimse"])] == ["dimse"]


def test_a_size_of_zero_keeps_nothing():
    log = EventLog(size=0)
    log.record("http", "orthanc")
    assert log.events() == [] and log.last_seq == 0


def test_secret_parameters_are_masked_as_in_the_access_log():
    assert redact("/data/services?password=hunter2&x=1") == "/data/services?password=***&x=1"
    assert redact("/data/projects;jsessionid=ABC123") == "/data/projects;jsessionid=***"
    assert redact("/patients?token=T&expand") == "/patients?token=***&expand"


def test_a_thread_waits_for_an_event_recorded_by_another():
    log = EventLog()
    threading.Timer(0.2, lambda: log.record("dimse", "dimse", operation="C-STORE")).start()
    started = time.monotonic()
    found = log.wait(lambda event: event.get("operation") == "C-STORE", timeout=5)
    assert found is not None and time.monotonic() - started < 4
    assert log.wait(lambda event: event.get("operation") == "C-FIND", timeout=0.1) is None


def test_an_async_waiter_is_woken_from_another_thread():
    log = EventLog()

    async def waiting() -> float:
        started = time.monotonic()
        threading.Timer(0.2, lambda: log.record("http", "orthanc")).start()
        await log.wait_async(0, 5, lambda: log.events(0, 1))
        return time.monotonic() - started

    assert asyncio.run(waiting()) < 4
    assert asyncio.run(asyncio.wait_for(log.wait_async(log.last_seq, 0.1, lambda: log.events(log.last_seq, 1)),
                                        2)) is None
