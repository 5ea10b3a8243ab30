"""A private ``$PACSBOX_HOME`` per test, and every instance started under it (and its warm-start template) stopped
afterwards."""

from __future__ import annotations

import psutil
import pytest

from pacsbox.lifecycle import list_instances, stop
from pacsbox.lifecycle.warm import stop_template


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "pacsbox-home"
    monkeypatch.setenv("PACSBOX_HOME", str(folder))
    yield folder
    for name, _, _ in list_instances(folder):
        stop(name, grace=5, home=folder)
    stop_template(folder)


def is_gone(pid: int) -> bool:
    """The process has ended: no such PID, or a zombie waiting for whichever parent reaps it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
