"""One thread at a time imports a library that loads on first use.

A server imports pydicom, numpy, Pillow, pynetdicom and lupa when it first needs them, and several threads may need
them at once (HTTP workers, the DICOM listener, job workers). CPython 3.11 does not wait for a package that another
thread is still importing before it imports one of its submodules (``from pydicom.charset import ...`` while
``import pydicom`` runs elsewhere): the two threads then take the package's internal module locks in opposite
orders, and the import machinery breaks the deadlock by handing one of them a partially initialised module
(``ImportError: cannot import name ... from partially initialized module``).

``install`` replaces ``builtins.__import__`` with a wrapper that imports each of these packages whole, under one
lock, before anything else is imported from it; once every one of them is in, the wrapper puts the original back, so
it costs nothing afterwards. The thread holding the lock only imports third-party code, which never waits on a
pacsbox module, so waiting for it cannot deadlock.
"""

from __future__ import annotations

import builtins
import sys
import threading
from typing import Any

#: Libraries loaded on first use by a running server (``tests/test_lazy_imports.py`` keeps them out of a start).
LIBRARIES = frozenset({"pydicom", "numpy", "PIL", "pynetdicom", "lupa"})

_lock = threading.RLock()  # re-entrant: importing pydicom imports numpy in the same thread
_pending: set[str] = set()
_original_import = builtins.__import__


def install() -> None:
    """Guard the first import of each library not yet fully imported in this process (idempotent)."""
    with _lock:
        _pending.update(name for name in LIBRARIES if not _fully_imported(name))
        if _pending:
            builtins.__import__ = _guarded_import


def _fully_imported(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if level == 0 and _pending:
        top = name.partition(".")[0]
        if top in _pending:
            with _lock:
                if top in _pending:
                    _original_import(top)  # the whole package, while other threads wait for it
                    if _fully_imported(top):  # not when this thread is itself inside the package's import
                        _pending.discard(top)
                    if not _pending and builtins.__import__ is _guarded_import:
                        builtins.__import__ = _original_import
    return _original_import(name, globals, locals, fromlist, level)
