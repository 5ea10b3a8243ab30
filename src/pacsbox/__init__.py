"""pacsbox: throwaway Orthanc-, XNAT- and DICOM-compatible archive servers for test suites.

The public API, importable from here: :class:`Server` (a server in this process), and the lifecycle manager's
:func:`ensure`, :func:`stop`, :func:`restart`, :func:`get_instance`, :func:`list_instances`, :func:`link` and
:class:`Instance` (named, detached servers reused across runs). ``import pacsbox`` imports none of them: each is
loaded on first use, so the pytest plugin and the command line start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it (imported on first access)
_LAZY = {
    "Server": "pacsbox.server",
    "ensure": "pacsbox.lifecycle",
    "stop": "pacsbox.lifecycle",
    "restart": "pacsbox.lifecycle",
    "get_instance": "pacsbox.lifecycle",
    "list_instances": "pacsbox.lifecycle",
    "Instance": "pacsbox.lifecycle",
    "InstanceError": "pacsbox.lifecycle",
    "InstanceNotRunning": "pacsbox.lifecycle",
    "StartupFailed": "pacsbox.lifecycle",
    "link": "pacsbox.lifecycle.topology",
}

__all__ = [
    "Instance",
    "InstanceError",
    "InstanceNotRunning",
    "Server",
    "StartupFailed",
    "__version__",
    "ensure",
    "get_instance",
    "link",
    "list_instances",
    "restart",
    "stop",
]

if TYPE_CHECKING:
    from .lifecycle import (
        Instance,
        InstanceError,
        InstanceNotRunning,
        StartupFailed,
        ensure,
        get_instance,
        list_instances,
        restart,
        stop,
    )
    from .lifecycle.topology import link
    from .server import Server


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pacsbox' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
