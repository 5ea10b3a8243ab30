"""The archive's event seam in-process: phases, ordering, failures, store filters, and the one-way core imports."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from pacsbox.core.archive import Archive, Origin
from pacsbox.core.config import Config
from pacsbox.core.events import (
    ArchiveClosing,
    ArchiveReset,
    InstanceStored,
    Phase,
    ResourceDeleted,
    ResourceStable,
)
from pacsbox.core.ids import Level
from tests.support.dicomgen import make_dataset, to_bytes, uid

CORE = Path(__file__).resolve().parents[2] / "src" / "pacsbox" / "core"


def instance(key: str, number: int = 1) -> bytes:
    return to_bytes(make_dataset(patient_id=key, patient_name=f"Name^{key}", study_uid=uid("ev-study", key),
                                 series_uid=uid("ev-series", key), sop_uid=uid("ev-instance", key, number),
                                 instance_number=number))


@pytest.fixture
def archive(tmp_path):
    opened = Archive(Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, StableAge=1,
                            OverwriteInstances=True))
    yield opened
    opened.close()


def test_store_publishes_in_transaction_then_after_commit(archive):
    seen: list[tuple[str, object]] = []

    def inside(event: InstanceStored) -> None:
        assert event.transaction is not None
        # the instance's rows are visible in the open transaction, not yet committed for other connections
        count = event.transaction.execute("SELECT COUNT(*) FROM resources WHERE public_id = ?",
                                          (event.instance_id,)).fetchone()[0]
        seen.append(("inside", count))

    def after(event: InstanceStored) -> None:
        assert event.transaction is None
        seen.append(("after", archive.exists(Level.INSTANCE, event.instance_id), event.is_new, event.origin.kind))

    archive.events.subscribe(InstanceStored, after)
    archive.events.subscribe(InstanceStored, inside, Phase.IN_TRANSACTION)
    archive.store(instance("A"), Origin("RestApi"))
    archive.store(instance("A"), Origin("DicomProtocol"))  # OverwriteInstances: replaced, not new
    assert seen == [("inside", 1), ("after", True, True, "RestApi"), ("inside", 1), ("after", True, False,
                                                                                       "DicomProtocol")]


def test_an_in_transaction_failure_stores_nothing(archive, tmp_path):
    def refuse(event: InstanceStored) -> None:
        raise RuntimeError("listener refused")

    archive.events.subscribe(InstanceStored, refuse, Phase.IN_TRANSACTION)
    with pytest.raises(RuntimeError, match="listener refused"):
        archive.store(instance("B"))
    assert archive.statistics()["instances"] == 0
    assert list(archive.store_area.all_uuids()) == []  # the file written for it is gone too


def test_an_after_commit_failure_is_logged_and_the_next_listener_runs(archive, caplog):
    calls: list[str] = []
    archive.events.subscribe(InstanceStored, lambda event: 1 / 0)
    archive.events.subscribe(InstanceStored, lambda event: calls.append(event.instance_id))
    result = archive.store(instance("C"))
    assert result.status == "Success" and calls == [result.instance_id]
    assert "ZeroDivisionError" in caplog.text


def test_listeners_run_in_subscription_order_and_unsubscribe(archive):
    order: list[int] = []
    stop_first = archive.events.subscribe(ArchiveReset, lambda event: order.append(1))
    archive.events.subscribe(ArchiveReset, lambda event: order.append(2))
    archive.reset()
    stop_first()
    archive.reset()
    assert order == [1, 2, 2]


def test_delete_publishes_the_studies_it_touched(archive):
    deleted: list[ResourceDeleted] = []
    archive.events.subscribe(ResourceDeleted, deleted.append)
    first = archive.store(instance("D", 1))
    archive.store(instance("D", 2))
    archive.delete(Level.INSTANCE, first.instance_id)
    archive.delete(Level.PATIENT, first.patient_id)
    assert [(e.level, e.studies) for e in deleted] == [(Level.INSTANCE, (first.study_id,)),
                                                      (Level.PATIENT, (first.study_id,))]
    assert deleted[0].remaining_ancestor == (Level.SERIES, first.series_id)
    assert deleted[1].remaining_ancestor is None


def test_stable_resources_are_published_series_first(archive):
    stable: list[ResourceStable] = []
    done = threading.Event()

    def collect(event: ResourceStable) -> None:
        stable.append(event)
        if event.level == Level.PATIENT:
            done.set()

    archive.events.subscribe(ResourceStable, collect)
    result = archive.store(instance("E"))
    assert done.wait(10)
    assert [(e.level, e.public_id) for e in stable] == [(Level.SERIES, result.series_id),
                                                        (Level.STUDY, result.study_id),
                                                        (Level.PATIENT, result.patient_id)]


def test_store_filters_refuse_before_anything_is_written(archive):
    asked: list[str] = []

    def only_kept(parsed, origin) -> bool:
        asked.append(origin.kind)
        return parsed.patient_id == "KEPT"

    stored: list[InstanceStored] = []
    archive.events.subscribe(InstanceStored, stored.append)
    remove = archive.events.add_store_filter(only_kept)
    refused = archive.store(instance("GONE"), Origin("DicomProtocol"))
    kept = archive.store(instance("KEPT"), Origin("RestApi"))
    assert (refused.status, kept.status) == ("FilteredOut", "Success")
    assert refused.instance_id and not archive.exists(Level.INSTANCE, refused.instance_id)
    assert [event.instance_id for event in stored] == [kept.instance_id]
    assert not archive.can_store_at_once(instance("SMALL"))  # a filter may take time: never on an event loop
    remove()
    assert archive.store(instance("GONE"), Origin("DicomProtocol")).status == "Success"
    assert asked == ["DicomProtocol", "RestApi"]


def test_a_failing_store_filter_fails_the_store(archive):
    def broken(parsed, origin) -> bool:
        raise ValueError("filter broke")

    archive.events.add_store_filter(broken)
    with pytest.raises(ValueError, match="filter broke"):
        archive.store(instance("F"))
    assert archive.statistics()["instances"] == 0


def test_close_publishes_archive_closing(tmp_path):
    opened = Archive(Config(StorageDirectory=str(tmp_path), SyncStorageArea=False))
    closing: list[float] = []
    opened.events.subscribe(ArchiveClosing, lambda event: closing.append(time.monotonic()))
    opened.close()
    assert len(closing) == 1


def test_only_one_phase_for_events_other_than_stores(archive):
    with pytest.raises(ValueError, match="no in-transaction phase"):
        archive.events.subscribe(ResourceDeleted, print, Phase.IN_TRANSACTION)


def _imports(module: str) -> set[str]:
    tree = ast.parse((CORE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_core_modules_import_one_way():
    # events <- archive <- catalog* <- assembly: the archive names none of its listeners
    assert not {m for m in _imports("archive") if m.startswith("catalog") or m == "assembly"}
    assert _imports("events") <= {"dicom", "ids"}
    for module in ("catalog", "catalog_import", "catalog_files", "catalog_prearchive"):
        assert "assembly" not in _imports(module)


def test_a_filter_reading_a_large_instance_leaves_its_bytes_whole(archive):
    """Files past 32 MiB are parsed from their stream with large values deferred: a filter reading one moves the
    stream, and the archive must still store the file from its first byte."""
    import io

    dataset = make_dataset(patient_id="LARGE", patient_name="Large^One", study_uid=uid("ev-study", "large"),
                           series_uid=uid("ev-series", "large"), sop_uid=uid("ev-instance", "large"))
    dataset.Rows, dataset.Columns, dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 4096, 4100, 16, 16, 15
    dataset.SamplesPerPixel, dataset.PixelRepresentation = 1, 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = bytes(range(256)) * (4096 * 4100 * 2 // 256)
    data = to_bytes(dataset)
    assert len(data) > 32 * 1024 * 1024
    read: list[int] = []
    archive.events.add_store_filter(lambda parsed, origin: read.append(len(parsed.dataset.PixelData)) or True)
    result = archive.store(io.BytesIO(data))
    assert read == [len(dataset.PixelData)]
    assert archive.instance_bytes(result.instance_id) == data
