"""Uvicorn's serving parts load without its command line (``pacsbox.uvicorn_parts``), and the package still has
every name for any other code of the process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(script: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_server_loads_uvicorn_without_its_command_line_and_the_package_keeps_its_names():
    report = _run("""
        import json, sys
        import pacsbox.server, pacsbox.http_protocol
        from pacsbox.uvicorn_parts import Config, Server
        loaded = {name: name in sys.modules for name in ("uvicorn", "uvicorn.main", "click", "multiprocessing")}
        from uvicorn import Config as asked_config  # as Uvicorn's own lifespan modules ask for it
        from uvicorn.lifespan.off import LifespanOff
        still = "uvicorn.main" in sys.modules
        import uvicorn
        import uvicorn.config
        same = uvicorn.Config is Config is asked_config is uvicorn.config.Config and uvicorn.Server is Server
        version = uvicorn.__version__
        run = uvicorn.run  # not loaded here: the package's __init__ runs now
        try:
            uvicorn.no_such_name
            missing = "found"
        except AttributeError:
            missing = "AttributeError"
        print(json.dumps({"loaded": loaded, "still": still, "same": same, "version": version,
                          "run": run.__module__, "main": "uvicorn.main" in sys.modules, "missing": missing}))
    """)
    assert report["loaded"] == {"uvicorn": True, "uvicorn.main": False, "click": False, "multiprocessing": False}
    assert report["still"] is False and report["same"] is True
    from importlib.metadata import version

    assert report["version"] == version("uvicorn")
    assert report["run"] == "uvicorn.main" and report["main"] is True
    assert report["missing"] == "AttributeError"


def test_an_earlier_import_of_uvicorn_is_left_as_it_is():
    report = _run("""
        import json, sys
        import uvicorn
        package = uvicorn
        import pacsbox.uvicorn_parts
        print(json.dumps({"same": sys.modules["uvicorn"] is package, "main": "uvicorn.main" in sys.modules,
                          "server": pacsbox.uvicorn_parts.Server is uvicorn.Server}))
    """)
    assert report == {"same": True, "main": True, "server": True}
