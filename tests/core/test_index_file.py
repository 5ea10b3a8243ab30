"""The index file's SQLite settings: a new file is created without waiting for the disk, and then every connection
writes with the usual settings (WAL, ``synchronous=NORMAL``), for a new file and for one opened again."""

from __future__ import annotations

import sqlite3
import threading

from pacsbox.core.index import Index

_NORMAL = 1  # PRAGMA synchronous's answer for NORMAL (OFF is 0)


def _settings(db: sqlite3.Connection) -> tuple[str, int]:
    return db.execute("PRAGMA journal_mode").fetchone()[0], db.execute("PRAGMA synchronous").fetchone()[0]


def test_a_new_index_writes_with_the_usual_settings_once_created(tmp_path):
    path = tmp_path / "index.sqlite"
    index = Index(path)
    try:
        assert _settings(index._connection()) == ("wal", _NORMAL)
        from_another_thread: list[tuple[str, int]] = []
        thread = threading.Thread(target=lambda: from_another_thread.append(_settings(index._connection())))
        thread.start()
        thread.join()
        assert from_another_thread == [("wal", _NORMAL)]
        tables = {row[0] for row in index._connection().execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"resources", "attachments"} <= tables
    finally:
        index.close()


def test_an_index_opened_again_keeps_its_tables_and_settings(tmp_path):
    path = tmp_path / "index.sqlite"
    Index(path).close()
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    index = Index(path)
    try:
        assert _settings(index._connection()) == ("wal", _NORMAL)
        assert index._connection().execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    finally:
        index.close()
