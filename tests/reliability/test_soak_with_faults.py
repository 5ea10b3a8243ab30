"""Issue 23 under load: eight clients against a server with a 10 % fault rule on every upload (HTTP 503) and every
C-STORE (0xA700), a small event log and readers polling it. Every acknowledged instance is stored, every refused
one is not, the rules fired exactly as often as clients were refused, and the log never holds more than its bound.

The clients run for 8 s by default (``PACSBOX_LONG_TESTS=1``: 2 minutes), and on until they did enough for every
check to mean something (a loaded machine uploads less in 8 s), at most 90 s more.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
import traceback
from collections import Counter

from pydicom import dcmread
from pynetdicom import AE

from pacsbox.faces.dimse.network import held_reactor
from tests.reliability.soak_support import REQUEST_TIMEOUT, Files, Item
from tests.support.dicomgen import CT_IMAGE_STORAGE
from tests.support.pacsbox_proc import RunningPacsbox

SECONDS = 120 if os.environ.get("PACSBOX_LONG_TESTS") == "1" else 8
LIMIT = SECONDS + 90  # the clients go on past SECONDS until they did enough (below), but never past this
LOG_SIZE = 300
ENOUGH_UPLOADS = 300  # REST uploads told, so the fault rule's rate is measured on a sample worth the name
RULES = [
    {"face": "orthanc", "method": "POST", "path": "/instances", "probability": 0.1, "seed": 23,
     "action": {"http_status": 503}},
    {"face": "dimse", "operation": "C-STORE", "probability": 0.1, "seed": 32, "action": {"dimse_status": 0xA700}},
]


class Outcomes:
    """What the clients were told about each instance, and what went wrong on their side."""

    def __init__(self) -> None:
        self.acknowledged: dict[str, Item] = {}
        self.refused: dict[str, Item] = {}
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.log_sizes: list[int] = []
        self.last_seq = 0  # the newest event the readers saw
        self.lock = threading.Lock()

    def told(self, item: Item, accepted: bool, how: str) -> None:
        with self.lock:
            (self.acknowledged if accepted else self.refused)[item.instance] = item
            self.counts[how] += 1

    def enough(self) -> bool:
        """Whether the clients did what every check of the test needs: on a loaded machine (the whole suite on
        a few workers) a fixed run of SECONDS may upload too little for the rules to fire or the log to wrap."""
        with self.lock:
            uploads = self.counts["http 200"] + self.counts["http 503"]
            return (uploads >= ENOUGH_UPLOADS and self.counts["http 503"] > 0 and self.counts["c-store 0xA700"] > 0
                    and self.last_seq > 2 * LOG_SIZE + 10)


class Schedule:
    """When the clients stop: once SECONDS have passed and they did enough, or at LIMIT whatever they did."""

    def __init__(self, outcomes: Outcomes) -> None:
        start = time.monotonic()
        self.outcomes, self.soonest, self.latest = outcomes, start + SECONDS, start + LIMIT

    def running(self) -> bool:
        now = time.monotonic()
        return now < self.latest and (now < self.soonest or not self.outcomes.enough())


def _rest_uploads(server: RunningPacsbox, outcomes: Outcomes, files: Files, numbers, schedule: Schedule) -> None:
    with server.session() as http:
        while schedule.running():
            for item in files.study("FR", next(numbers) % 50, next(numbers), 1, 3):
                status = http.post(server.url + "/instances", data=item.data, timeout=REQUEST_TIMEOUT).status_code
                if status not in (200, 503):
                    outcomes.problems.append(f"POST /instances answered {status}")
                outcomes.told(item, status == 200, f"http {status}")


def _dicom_stores(server: RunningPacsbox, outcomes: Outcomes, files: Files, numbers, schedule: Schedule) -> None:
    ae = AE(ae_title="FAULTSOAK")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = REQUEST_TIMEOUT
    ae.add_requested_context(CT_IMAGE_STORAGE)
    while schedule.running():
        association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
        if not association.is_established:
            outcomes.problems.append("an association was not accepted")
            continue
        try:
            with held_reactor(association):  # (pynetdicom's own race would lose answers: see held_reactor)
                for item in files.study("FD", next(numbers) % 50, next(numbers), 1, 4):
                    code = getattr(association.send_c_store(dcmread(io.BytesIO(item.data))), "Status", None)
                    if code not in (0x0000, 0xA700):
                        outcomes.problems.append(f"C-STORE of {item.sop_uid} answered {code!r}")
                        continue
                    outcomes.told(item, code == 0, f"c-store 0x{code:04X}")
        finally:
            association.release()


def _readers(server: RunningPacsbox, outcomes: Outcomes, schedule: Schedule) -> None:
    with server.session() as http:
        since = 0
        while schedule.running():
            events = http.get(server.url + "/pacsbox/events", params={"since": since, "wait": "0.5"},
                              timeout=REQUEST_TIMEOUT).json()
            whole = http.get(server.url + "/pacsbox/events", timeout=REQUEST_TIMEOUT).json()
            with outcomes.lock:
                outcomes.log_sizes.append(len(whole))
                outcomes.last_seq = max([outcomes.last_seq] + [event["seq"] for event in whole])
            since = events[-1]["seq"] if events else since
            http.get(server.url + "/statistics", timeout=REQUEST_TIMEOUT).raise_for_status()


def _client(outcomes: Outcomes, work, *arguments) -> None:
    try:
        work(*arguments)
    except Exception:
        outcomes.problems.append(traceback.format_exc(limit=4))


def test_a_soak_with_a_10_percent_fault_rule_keeps_every_acknowledged_instance_and_no_refused_one():
    config = {"PacsboxFaults": RULES, "PacsboxEventLogSize": LOG_SIZE, "DicomMaximumAssociations": 16}
    with RunningPacsbox(config) as server:
        outcomes, files, numbers = Outcomes(), Files(), itertools.count()
        schedule = Schedule(outcomes)
        work = [(_rest_uploads, server, outcomes, files, numbers, schedule)] * 4
        work += [(_dicom_stores, server, outcomes, files, numbers, schedule)] * 2
        work += [(_readers, server, outcomes, schedule)] * 2
        threads = [threading.Thread(target=_client, args=(outcomes, *arguments)) for arguments in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIMIT + 2 * REQUEST_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a client hangs"
        assert not outcomes.problems, outcomes.problems[:10]

        http = server.session()
        stored = set(http.get(server.url + "/instances", timeout=REQUEST_TIMEOUT).json())
        missing = [i for i in outcomes.acknowledged if i not in stored]
        kept = [i for i in outcomes.refused if i in stored]
        assert not missing, f"{len(missing)} acknowledged instances are not stored"
        assert not kept, f"{len(kept)} refused instances were stored"
        rules = {rule["face"]: rule for rule in http.get(server.url + "/pacsbox/faults", timeout=30).json()}
        assert rules["orthanc"]["fired"] == outcomes.counts["http 503"] > 0
        assert rules["dimse"]["fired"] == outcomes.counts["c-store 0xA700"] > 0
        assert 0.03 < rules["orthanc"]["fired"] / rules["orthanc"]["matched"] < 0.2
        final = http.get(server.url + "/pacsbox/events", timeout=30).json()
        assert max(outcomes.log_sizes + [len(final)]) <= LOG_SIZE
        assert len(final) == LOG_SIZE and final[-1]["seq"] > 2 * LOG_SIZE
        ran = time.monotonic() - schedule.soonest + SECONDS
        print(f"fault soak: {ran:.1f} s, {dict(outcomes.counts)}; {len(stored)} stored; event log at most "
              f"{max(outcomes.log_sizes + [len(final)])} of {LOG_SIZE}, {final[-1]['seq']} events recorded")
