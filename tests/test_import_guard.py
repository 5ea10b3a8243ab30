"""Threads of a server that import the same lazily loaded library at once all get it whole (pacsbox.import_guard)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Ten threads released together import pydicom's inner modules and pynetdicom: without the guard, CPython 3.11
# hands some of them a partially initialised module (ImportError or _DeadlockError) in nearly every run.
_RACE = textwrap.dedent("""
    import sys, threading
    from pacsbox import import_guard
    import_guard.install()
    names = ["pydicom.charset", "pydicom.valuerep", "pydicom.dataelem", "pydicom.dataset", "pydicom.filereader",
             "pydicom.uid", "pydicom.tag", "pydicom.sequence", "pynetdicom", "pydicom.datadict"]
    barrier = threading.Barrier(len(names))
    errors = []

    def load(name):
        barrier.wait()
        try:
            module = __import__(name, fromlist=["__name__"])
            assert module.__name__ == name
        except BaseException as error:
            errors.append(f"{name}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=load, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    from pydicom.charset import default_encoding
    assert default_encoding
    print("errors:", errors)
    print("restored:", __import__("builtins").__import__ is import_guard._original_import)
""")


def test_threads_importing_one_library_at_once_each_get_it_whole():
    for _ in range(3):  # each run is a fresh process: the race is at a library's first import
        done = subprocess.run([sys.executable, "-c", _RACE], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "errors: []" in done.stdout, done.stdout
        assert "restored: False" in done.stdout  # numpy, PIL and lupa not imported yet: still guarding


def test_the_guard_steps_aside_once_every_library_is_in():
    code = ("from pacsbox import import_guard; import builtins\n"
            "import_guard.install()\n"
            "import pydicom, numpy, PIL.Image, pynetdicom, lupa\n"
            "print(builtins.__import__ is import_guard._original_import)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
