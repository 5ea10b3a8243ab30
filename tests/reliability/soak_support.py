"""The concurrency soak's bookkeeping: cheap deterministic files, a ledger of what the clients were told (with
the time span of every answer), a recorder of every response, and the checks of answers against the ledger.

The ledger is what makes racing clients checkable. A server commits each request at some moment between the
client sending it and reading the answer, so for every instance the ledger keeps the spans of the stores that
succeeded and of the deletes (of the instance or of an ancestor) that succeeded. From those it tells, for any
moment or span, whether the instance was certainly there, certainly not there, or either (overlapping writes
whose order the clients cannot know). Answers are checked only where the ledger is certain.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from pydicom import dcmread

from tests.support.compare import orthanc_id
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

REQUEST_TIMEOUT = 60  # seconds; a request without an answer by then is reported as a hang
NEVER = float("inf")

# -- files ------------------------------------------------------------------------------------------------
# pydicom writes a file in ~5 ms: too slow for eight clients on two shared cores. One template is written
# once; each file is the template with its identifiers replaced by values of the same length.
_TEMPLATE_PATIENT_ID = "PIDPLACEHOLD"  # 12 characters, as every patient ID below
_TEMPLATE_PATIENT_NAME = "NAMEPLACE^HD"  # 12 characters, as every patient name below
_TEMPLATE_UIDS = (uid("soak-template", "study"), uid("soak-template", "series"), uid("soak-template", "sop"))


def _template() -> bytes:
    study, series, sop = _TEMPLATE_UIDS
    return to_bytes(make_dataset(patient_id=_TEMPLATE_PATIENT_ID, patient_name=_TEMPLATE_PATIENT_NAME,
                                 study_uid=study, series_uid=series, sop_uid=sop, rows=4, cols=4))


class Item:
    """One instance the soak may send: its identifiers, its Orthanc IDs and its bytes."""

    __slots__ = ("data", "instance", "kind", "patient", "patient_id", "series", "series_uid", "sop_uid", "study",
                 "study_uid")

    def __init__(self, kind: str, patient_id: str, study_uid: str, series_uid: str, sop_uid: str, data: bytes):
        self.kind, self.patient_id, self.data = kind, patient_id, data
        self.study_uid, self.series_uid, self.sop_uid = study_uid, series_uid, sop_uid
        self.patient = orthanc_id(patient_id)
        self.study = orthanc_id(patient_id, study_uid)
        self.series = orthanc_id(patient_id, study_uid, series_uid)
        self.instance = orthanc_id(patient_id, study_uid, series_uid, sop_uid)

    @property
    def ids(self) -> tuple[str, str, str, str]:
        return self.patient, self.study, self.series, self.instance

    @property
    def exact(self) -> bool:
        """Stored byte for byte (REST, XNAT); C-STORE carries the dataset and the receiver writes the meta."""
        return self.kind != "DC"

    def same_content(self, data: bytes) -> bool:
        if self.exact:
            return data == self.data
        return dcmread(io.BytesIO(data)) == dcmread(io.BytesIO(self.data))


class Files:
    """Makes the soak's instances: ``study(kind, patient, number, series, per_series)``."""

    def __init__(self) -> None:
        self.template = _template()

    def study(self, kind: str, patient: int, number: int, series: int, per_series: int) -> list[Item]:
        patient_id = f"{kind}{patient:010d}"
        patient_name = f"Soak^{kind}{patient % 100000:05d}"
        study_uid = uid("soak", kind, number)
        items = []
        for s in range(series):
            series_uid = uid("soak", kind, number, s)
            for i in range(per_series):
                sop_uid = uid("soak", kind, number, s, i)
                data = self.template
                for old, new in zip((_TEMPLATE_PATIENT_ID, _TEMPLATE_PATIENT_NAME, *_TEMPLATE_UIDS),
                                    (patient_id, patient_name, study_uid, series_uid, sop_uid), strict=True):
                    assert len(old) == len(new), (old, new)  # same length: no DICOM length field changes
                    data = data.replace(old.encode(), new.encode())
                items.append(Item(kind, patient_id, study_uid, series_uid, sop_uid, data))
        return items


