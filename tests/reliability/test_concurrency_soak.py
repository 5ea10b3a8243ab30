"""Issue 8, concurrency: eight clients mixing ingest, delete, find, XNAT import and zip downloads for a bounded
time; afterwards counts, the change log, the files and the XNAT view are consistent, and no request got a 5xx.

The clients (each a thread with its own HTTP session, one of them a DICOM association):

* ``rest-files``: new small studies file by file (POST /instances), now and then a file sent again;
* ``rest-zips``: new studies as one zip each (POST /instances);
* ``dicom-store``: new studies over C-STORE (dcmtk's storescu; pynetdicom's SCU where dcmtk is missing);
* ``xnat``: imports into a project (POST /data/services/import), lists sessions, reads their files and zips;
* ``deleter``: deletes patients, studies, series and instances, half the time what others are reading now;
* ``downloader``: study zips (GET /studies/{id}/archive) and /tools/create-archive, read to the end and opened;
* ``reader``: /tools/find (on main tags and on tags read from the files), lists, instance files and tags,
  pages of /changes, /statistics;
* ``mixed``: metadata written and read back, series zips, parent and metadata reads, deletes of what the
  others read (so that two clients now and then delete the same resource at once).

Every answer is recorded: any 5xx, any request without a complete answer and any unexpected status fails the
test (a 404 for what another client deleted is expected). Every answer that shows or hides resources is checked
against the ledger of acknowledged writes (see soak_support). A zip is read to the end and opened: every member
has the bytes sent, and it holds every instance that certainly existed while it was built; one deleted meanwhile
is left out (the zip is written before it is sent, whole files only), and a 404 answers a resource whose every
instance went. With no client running, the archive is checked through REST, then on disk after a clean stop,
then again after a restart on the same data directory.

The clients run for 12 s by default (about 30 s in all); ``PACSBOX_LONG_TESTS=1`` runs them for 5 minutes.
"""

from __future__ import annotations

import io
import logging
import os
import random
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import requests
from pydicom import dcmread

from pacsbox.faces.dimse.network import held_reactor
from tests.reliability.soak_support import (
    LEVELS,
    NEVER,
    REQUEST_TIMEOUT,
    Files,
    Item,
    Ledger,
    Observation,
    Soak,
    check_against_ledger,
    check_bytes,
    check_changes,
    check_disk,
    check_observation,
    check_observations,
    check_restart,
    check_tree,
    check_xnat,
    snapshot,
    zip_members,
)
from tests.support import dcmtk
from tests.support.dicomgen import CT_IMAGE_STORAGE, zip_of
from tests.support.pacsbox_proc import RunningPacsbox

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
SOAK_SECONDS = 300 if LONG else 12
SEED = 8

PROJECT = "SOAK"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


