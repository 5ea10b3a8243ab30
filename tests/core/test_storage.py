"""The file store: atomic writes with their MD5, folders shared by runs of new files, a reset meanwhile, files made
ahead of writes."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from pathlib import Path

import pytest

from pacsbox.core.storage import FRESH_FOLDER, FileStore


@pytest.fixture
def store(tmp_path):
    store = FileStore(tmp_path / "storage")
    yield store
    store.close()


@pytest.mark.parametrize("size", [0, 10_000, 600_000])
def test_a_write_is_complete_on_disk_with_its_md5(store, size):
    data = os.urandom(size)
    file_uuid, md5 = store.write(data)
    assert md5 == hashlib.md5(data).hexdigest()
    path = store.path_of(file_uuid)
    assert path.read_bytes() == data
    assert path.parent.name == file_uuid[2:4] and path.parent.parent.name == file_uuid[0:2]
    assert not path.with_name(path.name + ".tmp").exists()


def test_new_files_share_folders_64_at_a_time(store):
    """Names stay random version 4 UUIDs; runs of 64 share their first four digits, hence their folder."""
    names = [store.write(b"x")[0] for _ in range(130)]
    assert len(set(names)) == 130
    assert all(uuid.UUID(name).version == 4 for name in names)
    folders = [store.path_of(name).parent for name in names]
    assert len(set(folders[:64])) == 1 and len(set(folders[64:128])) == 1
    assert sorted(store.all_uuids()) == sorted(names)


def test_a_file_whose_folder_went_away_is_still_written(store):
    """A reset removes folders while another thread may be writing: the write makes its folder again."""
    first, _ = store.write(b"before")
    store._folders.add(store.path_of(first).parent)
    store.clear()
    store._left, store._prefix = 5, first[:4]  # as if the reset came between choosing the name and writing
    store._folders.add(store.path_of(first).parent)
    file_uuid, _ = store.write(b"after")
    assert file_uuid[:4] == first[:4] and store.read(file_uuid) == b"after"
    assert list(store.all_uuids()) == [file_uuid]


def _made_ahead(store: FileStore, at_least: int = 1) -> dict[int, str]:
    """The files waiting in the store's made-ahead folder, by inode, once there are ``at_least``."""
    folder = store.root / FRESH_FOLDER
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = {entry.stat().st_ino: entry.name for entry in folder.iterdir()} if folder.is_dir() else {}
        if len(found) >= at_least:
            return found
        time.sleep(0.01)
    raise AssertionError(f"fewer than {at_least} files were made ahead in 30 s")


@pytest.mark.parametrize("way", ["bytes", "stream"])
def test_writes_go_into_files_made_ahead_and_end_whole_under_their_name(store, way):
    """After the first write a thread makes empty files ahead; the next writes take them (the same inodes end under
    the stored names) and leave no trace in the folder they came from."""
    store.write(b"first")  # starts the thread
    waiting = _made_ahead(store, at_least=store._fresh.HIGH)
    written = {}
    for number in range(5):
        data = os.urandom(1000 + number)
        file_uuid, md5 = store.write(data) if way == "bytes" else store.write_stream(io.BytesIO(data))
        assert md5 == hashlib.md5(data).hexdigest()
        written[file_uuid] = data
    for file_uuid, data in written.items():
        path = store.path_of(file_uuid)
        assert path.read_bytes() == data
        assert path.stat().st_ino in waiting, "the write created a file of its own instead of taking one made ahead"
    left = {entry.name for entry in (store.root / FRESH_FOLDER).iterdir()}
    assert not left & {waiting[store.path_of(file_uuid).stat().st_ino] for file_uuid in written}
    assert all((store.root / FRESH_FOLDER / name).stat().st_size == 0 for name in left)


def test_files_made_ahead_are_topped_up_and_removed_when_the_store_closes(store):
    store.write(b"first")
    _made_ahead(store, at_least=store._fresh.HIGH)
    # The folder shows each file as it is created, the queue a moment later: once the queue is full too, the thread
    # is done until a write wakes it. Writes that began while it was still filling would keep it filling, and the
    # files left might never drop below LOW (seen once in a shuffled run).
    fresh = store._fresh
    deadline = time.monotonic() + 30
    while len(fresh._ready) < fresh.HIGH and time.monotonic() < deadline:
        time.sleep(0.001)
    for _ in range(fresh.HIGH - fresh.LOW + 1):  # below LOW: the thread makes more
        store.write(b"x")
    _made_ahead(store, at_least=fresh.HIGH)
    thread = store._fresh._thread
    store.close()
    assert not (store.root / FRESH_FOLDER).exists()
    assert thread is not None and not thread.is_alive()
    file_uuid, _ = store.write(b"after close")  # nothing is made ahead any more; a write still completes
    assert store.read(file_uuid) == b"after close"


def test_a_store_opened_again_removes_what_a_crash_left_made_ahead(tmp_path):
    """A process killed while writing into a file made ahead leaves it half written: the next store to open the
    folder removes it, and with it every file of the folder (none is in the index)."""
    root = tmp_path / "storage"
    (root / FRESH_FOLDER).mkdir(parents=True)
    (root / FRESH_FOLDER / "123-abcd-7").write_bytes(b"half a file")
    store = FileStore(root)
    try:
        assert not (root / FRESH_FOLDER).exists()
        file_uuid, _ = store.write(b"new")
        assert store.read(file_uuid) == b"new" and list(store.all_uuids()) == [file_uuid]
    finally:
        store.close()


def test_writes_go_on_when_the_files_made_ahead_are_gone(store):
    """Another store opened on the same folder empties it: the files this one counted on are gone, and each write
    makes its own file instead, until more are made."""
    store.write(b"first")
    _made_ahead(store, at_least=store._fresh.HIGH)
    for entry in (store.root / FRESH_FOLDER).iterdir():
        entry.unlink()
    for number in range(3):
        file_uuid, _ = store.write(b"data %d" % number)
        assert store.read(file_uuid) == b"data %d" % number
        assert not Path(str(store.path_of(file_uuid)) + ".tmp").exists()