# -- the ledger -------------------------------------------------------------------------------------------
_EFFECTS = {"store": frozenset({True}), "delete": frozenset({False}), "maybe": frozenset({True, False})}


@dataclass(frozen=True)
class Event:
    """A write that succeeded (store, delete) or whose outcome is unknown (maybe), between start and end."""

    kind: str
    start: float
    end: float


class Ledger:
    """Every instance the clients made and every write they were told succeeded, with its time span."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: dict[str, Item] = {}  # by instance ID
        self.by_sop: dict[str, Item] = {}
        self.below: dict[str, set[str]] = {}  # any resource ID -> instance IDs under it (itself for an instance)
        self._stores: dict[str, list[Event]] = {}  # instance ID -> stores and maybes
        self._deletes: dict[str, list[Event]] = {}  # any resource ID -> deletes
        self.deleted_answers: Counter[str] = Counter()  # level -> successful deletes

    def add(self, items: Iterable[Item]) -> None:
        with self._lock:
            for item in items:
                self.items[item.instance] = item
                self.by_sop[item.sop_uid] = item
                for public_id in item.ids:
                    self.below.setdefault(public_id, set()).add(item.instance)

    def stored(self, items: Iterable[Item], start: float, end: float, *, certain: bool = True) -> None:
        event = Event("store" if certain else "maybe", start, end)
        with self._lock:
            for item in items:
                self._stores.setdefault(item.instance, []).append(event)

    def deleted(self, level: str, public_id: str, start: float, end: float) -> None:
        with self._lock:
            self._deletes.setdefault(public_id, []).append(Event("delete", start, end))
            self.deleted_answers[level] += 1

    def _events(self, instance_id: str) -> list[Event]:
        item = self.items[instance_id]
        events = list(self._stores.get(instance_id, ()))
        for public_id in item.ids:
            events += self._deletes.get(public_id, ())
        return events

    def states_at(self, instance_id: str, moment: float, events: list[Event] | None = None) -> frozenset[bool]:
        """Whether the instance can be in the archive at ``moment`` ({True}, {False} or both)."""
        events = self._events(instance_id) if events is None else events
        done = [e for e in events if e.end <= moment]
        states: set[bool] = set()
        if not done:
            states.add(False)  # nothing committed yet: never stored
        else:
            # an event can have committed last when it ended after every other one had started
            starts = sorted((e.start for e in done), reverse=True)
            for event in done:
                if len(done) == 1:
                    states |= _EFFECTS[event.kind]
                    continue
                latest_other = starts[1] if event.start == starts[0] else starts[0]
                if event.end >= latest_other:
                    states |= _EFFECTS[event.kind]
        for event in events:
            if event.start < moment < event.end:  # in flight: may have committed already
                states |= _EFFECTS[event.kind]
        return frozenset(states)

    def presence(self, public_id: str, start: float, end: float) -> bool | None:
        """True if the resource was certainly there from ``start`` to ``end`` (one instance under it certainly
        was), False if certainly absent all along, None if the clients cannot know."""
        instance_ids = self.below.get(public_id, ())
        verdicts = [self._instance_presence(i, start, end) for i in instance_ids]
        if any(v is True for v in verdicts):
            return True
        if all(v is False for v in verdicts):
            return False
        return None

    def _instance_presence(self, instance_id: str, start: float, end: float) -> bool | None:
        events = self._events(instance_id)
        states = self.states_at(instance_id, start, events)
        if len(states) != 1:
            return None
        (state,) = states
        against = ("delete", "maybe") if state else ("store", "maybe")
        if any(e.kind in against and e.start < end and e.end > start for e in events):
            return None
        return state

    def acknowledged(self) -> int:
        """How many instances were stored with a success answer at least once."""
        return sum(1 for events in self._stores.values() if any(e.kind == "store" for e in events))

    def final_states(self) -> dict[str, frozenset[bool]]:
        """What each instance can be once every client has stopped."""
        return {instance_id: self.states_at(instance_id, NEVER) for instance_id in self.items}


# -- responses --------------------------------------------------------------------------------------------
@dataclass
class Answer:
    response: requests.Response | None
    start: float
    end: float

    @property
    def status(self) -> int:
        return self.response.status_code if self.response is not None else 0


@dataclass
class Recorder:
    """Every request by kind and status; server errors, unexpected statuses and missing answers by name."""

    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, session: requests.Session, kind: str, method: str, url: str, *,
             expect: Iterable[int] = (200,), **kwargs) -> Answer:
        start = time.monotonic()
        try:
            response = session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as error:  # no answer, a truncated body, a reset connection
            self.note(kind, 0, f"{method} {_path(url)}: no complete answer: {error!r}")
            return Answer(None, start, time.monotonic())
        answer = Answer(response, start, time.monotonic())
        detail = ""
        if response.status_code not in expect:
            detail = f"{method} {_path(url)} -> {response.status_code}: {response.text[:300]!r}"
        self.note(kind, response.status_code, detail)
        return answer

    def note(self, kind: str, status: int, problem: str = "") -> None:
        with self.lock:
            self.counts[kind] += 1
            self.statuses[(kind, status)] += 1
            if status >= 500:
                self.server_errors.append(f"[{kind}] {problem}")
            elif problem:
                self.problems.append(f"[{kind}] {problem}")

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else url


# -- what the clients share ----------------------------------------------------------------------------
@dataclass
class Soak:
    """What the clients share: the server, the ledger, the recorder, and the resources worth racing for."""

    server: RunningPacsbox
    deadline: float
    files: Files = field(default_factory=Files)
    ledger: Ledger = field(default_factory=Ledger)
    recorder: Recorder = field(default_factory=Recorder)
    observations: list[Observation] = field(default_factory=list)
    stored: list[Item] = field(default_factory=list)  # acknowledged stores, newest last (targets for the others)
    hot: Counter[tuple[int, str]] = field(default_factory=Counter)  # (level, ID) being downloaded or read now
    experiments: dict[str, list[Item]] = field(default_factory=dict)  # XNAT session label -> its instances
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, http: requests.Session, kind: str, method: str, path: str, **kwargs) -> Answer:
        return self.recorder.call(http, kind, method, self.url + path, **kwargs)

    def new_study(self, kind: str, rng: random.Random, patients: int, series: int, per_series: int) -> list[Item]:
        items = self.files.study(kind, rng.randrange(patients), next(self.numbers), series, per_series)
        self.ledger.add(items)
        return items

    def remember(self, items: list[Item]) -> None:
        with self.lock:
            self.stored.extend(items)

    def pick(self, rng: random.Random, recent: int = 300) -> Item | None:
        with self.lock:
            if not self.stored:
                return None
            return self.stored[rng.randrange(max(0, len(self.stored) - recent), len(self.stored))]

    def observe(self, what: str, scope: set[str] | tuple[str, ...], seen: set[str], answer: Answer) -> None:
        with self.lock:
            self.observations.append(Observation(what, tuple(scope), frozenset(seen), answer.start, answer.end))

    @contextmanager
    def reading(self, level: int, public_id: str) -> Iterator[None]:
        """Advertise a resource being read, so that the deleter goes for it."""
        with self.lock:
            self.hot[(level, public_id)] += 1
        try:
            yield
        finally:
            with self.lock:
                self.hot[(level, public_id)] -= 1
                if self.hot[(level, public_id)] <= 0:
                    del self.hot[(level, public_id)]

    def hot_target(self, rng: random.Random) -> tuple[int, str] | None:
        with self.lock:
            return rng.choice(list(self.hot)) if self.hot else None


# -- observations: answers to check against the ledger once every write is known --------------------------
@dataclass(frozen=True)
class Observation:
    """An answer naming which of ``scope`` (resource IDs) the server showed between ``start`` and ``end``."""

    what: str
    scope: tuple[str, ...]
    seen: frozenset[str]
    start: float
    end: float


def check_observation(ledger: Ledger, observation: Observation) -> list[str]:
    """Resources certainly there all along must be shown; resources certainly absent all along must not."""
    problems = []
    for public_id in observation.scope:
        presence = ledger.presence(public_id, observation.start, observation.end)
        if presence is True and public_id not in observation.seen:
            problems.append(f"{observation.what}: {public_id} existed throughout but was not in the answer")
        elif presence is False and public_id in observation.seen:
            problems.append(f"{observation.what}: {public_id} did not exist but was in the answer")
    return problems


def zip_members(ledger: Ledger, content: bytes, what: str) -> tuple[set[str], list[str]]:
    """The instance IDs of a downloaded zip, after checking it is whole and every member has its exact bytes."""
    problems: list[str] = []
    seen: set[str] = set()
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        broken = archive.testzip()
    except zipfile.BadZipFile as error:
        return seen, [f"{what}: not a valid zip ({error}), {len(content)} bytes"]
    if broken is not None:
        return seen, [f"{what}: member {broken} fails its CRC"]
    names = archive.namelist()
    if len(set(names)) != len(names):
        problems.append(f"{what}: duplicate member names")
    for name in names:
        data = archive.read(name)
        sop_uid = str(dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
        item = ledger.by_sop.get(sop_uid)
        if item is None:
            problems.append(f"{what}: member {name} is an instance no client sent ({sop_uid})")
        elif item.instance in seen:
            problems.append(f"{what}: instance {item.instance} twice")
        elif not item.same_content(data):
            problems.append(f"{what}: member {name} differs from what was sent ({hashlib.md5(data).hexdigest()})")
        else:
            seen.add(item.instance)
    return seen, problems


# -- checks once every client has stopped -----------------------------------------------------------------
def check_observations(ledger: Ledger, observations: list[Observation], listings: int = 60) -> list[str]:
    """Every answer about a few resources (files, zips, 404s), and an even sample of the whole listings."""
    small = [o for o in observations if len(o.scope) <= 64]
    large = [o for o in observations if len(o.scope) > 64]
    sample = large[:: max(1, len(large) // listings)]
    return [problem for o in small + sample for problem in check_observation(ledger, o)]


LEVELS = ("patients", "studies", "series", "instances")
_PARENT_KEY = {"studies": "ParentPatient", "series": "ParentStudy", "instances": "ParentSeries"}
_CHILDREN_KEY = {"patients": "Studies", "studies": "Series", "series": "Instances"}
_CHANGE_TYPES = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}


def _get(http: requests.Session, url: str, path: str, **params: object) -> object:
    response = http.get(url + path, params=params, timeout=REQUEST_TIMEOUT * 2)
    response.raise_for_status()
    return response.json()


def snapshot(http: requests.Session, url: str) -> dict[str, object]:
    """Statistics, the four expanded lists and the change log, as the server shows them now."""
    state: dict[str, object] = {"statistics": _get(http, url, "/statistics")}
    for level in LEVELS:
        state[level] = {row["ID"]: row for row in _get(http, url, f"/{level}", expand="")}
    changes, since = [], 0
    while True:
        page = _get(http, url, "/changes", since=since, limit=1000)
        changes += page["Changes"]
        if page["Done"] or not page["Changes"]:
            break
        since = page["Last"]
    state["changes"] = changes
    return state


def check_tree(state: dict) -> list[str]:
    """Counts equal the lists; each resource's parent exists and lists it; no resource is left empty."""
    problems = []
    statistics = state["statistics"]
    for level, key in zip(LEVELS, ("CountPatients", "CountStudies", "CountSeries", "CountInstances"), strict=True):
        if statistics[key] != len(state[level]):
            problems.append(f"/statistics {key} is {statistics[key]}, /{level} lists {len(state[level])}")
    for upper, lower in itertools.pairwise(LEVELS):
        children: dict[str, set[str]] = {}
        for row in state[lower].values():
            parent = row[_PARENT_KEY[lower]]
            if parent not in state[upper]:
                problems.append(f"{lower} {row['ID']}: its parent {parent} does not exist")
            children.setdefault(parent, set()).add(row["ID"])
        for row in state[upper].values():
            listed = set(row[_CHILDREN_KEY[upper]])
            if not listed:
                problems.append(f"{upper} {row['ID']} is left empty")
            if listed != children.get(row["ID"], set()):
                problems.append(f"{upper} {row['ID']}: lists {len(listed)} children, "
                                f"{len(children.get(row['ID'], ()))} name it as parent")
    return problems


