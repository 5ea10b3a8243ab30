"""Options: the command line over the ini file over the defaults, errors before any test, a light plugin load."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbox.lifecycle.home import check_name
from pacsbox.pytest_plugin import PluginSettings, default_name, plugin_settings
from tests.plugin.helpers import FAST, run


def test_defaults(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    chosen = plugin_settings(pytester.parseconfigure(*FAST))
    assert chosen == PluginSettings(name=default_name(pytester.path), config=None, engine="builtin",
                                    startup_timeout=60.0, keep=True, fresh=False, per_worker=False, show=False,
                                    kill=False)


def test_command_line_wins_over_ini(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    (pytester.path / "orthanc.json").write_text("{}")
    pytester.makeini("[pytest]\npacsbox_engine = orthanc\npacsbox_name = from-ini\npacsbox_startup_timeout = 5\n"
                     "pacsbox_keep = false\npacsbox_config = orthanc.json\n")
    from_ini = plugin_settings(pytester.parseconfigure(*FAST))
    assert from_ini == PluginSettings(name="from-ini", config=pytester.path / "orthanc.json", engine="orthanc",
                                      startup_timeout=5.0, keep=False, fresh=False, per_worker=False, show=False,
                                      kill=False)
    chosen = plugin_settings(pytester.parseconfigure(*FAST, "--pacsbox-engine=builtin", "--pacsbox-name=from-cli",
                                                     "--pacsbox-startup-timeout=7.5", "--pacsbox-keep"))
    assert (chosen.engine, chosen.name, chosen.startup_timeout, chosen.keep) == ("builtin", "from-cli", 7.5, True)
    assert chosen.config == from_ini.config  # an ini value the command line leaves alone


def test_default_name_is_a_valid_instance_name_per_project(tmp_path: Path) -> None:
    odd = tmp_path / "my project (copy) with a very long folder name"
    first, second = default_name(odd), default_name(tmp_path / "other")
    assert check_name(first) == first and first.startswith("pytest-my-project-copy-")
    assert first != second and default_name(odd) == first


@pytest.mark.parametrize(("ini", "message"), [
    ("pacsbox_engine = docker", r"pacsbox: ini pacsbox_engine = 'docker': choose one of builtin, orthanc"),
    ("pacsbox_startup_timeout = soon", r"pacsbox: ini pacsbox_startup_timeout = 'soon' is not a number"),
    ("pacsbox_config = missing.json", r"pacsbox: the configuration file \S+/missing.json \(.*\) does not exist"),
])
def test_bad_options_stop_the_run_before_any_test(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    with pytest.raises(pytest.UsageError, match=message):
        pytester.parseconfigure(*FAST)


def test_loading_the_plugin_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner="""
import sys

def test_modules():
    assert "pacsbox.pytest_plugin" in sys.modules
    heavy = {"pacsbox.lifecycle", "psutil", "filelock", "pynetdicom", "starlette", "pydicom", "requests", "xnat"}
    assert heavy.isdisjoint(sys.modules), heavy & set(sys.modules)
""")
    run(pytester).assert_outcomes(passed=1)
