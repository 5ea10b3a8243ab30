"""Ensure, reuse, stop and list named servers; one file lock per instance makes concurrent callers share one.

Start-up is a sequence of checks (style point 8): nothing usable there already → spawn detached → the child is
still alive → it answers on HTTP and DICOM. Each failure says what was checked and shows the log tail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from .command import Ready, ensure_command
from .engines import engine_named
from .home import DEFAULT_NAME, InstancePaths, instance_names
from .instance import Instance, InstanceError, InstanceNotRunning, StartupFailed
from .logfile import DEFAULT_MAX_BYTES
from .process import creation_time, kill_tree, log_tail, reap, spawn_detached
from .warm import exit_status, fork_server

DEFAULT_STARTUP_TIMEOUT = 60.0
_POLL = 0.005  # a warm start is ready in tens of milliseconds
logger = logging.getLogger("pacsbox.lifecycle")


def ensure(
    name: str = DEFAULT_NAME,
    config: Mapping[str, Any] | str | Path | None = None,
    *,
    engine: str | None = None,
    command: Sequence[str | os.PathLike[str]] | None = None,
    ready: Ready | str | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    http_port: int | None = None,
    dicom_port: int | None = None,
    data_dir: str | Path | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    fresh: bool = False,
    home: Path | None = None,
    report: Callable[[str], None] | None = None,
) -> Instance:
    """A running server named ``name`` with this configuration: the live one if it matches, else a new one.

    ``config`` holds Orthanc-style options (a mapping, or a JSON file that may contain comments). A live
    server whose configuration fingerprint matches and that answers is returned in milliseconds; one with
    another configuration is restarted; otherwise a detached server starts on free loopback ports (unless
    ports are given) and outlives this process. ``fresh`` also empties its data directory first. Concurrent
    callers (xdist workers, terminals) wait on a file lock: exactly one of them starts the server.

    ``command`` (engine ``command``, the default when a command is given) runs any program instead, with
    ``env`` added to the environment and ``cwd`` as its working directory, ready on ``ready``: a regular
    expression seen in its output, or a :class:`~pacsbox.lifecycle.command.Ready` / mapping with ``pattern``,
    ``port``, ``url``, ``max_read_lines``, ``check`` (see :func:`pacsbox.lifecycle.command.ensure_command`).

    Every key of ``config`` is checked before anything starts (a :class:`~pacsbox.core.config_check.ConfigError`
    lists every mistake); its ``HttpPort``/``DicomPort`` are used unless ``http_port``/``dicom_port`` are given.
    When a live server of that name runs another configuration, ``report`` (default: the ``pacsbox.lifecycle``
    logger) is told what changed before it is restarted. The returned instance's ``spawned`` says whether this
    call started it.
    """
    engine = engine or ("command" if command is not None else "builtin")
    if engine == "command" or command is not None:
        return _ensure_command(name, engine, command, ready, env, cwd, config, (http_port, dicom_port), data_dir,
                               startup_timeout, fresh, home)
    if ready is not None or env is not None or cwd is not None:
        raise ValueError("ready, env and cwd apply to the command engine only: pass command=[...]")
    paths = InstancePaths.of(name, home)
    _prepare_folder(paths)
    chosen_engine = engine_named(engine)
    settings = _settings(config)
    _check_settings(settings, config, name)
    http_port = http_port if http_port is not None else _port_setting(settings, "HttpPort")
    dicom_port = dicom_port if dicom_port is not None else _port_setting(settings, "DicomPort")
    data = Path(data_dir).resolve() if data_dir else paths.default_data_dir
    fingerprint = _fingerprint(engine, settings, http_port, dicom_port, data)
    if not fresh:  # the common case, every test run and xdist worker: a live match, returned without the lock
        current = Instance.load(paths)
        if (current is not None and current.fingerprint == fingerprint and current.status == "running"
                and current.is_alive() and current.answers()):
            return current
    with _locked(paths, startup_timeout):
        current = Instance.load(paths)
        if current is not None:
            if not current.is_alive():
                reap(current.pid)
                _forget(paths)
            elif fresh or current.fingerprint != fingerprint:
                if not fresh:
                    changes = describe_changes(current, engine, settings, (http_port, dicom_port), data)
                    (report or logger.warning)(f"instance {name!r} runs another configuration; restarting it with "
                                               f"this one (data kept): {'; '.join(changes) or 'pacsbox upgraded'}")
                _terminate(current)
            elif current.status == "running" and current.answers():
                return current
            else:  # alive but starting, or hung: give it its start-up time, then replace it
                adopted = _wait_until_ready(current, paths, time.monotonic() + startup_timeout, spawned=False)
                if adopted is not None:
                    return adopted
        if fresh and data.exists():
            shutil.rmtree(data)
        _check_before_spawn(data, http_port, dicom_port)
        return _start(paths, chosen_engine, settings, data, (http_port, dicom_port), (http_port, dicom_port),
                      fingerprint, startup_timeout)


def _ensure_command(name: str, engine: str, command: Sequence[str | os.PathLike[str]] | None,
                    ready: Ready | str | Mapping[str, Any] | None, env: Mapping[str, str] | None,
                    cwd: str | Path | None, config: object, ports: tuple[int | None, int | None],
                    data_dir: object, startup_timeout: float, fresh: bool, home: Path | None) -> Instance:
    if engine != "command":
        raise ValueError(f"a command runs under engine 'command', not {engine!r}")
    if command is None:
        raise ValueError("engine 'command' needs command=[program, arguments...]")
    if config is not None or data_dir is not None or ports != (None, None):
        raise ValueError("config, data_dir, http_port and dicom_port are pacsbox and Orthanc settings: a command "
                         "takes its own arguments, env and cwd, and its port goes in ready={'port': N}")
    return ensure_command(name, command, ready=ready, env=env, cwd=cwd, startup_timeout=startup_timeout,
                          fresh=fresh, home=home)


def get_instance(name: str = DEFAULT_NAME, *, home: Path | None = None) -> Instance:
    """The live server named ``name``; raises :class:`InstanceNotRunning` (saying how to start one)."""
    instance = Instance.load(InstancePaths.of(name, home))
    if instance is None or not instance.is_alive() or instance.status != "running":
        raise InstanceNotRunning(f"no pacsbox instance named {name!r} is running; start it with "
                                 f"`pacsbox start --name {name}` or pacsbox.lifecycle.ensure({name!r})")
    return instance


def stop(name: str = DEFAULT_NAME, *, grace: float = 10.0, home: Path | None = None) -> bool:
    """Stop the server named ``name`` and its whole process tree (SIGTERM, then SIGKILL after ``grace``
    seconds); stale records of dead or reused PIDs are cleaned. True when a live server was stopped."""
    paths = InstancePaths.of(name, home)
    if not paths.root.is_dir():
        return False
    with _locked(paths, grace + 30):
        current = Instance.load(paths)
        stopped = current is not None and kill_tree(current.pid, current.created, grace)
        _forget(paths)
        return stopped


def restart(name: str = DEFAULT_NAME, *, home: Path | None = None,
            startup_timeout: float = DEFAULT_STARTUP_TIMEOUT) -> Instance:
    """Stop and start again with the recorded configuration, ports and data."""
    current = Instance.load(InstancePaths.of(name, home))
    if current is None:
        raise InstanceNotRunning(f"no pacsbox instance named {name!r} was ever started; use `pacsbox start`")
    stop(name, home=home)
    if current.engine == "command":
        spec = current.settings
        return ensure_command(name, spec["command"], ready=spec.get("ready"), env=spec.get("full_env"),
                              inherit_env=False, cwd=spec.get("cwd"), startup_timeout=startup_timeout, home=home,
                              max_log_bytes=spec.get("max_log_bytes") or DEFAULT_MAX_BYTES)
    # the same ports (free ones only if another program took them meanwhile), configuration and fingerprint, so
    # that the next `ensure` with the same configuration reuses the restarted server
    paths = InstancePaths.of(name, home)
    ports = tuple(port if port and _port_free(current.host, port) else requested
                  for port, requested in ((current.http_port, current.requested_http_port),
                                          (current.dicom_port, current.requested_dicom_port)))
    data = Path(current.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    with _locked(paths, startup_timeout):
        return _start(paths, engine_named(current.engine), current.settings, data, ports,  # type: ignore[arg-type]
                      (current.requested_http_port, current.requested_dicom_port), current.fingerprint,
                      startup_timeout)


def list_instances(home: Path | None = None) -> list[tuple[str, Instance | None, str]]:
    """Every named instance with its record and status: ``running``, ``starting``, ``stale`` (the recorded
    process is gone) or ``stopped``."""
    rows = []
    for name in instance_names(home):
        instance = Instance.load(InstancePaths.of(name, home))
        if instance is None:
            rows.append((name, None, "stopped"))
        elif not instance.is_alive():
            rows.append((name, instance, "stale"))
        else:
            rows.append((name, instance, instance.status))
    return rows


# -- start-up ----------------------------------------------------------------------------------------------
def _start(paths: InstancePaths, engine, settings: dict[str, Any], data: Path, ports: tuple[int | None, int | None],
           requested: tuple[int | None, int | None], fingerprint: str, startup_timeout: float) -> Instance:
    """Spawn on ``ports`` (None: free ones) and wait until it answers; ``requested`` is what the caller asked
    for, recorded so that a restart asks for the same."""
    paths.ready_file.unlink(missing_ok=True)  # a ready file from an earlier run must not pass for this one
    _trim_log(paths.log_file)
    launch = engine.launch(paths, settings, data, *ports)
    log_offset = paths.log_file.stat().st_size if paths.log_file.exists() else 0
    with open(paths.log_file, "a") as log:
        log.write(f"--- pacsbox lifecycle: starting {engine.name} instance {paths.name!r} at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(launch.command)}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **launch.env}
    # warm start: forked by this home's template process when it can (started on first use), else spawned
    paths.exit_file.unlink(missing_ok=True)
    pid = fork_server(paths.root.parent.parent, launch.command, paths.log_file, env,
                      exit_file=paths.exit_file) if engine.name == "builtin" else None
    if pid is None:
        pid = spawn_detached(launch.command, paths.log_file, env)
    users = dict(settings.get("RegisteredUsers", {"admin": "admin"}))
    instance = Instance(
        name=paths.name, engine=engine.name, pid=pid, created=creation_time(pid) or time.time(),
        host="127.0.0.1", http_port=launch.http_port or 0, dicom_port=launch.dicom_port or 0,
        aet=str(settings.get("DicomAet", engine.default_aet)), users=users,
        authentication=bool(settings.get("AuthenticationEnabled", True)), data_dir=str(data),
        state_dir=str(paths.root), fingerprint=fingerprint, started_at=time.time(), status="starting",
        settings=settings, requested_http_port=requested[0], requested_dicom_port=requested[1],
    )
    instance.save()  # recorded at once: a caller killed now leaves a findable process
    try:
        ready = _wait_until_ready(instance, paths, time.monotonic() + startup_timeout, spawned=True,
                                  log_offset=log_offset)
    except BaseException:  # a failure or Ctrl-C during start-up must not leave a half-started server behind
        kill_tree(pid, instance.created, grace=5)
        _forget(paths)
        raise
    assert ready is not None
    ready.save()
    ready.spawned = True
    return ready


def _wait_until_ready(instance: Instance, paths: InstancePaths, deadline: float, *, spawned: bool,
                      log_offset: int = 0) -> Instance | None:
    """Poll until the server answers (returns it, marked running) or fails: a spawned child that exits or
    does not answer in time raises :class:`StartupFailed` with its log tail; an adopted one is stopped and
    None returned, so the caller starts a new one."""
    while True:
        if not instance.is_alive():
            if not spawned:
                _forget(paths)
                return None
            code = reap(instance.pid, wait=1.0)
            if code is None:  # not our child: forked by the warm-start template, it wrote its status down
                code = exit_status(paths.exit_file, instance.pid)
            raise StartupFailed(f"pacsbox instance {instance.name!r} ({instance.engine}) exited during start-up"
                                f"{'' if code is None else f' with status {code}'}; log "
                                f"{paths.log_file}:\n{log_tail(paths.log_file, 40, log_offset)}")
        if instance.http_port == 0:
            _read_ready_file(instance, paths)
        if instance.http_port and instance.answers(timeout=1.0):
            instance.status = "running"
            return instance
        if time.monotonic() > deadline:
            if not spawned:
                _terminate(instance)
                return None
            raise StartupFailed(f"pacsbox instance {instance.name!r} ({instance.engine}) did not answer on "
                                f"HTTP and DICOM within the start-up timeout; log {paths.log_file}:\n"
                                f"{log_tail(paths.log_file, 40, log_offset)}")
        time.sleep(_POLL)


def _read_ready_file(instance: Instance, paths: InstancePaths) -> None:
    try:
        ready = json.loads(paths.ready_file.read_text())
    except (OSError, ValueError):
        return
    if ready.get("pid") == instance.pid:
        instance.http_port, instance.dicom_port = int(ready["http_port"]), int(ready["dicom_port"])


def _prepare_folder(paths: InstancePaths) -> None:
    """Create the instance folder and check that its log can be written, naming what to fix if not."""
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        with open(paths.log_file, "a"):
            pass
    except OSError as error:
        raise InstanceError(f"cannot write the state folder and log of instance {paths.name!r} in {paths.root}: "
                            f"{error.strerror or error}; set PACSBOX_HOME to a writable folder") from None


def _check_settings(settings: dict[str, Any], config: object, name: str) -> None:
    """Every key's type and range, before anything starts (ConfigError listing every mistake)."""
    from ..core.config_check import check_or_raise

    source = (f"the configuration file {config}" if isinstance(config, (str, Path))
              else f"the configuration of instance {name!r}")
    check_or_raise(settings, source)


