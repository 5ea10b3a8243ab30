"""A drop-in for xnat4tests 0.4.1 without Docker: ``from pacsbox.xnat4tests import start_xnat, ...``.

Same functions, arguments, ``Config`` fields and YAML files, and the same ``xnat_root_dir`` archive layout; the
XNAT is a pacsbox server (started in well under a second) whose XNAT face xnatpy and pyxnat use unchanged.
Differences: ``start_xnat`` returns a :class:`pacsbox.lifecycle.Instance` rather than a Docker container, the
Docker-only configuration fields are ignored, ``start_registry`` raises ``NotImplementedError`` (no container
service), and ``add_data`` generates its data sets locally (``openneuro-t1w``, a download, is not available).
"""

from .base import connect, restart_xnat, start_registry, start_xnat, stop_registry, stop_xnat
from .config import BuildArgs, Config
from .data import AVAILABLE_DATASETS, add_data

__all__ = [
    "AVAILABLE_DATASETS",
    "BuildArgs",
    "Config",
    "add_data",
    "connect",
    "restart_xnat",
    "start_registry",
    "start_xnat",
    "stop_registry",
    "stop_xnat",
]