# -- ingest -----------------------------------------------------------------------------------------------
def rest_files(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """A new small study, file by file; now and then a file sent again (AlreadyStored, or stored anew)."""
    for item in soak.new_study("RS", rng, patients=12, series=rng.randint(1, 2), per_series=rng.randint(1, 4)):
        _store_one(soak, http, item)
    if rng.random() < 0.3 and (again := soak.pick(rng)) is not None and again.kind == "RS":
        _store_one(soak, http, again)


def _store_one(soak: Soak, http: requests.Session, item: Item) -> None:
    answer = soak.call(http, "ingest-file", "POST", "/instances", data=item.data)
    if answer.status != 200:
        soak.ledger.stored([item], answer.start, NEVER, certain=False)
        return
    body = answer.response.json()
    if body.get("ID") != item.instance or body.get("Status") not in ("Success", "AlreadyStored"):
        soak.recorder.problem(f"[ingest-file] answer {body} for instance {item.instance}")
    soak.ledger.stored([item], answer.start, answer.end)
    soak.remember([item])


def rest_zips(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """A new study of two series as one zip."""
    items = soak.new_study("RZ", rng, patients=12, series=2, per_series=3)
    body = zip_of([(f"{n}.dcm", item.data) for n, item in enumerate(items)])
    answer = soak.call(http, "ingest-zip", "POST", "/instances", data=body)
    if answer.status != 200:
        soak.ledger.stored(items, answer.start, NEVER, certain=False)
        return
    if sorted(r["ID"] for r in answer.response.json()) != sorted(item.instance for item in items):
        soak.recorder.problem(f"[ingest-zip] answer {answer.response.text[:300]}")
    soak.ledger.stored(items, answer.start, answer.end)
    soak.remember(items)


def dicom_store(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """A new study over one DICOM association: dcmtk's storescu when installed, else pynetdicom's SCU."""
    items = soak.new_study("DC", rng, patients=6, series=rng.randint(1, 2), per_series=3)
    if dcmtk.tool("storescu"):
        _storescu(soak, items)
    else:
        _pynetdicom_store(soak, items)


def _storescu(soak: Soak, items: list[Item]) -> None:
    with tempfile.TemporaryDirectory(prefix="pacsbox-soak-") as folder:
        paths = [Path(folder) / f"{n}.dcm" for n in range(len(items))]
        for path, item in zip(paths, items, strict=True):
            path.write_bytes(item.data)
        start = time.monotonic()
        result = dcmtk.run("storescu", "-v", "-aet", "SOAKSCU", "-aec", soak.server.aet, "127.0.0.1",
                           str(soak.server.dicom_port), *paths, timeout=REQUEST_TIMEOUT)
    end = time.monotonic()
    output = result.stdout + result.stderr
    stored = output.count("Received Store Response (Success)")
    if result.returncode == 0 and stored == len(items):
        soak.ledger.stored(items, start, end)
        soak.remember(items)
        for _ in items:
            soak.recorder.note("c-store", 200)
    else:  # a refused association or a failure status is the DIMSE face's 5xx
        soak.ledger.stored(items, start, NEVER, certain=False)
        soak.recorder.note("c-store", 500, f"storescu exit {result.returncode}, {stored}/{len(items)} stored:"
                                          f" {output[-400:]!r}")


class _ReactorRace(logging.Handler):
    """Counts pynetdicom's sign of its requestor race: under GIL contention its reactor thread can take a
    C-STORE-RSP off the queue before send_c_store waits for it ("Received unexpected C-STORE service message");
    send_c_store then gets no status although the server answered."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "unexpected C-STORE" in record.getMessage():
            self.count += 1


def _pynetdicom_store(soak: Soak, items: list[Item]) -> None:
    from pynetdicom import AE

    race = _ReactorRace()
    logging.getLogger("pynetdicom").addHandler(race)
    ae = AE(ae_title="SOAKSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = REQUEST_TIMEOUT
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    association = ae.associate("127.0.0.1", soak.server.dicom_port, ae_title=soak.server.aet)
    try:
        if not association.is_established:
            soak.recorder.note("c-store", 500, "association refused or aborted")
            return
        with held_reactor(association):  # the race stays counted below, should pynetdicom still lose an answer
            for item in items:
                if not association.is_established:
                    break
                dataset = dcmread(io.BytesIO(item.data))
                start, seen = time.monotonic(), race.count
                code = getattr(association.send_c_store(dataset), "Status", None)
                if code == 0:
                    soak.ledger.stored([item], start, time.monotonic())
                    soak.remember([item])
                    soak.recorder.note("c-store", 200)
                    continue
                soak.ledger.stored([item], start, NEVER, certain=False)
                if code is None and race.count > seen:  # answered, but the client lost the answer: not the server's
                    soak.recorder.note("c-store lost by pynetdicom", 0)
                else:
                    soak.recorder.note("c-store", 500, f"C-STORE of {item.sop_uid}: status {code!r}")
    finally:
        if association.is_established:
            association.release()
        logging.getLogger("pynetdicom").removeHandler(race)


# -- XNAT -------------------------------------------------------------------------------------------------
def xnat(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """Import a new session through the import service; or list sessions, or read their files and zips."""
    roll = rng.random()
    with soak.lock:
        labels = list(soak.experiments)
    if roll < 0.5 or not labels:
        _xnat_import(soak, http, rng)
    elif roll < 0.65:
        answer = soak.call(http, "xnat-list", "GET", f"/data/projects/{PROJECT}/experiments",
                           params={"format": "json"})
        if answer.status == 200:
            listed = {row["label"] for row in answer.response.json()["ResultSet"]["Result"]}
            if missing := set(labels) - listed:  # XNAT sessions are never deleted here
                soak.recorder.problem(f"[xnat-list] imported sessions not listed: {sorted(missing)[:5]}")
    else:
        label = rng.choice(labels)
        with soak.lock:
            items = soak.experiments[label]
        with soak.reading(1, items[0].study):
            if roll < 0.9:
                _xnat_file(soak, http, rng, label)
            else:
                _xnat_zip(soak, http, label, items)


def _xnat_import(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    items = soak.files.study("XN", next(soak.numbers), next(soak.numbers), 2, 2)  # one patient per session
    soak.ledger.add(items)
    answer = soak.call(http, "xnat-import", "POST", "/data/services/import",
                       params={"dest": f"/archive/projects/{PROJECT}", "import-handler": "DICOM-zip"},
                       data=zip_of([(f"{n}.dcm", item.data) for n, item in enumerate(items)]))
    if answer.status != 200:
        soak.ledger.stored(items, answer.start, NEVER, certain=False)
        return
    soak.ledger.stored(items, answer.start, answer.end)
    soak.remember(items)
    with soak.lock:
        soak.experiments[items[0].patient_id] = items


def _xnat_file(soak: Soak, http: requests.Session, rng: random.Random, label: str) -> None:
    listing = soak.call(http, "xnat-files", "GET", f"/data/projects/{PROJECT}/experiments/{label}/scans/ALL/files",
                        params={"format": "json"})
    if listing.status != 200:
        return
    rows = listing.response.json()["ResultSet"]["Result"]
    if not rows:
        return
    row = rng.choice(rows)
    item = soak.ledger.by_sop.get(row["Name"].removesuffix(".dcm"))
    answer = soak.call(http, "xnat-file", "GET", row["URI"], expect=(200, 404))
    if item is None:
        soak.recorder.problem(f"[xnat-file] a file no client sent: {row['URI']}")
    elif answer.status == 200 and not item.same_content(answer.response.content):
        soak.recorder.problem(f"[xnat-file] {row['URI']}: the bytes differ from those sent")
    elif answer.status in (200, 404):
        soak.observe(f"xnat file {row['URI']}", {item.instance}, {item.instance} if answer.status == 200 else set(),
                     answer)


def _xnat_zip(soak: Soak, http: requests.Session, label: str, items: list[Item]) -> None:
    answer = soak.call(http, "xnat-zip", "GET", f"/data/projects/{PROJECT}/experiments/{label}/scans/ALL/files",
                       params={"format": "zip"}, expect=(200, 404))
    if answer.status == 200:
        seen, problems = zip_members(soak.ledger, answer.response.content, f"xnat zip of {label}")
        for problem in problems:
            soak.recorder.problem(problem)
        soak.observe(f"xnat zip of {label}", {item.instance for item in items}, seen, answer)


# -- deletes ----------------------------------------------------------------------------------------------
def deleter(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """Delete what others are reading when something is being read, else a recent resource at any level."""
    time.sleep(rng.uniform(0.02, 0.15))  # bounds the delete rate, so that the archive keeps some content
    target = soak.hot_target(rng) if rng.random() < 0.5 else None
    if target is not None:
        level, public_id = target
        below = sorted(soak.ledger.below.get(public_id, ()))
        if below and rng.random() < 0.5:  # a part of what is being read
            item = soak.ledger.items[rng.choice(below)]
            level = rng.randrange(level, 4)
            public_id = item.ids[level]
    else:
        item = soak.pick(rng)
        if item is None:
            return
        level = rng.choices(range(4), weights=(1, 2, 3, 4))[0]
        public_id = item.ids[level]
    delete(soak, http, level, public_id)


def delete(soak: Soak, http: requests.Session, level: int, public_id: str) -> None:
    answer = soak.call(http, f"delete-{LEVELS[level]}", "DELETE", f"/{LEVELS[level]}/{public_id}",
                       expect=(200, 404))
    if answer.status == 200:
        soak.ledger.deleted(LEVELS[level], public_id, answer.start, answer.end)


# -- downloads --------------------------------------------------------------------------------------------
def downloader(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """Zip archives of a study, or of a patient and a series together, read to the end and opened."""
    item = soak.pick(rng)
    if item is None:
        time.sleep(0.05)
        return
    if rng.random() < 0.6:
        with soak.reading(1, item.study):
            _archive(soak, http, "study-archive", "GET", f"/studies/{item.study}/archive", [item.study])
        return
    other = soak.pick(rng) or item
    resources = [item.patient, other.series]
    with soak.reading(0, item.patient), soak.reading(2, other.series):
        _archive(soak, http, "create-archive", "POST", "/tools/create-archive", resources, json=resources)


def _archive(soak: Soak, http: requests.Session, kind: str, method: str, path: str, resources: list[str],
             **kwargs) -> None:
    answer = soak.call(http, kind, method, path, expect=(200, 404), **kwargs)
    scope = set().union(*(soak.ledger.below.get(r, set()) for r in resources))
    if answer.status == 200:
        seen, problems = zip_members(soak.ledger, answer.response.content, f"{kind} {resources}")
        for problem in problems:
            soak.recorder.problem(problem)
        soak.observe(f"{kind} {resources}", scope, seen, answer)
    elif answer.status == 404 and len(resources) == 1:  # (with several, one missing resource is enough for 404)
        soak.observe(f"{kind} {resources} (404)", resources, set(), answer)


# -- reads ------------------------------------------------------------------------------------------------
def reader(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """Finds (on main tags and on tags read from the files), lists, instance files and tags, changes."""
    roll = rng.random()
    if roll < 0.15:
        _find(soak, http, "Study", {"PatientID": "RS*"}, _scope(soak, 1, "RS"))
    elif roll < 0.25:  # a tag that is not a main tag: the files themselves are read while others delete them
        _find(soak, http, "Series", {"PatientID": "RZ*", "ImageComments": "synthetic*"}, _scope(soak, 2, "RZ"))
    elif roll < 0.35:
        answer = soak.call(http, "list", "GET", "/studies")
        if answer.status == 200:
            soak.observe("GET /studies", _scope(soak, 1), set(answer.response.json()), answer)
    elif roll < 0.45:
        answer = soak.call(http, "list", "GET", "/series", params={"expand": ""})
        if answer.status == 200:
            soak.observe("GET /series?expand", _scope(soak, 2), {row["ID"] for row in answer.response.json()},
                         answer)
    elif roll < 0.6:
        instance_file(soak, http, rng)
    elif roll < 0.75:
        _tags(soak, http, rng)
    elif roll < 0.85:
        _series_instances(soak, http, rng)
    elif roll < 0.95:
        _changes_page(soak, http, rng)
    else:
        soak.call(http, "statistics", "GET", "/statistics")


def _scope(soak: Soak, level: int, kind: str | None = None) -> set[str]:
    with soak.lock:
        items = list(soak.ledger.items.values())
    return {item.ids[level] for item in items if kind is None or item.kind == kind}


def _find(soak: Soak, http: requests.Session, level: str, query: dict[str, str], scope: set[str]) -> None:
    answer = soak.call(http, "find", "POST", "/tools/find", json={"Level": level, "Query": query})
    if answer.status == 200:
        soak.observe(f"find {level} {query}", scope, set(answer.response.json()), answer)


def instance_file(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    item = soak.pick(rng)
    if item is None:
        return
    with soak.reading(3, item.instance):
        answer = soak.call(http, "instance-file", "GET", f"/instances/{item.instance}/file", expect=(200, 404))
    if answer.status == 200 and not item.same_content(answer.response.content):
        soak.recorder.problem(f"[instance-file] {item.instance}: the bytes differ from those sent")
    if answer.status in (200, 404):
        soak.observe(f"file of {item.instance}", {item.instance}, {item.instance} if answer.status == 200 else set(),
                     answer)


def _tags(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    item = soak.pick(rng)
    if item is None:
        return
    with soak.reading(3, item.instance):
        answer = soak.call(http, "instance-tags", "GET", f"/instances/{item.instance}/tags",
                           params={"simplify": ""}, expect=(200, 404))
    if answer.status == 200 and answer.response.json().get("SOPInstanceUID") != item.sop_uid:
        soak.recorder.problem(f"[instance-tags] {item.instance}: wrong SOPInstanceUID")
    if answer.status in (200, 404):
        soak.observe(f"tags of {item.instance}", {item.instance}, {item.instance} if answer.status == 200 else set(),
                     answer)


def _series_instances(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    item = soak.pick(rng)
    if item is None:
        return
    with soak.reading(2, item.series):
        answer = soak.call(http, "series-instances", "GET", f"/series/{item.series}/instances", expect=(200, 404))
    if answer.status == 200:
        seen = {row["ID"] for row in answer.response.json()}
        soak.observe(f"instances of series {item.series}", soak.ledger.below[item.series], seen, answer)
    elif answer.status == 404:
        soak.observe(f"series {item.series} (404)", {item.series}, set(), answer)


def _changes_page(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    last = soak.call(http, "changes", "GET", "/changes", params={"last": ""})
    if last.status != 200:
        return
    since = rng.randrange(max(1, last.response.json().get("Last", 0) + 1))
    answer = soak.call(http, "changes", "GET", "/changes", params={"since": since, "limit": 100})
    if answer.status == 200:
        seqs = [change["Seq"] for change in answer.response.json()["Changes"]]
        if seqs != sorted(set(seqs)) or any(seq <= since for seq in seqs):
            soak.recorder.problem(f"[changes] since={since}: sequence numbers out of order or repeated: {seqs}")


# -- metadata and mixed work ------------------------------------------------------------------------------
def mixed(soak: Soak, http: requests.Session, rng: random.Random) -> None:
    """Metadata written and read back (this client alone writes it), series zips, deletes of single instances."""
    item = soak.pick(rng)
    if item is None:
        time.sleep(0.05)
        return
    roll = rng.random()
    if roll < 0.4:
        _metadata(soak, http, rng, item)
    elif roll < 0.6:
        with soak.reading(2, item.series):
            _archive(soak, http, "series-archive", "GET", f"/series/{item.series}/archive", [item.series])
    elif roll < 0.75:  # the deleter goes for what is read too: now and then both delete the same resource
        level, public_id = soak.hot_target(rng) or (3, item.instance)
        delete(soak, http, level, public_id)
    elif roll < 0.85:
        answer = soak.call(http, "resource", "GET", f"/studies/{item.study}", expect=(200, 404))
        if answer.status == 200 and answer.response.json().get("ParentPatient") != item.patient:
            soak.recorder.problem(f"[resource] study {item.study}: wrong ParentPatient")
    elif roll < 0.93:
        answer = soak.call(http, "resource", "GET", f"/instances/{item.instance}/study", expect=(200, 404))
        if answer.status == 200 and answer.response.json().get("ID") != item.study:
            soak.recorder.problem(f"[resource] the study of {item.instance} is {answer.response.json().get('ID')}")
    else:
        soak.call(http, "metadata", "GET", f"/studies/{item.study}/metadata", params={"expand": ""},
                  expect=(200, 404))


def _metadata(soak: Soak, http: requests.Session, rng: random.Random, item: Item) -> None:
    level, public_id = rng.choice(((3, item.instance), (1, item.study)))
    path = f"/{LEVELS[level]}/{public_id}/metadata/Sample"
    value = f"soak-{rng.randrange(10**9)}"
    written = soak.call(http, "metadata", "PUT", path, data=value, expect=(200, 404))
    if written.status != 200:
        return
    read = soak.call(http, "metadata", "GET", path, expect=(200, 404))
    # 404: deleted since (and maybe stored again, without metadata); else it must be what was just written
    if read.status == 200 and read.response.text != value:
        soak.recorder.problem(f"[metadata] {path}: wrote {value!r}, read {read.response.text!r}")
    if rng.random() < 0.3:
        soak.call(http, "metadata", "DELETE", path, expect=(200, 404))


#: The eight clients, by name.
CLIENTS: dict[str, Callable[[Soak, requests.Session, random.Random], None]] = {
    "rest-files": rest_files,
    "rest-zips": rest_zips,
    "dicom-store": dicom_store,
    "xnat": xnat,
    "deleter": deleter,
    "downloader": downloader,
    "reader": reader,
    "mixed": mixed,
}


def _client(soak: Soak, name: str, action, rng: random.Random) -> None:
    with soak.server.session() as http:
        while time.monotonic() < soak.deadline:
            try:
                action(soak, http, rng)
            except Exception:  # a client's own failure (an unreadable answer, say) is reported, not swallowed
                soak.recorder.problem(f"[{name}] {traceback.format_exc(limit=4)}")


def _run_clients(soak: Soak) -> None:
    threads = [threading.Thread(target=_client, args=(soak, name, action, random.Random(SEED + n)),
                                name=f"soak-{name}", daemon=True)
               for n, (name, action) in enumerate(CLIENTS.items())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, soak.deadline - time.monotonic()) + 2 * REQUEST_TIMEOUT)
        if thread.is_alive():
            soak.recorder.problem(f"client {thread.name} still running {2 * REQUEST_TIMEOUT} s after the end: a hang")


def _figures(soak: Soak, seconds: float, state: dict, ledger_figures: dict[str, int]) -> str:
    recorder = soak.recorder
    lines = [f"soak: {len(CLIENTS)} clients for {seconds:.1f} s, {sum(recorder.counts.values())} requests,"
             f" {len(recorder.server_errors)} answers 5xx"]
    for kind, count in sorted(recorder.counts.items()):
        statuses = ", ".join(f"{status}: {n}" for (k, status), n in sorted(recorder.statuses.items()) if k == kind)
        lines.append(f"  {kind:<18} {count:>6}  ({statuses})")
    lines.append(f"  instances: {len(soak.ledger.items)} sent, {soak.ledger.acknowledged()} acknowledged; at the end"
                 f" {ledger_figures.get('ledger kept', 0)} certainly kept, {ledger_figures.get('ledger gone', 0)}"
                 f" certainly gone, {ledger_figures.get('ledger either', 0)} either (a store and a delete overlapped);"
                 f" deletes answered 200: {dict(soak.ledger.deleted_answers)}")
    lines.append(f"  left: {state['statistics']['CountPatients']} patients, {state['statistics']['CountStudies']}"
                 f" studies, {state['statistics']['CountSeries']} series, {state['statistics']['CountInstances']}"
                 f" instances; {len(state['changes'])} changes; {len(soak.experiments)} XNAT sessions;"
                 f" {len(soak.observations)} answers checked against the ledger (whole listings: a sample)")
    return "\n".join(lines)


def test_eight_clients_racing_leave_a_consistent_archive():
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as server:
        http = server.session()
        assert http.put(f"{server.url}/data/projects/{PROJECT}", timeout=30).status_code in (200, 201)
        soak = Soak(server, deadline=time.monotonic() + SOAK_SECONDS)
        started = time.monotonic()
        _run_clients(soak)
        seconds = time.monotonic() - started

        problems = list(soak.recorder.server_errors) + list(soak.recorder.problems)
        problems += check_observations(soak.ledger, soak.observations)
        state = snapshot(http, server.url)
        problems += check_tree(state) + check_changes(state)
        ledger_problems, ledger_figures = check_against_ledger(soak.ledger, state)
        problems += ledger_problems
        survivors = sorted(set(state["instances"]) & set(soak.ledger.items))
        problems += check_bytes(http, server.url, soak.ledger, random.Random(SEED).sample(survivors,
                                                                                         min(100, len(survivors))))
        xnat_problems, xnat_files = check_xnat(http, server.url, PROJECT, soak.experiments, set(state["instances"]))
        problems += xnat_problems
        print(_figures(soak, seconds, state, ledger_figures))

        server.stop()
        if server.process.returncode != 0:
            problems.append(f"pacsbox did not stop cleanly on SIGTERM: exit status {server.process.returncode}")
        disk_problems, stored_files = check_disk(server.data_dir, PROJECT, xnat_files)
        problems += disk_problems

        server.start()  # the same data directory
        problems += check_restart(state, snapshot(server.session(), server.url))
        print(f"  after a clean stop: {stored_files} stored files, one per attachment; restart: same counts")
    if problems:
        log = [line for line in server.output().splitlines() if "rror" in line or "Traceback" in line]
        problems.append("the server's log, errors only:\n" + "\n".join(log[-30:]))
    assert not problems, f"{len(problems)} problems, the first ones:\n" + "\n".join(problems[:40])


# -- the ledger's reasoning, on made-up spans (in-process, instant) ----------------------------------------
def _one_instance() -> tuple[Ledger, Item]:
    ledger = Ledger()
    item = Files().study("RS", 0, 0, 1, 1)[0]
    ledger.add([item])
    return ledger, item


def test_ledger_orders_writes_whose_spans_do_not_overlap():
    ledger, item = _one_instance()
    ledger.stored([item], 1.0, 2.0)
    ledger.deleted("series", item.series, 3.0, 4.0)
    assert ledger.states_at(item.instance, 0.5) == {False}
    assert ledger.states_at(item.instance, 2.5) == {True}
    assert ledger.states_at(item.instance, 3.5) == {True, False}  # the delete is in flight
    assert ledger.final_states() == {item.instance: {False}}
    assert ledger.presence(item.instance, 2.1, 2.9) is True
    assert ledger.presence(item.study, 2.1, 3.5) is None


def test_ledger_admits_either_state_when_writes_overlap():
    ledger, item = _one_instance()
    ledger.stored([item], 1.0, 3.0)
    ledger.deleted("studies", item.study, 2.0, 4.0)  # may have committed before the store, or after
    assert ledger.final_states() == {item.instance: {True, False}}
    ledger.stored([item], 5.0, 6.0)  # a later store settles it
    assert ledger.final_states() == {item.instance: {True}}


def test_observations_are_checked_only_where_the_ledger_is_sure():
    ledger, item = _one_instance()
    ledger.stored([item], 1.0, 2.0)
    missing = Observation("listing", (item.study,), frozenset(), 2.5, 3.0)
    assert check_observation(ledger, missing) == [
        f"listing: {item.study} existed throughout but was not in the answer"]
    early = Observation("listing", (item.study,), frozenset({item.study}), 0.1, 0.5)
    assert check_observation(ledger, early) == [f"listing: {item.study} did not exist but was in the answer"]
    racing = Observation("listing", (item.study,), frozenset(), 1.5, 3.0)  # the store was in flight
    assert check_observation(ledger, racing) == []
