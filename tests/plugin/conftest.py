"""Plugin tests: inner pytest runs through pytester, each test with its own ``$PACSBOX_HOME``; the servers they
start are stopped afterwards, and none may be left unrecorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin.helpers import assert_no_orphan, serve_processes
from tests.support.pacsbox_proc import LENT_TEMPLATE_VARIABLE


def pytest_configure(config: pytest.Config) -> None:
    # `pytest_plugins = ["pytester"]` is refused in a conftest below the top level when the whole suite runs,
    # so pytester is registered when this folder is collected (its fixtures and options register late too)
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(autouse=True)
def own_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs' servers are forked by their home's own template, not the suite's lent one: orphans are found
    by command line (``serve_processes``), and a forked server has its template's."""
    monkeypatch.delenv(LENT_TEMPLATE_VARIABLE, raising=False)


@pytest.fixture
def pacsbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``$PACSBOX_HOME`` for the inner runs; afterwards no server may be unrecorded, and all are stopped."""
    home = tmp_path / "pacsbox-home"
    monkeypatch.setenv("PACSBOX_HOME", str(home))
    yield home
    from pacsbox.lifecycle import list_instances, stop

    try:
        assert_no_orphan(home)
    finally:
        for name, _, _ in list_instances(home):
            stop(name, grace=5, home=home)
        from pacsbox.lifecycle.warm import stop_template

        stop_template(home)
        for process in serve_processes(home):  # only after a test failed half-way: never leave servers behind
            process.kill()
