"""The sweep after an unclean stop (core.recovery): what it removes, what it must never take from the running
server, and that a stop before it finished leaves the work to the next start."""

from __future__ import annotations

import threading

from pacsbox.core.archive import Archive
from pacsbox.core.assembly import open_archive
from pacsbox.core.catalog_layout import TEMPORARY_SUFFIX
from pacsbox.core.config import Config
from pacsbox.core.storage import TEMPORARY_SUFFIX as STORE_TEMPORARY_SUFFIX
from tests.support.dicomgen import make_dataset, to_bytes, uid


def instance(n: int) -> bytes:
    return to_bytes(make_dataset(patient_id="REC", patient_name="Doe^John", study_uid=uid("rec-study"),
                                 series_uid=uid("rec-series"), sop_uid=uid("rec-sop", n), instance_number=n))


def crashed(config: Config) -> tuple[str, str]:
    """An archive left as by ``kill -9``: one instance stored, one file written and never committed, one temporary
    file; returns the instance's ID and the orphan's name."""
    archive = Archive(config)
    kept = archive.store(instance(1)).instance_id
    orphan, _ = archive.store_area.write(b"written, never committed")
    temporary = archive.store_area.path_of(orphan[:-4] + "beef")
    temporary.with_name(temporary.name + STORE_TEMPORARY_SUFFIX).write_bytes(b"half")
    archive.index.close()  # no close(): the archive stays marked open
    return kept, orphan


def test_a_clean_start_has_nothing_to_sweep(tmp_path):
    config = Config(StorageDirectory=str(tmp_path))
    Archive(config).close()
    reopened = Archive(config)
    try:
        assert reopened.recovery is None
    finally:
        reopened.close()


def test_the_sweep_waits_for_its_start_and_keeps_what_this_process_writes(tmp_path):
    config = Config(StorageDirectory=str(tmp_path))
    kept, orphan = crashed(config)
    reopened = Archive(config)
    try:
        assert reopened.store_area.path_of(orphan).exists()  # nothing listed at open: the server answers first
        # an upload of the running server, its file written and its rows not yet committed: unreferenced too
        in_flight, _ = reopened.store_area.write(b"being stored")
        stored = reopened.store(instance(2)).instance_id
        reopened.recovery.start()
        assert reopened.recovery.wait(60)
        assert not reopened.store_area.path_of(orphan).exists()
        assert not [p for p in tmp_path.glob(f"??/??/*{STORE_TEMPORARY_SUFFIX}")]
        assert reopened.store_area.path_of(in_flight).exists()
        assert reopened.instance_bytes(kept) == instance(1)
        assert reopened.instance_bytes(stored) == instance(2)
    finally:
        reopened.close()
    after = Archive(config)
    try:
        assert after.recovery is None  # swept, then closed cleanly: the next start is a clean one
    finally:
        after.close()


def test_a_stop_before_the_sweep_leaves_it_to_the_next_start(tmp_path):
    config = Config(StorageDirectory=str(tmp_path))
    _, orphan = crashed(config)
    Archive(config).close()  # never started: a clean close, yet the sweep is still owed
    again = Archive(config)
    try:
        assert again.recovery is not None
        again.recovery.run()
        assert not again.store_area.path_of(orphan).exists()
    finally:
        again.close()


def test_the_sweep_runs_beside_stores(tmp_path):
    """Uploads during the sweep lose nothing: every stored instance keeps its file."""
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False)
    crashed(config)
    reopened = Archive(config)
    try:
        stored: list[str] = []

        def upload() -> None:
            stored.extend(reopened.store(instance(n)).instance_id for n in range(10, 60))

        uploader = threading.Thread(target=upload)
        uploader.start()
        reopened.recovery.run()
        uploader.join()
        assert len(stored) == 50
        for n, instance_id in zip(range(10, 60), stored, strict=True):
            assert reopened.instance_bytes(instance_id) == instance(n)
    finally:
        reopened.close()


def test_the_catalog_sweeps_its_temporary_files_but_not_one_being_written(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False)
    first = open_archive(config)
    first.catalog.put_project("P", {})
    folder = tmp_path / "archive/P/resources/R"
    folder.mkdir(parents=True)
    leftover = folder / f".half.txt.123{TEMPORARY_SUFFIX}"
    leftover.write_bytes(b"half")
    first.index.close()  # no clean close
    second = open_archive(config)
    try:
        writing = folder / f".{'0' * 32}{TEMPORARY_SUFFIX}"
        writing.write_bytes(b"a write of this process")
        second.catalog.layout._writing.add(writing.name)  # as Layout.write_file announces its temporary file
        second.recovery.run()
        assert not leftover.exists()
        assert writing.exists()
        assert second.catalog.project("P").id == "P"
    finally:
        second.close()
