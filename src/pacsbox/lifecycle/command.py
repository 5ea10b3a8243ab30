"""The ``command`` engine: any long-running program, managed like pacsbox's own servers.

A command (arguments, environment, working directory) runs detached under a small supervisor that keeps its
log capped and rotated (``supervise.py``). It counts as ready when a regular expression appears in its output
(stdout and stderr together, only the new process's lines — pytest-xprocess's rule), when a TCP port accepts,
when an HTTP URL answers, and when an optional check returns true: every condition the caller gives. The
instance is reused only while its fingerprint (command, arguments, environment, working directory, readiness)
matches, under the same file lock, crash report, stale-PID detection and tree kill as the built-in engines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .home import InstancePaths, write_private
from .instance import Instance, InstanceError, StartupFailed
from .logfile import DEFAULT_MAX_BYTES
from .process import creation_time, http_status, kill_tree, log_tail, port_accepts, reap, spawn_detached

ENGINE = "command"
_POLL = 0.02
_TAIL = 40


class PatternNotFound(StartupFailed):
    """The ready pattern was not among the first ``max_read_lines`` non-empty lines of output."""


class StartupTimeout(StartupFailed, TimeoutError):
    """The command did not become ready within its start-up timeout (also a :class:`TimeoutError`, as in
    pytest-xprocess)."""


@dataclass(frozen=True)
class Ready:
    """When a started command counts as ready: all the conditions given (none given: as soon as it runs).

    ``pattern`` is searched (``re.search``) in each line of the new process's output; ``max_read_lines``
    (None: no limit) fails the start when that many non-empty lines went by without it; ``port`` must accept
    a TCP connection on 127.0.0.1; ``url`` must answer HTTP with a status below 500; ``check`` (not part of
    the fingerprint) is called until it returns true.
    """

    pattern: str | None = None
    port: int | None = None
    url: str | None = None
    max_read_lines: int | None = None
    check: Callable[[], bool] | None = None

    @classmethod
    def of(cls, ready: Ready | str | Mapping[str, Any] | None) -> Ready:
        """A ``Ready`` from itself, a pattern string, or a mapping of its fields."""
        if ready is None:
            return cls()
        if isinstance(ready, Ready):
            return ready
        if isinstance(ready, str):
            return cls(pattern=ready)
        unknown = set(ready) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown readiness condition(s) {sorted(unknown)}: use pattern, port, url, "
                             "max_read_lines or check")
        return cls(**ready)

    def validated(self) -> Ready:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(f"the ready pattern {self.pattern!r} is not a valid regular expression: "
                                 f"{error}") from None
        if self.port is not None and not 0 < int(self.port) < 65536:
            raise ValueError(f"the ready port {self.port} is not a TCP port (1-65535)")
        if self.url is not None and not re.match(r"https?://", self.url):
            raise ValueError(f"the ready URL {self.url!r} must start with http:// or https://")
        return self

    def recorded(self) -> dict[str, Any]:
        """What goes into the fingerprint and the state record (the check callable cannot)."""
        return {"pattern": self.pattern, "port": self.port, "url": self.url}


def answers(recorded_ready: Mapping[str, Any], timeout: float = 1.0) -> bool:
    """A running command still serves: its ready port accepts and its ready URL answers (when it has them)."""
    port, url = recorded_ready.get("port"), recorded_ready.get("url")
    if port and not port_accepts("127.0.0.1", int(port), timeout):
        return False
    return not url or 0 < http_status(url, timeout=timeout)[0] < 500


def ensure_command(
    name: str,
    command: Sequence[str | os.PathLike[str]],
    *,
    ready: Ready | str | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | Path | None = None,
    startup_timeout: float = 60.0,
    fresh: bool = False,
    home: Path | None = None,
    max_log_bytes: int = DEFAULT_MAX_BYTES,
    keep_log: bool = True,
) -> Instance:
    """A running instance of ``command`` named ``name``: the live one if its fingerprint matches, else a new one.

    ``env`` is added to this process's environment (``inherit_env=False``: it is the whole environment, as
    ``subprocess.Popen(env=...)``); ``cwd`` defaults to the instance folder. ``fresh`` restarts a live one;
    ``keep_log=False`` empties the log when the command is (re)started.
    A command that is not found, a working directory that does not exist or an unusable state folder fail
    at once; a command that exits during start-up fails at once with its log tail.
    """
    from .manager import _forget, _locked, _prepare_folder, _terminate, _trim_log

    readiness = Ready.of(ready).validated()
    paths = InstancePaths.of(name, home)
    _prepare_folder(paths)
    arguments = [os.fspath(argument) for argument in command]
    if not arguments:
        raise ValueError("no command given: pass the program and its arguments (after `--` on the command line)")
    workdir = Path(cwd).resolve() if cwd is not None else paths.root
    if not workdir.is_dir():
        raise InstanceError(f"the working directory {workdir} of instance {name!r} does not exist")
    full_env = {**(os.environ if inherit_env else {}), **(env or {})}
    program = _find_program(arguments[0], full_env, workdir)
    spec = {"command": arguments, "cwd": str(workdir), "ready": readiness.recorded(),
            "env": {key: value for key, value in full_env.items() if os.environ.get(key) != value}}
    fingerprint = hashlib.sha256(json.dumps({"engine": ENGINE, **spec, "version": __version__},
                                            sort_keys=True).encode()).hexdigest()[:16]
    with _locked(paths, startup_timeout):
        current = Instance.load(paths)
        if current is not None:
            if not current.is_alive():
                reap(current.pid)
                _forget(paths)
            elif (fresh or current.fingerprint != fingerprint or current.status != "running"
                  or not answers(current.settings.get("ready", {}))):
                _terminate(current)  # another configuration, or a start that was never finished: replace it
            else:
                return current
        if keep_log:
            _trim_log(paths.log_file)
        else:
            paths.log_file.write_bytes(b"")
        return _start(paths, [program, *arguments[1:]], full_env, workdir, readiness, spec, fingerprint,
                      startup_timeout, max_log_bytes)


def _find_program(program: str, env: Mapping[str, str], workdir: Path) -> str:
    """The executable to run, checked now so that a typo fails with its name rather than a dead child."""
    if os.sep in program:
        path = (workdir / program) if not os.path.isabs(program) else Path(program)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise InstanceError(f"the command {program!r} does not exist or is not executable (looked at {path})")
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise InstanceError(f"the command {program!r} was not found on PATH ({env.get('PATH', os.defpath)}); "
                            "install it or give its full path")
    return found


def _start(paths: InstancePaths, command: list[str], env: dict[str, str], workdir: Path, readiness: Ready,
           spec: dict[str, Any], fingerprint: str, startup_timeout: float, max_log_bytes: int) -> Instance:
    supervisor_spec = paths.root / "command.json"
    write_private(supervisor_spec, json.dumps({"command": command, "env": {"PYTHONUNBUFFERED": "1", **env},
                                               "cwd": str(workdir), "log": str(paths.log_file),
                                               "max_bytes": max_log_bytes}))
    with open(paths.log_file, "a") as log:
        log.write(f"--- pacsbox lifecycle: starting command instance {paths.name!r} at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(command)}\n")
    output_starts = paths.log_file.stat().st_size  # the pattern is looked for in the new process's lines only
    supervisor = [sys.executable, str(Path(__file__).with_name("supervise.py")), str(supervisor_spec)]
    pid = spawn_detached(supervisor, paths.log_file, dict(os.environ))
    instance = Instance(
        name=paths.name, engine=ENGINE, pid=pid, created=creation_time(pid) or time.time(), host="127.0.0.1",
        http_port=int(readiness.port or 0), dicom_port=0, aet="", users={}, authentication=False,
        data_dir=str(workdir), state_dir=str(paths.root), fingerprint=fingerprint, started_at=time.time(),
        status="starting", settings={**spec, "full_env": env, "max_log_bytes": max_log_bytes},
    )
    instance.save()  # recorded at once: a caller killed now leaves a findable process
    try:
        _wait_until_ready(instance, paths, readiness, output_starts, time.monotonic() + startup_timeout,
                          startup_timeout)
    except BaseException:  # a failure or Ctrl-C during start-up must not leave a half-started command behind
        kill_tree(pid, instance.created, grace=5)
        from .manager import _forget

        _forget(paths)
        raise
    instance.status = "running"
    instance.save()
    instance.spawned = True  # this call started it (see Instance.spawned)
    return instance


def _wait_until_ready(instance: Instance, paths: InstancePaths, readiness: Ready, output_starts: int,
                      deadline: float, timeout: float) -> None:
    matched = readiness.pattern is None
    output = _OutputReader(paths.log_file, output_starts)
    pending = "the ready pattern"
    while True:
        if not instance.is_alive():
            code = reap(instance.pid, wait=1.0)
            raise StartupFailed(f"command instance {instance.name!r} exited during start-up"
                                f"{'' if code is None else f' with status {code}'}: "
                                f"{shlex.join(instance.settings['command'])}; log {paths.log_file}:\n"
                                f"{log_tail(paths.log_file, _TAIL, output_starts)}")
        if not matched:
            matched = _pattern_seen(instance, paths, readiness, output, output_starts)
        if matched:
            pending = _unmet(readiness)
            if pending is None:
                return
        if time.monotonic() > deadline:
            raise StartupTimeout(f"command instance {instance.name!r} was not ready within {timeout:g} s: "
                                 f"{pending} ({_describe(readiness)}) never came; log {paths.log_file}:\n"
                                 f"{log_tail(paths.log_file, _TAIL, output_starts)}")
        time.sleep(_POLL)


class _OutputReader:
    """The new process's output, read as it comes, across a rotation of the log (the supervisor renames
    ``server.log`` to ``server.log.1``: the rest of the old file is read there, then the new one from 0)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path, self.position, self.text = path, start, ""
        self.inode = path.stat().st_ino

    def read(self) -> str:
        try:
            inode = self.path.stat().st_ino
        except OSError:
            return self.text
        if inode != self.inode:
            rotated = self.path.with_name(self.path.name + ".1")
            with contextlib.suppress(OSError):
                if rotated.stat().st_ino == self.inode:
                    self._read_from(rotated)
            self.inode, self.position = inode, 0
        with contextlib.suppress(OSError):
            self._read_from(self.path)
        return self.text

    def _read_from(self, path: Path) -> None:
        with open(path, "rb") as handle:
            handle.seek(self.position)
            chunk = handle.read(1024 * 1024)
            self.position = handle.tell()
        self.text += chunk.decode("utf-8", "replace")


