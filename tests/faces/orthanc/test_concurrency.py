"""Concurrent uploads: 1000 small instances from 4 clients at once land exactly once, with the right IDs and bytes."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.support.compare import orthanc_id
from tests.support.dicomgen import make_dataset, to_bytes, uid

CLIENTS = 4
PATIENTS, STUDIES, SERIES, INSTANCES = 10, 2, 5, 10  # per parent: 10 x 2 x 5 x 10 = 1000 instances


@dataclass(frozen=True)
class File:
    data: bytes
    patient: str
    study: str
    series: str
    instance: str


def make_files(tag: str, patients: int, studies: int, series: int, instances: int) -> list[File]:
    """Deterministic files, patient by patient; pydicom's writer is slow (~5 ms a file), so patients are
    generated in parallel processes."""
    jobs = [(tag, p, studies, series, instances) for p in range(patients)]
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        return [item for job in jobs for item in _patient_files(*job)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return [item for chunk in pool.map(_patient_files, *zip(*jobs, strict=True)) for item in chunk]


def _patient_files(tag: str, p: int, studies: int, series: int, instances: int) -> list[File]:
    files = []
    patient_id = f"PBX-{tag}-{p:02d}"
    for st in range(studies):
        study_uid = uid("study", tag, p, st)
        for se in range(series):
            series_uid = uid("series", tag, p, st, se)
            for i in range(instances):
                sop_uid = uid("instance", tag, p, st, se, i)
                ds = make_dataset(patient_id=patient_id, patient_name=f"Load^{tag}{p}", study_uid=study_uid,
                                  series_uid=series_uid, sop_uid=sop_uid, modality=("CT", "MR")[se % 2],
                                  series_number=se + 1, instance_number=i + 1, rows=4, cols=4)
                files.append(File(to_bytes(ds), orthanc_id(patient_id), orthanc_id(patient_id, study_uid),
                                  orthanc_id(patient_id, study_uid, series_uid),
                                  orthanc_id(patient_id, study_uid, series_uid, sop_uid)))
    return files


def upload_concurrently(server, batches: list[list[File]]) -> list[tuple[File, int, dict]]:
    """Each batch goes through its own client (thread and session); all start together."""
    start = threading.Barrier(len(batches))

    def run(batch: list[File]) -> list[tuple[File, int, dict]]:
        with server.session() as session:
            start.wait()
            results = []
            for item in batch:
                response = session.post(server.url + "/instances", data=item.data, timeout=60)
                results.append((item, response.status_code,
                                response.json() if response.status_code == 200 else {"text": response.text}))
            return results

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        return [result for batch in pool.map(run, batches) for result in batch]


def all_changes(http: requests.Session, url: str) -> list[dict]:
    changes, since = [], 0
    while True:
        page = http.get(url + "/changes", params={"since": since, "limit": 1000}).json()
        changes += page["Changes"]
        if page["Done"] or not page["Changes"]:
            return changes
        since = page["Last"]


@pytest.fixture(scope="module")
def files() -> list[File]:
    return make_files("C", PATIENTS, STUDIES, SERIES, INSTANCES)


@pytest.fixture(scope="module")
def loaded(spawned_pacsbox, files):
    """The 1000 files, interleaved over 4 clients so that every series receives from several clients at once."""
    started = time.monotonic()
    results = upload_concurrently(spawned_pacsbox, [files[n::CLIENTS] for n in range(CLIENTS)])
    return results, time.monotonic() - started


def test_every_upload_succeeds(loaded, files):
    results, _ = loaded
    assert len(results) == len(files) == 1000
    failures = [(status, body) for _, status, body in results if status != 200]
    assert failures == []
    for item, _, body in results:
        assert body == {"ID": item.instance, "ParentPatient": item.patient, "ParentStudy": item.study,
                        "ParentSeries": item.series, "Path": f"/instances/{item.instance}", "Status": "Success"}


def test_upload_is_fast_enough(loaded):
    _, seconds = loaded
    assert seconds < 25, f"1000 uploads from {CLIENTS} clients took {seconds:.1f} s"


def test_statistics_are_exact(spawned_pacsbox, loaded, files):
    body = spawned_pacsbox.session().get(spawned_pacsbox.url + "/statistics").json()
    total = sum(len(item.data) for item in files)
    assert body == {
        "CountPatients": PATIENTS, "CountStudies": PATIENTS * STUDIES, "CountSeries": PATIENTS * STUDIES * SERIES,
        "CountInstances": 1000, "TotalDiskSize": str(total), "TotalDiskSizeMB": total // (1024 * 1024),
        "TotalUncompressedSize": str(total), "TotalUncompressedSizeMB": total // (1024 * 1024),
    }


def test_instances_have_the_expected_ids_and_sizes(spawned_pacsbox, loaded, files):
    http = spawned_pacsbox.session()
    listed = http.get(spawned_pacsbox.url + "/instances").json()
    assert len(listed) == 1000
    assert sorted(listed) == sorted(item.instance for item in files)
    sizes = {obj["ID"]: obj["FileSize"] for obj in http.get(spawned_pacsbox.url + "/instances?expand").json()}
    assert sizes == {item.instance: len(item.data) for item in files}


def test_hierarchy_is_complete(spawned_pacsbox, loaded, files):
    http = spawned_pacsbox.session()
    series = http.get(spawned_pacsbox.url + "/series?expand").json()
    expected = {}
    for item in files:
        expected.setdefault(item.series, set()).add(item.instance)
    assert {s["ID"]: set(s["Instances"]) for s in series} == expected
    assert sorted(s["ParentStudy"] for s in series) == sorted({item.series: item.study for item in files}.values())
    studies = http.get(spawned_pacsbox.url + "/studies?expand").json()
    assert len(studies) == PATIENTS * STUDIES
    assert all(len(study["Series"]) == SERIES for study in studies)
    patients = http.get(spawned_pacsbox.url + "/patients?expand").json()
    assert sorted(p["ID"] for p in patients) == sorted({item.patient for item in files})
    assert all(len(patient["Studies"]) == STUDIES for patient in patients)


def test_each_resource_is_announced_once(spawned_pacsbox, loaded, files):
    changes = all_changes(spawned_pacsbox.session(), spawned_pacsbox.url)
    seqs = [change["Seq"] for change in changes]
    assert seqs == sorted(set(seqs))
    created = Counter((change["ChangeType"], change["ID"]) for change in changes
                      if change["ChangeType"].startswith("New"))
    assert all(count == 1 for count in created.values())
    kinds = Counter(kind for kind, _ in created)
    assert kinds == {"NewInstance": 1000, "NewSeries": 100, "NewStudy": 20, "NewPatient": 10}
    assert {public_id for kind, public_id in created if kind == "NewInstance"} == {f.instance for f in files}


def test_a_sample_of_files_downloads_byte_identical(spawned_pacsbox, loaded, files):
    http = spawned_pacsbox.session()
    for item in files[::37]:
        response = http.get(f"{spawned_pacsbox.url}/instances/{item.instance}/file")
        assert response.status_code == 200
        assert response.content == item.data


def test_the_same_files_from_four_clients_are_stored_once(fresh_pacsbox):
    """Four clients send the same 100 files at the same time (in different orders): one Success per file.

    The real Orthanc 1.10.1 sometimes answers 500 to one of the racing duplicates; pacsbox must not.
    """
    files = make_files("D", 2, 1, 5, 10)
    batches = [files, files[::-1], files[50:] + files[:50], files[1::2] + files[::2]]
    results = upload_concurrently(fresh_pacsbox, batches)
    assert [status for _, status, _ in results] == [200] * 400
    statuses: dict[str, Counter] = {}
    for item, _, body in results:
        assert body["ID"] == item.instance
        statuses.setdefault(item.instance, Counter())[body["Status"]] += 1
    assert all(counter == {"Success": 1, "AlreadyStored": 3} for counter in statuses.values())
    http = fresh_pacsbox.session()
    body = http.get(fresh_pacsbox.url + "/statistics").json()
    assert (body["CountPatients"], body["CountSeries"], body["CountInstances"]) == (2, 10, 100)
    assert body["TotalDiskSize"] == str(sum(len(item.data) for item in files))
    changes = all_changes(http, fresh_pacsbox.url)
    assert sum(change["ChangeType"] == "NewInstance" for change in changes) == 100
    for item in files[::9]:
        assert http.get(f"{fresh_pacsbox.url}/instances/{item.instance}/file").content == item.data
