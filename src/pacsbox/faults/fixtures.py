"""The pytest fixtures of fault injection and the event log, imported by ``pacsbox.pytest_plugin``.

``pacsbox_faults``: the project server's fault rules (``FaultsClient``), cleared after the test, so a rule never
outlives the test that set it. ``pacsbox_events``: its event log (``EventsClient``) marked at the start of the
test: ``list`` and ``wait_for`` see only what happened since.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..lifecycle import Instance
    from .client import EventsClient, FaultsClient


@pytest.fixture
def pacsbox_faults(pacsbox_server: Instance) -> Iterator[FaultsClient]:
    """The server's fault rules: ``pacsbox_faults.add(face="dimse", operation="C-STORE",
    action={"dimse_status": 0xA700})``; every rule is removed after the test (under xdist, rules apply to the
    tests of other workers too: keep tests that set rules on one worker, or match them on a calling AET)."""
    from .client import FaultsClient, http_caller

    faults = FaultsClient(http_caller(pacsbox_server.url, pacsbox_server._auth_header()))
    faults.clear()  # a rule left by an interrupted run must not make this test fail
    try:
        yield faults
    finally:
        faults.clear()


@pytest.fixture
def pacsbox_events(pacsbox_server: Instance) -> EventsClient:
    """The server's event log from the start of the test: ``pacsbox_events.wait_for(kind="dimse",
    operation="C-STORE", status=0)`` returns the first matching event, waiting for it without sleeping."""
    from .client import EventsClient, http_caller

    events = EventsClient(http_caller(pacsbox_server.url, pacsbox_server._auth_header()))
    events.mark()
    return events
