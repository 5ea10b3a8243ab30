"""xnat4tests' ``add_data``: its sample data sets, generated locally by :mod:`pacsbox.datasets` and uploaded to
the test server under the same project, subject and session labels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import lifecycle
from ..lifecycle import Instance
from .base import NAME_PREFIX, running_instance, started_here
from .config import Config

logger = logging.getLogger("pacsbox.xnat4tests")

AVAILABLE_DATASETS = ["dummydicom", "user-training", "openneuro-t1w", "simple-dir"]


def add_data(dataset: str, config_name: str | Path | Config = "default",
             upload_method: str = "direct-archive") -> Any:
    """Upload xnat4tests' sample data set ``dataset`` to the configuration's test server.

    - ``dummydicom``: project ``dummydicomproject``, subject ``dummydicomsubject``, session ``dummydicomsession``
      with three scans (T1w, diffusion, field map); ``user-training``: project ``TRAINING``, subjects
      ``CONT01``/``CONT02``/``TEST01``/``TEST02`` with two MR sessions each; ``simple-dir``: project ``SIMPLE_DIR``,
      a ``DIRECTORY`` resource of three text files in ``subject01_1`` and ``subject02_1``.
    - ``upload_method``: ``"direct-archive"`` (the default) imports through XNAT's import service with
      ``Direct-Archive=true``; ``"prearchive"`` (or any other value, as in xnat4tests) imports into the
      prearchive; ``"direct"`` also uses the import service into the archive, where xnat4tests creates the scans
      itself (IDs 1-3, types t1w/dwi/fmap) and uploads the files as ``DICOM`` resources — here the scans are
      named from the DICOM headers instead (series number and description). ``simple-dir`` is always uploaded
      directly (it holds no DICOM), as in xnat4tests. A session that already exists is left alone.
    - ``openneuro-t1w`` needs a download from OpenNeuro in xnat4tests and is not available offline.

    The server is the configuration's; when that one is not running, the one server started through
    :func:`start_xnat` is used instead (see :func:`server_for`). Returns the upload's
    :class:`pacsbox.datasets.UploadSummary` (xnat4tests returns None).
    """
    config = Config.load(config_name)
    if dataset not in AVAILABLE_DATASETS:
        raise RuntimeError(f"Unrecognised dataset '{dataset}', can be one of {AVAILABLE_DATASETS}")
    if dataset == "openneuro-t1w":
        raise NotImplementedError("Dataset 'openneuro-t1w' is not available offline: xnat4tests downloads it from "
                                  "OpenNeuro and pacsbox downloads nothing; use 'dummydicom' or 'user-training'")
    server = server_for(config)
    if dataset == "simple-dir" or upload_method in ("direct-archive", "direct"):
        method = "xnat-import"
    else:
        method = "xnat-prearchive"
    from ..datasets import add_data as upload  # generated on demand: numpy is imported only here

    summary = upload(dataset, server, method=method)
    logger.info("%s", summary)
    return summary


def server_for(config: Config) -> Instance:
    """The running test server ``config`` names, else the only one :func:`start_xnat` started.

    xnat4tests' own README fixture calls ``start_xnat(xnat_config)`` with a custom port and then
    ``add_data("dummydicom")`` with the *default* configuration; that works with Docker only when both name the
    same container. So when the configuration's server is not running, the single server started through
    :func:`start_xnat` in this process (or, failing that, the single running one started through it by any
    process) is used. With none, or more than one to choose from, raises ``RuntimeError`` as xnat4tests does.
    """
    named = running_instance(config.docker_container)
    if named is not None:
        return named
    candidates = [instance for name in started_here() if (instance := running_instance(name)) is not None]
    if not candidates:
        candidates = [instance for _, instance, status in lifecycle.list_instances()
                      if instance is not None and status == "running"
                      and str(instance.settings.get("Name", "")).startswith(NAME_PREFIX)]
    if len(candidates) == 1:
        logger.info("The test XNAT of %s is not running; using %s at %s, started by start_xnat",
                    config.loaded_from or config.docker_container, candidates[0].name, candidates[0].url)
        return candidates[0]
    found = f" (found {len(candidates)} started by start_xnat: name the one to use)" if candidates else ""
    which = repr(str(config.loaded_from)) if config.loaded_from else "config"
    raise RuntimeError(f"XNAT instance not running at {config.xnat_uri}{found}. run "
                       f"`pacsbox.xnat4tests.start_xnat({which})` to launch it")

