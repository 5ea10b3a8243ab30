"""The file store: atomic writes with their MD5, folders shared by runs of new files, a reset meanwhile."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from pacsbox.core.storage import FileStore


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "storage")


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