def _check_before_spawn(data: Path, http_port: int | None, dicom_port: int | None) -> None:
    """A writable data folder and free requested ports, each named with the option that chose it."""
    from ..data_folder import data_folder_problem

    problem = data_folder_problem(data, "--data-dir, data_dir=")
    if problem is not None:
        raise InstanceError(problem)
    for label, port, option in (("HTTP", http_port, "--http-port / HttpPort"),
                                ("DICOM", dicom_port, "--dicom-port / DicomPort")):
        if port and not _port_free("127.0.0.1", port):
            raise InstanceError(f"the {label} port {port} ({option}) is in use by another program: choose another "
                                "port, or leave it out for a free one")


def _port_setting(settings: dict[str, Any], key: str) -> int | None:
    """A port the configuration asks for (0 or absent: a free one)."""
    value = settings.get(key)
    return int(value) if value else None


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        # as the servers bind (SO_REUSEADDR): connections of a stopped server in TIME_WAIT do not make it busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return True
        except OSError:
            return False


def describe_changes(current: Instance, engine: str, settings: dict[str, Any],
                     ports: tuple[int | None, int | None], data: Path) -> list[str]:
    """What differs between a running instance and a requested configuration, one item per key."""
    def show(value: Any) -> str:
        return "not set" if value is _UNSET else json.dumps(value)

    changes = [f"engine {current.engine} -> {engine}"] if current.engine != engine else []
    for key in sorted(set(current.settings) | set(settings)):
        before, after = current.settings.get(key, _UNSET), settings.get(key, _UNSET)
        if before != after:
            changes.append(f"{key} {show(before)} -> {show(after)}")
    for label, before, after in (("HTTP port", current.requested_http_port, ports[0]),
                                 ("DICOM port", current.requested_dicom_port, ports[1])):
        if before != after:
            changes.append(f"{label} {before or 'any free one'} -> {after or 'any free one'}")
    if Path(current.data_dir) != data:
        changes.append(f"data folder {current.data_dir} -> {data}")
    return changes


