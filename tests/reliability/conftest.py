"""Fixtures shared by the reliability suites."""

from __future__ import annotations

import pytest

from tests.reliability.hostile_support import tally_for


@pytest.fixture(scope="module")
def tally(request):
    """The module's count of hostile inputs and server errors; a 5xx anywhere in the module fails its last test."""
    tally = tally_for(request.config, request.module.__name__)
    yield tally
    assert not tally.server_errors, tally.server_errors


@pytest.fixture(scope="module")
def http(server):
    """An authenticated keep-alive session to the module's ``server``."""
    session = server.session()
    yield session
    session.close()
