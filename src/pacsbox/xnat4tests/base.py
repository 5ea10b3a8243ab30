"""``start_xnat``, ``stop_xnat``, ``restart_xnat`` and ``connect`` on a pacsbox server instead of XNAT in Docker.

The server is the pacsbox instance named after ``docker_container`` (a folder under ``$PACSBOX_HOME``), on
``xnat_port``, with ``xnat_root_dir`` as its storage directory, so the XNAT face writes xnat4tests' layout there
(``archive/<project>/arc001/<session>/SCANS/...``, ``prearchive/...``), with site ID ``Xnat4Tests`` and admin/admin.
It starts in about a second (XNAT in Docker takes a minute or more) and answers before ``start_xnat`` returns, so
no connection retries are needed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import lifecycle
from ..lifecycle import Instance, InstanceNotRunning, InstancePaths
from .config import Config

logger = logging.getLogger("pacsbox.xnat4tests")

SITE_ID = "Xnat4Tests"
#: The server ``Name`` of instances this module starts, which is how ``add_data`` recognises them.
NAME_PREFIX = "xnat4tests:"

# Names of the instances start_xnat launched or reused in this process: add_data's fallback when its own
# configuration's server is not running (see data.server_for). Process-wide on purpose, as xnat4tests' Docker
# containers are machine-wide; nothing else reads it.
_started_here: list[str] = []


def server_settings(config: Config) -> dict[str, Any]:
    """The pacsbox configuration that makes the XNAT face look like xnat4tests' XNAT."""
    return {"Name": NAME_PREFIX + config.docker_container, "XnatSiteId": SITE_ID,
            "RegisteredUsers": {config.xnat_user: config.xnat_password}}


def start_xnat(config_name: str | Path | Config = "default", keep_mounts: bool = False, rebuild: bool = True,
               relaunch: bool = False) -> Instance:
    """Start the test server the configuration describes, or reuse the one already running with it.

    A running server with the same port, root directory and settings is reused with its data (as xnat4tests
    reuses its container). Otherwise — or with ``relaunch`` — the old one is stopped, ``xnat_root_dir`` is
    emptied unless ``keep_mounts`` (xnat4tests wipes its mounted folders on a new launch), the ``xnat_mnt_dirs``
    are created under it and a new server starts. Unlike xnat4tests' container, pacsbox keeps its index in
    ``xnat_root_dir``, so ``keep_mounts=True`` keeps the data usable.

    ``rebuild`` is accepted and ignored (there is no image). Returns the pacsbox :class:`~pacsbox.lifecycle.Instance`
    (``url``, ``auth``, ``aet``, ``dicom_port``, ``reset()``, ...) where xnat4tests returns the Docker container.
    """
    config = Config.load(config_name)
    name, settings, port = config.docker_container, server_settings(config), int(config.xnat_port)
    root = config.xnat_root_dir.expanduser().resolve()
    # xnat4tests gives XNAT connection_attempts x connection_attempt_sleep seconds (100 s by default)
    timeout = max(5.0, float(config.connection_attempts) * float(config.connection_attempt_sleep))
    # Deciding to relaunch, wiping and starting is one step: xdist workers calling start_xnat together must not
    # take each other's fresh server for a stale one and wipe it. (ensure's own lock covers only its part.)
    lock_file = InstancePaths.of(name).root / "xnat4tests.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_file), timeout=timeout + 60):
        current = running_instance(name)
        if relaunch or current is None or not _launched_as(current, settings, port, root):
            if current is not None:
                logger.info("Stopping the test XNAT %s to relaunch it", name)
            lifecycle.stop(name)
            if not keep_mounts:
                shutil.rmtree(root, ignore_errors=True)
        else:
            logger.info("Found the test XNAT %s running at %s, reusing it", name, config.xnat_uri)
        for folder in config.xnat_mnt_dirs:
            (root / folder).mkdir(parents=True, exist_ok=True)
        instance = lifecycle.ensure(name, settings, http_port=port, data_dir=root, startup_timeout=timeout)
    if name in _started_here:
        _started_here.remove(name)
    _started_here.append(name)
    logger.info("Test XNAT %s answers at %s", name, config.xnat_uri)
    return instance


def stop_xnat(config_name: str | Path | Config = "default") -> None:
    """Stop the configuration's test server (nothing happens when it is not running). The data stay in
    ``xnat_root_dir`` until the next ``start_xnat`` without ``keep_mounts``."""
    config = Config.load(config_name)
    name = config.docker_container
    if name in _started_here:
        _started_here.remove(name)
    if lifecycle.stop(name):
        logger.info("Stopped the test XNAT %s", name)
    else:
        logger.info("Test XNAT was not running at %s", name)


def restart_xnat(config_name: str | Path | Config = "default") -> Instance:
    """Restart the configuration's test server with its data; raises when it is not running, as xnat4tests does
    (:class:`~pacsbox.lifecycle.InstanceNotRunning`, a ``RuntimeError``)."""
    config = Config.load(config_name)
    name = config.docker_container
    if running_instance(name) is None:
        raise InstanceNotRunning(f"Test XNAT was not running at {name}")
    return lifecycle.restart(name)


def connect(config_name: str | Path | Config = "default") -> Any:
    """An xnatpy session on the configuration's server: ``xnat.connect(config.xnat_uri, user="admin",
    password="admin")`` (use it in a ``with`` block to close it)."""
    config = Config.load(config_name)
    try:
        import xnat
    except ImportError:
        raise ImportError("connect() returns an xnatpy session: pip install xnat") from None
    logger.info("Connecting to %s as '%s'", config.xnat_uri, config.xnat_user)
    return xnat.connect(config.xnat_uri, user=config.xnat_user, password=config.xnat_password)


def start_registry(config_name: str | Path | Config = "default") -> Any:
    """xnat4tests starts a Docker registry for XNAT's container service; pacsbox has no container service."""
    raise NotImplementedError("start_registry: pacsbox has no Docker and no XNAT container service, so there is "
                              "no image registry to start; tests that pull images into XNAT need the real xnat4tests")


def stop_registry(config_name: str | Path | Config = "default") -> None:
    """Nothing to stop: ``start_registry`` never starts one (xnat4tests' CLI calls this before every stop, and a
    registry that is not running is only logged there too)."""
    logger.info("No registry to stop: pacsbox has no container service")


def running_instance(name: str) -> Instance | None:
    """The live instance called ``name``, or None."""
    try:
        return lifecycle.get_instance(name)
    except InstanceNotRunning:
        return None


def _launched_as(instance: Instance, settings: dict[str, Any], port: int, root: Path) -> bool:
    """The running server is the one this configuration would start (ensure would reuse it as is)."""
    return (instance.engine == "builtin" and instance.settings == settings
            and instance.requested_http_port == port and instance.requested_dicom_port is None
            and Path(instance.data_dir) == root)


def started_here() -> list[str]:
    """Names of the servers ``start_xnat`` launched or reused in this process and not stopped since, oldest
    first."""
    return list(_started_here)