def _pattern_seen(instance: Instance, paths: InstancePaths, readiness: Ready, output: _OutputReader,
                  output_starts: int) -> bool:
    """True once the pattern is in the output; raises :class:`PatternNotFound` when ``max_read_lines``
    non-empty lines went by without it."""
    lines = [line for line in output.read().splitlines(keepends=True) if line.strip()]
    limit = readiness.max_read_lines
    pattern = re.compile(readiness.pattern or "")
    if any(pattern.search(line) for line in lines[:limit]):
        return True
    complete = sum(1 for line in lines if line.endswith("\n"))
    if limit is not None and complete >= limit:
        raise PatternNotFound(f"command instance {instance.name!r}: the ready pattern {readiness.pattern!r} was "
                              f"not found within the first {limit} lines of output; log {paths.log_file}:\n"
                              f"{log_tail(paths.log_file, _TAIL, output_starts)}")
    return False


def _unmet(readiness: Ready) -> str | None:
    """The first readiness condition after the pattern that does not hold yet (None: ready)."""
    if readiness.port is not None and not port_accepts("127.0.0.1", int(readiness.port), 0.5):
        return f"a connection to port {readiness.port}"
    if readiness.url is not None and not 0 < http_status(readiness.url, timeout=1.0)[0] < 500:
        return f"an HTTP answer from {readiness.url}"
    if readiness.check is not None and not readiness.check():
        return "a true result of the start-up check"
    return None


def _describe(readiness: Ready) -> str:
    parts = [f"pattern {readiness.pattern!r}" if readiness.pattern is not None else "",
             f"port {readiness.port}" if readiness.port is not None else "",
             f"URL {readiness.url}" if readiness.url is not None else "",
             "start-up check" if readiness.check is not None else ""]
    return ", ".join(part for part in parts if part) or "no condition"


def describe_instance(instance: Instance) -> str:
    """One line for the CLI: the command and what made it ready."""
    readiness = Ready(**instance.settings.get("ready", {}))
    return f"{shlex.join(instance.settings.get('command', []))}; ready on {_describe(readiness)}"
