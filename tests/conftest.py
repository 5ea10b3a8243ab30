"""Fixtures shared by the suites: the test corpus, a real pacsbox server, the real Orthanc as a reference."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

from tests.support.dicomgen import standard_corpus
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox


def pytest_configure(config: pytest.Config) -> None:
    """Once a run (in the controller, before xdist's workers start): write the bytecode of pacsbox's modules, as
    installing the package does. The suite starts hundreds of servers, each a fresh interpreter; under
    ``PYTHONDONTWRITEBYTECODE`` (set in some CI images) an editable install never caches its bytecode, and every
    one of those starts would compile pacsbox's 150-odd modules again."""
    if not hasattr(config, "workerinput"):
        import pacsbox

        compileall.compile_dir(Path(pacsbox.__file__).parent, quiet=1)


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
