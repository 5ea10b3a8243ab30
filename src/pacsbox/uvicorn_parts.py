"""The parts of Uvicorn that serve HTTP, imported without running the package's ``__init__``.

Any ``import uvicorn.<part>`` first runs ``uvicorn/__init__.py``, which imports ``uvicorn.main``: Uvicorn's own
command line (click), its reloaders and process supervisors (multiprocessing) and ``platform``. A pacsbox server
runs none of them, and on these 2-core machines they are about a tenth of a cold start (24 ms of 0.27 s, farm-bench:
``import uvicorn.server`` and the protocol this way against ``import uvicorn``).

So the package is registered here as a module made from its own import spec, without executing its ``__init__``;
its submodules then import as usual. It is given the names its ``__init__`` takes from the parts loaded here
(``Config``, ``Server``, ``__version__``: Uvicorn's own modules import ``Config`` from the package); the others
(``uvicorn.run``, ``uvicorn.main``) stay there for any other code of the process: the first one asked for runs the
real ``__init__`` then, once (``tests/test_uvicorn_parts.py``).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any


def _register_package() -> ModuleType | None:
    """The package registered without its ``__init__``; None when it was imported already (or is unusual)."""
    if "uvicorn" in sys.modules:
        return None
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None  # not an ordinary package: the imports below go the ordinary way
    package = importlib.util.module_from_spec(spec)
    loader, once = spec.loader, threading.Lock()

    def complete(name: str) -> Any:
        """The first name asked of the package that it lacks: the real ``__init__`` runs now, then answers."""
        with once:  # two threads asking at once: one runs it, the other finds it done
            if "__getattr__" in vars(package):
                del package.__getattr__  # a name the real package lacks is then an ordinary AttributeError
                loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules["uvicorn"] = package
    return package


_registered = _register_package()

from uvicorn._version import __version__  # noqa: E402
from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol  # noqa: E402
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string  # noqa: E402
from uvicorn.server import Server  # noqa: E402

if _registered is not None:
    _registered.Config, _registered.Server, _registered.__version__ = Config, Server, __version__

__all__ = ["STATUS_LINE", "Config", "HttpToolsProtocol", "Server", "get_client_addr", "get_path_with_query_string"]
