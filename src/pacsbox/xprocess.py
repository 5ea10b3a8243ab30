"""A drop-in for pytest-xprocess 1.0's public API, on pacsbox's lifecycle manager (engine ``command``).

Change ``from xprocess import ProcessStarter`` to ``from pacsbox.xprocess import ProcessStarter`` and keep the
fixtures: ``xprocess.ensure(name, Starter, restart=False)`` returns ``(pid, logpath)``, ``xprocess.getinfo(name)``
has ``pid``, ``logpath``, ``isrunning()`` and ``terminate()``, and ``pytest --xkill`` / ``--xshow`` act on them.
What pacsbox adds: xdist workers share one process under a file lock; a process is reused only while its
arguments, environment, working directory and pattern are unchanged (otherwise restarted); a process that
dies at start fails at once with its log; Ctrl-C during a start leaves nothing running; the log is capped and
rotated; the processes are visible to ``pacsbox ls`` and stopped by ``pacsbox stop NAME``.

Registration (no clash with pytest-xprocess): pacsbox's pytest plugin registers this module as the plugin
``pacsbox.xprocess`` when pytest-xprocess is not installed, or when it is disabled with ``-p no:xprocess``. With
pytest-xprocess installed and enabled, its own fixture and options stay in charge, and this module's classes
can still be imported. ``-p pacsbox.xprocess`` loads it explicitly (with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).

State lives under ``$PACSBOX_HOME/instances/<name>`` (not pytest's cache folder), so every project run by a
user shares one namespace of names, as ``pacsbox start`` does.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ProcessStarter", "XProcess", "XProcessInfo"]

PLUGIN_NAME = "pacsbox.xprocess"
_XPROCESS = pytest.StashKey["XProcess"]()
# Popen keywords that only shape how the caller would read the output: the output goes to the log anyway
_IGNORED_POPEN = frozenset({"text", "universal_newlines", "bufsize", "encoding", "errors", "close_fds"})


class ProcessStarter(ABC):
    """What to start and how to tell it started (subclass it; pytest-xprocess's class attributes).

    ``args`` (the command), ``pattern`` (a regular expression searched in each line of the new process's
    output), ``env`` (None: this environment; else the whole environment, as for ``Popen``), ``timeout``
    (seconds, then :class:`TimeoutError`), ``max_read_lines`` (non-empty lines read for ``pattern`` before a
    :class:`RuntimeError`), ``terminate_on_interrupt`` (stop it when the test run is interrupted),
    ``popen_kwargs`` (``cwd``, ``env`` and ``shell`` are honoured) and ``startup_check()`` (polled after the
    pattern matched until true).
    """

    env: Mapping[str, str] | None = None
    timeout: float = 120
    popen_kwargs: Mapping[str, Any] = {}  # read only, as in pytest-xprocess
    max_read_lines: int = 50
    terminate_on_interrupt: bool = False

    def __init__(self, control_dir: Path, process: XProcess) -> None:
        self.control_dir = control_dir
        self.process = process

    @property
    @abstractmethod
    def args(self) -> Sequence[Any]:
        """The command and its arguments."""

    @property
    @abstractmethod
    def pattern(self) -> str:
        """The regular expression that the output shows once the process is ready."""

    def startup_check(self) -> bool:
        """Whether the process answers (called after ``pattern`` matched, until true or ``timeout``)."""
        return True


class XProcessInfo:
    """One named process: ``pid``, ``logpath``, ``controldir``, ``isrunning()`` and ``terminate()``."""

    def __init__(self, home: Path | None, name: str) -> None:
        from .lifecycle import Instance, InstancePaths

        self.name = name
        self._home = home
        paths = InstancePaths.of(name, home)
        self.controldir = paths.root
        self.logpath = paths.log_file
        self._instance = Instance.load(paths)
        self.pid: int | None = self._instance.pid if self._instance is not None else None

    def isrunning(self) -> bool:
        """True while the recorded process runs (a dead, zombie or reused PID is not running)."""
        return self._instance is not None and self._instance.is_alive()

    def terminate(self, *, kill_proc_tree: bool = True, timeout: float = 20) -> int:
        """SIGTERM the process (and, by default, its whole tree), SIGKILL what is left after ``timeout``.

        Returns pytest-xprocess's codes: 1 terminated, 0 nothing running, -1 failed to terminate.
        """
        from .lifecycle import stop
        from .lifecycle.process import kill_tree

        if not self.isrunning():
            return 0
        assert self._instance is not None
        try:
            if kill_proc_tree:
                stop(self.name, grace=timeout, home=self._home)
            else:  # the supervisor and the command it runs (its parent, for the user), not their children
                _terminate_command_only(self._instance.pid, self._instance.created, timeout)
                if self.isrunning():
                    kill_tree(self._instance.pid, self._instance.created, grace=1)
                stop(self.name, grace=1, home=self._home)
        except (OSError, RuntimeError) as error:
            print(f"could not terminate process {self.name!r} (pid {self.pid}): {error}")
            return -1
        return -1 if self.isrunning() else 1


def _terminate_command_only(pid: int, created: float, timeout: float) -> None:
    import psutil

    from .lifecycle.process import is_same_process

    if not is_same_process(pid, created):
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        supervisor = psutil.Process(pid)
        family = [supervisor, *supervisor.children(recursive=False)]
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        psutil.wait_procs(family, timeout=timeout)


class XProcess:
    """pytest-xprocess's ``xprocess`` fixture object: ``ensure``, ``getinfo``."""

    def __init__(self, config: pytest.Config | None = None, rootdir: Path | None = None,
                 log: Any = None) -> None:
        self.config = config
        self.rootdir = rootdir  # the $PACSBOX_HOME in use (None: the environment's)
        self.log = log
        self._started: dict[str, bool] = {}  # name -> terminate_on_interrupt, for the processes this run started
        self._log_offsets: dict[str, int] = {}  # name -> how much of its log failing tests have already shown

    def getinfo(self, name: str) -> XProcessInfo:
        """The recorded process named ``name`` (its ``pid`` is None when there is none)."""
        return XProcessInfo(self.rootdir, name)

    def ensure(self, name: str, preparefunc: type[ProcessStarter] | Callable[..., Any],
               restart: bool = False, persist_logs: bool = True) -> tuple[int, Path]:
        """``(pid, logpath)`` of a running process named ``name``: the live one if it was started with the
        same arguments, environment, working directory and pattern (and ``restart`` is false), else a new one.

        ``persist_logs=False`` empties the log when the process is (re)started. Raises :class:`RuntimeError`
        when the process exits during start-up (at once, with its log tail) or the pattern is not in its first
        ``max_read_lines`` lines, :class:`TimeoutError` after ``timeout``.
        """
        from .lifecycle import InstancePaths, Ready, ensure_command
        from .lifecycle.manager import _prepare_folder

        paths = InstancePaths.of(name, self.rootdir)
        _prepare_folder(paths)
        log_before = paths.log_file.stat().st_size  # failing tests show what came after: a new start's lines too
        command, pattern, check, env, cwd, options = _describe_starter(preparefunc, paths.root, self)
        ready = Ready(pattern=pattern, max_read_lines=options.get("max_read_lines", 50), check=check)
        instance = ensure_command(name, command, ready=ready, env=env, inherit_env=env is None, cwd=cwd,
                                  startup_timeout=float(options.get("timeout", 120)), fresh=restart,
                                  home=self.rootdir, keep_log=persist_logs)
        self._started[name] = bool(options.get("terminate_on_interrupt", False))
        self._log_offsets.setdefault(name, log_before)
        return instance.pid, paths.log_file

    # -- what the plugin's hooks call --------------------------------------------------------------------------
    def _infos(self) -> Iterator[XProcessInfo]:
        from .lifecycle import list_instances

        for name, instance, _ in list_instances(self.rootdir):
            if instance is None or instance.engine == "command":
                yield self.getinfo(name)

    def _xkill(self, write: Callable[[str], Any] = print) -> int:
        status = {1: "TERMINATED", -1: "FAILED TO TERMINATE", 0: "NO PROCESS FOUND"}
        for info in self._infos():
            write(f"{info.pid} {info.name} {status[info.terminate()]}")
        return 0

    def _xshow(self, write: Callable[[str], Any] = print) -> int:
        for info in self._infos():
            write(f"{info.pid} {info.name} {'LIVE' if info.isrunning() else 'DEAD'} {info.logpath}")
        return 0

    def _interrupted(self) -> None:
        for name, terminate in self._started.items():
            if terminate:
                self.getinfo(name).terminate()

    def _new_log(self) -> list[tuple[str, str]]:
        """(name, text) of what each process of this run wrote since the last call."""
        sections = []
        for name, offset in self._log_offsets.items():
            path = self.getinfo(name).logpath
            with contextlib.suppress(OSError), open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(offset if offset <= size else 0)
                text = handle.read(64 * 1024).decode("utf-8", "replace")
                self._log_offsets[name] = handle.tell()
                if text.strip():
                    sections.append((name, text))
        return sections


def _describe_starter(preparefunc: Any, control_dir: Path, process: XProcess
                      ) -> tuple[list[str], str | None, Callable[[], bool] | None, Mapping[str, str] | None,
                                 Path | None, dict[str, Any]]:
    """Command, pattern, check, env, cwd and the other settings from a starter class (pytest-xprocess's, or
    any class with its attributes) or the old callable form ``preparefunc(cwd) -> (pattern, args)``."""
    if isinstance(preparefunc, type):
        starter = preparefunc(control_dir, process)
        options = {key: getattr(starter, key) for key in ("timeout", "max_read_lines", "terminate_on_interrupt")
                   if hasattr(starter, key)}
        popen = dict(getattr(starter, "popen_kwargs", None) or {})
        check = starter.startup_check if hasattr(starter, "startup_check") else None
        command, pattern, env = list(starter.args), starter.pattern, getattr(starter, "env", None)
    else:
        prepared = preparefunc(control_dir)
        if not (isinstance(prepared, tuple) and len(prepared) == 2):
            raise TypeError("a callable starter must return (pattern, args); or subclass "
                            "pacsbox.xprocess.ProcessStarter")
        pattern, command = prepared
        check = pattern if callable(pattern) else None
        pattern = None if callable(pattern) else pattern
        command, env, options, popen = list(command), None, {}, {}
    env = popen.pop("env", env)
    cwd = popen.pop("cwd", None)
    arguments = [str(argument) for argument in command]
    if popen.pop("shell", False):
        arguments = ["/bin/sh", "-c", shlex.join(arguments) if len(arguments) > 1 else arguments[0]]
    unsupported = sorted(set(popen) - _IGNORED_POPEN)
    if unsupported:
        raise ValueError(f"popen_kwargs {unsupported} are not supported by pacsbox.xprocess (it starts the "
                         "process detached itself): cwd, env and shell are")
    return arguments, pattern, check, env, Path(cwd) if cwd is not None else None, options


# -- the pytest plugin (registered as "pacsbox.xprocess", see the module docstring) ---------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xprocess", "managing external processes across test runs [pacsbox.xprocess]")
    group.addoption("--xkill", action="store_true", help="terminate every external process (engine command)")
    group.addoption("--xshow", action="store_true", help="show the external processes and their log files")


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not (config.getoption("xkill") or config.getoption("xshow")):
        return None
    manager = XProcess(config)
    return manager._xkill() if config.getoption("xkill") else manager._xshow()


@pytest.fixture(scope="session")
def xprocess(request: pytest.FixtureRequest) -> XProcess:
    """Start, reuse and inspect long-running processes that outlive the test run (pytest-xprocess's API)."""
    manager = XProcess(request.config)
    request.config.stash[_XPROCESS] = manager
    return manager


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_InterruptHandler(config), f"{PLUGIN_NAME}.interrupt")


class _InterruptHandler:
    """Ctrl-C: a start in progress needs nothing here (the lifecycle manager stops it); processes whose starter
    sets ``terminate_on_interrupt`` are stopped. ``pytest_keyboard_interrupt`` gets no config: this holds it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        manager = self.config.stash.get(_XPROCESS, None)
        if manager is not None:
            manager._interrupted()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test gets what each process of this run logged since the previous report."""
    report = yield
    manager = item.config.stash.get(_XPROCESS, None)
    if manager is not None and report.failed:
        for name, text in manager._new_log():
            report.sections.append((f"{name} log", text))
    return report


def register(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register this module as a pytest plugin unless pytest-xprocess is installed and enabled (or this
    module is registered already, e.g. with ``-p pacsbox.xprocess``)."""
    import importlib.util
    import sys

    module = sys.modules[__name__]
    if pluginmanager.is_registered(module) or pluginmanager.get_plugin(PLUGIN_NAME) is not None:
        return
    if importlib.util.find_spec("xprocess") is not None and not pluginmanager.is_blocked("xprocess"):
        return
    pluginmanager.register(module, PLUGIN_NAME)
