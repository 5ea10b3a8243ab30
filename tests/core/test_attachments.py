"""Attachments, compressed storage and media in-process: files on disk follow the index through cascading deletes,
resets and snapshots; compressed files read back as stored; the Media job leaves its zip as output."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest

from pacsbox.core import errors
from pacsbox.core.assembly import open_archive
from pacsbox.core.attachments import Expected, ReservedAttachment, RevisionMismatch
from pacsbox.core.config import Config
from pacsbox.core.ids import Level
from pacsbox.core.media import MediaJob, write_media
from pacsbox.core.snapshots import Snapshots
from pacsbox.core.storage import compress, decompress
from tests.support.dicomgen import standard_corpus


@pytest.fixture
def corpus():
    return standard_corpus()


def _open(tmp_path, **options):
    return open_archive(Config(StorageDirectory=str(tmp_path / "data"), StableAge=3600, **options))


def _stored_files(archive) -> set[str]:
    return {name for name in archive.store_area.all_uuids() if not name.endswith(".tmp")}


def test_attachment_files_follow_the_index(tmp_path, corpus):
    archive = _open(tmp_path)
    try:
        results = [archive.store(data) for _, data in corpus[:5]]  # one CT series of patient PBX-001
        first = results[0]
        before = _stored_files(archive)
        for level, public_id in ((Level.PATIENT, first.patient_id), (Level.STUDY, first.study_id),
                                 (Level.SERIES, first.series_id), (Level.INSTANCE, first.instance_id)):
            archive.attachments.put(level, public_id, "1030", f"on the {level.title}".encode())
        assert len(_stored_files(archive)) == len(before) + 4
        assert archive.attachments.read(Level.STUDY, first.study_id, "1030")[1] == b"on the Study"
        referenced = archive.index.all_attachment_uuids()
        assert _stored_files(archive) == referenced
        # the last instance of the series goes last: the series, study and patient go with it, attachments too
        for result in results:
            archive.delete(Level.INSTANCE, result.instance_id)
        assert _stored_files(archive) == set() == archive.index.all_attachment_uuids()
    finally:
        archive.close()


def test_refusals_lose_nothing(tmp_path, corpus):
    archive = _open(tmp_path, CheckRevisions=True)
    try:
        stored = archive.store(corpus[0][1])
        where = (Level.INSTANCE, stored.instance_id)
        etag = archive.attachments.put(*where, "1040", b"first")
        with pytest.raises(ReservedAttachment):
            archive.attachments.put(*where, "dicom", b"x")
        with pytest.raises(RevisionMismatch):
            archive.attachments.put(*where, "1040", b"second")  # CheckRevisions: If-Match needed
        with pytest.raises(RevisionMismatch):
            archive.attachments.put(*where, "1040", b"second", Expected(0, "0" * 32))
        with pytest.raises(errors.OutOfRange):
            Expected.parse("5")
        with pytest.raises(errors.InexistentItem):
            archive.attachments.put(*where, "nosuchname", b"x")
        assert archive.attachments.read(*where, "1040")[1] == b"first"
        assert archive.attachments.read(*where, "dicom")[1] == corpus[0][1]
        assert _stored_files(archive) == archive.index.all_attachment_uuids()
        archive.attachments.put(*where, "1040", b"second", Expected.parse(etag))
        assert archive.attachments.read(*where, "1040")[1] == b"second"
        assert _stored_files(archive) == archive.index.all_attachment_uuids()  # the replaced file went
    finally:
        archive.close()


def test_reset_and_snapshots_carry_attachments(tmp_path, corpus):
    archive = _open(tmp_path)
    try:
        stored = archive.store(corpus[0][1])
        archive.attachments.put(Level.SERIES, stored.series_id, "1050", b"kept in the snapshot")
        snapshots = Snapshots(archive)
        snapshots.save("with-attachment")
        archive.reset()
        assert _stored_files(archive) == set()
        snapshots.restore("with-attachment")
        assert archive.attachments.read(Level.SERIES, stored.series_id, "1050")[1] == b"kept in the snapshot"
        assert _stored_files(archive) == archive.index.all_attachment_uuids()
    finally:
        archive.close()


def test_storage_compression(tmp_path, corpus):
    archive = _open(tmp_path, StorageCompression=True)
    try:
        _, data = corpus[0]
        stored = archive.store(data)
        row = archive.resource(Level.INSTANCE, stored.instance_id)
        assert row.file_compressed
        on_disk = archive.store_area.read(row.file_uuid)
        assert on_disk == compress(data) and decompress(on_disk) == data
        assert archive.instance_bytes(stored.instance_id) == data
        assert archive.instance_path(stored.instance_id).read_bytes() == data  # an inflated copy
        listed = dict(archive.attachments.list(Level.INSTANCE, stored.instance_id))
        assert listed == {"dicom": 1, "dicom-until-pixel-data": 3}
        head = archive.attachments.read(Level.INSTANCE, stored.instance_id, "dicom-until-pixel-data")[1]
        assert data.startswith(head) and len(head) < len(data)
        archive.delete(Level.INSTANCE, stored.instance_id)
        assert _stored_files(archive) == set()
        assert not any((archive.store_area.root / ".plain").glob("*"))
    finally:
        archive.close()
    with pytest.raises(ValueError):
        decompress(compress(b"abc")[:-2])
    with pytest.raises(ValueError):
        decompress(b"\xff" * 8 + b"x", limit=1024)


def test_media_job(tmp_path, corpus):
    archive = _open(tmp_path)
    try:
        results = [archive.store(data) for _, data in corpus[:8]]
        study = (Level.STUDY, results[5].study_id)  # the MR study: three series
        job_id = archive.jobs.submit(MediaJob(archive, [study], extended=True))
        deadline = time.monotonic() + 20
        while archive.jobs.info(job_id).state not in ("Success", "Failure"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        info = archive.jobs.info(job_id)
        assert (info.state, info.job_type, info.output_keys) == ("Success", "Media", ("archive",))
        assert info.content["InstancesCount"] == 3 and info.content["Description"] == "REST API"
        output = archive.jobs.output(job_id, "archive")
        assert output.mime == "application/zip"
        with output.open() as handle:
            from_job = zipfile.ZipFile(io.BytesIO(handle.read()))
        assert int(info.content["ArchiveSize"]) == output.size
        direct = zipfile.ZipFile(write_media(archive, [study], extended=True))
        assert from_job.namelist() == direct.namelist()
        for member in from_job.namelist()[:-1]:
            assert from_job.read(member) == direct.read(member)
    finally:
        archive.close()


def test_reconstruct_files_follows_storage_compression(tmp_path, corpus):
    archive = _open(tmp_path)
    try:
        stored = archive.store(corpus[0][1])
    finally:
        archive.close()
    archive = _open(tmp_path, StorageCompression=True)
    try:
        from pacsbox.core.reconstruct import reconstruct

        assert not archive.resource(Level.INSTANCE, stored.instance_id).file_compressed
        assert reconstruct(archive, Level.PATIENT, stored.patient_id) == 1  # main tags only: files as they are
        assert not archive.resource(Level.INSTANCE, stored.instance_id).file_compressed
        assert reconstruct(archive, files=True) == 1
        row = archive.resource(Level.INSTANCE, stored.instance_id)
        assert row.file_compressed and archive.instance_bytes(stored.instance_id) == corpus[0][1]
        assert _stored_files(archive) == archive.index.all_attachment_uuids()
        assert archive.resource(Level.STUDY, stored.study_id).main_tags["StudyInstanceUID"]
    finally:
        archive.close()


def test_inflated_copies_are_bounded(tmp_path, monkeypatch):
    from pacsbox.core import storage

    monkeypatch.setattr(storage, "PLAIN_COPIES_LIMIT", 0)
    monkeypatch.setattr(storage, "_PLAIN_TRIM_EVERY", 1)
    files = storage.FileStore(tmp_path, sync=False)
    names = [files.write(compress(f"file {number}".encode() * 100))[0] for number in range(3)]
    old_copy = files.readable_path(names[0], True)
    os.utime(old_copy, (time.time() - 3600, time.time() - 3600))
    young_copy = files.readable_path(names[1], True)
    newest = files.readable_path(names[2], True)  # trims: the old copy goes, copies under a minute old stay
    assert not old_copy.exists() and young_copy.exists() and newest.read_bytes() == b"file 2" * 100
    assert files.readable_path(names[0], True).read_bytes() == b"file 0" * 100  # made again when asked
