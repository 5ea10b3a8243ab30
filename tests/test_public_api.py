"""The top-level API a new user reaches for: ``pacsbox.Server`` and the lifecycle manager, importable from
``pacsbox`` without making ``import pacsbox`` heavy; the package ships ``py.typed``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pacsbox


def test_import_pacsbox_loads_nothing_heavy() -> None:
    code = ("import sys, pacsbox; heavy = [m for m in ('pacsbox.server', 'pacsbox.lifecycle', 'pydicom', 'numpy', "
            "'uvicorn', 'psutil', 'filelock') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_server_and_lifecycle_api_at_top_level() -> None:
    from pacsbox import Instance, Server, ensure, get_instance, link, list_instances, restart, stop
    from pacsbox.lifecycle import ensure as lifecycle_ensure
    from pacsbox.lifecycle import link as lifecycle_link  # the README's old import works too
    from pacsbox.server import Server as ServerClass

    assert (Server, ensure, link) == (ServerClass, lifecycle_ensure, lifecycle_link)
    assert all(callable(item) for item in (get_instance, list_instances, restart, stop, Instance))
    assert set(pacsbox.__all__) <= set(dir(pacsbox))
    try:
        pacsbox.nosuch  # noqa: B018
    except AttributeError as error:
        assert "no attribute 'nosuch'" in str(error)
    else:
        raise AssertionError("pacsbox.nosuch did not raise AttributeError")


def test_py_typed_ships() -> None:
    assert (Path(pacsbox.__file__).parent / "py.typed").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject
