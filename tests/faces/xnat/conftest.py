"""Fixtures of the XNAT face suites: a real pacsbox server per module and real xnatpy and pyxnat clients."""

from __future__ import annotations

import pytest
import xnat

from tests.support.pacsbox_proc import RunningPacsbox

SITE_ID = "Xnat4Tests"  # xnat4tests' site ID, so accession IDs look like theirs


@pytest.fixture(scope="module")
def xnat_server():
    """One pacsbox per test module; StableAge 1 so sessions received over DICOM are READY quickly."""
    with RunningPacsbox({"XnatSiteId": SITE_ID, "StableAge": 1}) as server:
        yield server


@pytest.fixture(scope="module")
def connection(xnat_server):
    """A real xnatpy session (schemas parsed, classes built), closed at the end of the module."""
    with xnat.connect(xnat_server.url, user="admin", password="admin", loglevel="ERROR") as session:
        yield session


@pytest.fixture
def http(xnat_server):
    """A requests session with Basic credentials, for raw PUTs, CSV and error checks."""
    session = xnat_server.session()
    yield session
    session.close()