_UNSET = object()


# -- records -----------------------------------------------------------------------------------------------
def _terminate(instance: Instance) -> None:
    kill_tree(instance.pid, instance.created)
    _forget(instance.paths)


def _forget(paths: InstancePaths) -> None:
    paths.state_file.unlink(missing_ok=True)
    paths.ready_file.unlink(missing_ok=True)
    paths.exit_file.unlink(missing_ok=True)


@contextmanager
def _locked(paths: InstancePaths, timeout: float):
    from filelock import FileLock, Timeout  # here: the reuse of a running server takes no lock

    lock = FileLock(str(paths.lock_file), timeout=timeout + 30)
    try:
        with lock:
            yield
    except Timeout:
        raise InstanceError(f"waited {timeout + 30:g} s for the lock {paths.lock_file}: another process is "
                            f"starting or stopping instance {paths.name!r}") from None


def _trim_log(path: Path, keep: int = 256 * 1024) -> None:
    """Keep the log of a stopped server bounded before appending a new run (the server rotates while it runs)."""
    try:
        if path.stat().st_size > keep:
            with open(path, "rb") as handle:
                handle.seek(-keep, os.SEEK_END)
                tail = handle.read()
            path.write_bytes(tail)
    except OSError:
        pass


def _settings(config: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return json.loads(json.dumps(dict(config)))  # a plain, JSON-able copy
    from ..core.config import strip_json_comments

    path = Path(config)
    try:
        loaded = json.loads(strip_json_comments(path.read_text()))
    except (OSError, ValueError) as error:
        raise InstanceError(f"cannot read the configuration {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise InstanceError(f"the configuration {path} is not a JSON object")
    return loaded


def _fingerprint(engine: str, settings: dict[str, Any], http_port: int | None, dicom_port: int | None,
                 data: Path) -> str:
    canonical = json.dumps({"engine": engine, "settings": settings, "http_port": http_port,
                            "dicom_port": dicom_port, "data": str(data), "version": __version__}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- snapshots of engines without admin routes (the real Orthanc) -----------------------------------------
def snapshot_by_copy(instance: Instance, name: str) -> dict[str, Any]:
    """Stop, copy the storage folder, start again on the same ports (the real Orthanc has no snapshot API)."""
    from ..core.snapshots import _NAME

    if not _NAME.fullmatch(name):
        raise InstanceError(f"invalid snapshot name {name!r}")
    started = time.perf_counter()
    target = instance.paths.snapshots_dir / name
    stop(instance.name, home=instance.paths.root.parent.parent)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(instance.data_dir, target)
    _ensure_again(instance)
    return {"Name": name, "Seconds": round(time.perf_counter() - started, 4)}


def restore_by_copy(instance: Instance, name: str) -> dict[str, Any]:
    """Stop, put the copied storage folder back, start again on the same ports."""
    source = instance.paths.snapshots_dir / name
    if not source.is_dir():
        raise InstanceError(f"no snapshot named {name!r} for instance {instance.name!r}")
    started = time.perf_counter()
    stop(instance.name, home=instance.paths.root.parent.parent)
    shutil.rmtree(instance.data_dir, ignore_errors=True)
    shutil.copytree(source, instance.data_dir)
    _ensure_again(instance)
    return {"Name": name, "Seconds": round(time.perf_counter() - started, 4)}


def _ensure_again(instance: Instance) -> None:
    """Start a stopped instance again on the ports it had, under its original fingerprint."""
    paths = instance.paths
    with _locked(paths, DEFAULT_STARTUP_TIMEOUT):
        _start(paths, engine_named(instance.engine), instance.settings, Path(instance.data_dir),
               (instance.http_port, instance.dicom_port),
               (instance.requested_http_port, instance.requested_dicom_port), instance.fingerprint,
               DEFAULT_STARTUP_TIMEOUT)
