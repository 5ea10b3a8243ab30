"""The Archive service: the domain verbs every face calls (store, browse, find, delete, metadata, changes)."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from .attachments import Attachments, PackedDicom, insert_until_pixel_data, write_packed_dicom
from .config import Config
from .dicom import ParsedInstance, parse_instance, read_dataset, read_elements
from .errors import InexistentItem, StorageFull, UnknownResource
from .events import ArchiveClosing, ArchiveReset, EventBus, InstanceStored, Origin, ResourceDeleted, ResourceStable
from .finding import FindQuery, find
from .gate import Gate
from .ids import Level
from .index import Index
from .index_rows import NewResource, ResourceRow, TagConstraint, now_iso
from .ingest_cost import quick_to_parse
from .metrics import Metrics
from .modalities import ModalityRegistry, RemoteDicom
from .series_status import expected_instances, series_status
from .settings import RuntimeSettings
from .storage import FileStore, is_disk_full, storage_full
from .switch import StateSwitch, recover_switch

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

# Orthanc's built-in metadata, by type number (the order in which Orthanc lists them). Faces may not write them.
BUILTIN_METADATA = {
    "IndexInSeries": 1,
    "ReceptionDate": 2,
    "RemoteAET": 3,
    "ExpectedNumberOfInstances": 4,
    "ModifiedFrom": 5,
    "AnonymizedFrom": 6,
    "LastUpdate": 7,
    "Origin": 8,
    "TransferSyntax": 9,
    "SopClassUid": 10,
    "RemoteIP": 11,
    "CalledAET": 12,
    "HttpUsername": 13,
    "PixelDataOffset": 14,
}

# Tags that POST /tools/lookup matches, per level (Orthanc's identifier tags).
LOOKUP_TAGS = {
    "PatientID": Level.PATIENT,
    "StudyInstanceUID": Level.STUDY,
    "SeriesInstanceUID": Level.SERIES,
    "SOPInstanceUID": Level.INSTANCE,
}

IN_MEMORY_LIMIT = 32 * 1024 * 1024  # files above this are parsed from disk with large values deferred
_QUICK_STORE_LIMIT = 1024 * 1024  # bytes of an instance that stores in a few milliseconds (parse, fsync, commit)
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class StoreResult:
    """The outcome of storing one instance, with the public IDs of its four levels."""

    status: str  # "Success", "AlreadyStored" or "FilteredOut" (refused by a store filter: nothing stored)
    patient_id: str
    study_id: str
    series_id: str
    instance_id: str


def _beside_reset_and_restore(method: Callable[..., _Result]) -> Callable[..., _Result]:
    """Run a store or a delete as a shared holder of the archive's gate (a reset or a restore waits for it, and it
    for them), reporting a full disk as StorageFull."""
    @functools.wraps(method)
    def gated(self: Archive, *args, **kwargs) -> _Result:
        with self.gate.shared():
            try:
                return method(self, *args, **kwargs)
            except StorageFull:
                raise
            except Exception as error:
                if is_disk_full(error):
                    raise storage_full(error) from None
                raise
    return gated


class _QuickFlag(threading.local):
    active = False  # this thread stores a file found quick to parse a moment ago


class Archive:
    """One archive: an index plus a file store under the configured directories."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = RuntimeSettings(config)  # what clients may change while it runs (DefaultEncoding, ...)
        self.metrics = Metrics(lambda: self.settings.metrics_enabled)
        self.modalities = ModalityRegistry(config.DicomModalities)
        self.remote: RemoteDicom | None = None  # the DICOM SCU, wired in by the server
        self.index = Index(config.index_path / "index.sqlite")
        # what faces read to keep an answer only while it is true: what any commit changes, read before reading what
        # depends on the index, and the resources flagged stable since (the index's own methods: a lean read calls
        # them on every request)
        self.generation = self.index.generation
        self.stable_marks_since = self.index.stable_marks_since
        self.store_area = FileStore(config.storage_path, sync=config.SyncStorageArea)
        self._time_storage_area()
        self.gate = Gate()  # stores and deletes share it; reset, restore and snapshots hold it alone
        self.attachments = Attachments(self)  # user attachments, compression, revisions (core.attachments)
        self._costly_parses = threading.Lock()
        self._quick = _QuickFlag()
        self._index_elsewhere = os.stat(self.index.path.parent).st_dev != os.stat(config.storage_path).st_dev
        self.events = EventBus()  # what reacts to the archive subscribes here (core.events); wired by core.assembly
        # read before the crash sweep marks the index open again: listeners with files of their own sweep them too
        self.recovering_from_unclean_stop = self.index.get_property("open") is not None
        self._stop = threading.Event()
        self._recover_after_unclean_stop()
        self._stable_thread = threading.Thread(target=self._watch_stability, name="pacsbox-stable", daemon=True)
        self._stable_thread.start()

    def _time_storage_area(self) -> None:
        """Orthanc's storage metrics: how long writing and removing one file takes."""
        area = self.store_area
        area.write = self.metrics.timed("orthanc_storage_create_duration_ms", area.write)  # type: ignore[method-assign]
        area.write_stream = self.metrics.timed("orthanc_storage_create_duration_ms",  # type: ignore[method-assign]
                                               area.write_stream)
        area.remove = self.metrics.timed("orthanc_storage_remove_duration_ms", area.remove)  # type: ignore[method-assign]

    # -- life ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop background work and mark the archive as cleanly closed."""
        self.events.publish(ArchiveClosing())
        self._stop.set()
        self._stable_thread.join(timeout=5)
        if self.recovery is not None:
            self.recovery.stop()
        if self.recovery is None or self.recovery.finished.is_set():  # else the next start sweeps again
            self.index.set_property("open", None)
        self.store_area.close()
        self.index.close()

    def _recover_after_unclean_stop(self) -> None:
        """After a crash, finish a reset or restore that had committed, then remove files the index does not
        reference (written but never committed, or deleted from the index but not yet from disk, temporary
        files; ``core.recovery``). A clean close clears the flag, so normal starts skip the scan."""
        from .recovery import RecoverySweep
        from .snapshots import Snapshots  # (snapshots build on the archive: imported when it exists)

        switched = recover_switch(self)
        Snapshots(self).sweep()
        self.store_area.clear_plain_copies()  # inflated copies of compressed files: made again when read
        # the unreferenced files: listing them grows with the archive, so they go in the background once the server
        # answers (``recovery.start()``; the index stays marked open until they are gone)
        self.recovery = RecoverySweep(self) if switched or self.recovering_from_unclean_stop else None
        self.index.set_property("open", str(os.getpid()))

    def _watch_stability(self) -> None:
        period = max(0.2, min(1.0, self.config.StableAge / 4))
        while not self._stop.wait(period):
            try:
                stable = self.index.mark_stable(time.time() - self.config.StableAge)
            except Exception:  # a locked or closing database must not kill the watcher
                continue
            for _, level, public_id in stable:
                self.events.publish(ResourceStable(level, public_id))

    def reset(self) -> None:
        """Empty the archive: index, files, change log and XNAT objects, once in-flight stores have finished.
        A crash at any moment leaves the archive as it was or empty (core.switch)."""
        with self.gate.exclusive():
            switch = StateSwitch(self)
            try:
                with self.index.writing() as db:
                    self.index.clear_all(db)
                    switch.record(db, ())
            except BaseException as error:
                switch.abandon()
                if is_disk_full(error):
                    raise storage_full(error) from None
                raise
            switch.finish((), empty_store=True)
            # still alone at the gate: a store that follows the reset cannot be undone by a listener catching up
            self.events.publish(ArchiveReset())

    # -- ingest -------------------------------------------------------------------------------------------
    @_beside_reset_and_restore
    def store(self, source: bytes | BinaryIO, origin: Origin = Origin(),
              parsed: ParsedInstance | None = None) -> StoreResult:
        """Store one DICOM instance; it is on disk and in the index when this returns. ``parsed``: what ``parse``
        read of these very bytes, for a caller that looked at the instance first (it is not parsed again)."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            if parsed is None:
                parsed = self._parse(source)
            if self.config.StorageCompression:  # as Orthanc: zlib, with the part before the pixels kept apart
                return self._store_parsed(
                    parsed, lambda: write_packed_dicom(self.store_area, source, parsed.pixel_data_offset),
                    len(source), origin)
            return self._store_parsed(parsed, lambda: self.store_area.write(source), len(source), origin)
        size = source.seek(0, os.SEEK_END)
        source.seek(0)
        if size <= IN_MEMORY_LIMIT or self.config.StorageCompression:
            return self.store(source.read(), origin)
        parsed = self._parse(source)

        def write_from_start():  # a store filter may have read deferred values through the same file object
            source.seek(0)
            return self.store_area.write_stream(source)

        return self._store_parsed(parsed, write_from_start, size, origin)

    def parse(self, data: bytes) -> ParsedInstance:
        """What storing ``data`` reads of it (identifiers, main tags); InvalidDicom when it is not DICOM."""
        return self._parse(data)

    def _parse(self, source: bytes | BinaryIO) -> ParsedInstance:
        """Parse an instance; files costly to parse (many elements, or not a plain little endian Part 10 file)
        one at a time. Python parses holding the GIL: with four such parses at once the event loop gets the GIL
        one turn in five (health checks waited ~1 s), with one, every other turn."""
        if self._quick.active or (isinstance(source, (bytes, bytearray, memoryview)) and quick_to_parse(source)):
            return parse_instance(source, self.settings.default_encoding)
        with self._costly_parses:
            return parse_instance(source, self.settings.default_encoding)

    def can_store_at_once(self, data: bytes) -> bool:
        """Whether storing ``data`` now takes a few milliseconds: an instance of at most a MiB with few elements
        to parse (a bounded pre-scan), while no other write holds the index and no reset or restore holds the
        gate (a caller that must not wait long, such as an event loop, may then store in its own thread)."""
        return (len(data) <= _QUICK_STORE_LIMIT and not self.index.is_writing and not self.gate.is_contended
                and not self.events.has_store_filters and quick_to_parse(data))

    def store_at_once(self, data: bytes, origin: Origin = Origin()) -> StoreResult | None:
        """Store ``data`` now if that takes a few milliseconds (``can_store_at_once``) and nothing has to be
        waited for; None otherwise (the caller then stores it where waiting is harmless)."""
        if not self.can_store_at_once(data) or not self.gate.acquire_shared(blocking=False):
            return None
        self._quick.active = True  # (pre-scanned just now)
        try:
            return self.store(data, origin)
        finally:
            self._quick.active = False
            self.gate.release_shared()

    @_beside_reset_and_restore
    def store_zip(self, source: BinaryIO, origin: Origin = Origin()) -> list[StoreResult]:
        """Store every DICOM file of a zip archive. The whole archive is checked first: a member that is not
        DICOM or whose name escapes the archive (zip-slip) rejects it, and nothing is stored; members adding up to
        more than MaximumUploadSize (a zip bomb) are refused: by their declared sizes before any is inflated, by
        what they really inflate to while they are (counted a MiB at a time, whatever the headers say)."""
        from .zip_ingest import store_zip  # (zipfile with it: loaded by the first archive received, not at start)

        return store_zip(self, source, origin)

    def _store_parsed(self, parsed: ParsedInstance, write, size: int, origin: Origin) -> StoreResult:
        patient, study, series, instance = parsed.ids
        result = StoreResult("Success", patient, study, series, instance)
        if not self.events.accepts(parsed, origin):  # asked first, as Orthanc runs ReceivedInstanceFilter first
            return StoreResult("FilteredOut", patient, study, series, instance)
        overwrite = self.config.OverwriteInstances
        if not overwrite and self.index.lookup(instance) is not None:
            return StoreResult("AlreadyStored", patient, study, series, instance)
        self._check_room(size)
        file_uuid, md5, *packing = write()
        packed: PackedDicom | None = packing[0] if packing else None
        written = [file_uuid, *(packed.uuids if packed else ())]
        stale_uuids: list[str] = []
        try:
            with self.index.writing() as db:
                existing = self.index.find_iid(db, instance)
                if existing is not None:
                    if not overwrite:
                        for written_uuid in written:
                            self.store_area.remove(written_uuid)
                        return StoreResult("AlreadyStored", patient, study, series, instance)
                    _, stale_uuids = self.index.delete(db, existing)
                self._insert(db, parsed, file_uuid, size, md5, origin, packed)
                stored = InstanceStored(parsed, patient, study, series, instance, origin, is_new=existing is None,
                                        transaction=db)
                self.events.publish_in_transaction(stored)
        except BaseException:
            for written_uuid in written:
                self.store_area.remove(written_uuid)
            raise
        for stale in stale_uuids:
            self.store_area.remove(stale)
        self.events.publish(replace(stored, transaction=None))
        return result

    def _check_room(self, size: int) -> None:
        """Refuse a store that would leave less than MinimumFreeSpace on the storage area's file system: the
        index needs room to commit deletes (which free space again) and the stores already accepted. 0 turns the
        check off (a file system whose free space statvfs does not report)."""
        if not self.config.MinimumFreeSpace:
            return
        free = self.store_area.free_bytes()
        if self._index_elsewhere:  # IndexDirectory on another file system: the index needs its room there
            stats = os.statvfs(self.index.path.parent)
            free = min(free, stats.f_bavail * stats.f_frsize)
        if free < size + self.config.MinimumFreeSpace:
            raise StorageFull(f"The storage area is full: {free} bytes free, {size} bytes to store and "
                              f"MinimumFreeSpace ({self.config.MinimumFreeSpace} bytes) to keep")

    def _insert(self, db, parsed: ParsedInstance, file_uuid: str, size: int, md5: str, origin: Origin,
                packed: PackedDicom | None = None) -> None:
        ids = parsed.ids
        levels = [NewResource(level, ids[level], parsed.main_tags[level]) for level in Level]
        index_in_series = parsed.index_in_series
        metadata = {
            "ReceptionDate": now_iso(),
            "RemoteAET": origin.remote_aet,
            "Origin": origin.kind,
            "TransferSyntax": parsed.transfer_syntax_uid,
            "SopClassUid": parsed.sop_class_uid,
            "RemoteIP": origin.remote_ip,
        }
        if origin.kind == "Lua":  # an upload by a Lua script came from no address (Orthanc 1.10.1 records none)
            del metadata["RemoteIP"]
        if index_in_series is not None:
            metadata["IndexInSeries"] = str(index_in_series)
        if origin.called_aet:
            metadata["CalledAET"] = origin.called_aet
        if origin.kind == "RestApi":
            metadata["HttpUsername"] = origin.http_username
        if parsed.pixel_data_offset is not None:
            metadata["PixelDataOffset"] = str(parsed.pixel_data_offset)
        iids, created = self.index.insert_instance(
            db, levels, file_uuid=file_uuid, file_size=size, md5=md5, index_in_series=index_in_series,
            metadata=metadata, series_metadata={"RemoteAET": origin.remote_aet},
            compressed=(packed.compressed_size, packed.compressed_md5) if packed else None,
        )
        if packed:
            insert_until_pixel_data(db, iids[Level.INSTANCE], packed)
        # Orthanc logs the instance first, then each new ancestor from the series up.
        for resource in reversed(created):
            title = resource.level.title
            self.index.log_change(db, "New" + title, iids[resource.level], resource.level, resource.public_id)
        expected = expected_instances(parsed.main_tags[Level.SERIES])
        series_iid = iids[Level.SERIES]
        if expected is not None and series_status(expected, self.index.children_indexes(db, series_iid)) == "Complete":
            self.index.log_change(db, "CompletedSeries", series_iid, Level.SERIES, ids[Level.SERIES])

    # -- browsing -----------------------------------------------------------------------------------------
    def _iid(self, level: Level, public_id: str) -> int:
        found = self.index.lookup(public_id)
        if found is None or found[1] != level:
            raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
        return found[0]

    def resource(self, level: Level, public_id: str) -> ResourceRow:
        """One resource with its main tags, parent and children; UnknownResource if absent."""
        row = self.index.describe_one(public_id, level)
        if row is None:
            raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
        return row

    def level_of(self, public_id: str) -> Level:
        """The level of any resource ID; UnknownResource if the archive does not hold it."""
        found = self.index.lookup(public_id)
        if found is None:
            raise UnknownResource(f"Unknown resource: {public_id}")
        return found[1]

    def exists(self, level: Level, public_id: str) -> bool:
        found = self.index.lookup(public_id)
        return found is not None and found[1] == level

    def list_ids(self, level: Level, since: int = 0, limit: int | None = None) -> list[str]:
        return [public_id for _, public_id in self.index.list_resources(level, since, limit)]

    def list_resources(self, level: Level, since: int = 0, limit: int | None = None) -> list[ResourceRow]:
        return self.index.describe([iid for iid, _ in self.index.list_resources(level, since, limit)])

    def related(self, level: Level, public_id: str, target: Level) -> list[ResourceRow]:
        """Resources of level ``target`` below or above a resource (``/studies/{id}/instances``, ...)."""
        found = self.related_if_few(level, public_id, target, None)
        assert found is not None  # (no bound)
        return found

    def related_if_few(self, level: Level, public_id: str, target: Level,
                       at_most: int | None) -> list[ResourceRow] | None:
        """``related``, or None when there are more than ``at_most`` of them (a caller on an event loop then asks
        where waiting is harmless)."""
        if target > level and at_most is not None:  # one statement for a few (None: none, many, or unknown)
            rows = self.index.describe_below(public_id, level, target, at_most)
            if rows is not None:
                return rows
        iid = self._iid(level, public_id)
        if target > level:
            below = self.index.descendant_iids(iid, level, target)
            return self.index.describe(below) if at_most is None or len(below) <= at_most else None
        ancestor = self.index.ancestor_iid(iid, target)
        rows = self.index.describe([ancestor] if ancestor is not None else [])
        if not rows:  # a resource always has its ancestors: it was deleted since the lookup
            raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
        return rows

    def instance_ids_below(self, level: Level, public_id: str, limit: int | None = None) -> list[str]:
        """The instances of a resource (itself, for an instance), in insertion order; the first ``limit``."""
        iid = self._iid(level, public_id)
        if level == Level.INSTANCE:
            return [public_id]
        return self.index.descendant_ids(iid, level, Level.INSTANCE, limit)

    def count_below(self, level: Level, public_id: str, target: Level) -> int:
        """How many resources of level ``target`` (a lower level) a resource has."""
        return self.index.count_below(self._iid(level, public_id), level, target)

    # -- files and datasets -------------------------------------------------------------------------------
    def instance_file_uuid(self, instance_id: str) -> str:
        row = self.resource(Level.INSTANCE, instance_id)
        if row.file_uuid is None:
            raise InexistentItem(f"Instance {instance_id} has no DICOM attachment")
        return row.file_uuid

    def instance_path(self, instance_id: str) -> Path:
        """Where the stored file of an instance is (for sending it without reading it into memory); for a file
        stored compressed, an inflated copy."""
        row = self.resource(Level.INSTANCE, instance_id)
        if row.file_uuid is None:
            raise InexistentItem(f"Instance {instance_id} has no DICOM attachment")
        try:
            return self.store_area.readable_path(row.file_uuid, row.file_compressed)
        except FileNotFoundError:  # deleted by another request since the lookup (rows go first, then files)
            raise UnknownResource(f"Unknown instance: {instance_id}") from None

    def instance_bytes(self, instance: str | ResourceRow) -> bytes:
        """The stored file of an instance, given its ID or its row (``resource``: then not looked up again)."""
        row = self.resource(Level.INSTANCE, instance) if isinstance(instance, str) else instance
        if row.file_uuid is None:
            raise InexistentItem(f"Instance {row.public_id} has no DICOM attachment")
        try:
            return self.store_area.read_plain(row.file_uuid, row.file_compressed)
        except FileNotFoundError:  # deleted by another request since the lookup (rows go first, then files)
            raise UnknownResource(f"Unknown instance: {row.public_id}") from None

    def instance_dataset(self, instance_id: str) -> Dataset:
        """The stored instance parsed with pydicom (file meta included)."""
        return read_dataset(self.instance_bytes(instance_id))

    def instance_elements(self, instance: str | ResourceRow) -> Dataset:
        """The stored instance's data set without its file meta, for rendering its elements (``read_elements``:
        the fast reader, pydicom for what it leaves)."""
        return read_elements(self.instance_bytes(instance))

    def shared_tags(self, level: Level, public_id: str) -> Dataset:
        """Top-level elements with the same value in every instance below a resource (no sequences, no pixels)."""
        from pydicom.dataset import Dataset

        shared: Dataset | None = None
        for instance_id in self.instance_ids_below(level, public_id):
            dataset = self.instance_dataset(instance_id)
            if shared is None:
                shared = Dataset()
                for tag in list(dataset.keys()):  # (iterating a Dataset converts every element)
                    element = _converted(dataset, tag)
                    if element is not None and element.VR != "SQ" and element.tag != 0x7FE00010:
                        shared.add(element)
                continue
            for tag in list(shared.keys()):
                other = _converted(dataset, tag)
                if other is None or other.value != shared[tag].value:
                    del shared[tag]
        return shared if shared is not None else Dataset()

    # -- deleting -----------------------------------------------------------------------------------------
    @_beside_reset_and_restore
    def delete(self, level: Level, public_id: str) -> tuple[Level, str] | None:
        """Delete a resource with its descendants, and its ancestors left empty; returns the remaining ancestor."""
        self._iid(level, public_id)
        with self.index.writing() as db:
            # looked up again under the write lock: a concurrent delete may have removed it since
            iid = self.index.find_iid(db, public_id, level)
            if iid is None:
                raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")
            studies = _studies_of(db, level, public_id)
            remaining, uuids = self.index.delete(db, iid)
            ancestor = None
            if remaining is not None:
                row = db.execute("SELECT level, public_id FROM resources WHERE iid = ?", (remaining,)).fetchone()
                ancestor = (Level(row[0]), row[1])
        for file_uuid in uuids:
            self.store_area.remove(file_uuid)
        self.events.publish(ResourceDeleted(level, public_id, studies, ancestor))
        return ancestor

    # -- statistics ---------------------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        """Counts per level and the total size of the stored files."""
        with self.index.reading():
            counts = {level: self.index.count(level) for level in Level}
            size, disk_size = self.index.total_size(), self.index.total_disk_size()
        return {"patients": counts[Level.PATIENT], "studies": counts[Level.STUDY], "series": counts[Level.SERIES],
                "instances": counts[Level.INSTANCE], "size": size, "disk_size": disk_size}

    def resource_statistics(self, level: Level, public_id: str) -> dict[str, int]:
        """Counts of the levels below a resource and the size of its files."""
        iid = self._iid(level, public_id)
        counts = {target: len(self.index.descendant_iids(iid, level, target)) for target in Level if target > level}
        files = self.index.attachment_sizes_below(iid, level)
        dicom = [(size, on_disk) for content_type, size, on_disk in files if content_type == 1]
        return {"studies": counts.get(Level.STUDY, 0), "series": counts.get(Level.SERIES, 0),
                "instances": counts.get(Level.INSTANCE, 0), "size": sum(size for _, size, _ in files),
                "disk_size": sum(on_disk for _, _, on_disk in files), "dicom_size": sum(size for size, _ in dicom),
                "dicom_disk_size": sum(on_disk for _, on_disk in dicom)}

    # -- changes and exports ------------------------------------------------------------------------------
    def changes(self, since: int, limit: int):
        """``(changes, done, last)`` as Orthanc's /changes pages them (a zero limit: nothing, not done)."""
        return self._page(self.index.changes, "changes", since, limit)

    def last_change(self):
        """The newest change still logged, and ``Last`` as Orthanc gives it with ``?last``."""
        change = self.index.last_change()
        return change, change.seq if change else self.index.last_seq("changes")

    def clear_changes(self) -> None:
        self.index.clear_changes()

    def exports(self, since: int, limit: int):
        """``(exports, done, last)``, paged as changes are."""
        return self._page(self.index.exports, "exports", since, limit)

    def _page(self, read, table: str, since: int, limit: int):
        """One page of a sequence-numbered log: one row more than asked tells whether it is the last page."""
        if limit == 0:
            return [], False, self.index.last_seq(table)
        page = read(since, limit + 1)
        done = len(page) <= limit
        page = page[:limit]
        return page, done, page[-1].seq if page else self.index.last_seq(table)

    def clear_exports(self) -> None:
        self.index.clear_exports()

    # -- metadata -----------------------------------------------------------------------------------------
    def metadata_number(self, name: str) -> int | None:
        """The type number of a metadata name (built-in, declared in UserMetadata, or a number); None if unknown."""
        if name in BUILTIN_METADATA:
            return BUILTIN_METADATA[name]
        if name in self.config.UserMetadata:
            return self.config.UserMetadata[name]
        if name.isdigit() and 1024 <= int(name) <= 65535:
            return int(name)
        return None

    def metadata(self, level: Level, public_id: str) -> dict[str, str]:
        """All metadata of a resource, in Orthanc's order (by type number)."""
        iid = self._iid(level, public_id)
        values = self.index.metadata(iid)
        if level != Level.INSTANCE:
            values["LastUpdate"] = now_iso(self.resource(level, public_id).last_update)
        return dict(sorted(values.items(), key=lambda item: self.metadata_number(item[0]) or 65536))

    def set_metadata(self, level: Level, public_id: str, name: str, value: str) -> None:
        """Write user metadata; built-in names are read-only (PermissionError), unknown names are InexistentItem."""
        iid = self._iid(level, public_id)
        self._check_writable(name)
        if not self.index.set_metadata(iid, name, value, (level, public_id)):
            raise UnknownResource(f"Unknown {level.title.lower()}: {public_id}")  # deleted since the lookup

    def delete_metadata(self, level: Level, public_id: str, name: str) -> None:
        iid = self._iid(level, public_id)
        self._check_writable(name)
        if not self.index.delete_metadata(iid, name, (level, public_id)):
            # Orthanc answers "Unknown resource" here, not "inexistent item"
            raise UnknownResource(f"No metadata {name!r} on {public_id}")

    def _check_writable(self, name: str) -> None:
        number = self.metadata_number(name)
        if number is None:
            raise InexistentItem(f"Unknown metadata {name!r}: declare it in the UserMetadata configuration option")
        if number < 1024:
            raise PermissionError(f"The metadata {name!r} is reserved by the server")

    def is_protected(self, public_id: str) -> bool:
        return self.resource(Level.PATIENT, public_id).is_protected

    def set_protected(self, public_id: str, protected: bool) -> None:
        self.index.set_protected(self._iid(Level.PATIENT, public_id), protected)

    # -- finding ------------------------------------------------------------------------------------------
    def lookup(self, value: str) -> list[tuple[Level, str]]:
        """Resources whose PatientID, StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is ``value``."""
        found: list[tuple[Level, str]] = []
        for tag, level in LOOKUP_TAGS.items():
            for row in self.index.describe(self.index.find(level, [TagConstraint(tag, level, "exact", (value,))])):
                if (level, row.public_id) not in found:
                    found.append((level, row.public_id))
        return found

    def find(self, request: FindQuery) -> list[ResourceRow]:
        """Resources at ``request.level`` matching every query tag, DICOM C-FIND style (core.finding)."""
        return find(self, request)



def _studies_of(db, level: Level, public_id: str) -> tuple[str, ...]:
    """The studies a resource is part of (its own, or a patient's), read before it is deleted."""
    if level == Level.STUDY:
        return (public_id,)
    if level == Level.PATIENT:
        sql = "SELECT s.public_id FROM resources p JOIN resources s ON s.parent = p.iid WHERE p.public_id = ?"
    else:
        sql = "SELECT s.public_id FROM resources r JOIN resources s ON s.iid = r.study WHERE r.public_id = ?"
    return tuple(row[0] for row in db.execute(sql, (public_id,)))

def _converted(dataset: Dataset, tag: int):
    """A top-level element with its value converted by pydicom; None when absent or when its bytes do not fit its VR
    (a US of 3 bytes, an unknown VR): no shared value can be shown for it."""
    try:
        return dataset[tag] if tag in dataset else None  # noqa: SIM401 (get() returns the value)
    except Exception:  # pydicom raises assorted types for a value it cannot convert
        return None
