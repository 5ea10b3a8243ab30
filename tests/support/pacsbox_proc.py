"""Start a real ``pacsbox serve`` process on a free loopback port for face tests.

A server is forked by the suite's warm-start template (the product's own, ``pacsbox.lifecycle.template``) when
the run has one (``TEMPLATE_HOME_VARIABLE``, set by tests/conftest.py): the same ``pacsbox serve`` command line,
run by the CLI in a process that has imported pacsbox already, in about 0.05 CPU-s instead of the 1 CPU-s a fresh
interpreter pays to start and load what its first requests need. Tests of start-up itself ask for ``cold=True``;
a server with its own environment or open-file limit is spawned too (a fork would inherit the template's).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

DEFAULT_USERS = {"admin": "admin"}
# the folder (a $PACSBOX_HOME of its own) of the run's template; unset: every server is spawned
TEMPLATE_HOME_VARIABLE = "PACSBOX_TEST_TEMPLATE_HOME"
LENT_TEMPLATE_VARIABLE = "PACSBOX_TEMPLATE_HOME"  # pacsbox's: the home whose template every home borrows


class ForkedServer:
    """The part of ``subprocess.Popen`` the tests use, for a server the template forked: it is the template's
    child, not ours (the kernel reaps it), so its end is watched through a pidfd and its exit status read from
    the file it writes as it exits (none when a signal ended it: then it is minus that signal, as Popen says)."""

    def __init__(self, pid: int, exit_file: Path) -> None:
        self.pid = pid
        self.exit_file = exit_file
        self.returncode: int | None = None
        self._signal = signal.SIGKILL  # what ended it when it wrote no status and we sent nothing
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            self._pidfd = None
            self._finish()

    def poll(self) -> int | None:
        if self.returncode is None and self._pidfd is not None and select.select([self._pidfd], [], [], 0)[0]:
            self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._pidfd is not None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(["pacsbox", "serve", f"(forked, pid {self.pid})"], timeout or 0)
            self._finish()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            self._signal = signal.Signals(signum)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _finish(self) -> None:
        from pacsbox.lifecycle.warm import exit_status

        status = exit_status(self.exit_file, self.pid)
        self.returncode = status if status is not None else -int(self._signal)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class RunningPacsbox:
    """A ``python -m pacsbox serve`` child process with its own data directory; a context manager.

    The URL comes from the ready line the server prints, so the test exercises the CLI contract too.
    """

    def __init__(self, config: dict[str, Any] | None = None, *, startup_timeout: float = 90.0,
                 open_files: tuple[int, int] | None = None, env: dict[str, str] | None = None,
                 cold: bool = False) -> None:
        """``open_files``: the (soft, hard) RLIMIT_NOFILE the server starts with; ``env``: variables added to
        its environment; ``cold``: a fresh interpreter even when the run's template could fork the server (for
        tests of what a server does as it starts: its imports, its first association)."""
        self.directory = Path(tempfile.mkdtemp(prefix="pacsbox-test-"))
        self.data_dir = self.directory / "data"
        self.config = {"RegisteredUsers": DEFAULT_USERS, "HttpPort": 0, "DicomPort": 0, **(config or {})}
        self.startup_timeout = startup_timeout
        self.open_files = open_files
        self.env = env or {}
        self.cold = cold
        self.process: subprocess.Popen[str] | ForkedServer | None = None
        self.url = ""
        self.aet = ""
        self.dicom_port = 0
        self.ready_line = ""
        self._output: list[str] = []
        self._log: Path | None = None  # a forked server's output (a spawned one's comes through a pipe)
        self._log_offset = 0

    @property
    def auth(self) -> tuple[str, str]:
        return next(iter(self.config["RegisteredUsers"].items()))

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = self.auth
        return session

    def start(self) -> RunningPacsbox:
        config_path = self.directory / "config.json"
        config_path.write_text("// written by the test suite\n" + json.dumps(self.config))
        command = [sys.executable, "-m", "pacsbox", "serve", "--config", str(config_path),
                   "--data-dir", str(self.data_dir)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        ready = threading.Event()
        if not self._fork(command, env, ready):
            self._spawn(command, env, ready)
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.02):
            if self._log is not None:
                self._read_log(ready)
            # the ready line may land between the wait and this check (a loaded machine, 4 workers on 2 cores)
            if (self.process.poll() is not None or time.monotonic() > deadline) and not ready.is_set():
                if self._log is not None:
                    self._read_log(ready)
                if ready.is_set():
                    break
                self.stop()
                self.output()
                raise RuntimeError("pacsbox serve did not become ready:\n" + "".join(self._output[-40:]))
        return self

    def _fork(self, command: list[str], env: dict[str, str], ready: threading.Event) -> bool:
        """Have the run's template fork the server; False when it cannot (then it is spawned)."""
        home = os.environ.get(TEMPLATE_HOME_VARIABLE)
        if self.cold or self.open_files or self.env or not home:
            return False
        from pacsbox.lifecycle import warm

        log, exit_file = self.directory / "serve.log", self.directory / "exit.json"
        pid = warm.fork_server(Path(home), command, log, env, exit_file=exit_file)
        if pid is None:
            return False
        self._log = log
        self.process = ForkedServer(pid, exit_file)
        self._read_log(ready)
        return True

    def _spawn(self, command: list[str], env: dict[str, str], ready: threading.Event) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, preexec_fn=self._limit_open_files if self.open_files else None)

        def pump() -> None:
            assert isinstance(self.process, subprocess.Popen) and self.process.stdout
            for line in self.process.stdout:
                self._output.append(line)
                self._seen(line, ready)

        threading.Thread(target=pump, daemon=True).start()

    def _read_log(self, ready: threading.Event, to_the_end: bool = False) -> None:
        """The complete lines a forked server wrote since the last look (``to_the_end``: a last unfinished one
        too, once it has exited)."""
        assert self._log is not None
        try:
            with open(self._log, "rb") as log:
                log.seek(self._log_offset)
                data = log.read()
        except FileNotFoundError:
            return
        complete = data if to_the_end else data[:data.rfind(b"\n") + 1]
        self._log_offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines(keepends=True):
            self._output.append(line)
            self._seen(line, ready)

    def _seen(self, line: str, ready: threading.Event) -> None:
        if line.startswith("pacsbox ready:") and not ready.is_set():
            self.ready_line = line.strip()
            self.url = line.split(" at ", 1)[1].split()[0]
            dicom = re.search(r"DICOM AET (\S+) at \S+:(\d+);", line)
            if dicom:
                self.aet, self.dicom_port = dicom.group(1), int(dicom.group(2))
            ready.set()

    def _limit_open_files(self) -> None:
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def output(self) -> str:
        if self._log is not None:
            self._read_log(threading.Event(), to_the_end=self.process is not None and self.process.poll() is not None)
        return "".join(self._output)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> RunningPacsbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)
