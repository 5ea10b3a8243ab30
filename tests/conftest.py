"""Fixtures shared by the suites: the test corpus, a real pacsbox server, the real Orthanc as a reference."""

from __future__ import annotations

import pytest

from tests.support.dicomgen import standard_corpus
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox


@pytest.fixture(scope="session")
def corpus() -> list[tuple[str, bytes]]:
    """The deterministic pydicom-generated files every suite uses."""
    return standard_corpus()


@pytest.fixture(scope="module")
def spawned_pacsbox():
    """One pacsbox server per test module (empty at the start of the module)."""
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as server:
        yield server


@pytest.fixture
def fresh_pacsbox():
    """A pacsbox server of its own for one test."""
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as server:
        yield server


@pytest.fixture(scope="module")
def reference_orthanc():
    """The real Orthanc (Debian), started on its own ports; skipped with install advice when missing."""
    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    with ReferenceOrthanc(extra_config={"UserMetadata": {"Sample": 1024}}, graceful_stop=False) as server:
        yield server