def check_changes(state: dict) -> list[str]:
    """Sequence numbers strictly increase; each change names an existing resource; each resource has its one
    New* change (a deleted resource's changes go with it, as in Orthanc)."""
    problems = []
    seqs = [change["Seq"] for change in state["changes"]]
    if seqs != sorted(set(seqs)):
        problems.append("/changes: sequence numbers not strictly increasing")
    created: Counter[str] = Counter()
    for change in state["changes"]:
        level = _CHANGE_TYPES[change["ResourceType"]]
        if change["ID"] not in state[level]:
            problems.append(f"/changes: {change['ChangeType']} {change['Seq']} names a missing {level} {change['ID']}")
        if change["ChangeType"] == "New" + change["ResourceType"]:
            created[change["ID"]] += 1
    for level in LEVELS:
        for public_id in state[level]:
            if created[public_id] != 1:
                problems.append(f"/changes: {level} {public_id} has {created[public_id]} New change(s)")
    return problems


def check_restart(before: dict, after: dict) -> list[str]:
    """The same resources, parents and statistics after a restart; the change log goes on from where it was
    (only Stable* changes may have been added: StableAge counts from the last update, across the restart)."""
    problems = []
    if after["statistics"] != before["statistics"]:
        problems.append(f"after a restart, /statistics differ: {before['statistics']} -> {after['statistics']}")
    for level in LEVELS:
        key = _PARENT_KEY.get(level)
        if {i: r.get(key) for i, r in before[level].items()} != {i: r.get(key) for i, r in after[level].items()}:
            problems.append(f"after a restart, /{level} lists other resources or parents")
    count = len(before["changes"])
    if after["changes"][:count] != before["changes"]:
        problems.append("after a restart, the change log differs from before")
    if added := [c for c in after["changes"][count:] if not c["ChangeType"].startswith("Stable")]:
        problems.append(f"after a restart, changes no request made: {added[:3]}")
    return problems

