"""Fixtures of the fault and event tests: one spawned pacsbox per module, its rules and events emptied per test."""

from __future__ import annotations

import pytest

from pacsbox.faults.client import EventsClient, http_caller
from tests.support.pacsbox_proc import RunningPacsbox

USERS = {"alice": "s3cret-pw"}  # a password that must never show in the event log


def pytest_configure(config: pytest.Config) -> None:
    # the fixtures' test runs an inner pytest (as tests/plugin does: pytester registered when this folder loads)
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"RegisteredUsers": USERS, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
                         "DicomAlwaysAllowGet": True}) as running:
        yield running


@pytest.fixture
def events(server) -> EventsClient:
    client = EventsClient(http_caller(server.url, server.auth))
    client.mark()
    return client
