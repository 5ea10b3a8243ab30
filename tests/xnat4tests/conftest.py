"""Fixtures of the xnat4tests drop-in suites: private XNAT4TESTS_HOME and PACSBOX_HOME, every server stopped after."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pacsbox import lifecycle
from pacsbox.xnat4tests import base


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (xnat_uri says localhost, the server binds 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``$XNAT4TESTS_HOME`` and ``$PACSBOX_HOME`` in ``tmp_path``; any server still running afterwards is stopped."""
    monkeypatch.setenv("XNAT4TESTS_HOME", str(tmp_path / "xnat4tests-home"))
    monkeypatch.setenv("PACSBOX_HOME", str(tmp_path / "pacsbox-home"))
    yield tmp_path
    for name, _, _ in lifecycle.list_instances(tmp_path / "pacsbox-home"):
        lifecycle.stop(name, home=tmp_path / "pacsbox-home")
    base._started_here.clear()
