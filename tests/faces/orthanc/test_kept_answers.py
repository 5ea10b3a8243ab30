"""The lean path's kept answers (``faces.answer_cache.GenerationAnswers``) are never stale.

Through a real server: the hot reads are read (and kept), then the archive is changed through each way in (a REST
upload, a C-STORE, a modification, a deletion, a metadata write) and the same reads must answer what the normal
path answers (a fault rule that never fires sends every request the normal way, which keeps nothing). In-process:
a second read is the very answer kept, and a metadata write, the stability watcher's flag, another thread's
write to the index and a new DefaultEncoding each end it.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from pacsbox.core.assembly import open_archive
from pacsbox.core.config import Config
from pacsbox.core.ids import Level
from pacsbox.faults.client import FaultsClient, http_caller
from pacsbox.http_app import create_http_app
from tests.faces.orthanc.test_fast_reads import NEVER_FIRES, USERS, _scope
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox


def _dataset(n: int, description: str = "Kept"):
    return make_dataset(patient_id="KEPT-1", patient_name="Kept^Answers", study_uid=uid("kept", "study"),
                        series_uid=uid("kept", "series"), sop_uid=uid("kept", "sop", n), rows=4, cols=4,
                        instance_number=n + 1, extra={"StudyDescription": description})


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"RegisteredUsers": USERS}) as running:
        session = running.session()
        for n in range(2):
            assert session.post(f"{running.url}/instances", data=to_bytes(_dataset(n))).status_code == 200
        yield running


def _paths(server) -> list[str]:
    session = server.session()
    instance = sorted(session.get(f"{server.url}/instances").json())[0]
    series = session.get(f"{server.url}/instances/{instance}").json()["ParentSeries"]
    study = session.get(f"{server.url}/series/{series}").json()["ParentStudy"]
    patient = session.get(f"{server.url}/studies/{study}").json()["ParentPatient"]
    return [f"/series/{series}", f"/series/{series}/instances", f"/studies/{study}", f"/studies/{study}/series",
            f"/patients/{patient}", f"/patients/{patient}/studies", f"/instances/{instance}",
            f"/instances/{instance}/tags?simplify"]


def _read(server, paths: list[str]) -> list[bytes]:
    session = server.session()
    answers = []
    for path in paths:
        answer = session.get(server.url + path)
        assert answer.status_code == 200, path
        answers.append(answer.content)
    return answers


def _lean_then_normal(server, paths: list[str]) -> tuple[list[bytes], list[bytes]]:
    faults = FaultsClient(http_caller(server.url, server.auth))
    lean = _read(server, paths)
    assert _read(server, paths) == lean  # read twice: the second time from what was kept
    faults.add(NEVER_FIRES)
    try:
        normal = _read(server, paths)
    finally:
        faults.clear()
    return lean, normal


def test_no_answer_outlives_a_change_through_any_face(server):
    paths = _paths(server)
    lean, normal = _lean_then_normal(server, paths)
    assert lean == normal
    session = server.session()
    series_path, patient_path = paths[0], paths[4]

    def changed(what: str, *moved: str) -> None:
        nonlocal lean
        before = dict(zip(paths, lean, strict=True))
        lean, normal = _lean_then_normal(server, paths)
        assert lean == normal, what
        after = dict(zip(paths, lean, strict=True))
        for path in moved:
            assert after[path] != before[path], f"{what}: {path} did not move"

    assert session.post(f"{server.url}/instances", data=to_bytes(_dataset(2))).status_code == 200
    changed("REST upload", series_path, paths[1])

    assoc = AE(ae_title="KEPTSCU")
    assoc.add_requested_context(CTImageStorage)
    association = assoc.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert association.is_established
    try:
        assert int(association.send_c_store(dcmread(io.BytesIO(to_bytes(_dataset(3))))).Status) == 0
    finally:
        association.release()
    changed("C-STORE", series_path, paths[1])

    study_id = paths[2].rsplit("/", 1)[1]
    modified = session.post(f"{server.url}/studies/{study_id}/modify",
                            json={"Replace": {"StudyDescription": "Modified"}})
    assert modified.status_code == 200, modified.text
    changed("modification", patient_path, paths[5])

    c_stored = next(one["ID"] for one in session.get(f"{server.url}{paths[1]}").json()
                    if one["MainDicomTags"]["SOPInstanceUID"] == uid("kept", "sop", 3))
    assert session.delete(f"{server.url}/instances/{c_stored}").status_code == 200
    changed("deletion", series_path, paths[1])

    instance_path = paths[6]
    assert session.put(f"{server.url}{instance_path}/metadata/1024", data=b"kept").status_code == 200
    changed("metadata")


def test_every_change_to_the_index_ends_kept_answers(tmp_path):
    config = Config(StorageDirectory=str(tmp_path / "data"), RegisteredUsers=USERS, StableAge=3600)
    archive = open_archive(config)
    try:
        instance = archive.store(to_bytes(_dataset(0))).instance_id
        app = create_http_app(archive, config, http_port=1)
        series = archive.resource(Level.INSTANCE, instance).parent_id

        def read(path: str, query: bytes = b""):
            answer = app.quick_answer(_scope(path, query))
            assert answer is not None and answer[0] == 200, path
            return answer

        kept = read(f"/series/{series}")
        assert read(f"/series/{series}") is kept  # the very answer kept
        tags = read(f"/instances/{instance}/tags", b"simplify")
        assert read(f"/instances/{instance}/tags", b"simplify") is tags

        archive.set_metadata(Level.INSTANCE, instance, "1024", "a value")  # (no answer here shows it)
        again = read(f"/series/{series}")
        assert again is not kept and again == kept
        assert read(f"/series/{series}") is again

        assert b'"IsStable": false' in again[2]
        tags = read(f"/instances/{instance}/tags", b"simplify")
        assert read(f"/instances/{instance}/tags", b"simplify") is tags
        described = read(f"/instances/{instance}")
        assert read(f"/instances/{instance}") is described
        assert archive.index.mark_stable(time.time() + 1)  # what the stability watcher does once StableAge passed
        # a stability flag ends only the answers that name a resource flagged (here its patient, study and series)
        assert read(f"/instances/{instance}/tags", b"simplify") is tags
        stable = read(f"/series/{series}")
        assert b'"IsStable": true' in stable[2]
        assert read(f"/instances/{instance}") is not described  # its ParentSeries is the series flagged

        # a write by another thread, on its own connection, as the DICOM face and the jobs make theirs
        def rename() -> None:
            with archive.index.writing() as db:
                db.execute("UPDATE resources SET main_tags = json_set(main_tags, '$.SeriesDescription', 'Outside')"
                           " WHERE public_id = ?", (series,))

        writer = threading.Thread(target=rename)
        writer.start()
        writer.join()
        assert b'"SeriesDescription": "Outside"' in read(f"/series/{series}")[2]

        archive.settings.set_default_encoding("Utf8")  # PUT /tools/default-encoding: part of what tags depend on
        assert read(f"/instances/{instance}/tags", b"simplify") is not tags
    finally:
        archive.close()