def check_against_ledger(ledger: Ledger, state: dict) -> tuple[list[str], dict[str, int]]:
    """What the clients were told survives is there; what they were told is gone is gone; nothing else."""
    problems = []
    present = set(state["instances"])
    final = ledger.final_states()
    figures = Counter()
    for instance_id, states in final.items():
        figures["ledger " + {frozenset({True}): "kept", frozenset({False}): "gone"}.get(states, "either")] += 1
        if states == {True} and instance_id not in present:
            problems.append(f"instance {instance_id} was acknowledged and never deleted, but is missing")
        elif states == {False} and instance_id in present:
            problems.append(f"instance {instance_id} was deleted (or never stored) but is there")
    for instance_id in present - set(final):
        problems.append(f"instance {instance_id} was sent by no client")
    return problems, dict(figures)


def check_bytes(http: requests.Session, url: str, ledger: Ledger, instance_ids: list[str]) -> list[str]:
    problems = []
    for instance_id in instance_ids:
        response = http.get(f"{url}/instances/{instance_id}/file", timeout=REQUEST_TIMEOUT)
        if response.status_code != 200 or not ledger.items[instance_id].same_content(response.content):
            problems.append(f"instance {instance_id}: its file differs from what was sent ({response.status_code})")
    return problems


def check_xnat(http: requests.Session, url: str, project: str, experiments: dict[str, list[Item]],
               present: set[str]) -> tuple[list[str], dict[str, int]]:
    """Every imported session is listed, and shows exactly the files of its instances the archive still has."""
    problems: list[str] = []
    rows = _get(http, url, f"/data/projects/{project}/experiments", format="json")["ResultSet"]["Result"]
    listed = {row["label"] for row in rows}
    if missing := set(experiments) - listed:
        problems.append(f"XNAT: imported sessions not listed: {sorted(missing)[:5]}")
    expected_files: dict[str, int] = {}
    for label, items in experiments.items():
        files = _get(http, url, f"/data/projects/{project}/experiments/{label}/scans/ALL/files",
                     format="json")["ResultSet"]["Result"]
        shown = {row["Name"]: row["digest"] for row in files}
        expected = {f"{i.sop_uid}.dcm": hashlib.md5(i.data).hexdigest() for i in items if i.instance in present}
        if shown != expected:
            problems.append(f"XNAT session {label}: shows {sorted(shown)[:3]}... ({len(shown)} files), the archive"
                            f" holds {len(expected)} of its instances")
        expected_files[label] = len(expected)
    return problems, expected_files


def check_disk(data_dir, project: str, expected_files: dict[str, int]) -> tuple[list[str], int]:
    """After a clean stop: the index is sound and was closed; one stored file per attachment, no temporary
    files; every file of the XNAT tree is a link to a stored file, as many per session as XNAT lists."""
    import sqlite3
    from pathlib import Path

    data_dir = Path(data_dir)
    problems = []
    db = sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True)
    try:
        if (result := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            problems.append(f"index: integrity_check says {result}")
        if broken := db.execute("PRAGMA foreign_key_check").fetchall():
            problems.append(f"index: {len(broken)} rows break a foreign key, e.g. {broken[:3]}")
        if db.execute("SELECT value FROM properties WHERE name = 'open'").fetchone() is not None:
            problems.append("index: not marked as cleanly closed after the stop")
        attachments = [row[0] for row in db.execute("SELECT uuid FROM attachments")]
        instances = db.execute("SELECT COUNT(*) FROM resources WHERE level = 3").fetchone()[0]
    finally:
        db.close()
    if len(attachments) != instances or len(set(attachments)) != instances:
        problems.append(f"index: {instances} instances, {len(attachments)} attachments")
    stored = {path.name: path for path in data_dir.glob("??/??/*")}
    if extra := set(stored) - set(attachments):
        problems.append(f"storage: {len(extra)} files no attachment references, e.g. {sorted(extra)[:3]}")
    if lost := set(attachments) - set(stored):
        problems.append(f"storage: {len(lost)} attachments without their file, e.g. {sorted(lost)[:3]}")
    temporaries = [p for p in data_dir.rglob("*") if p.name.endswith((".tmp", ".pacsbox-tmp"))]
    if temporaries:
        problems.append(f"{len(temporaries)} temporary files remain, e.g. {temporaries[:3]}")
    inodes = {path.stat().st_ino for path in stored.values()}
    for label, count in expected_files.items():
        session = data_dir / "archive" / project / "arc001" / label
        links = [p for p in session.glob("SCANS/*/DICOM/*") if p.is_file()]
        if len(links) != count:
            problems.append(f"XNAT folder of {label}: {len(links)} files, XNAT lists {count}")
        if stale := [p for p in links if p.stat().st_ino not in inodes]:
            problems.append(f"XNAT folder of {label}: {len(stale)} files are not stored instances, e.g. {stale[0]}")
    return problems, len(stored)
