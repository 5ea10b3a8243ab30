"""Start a real ``pacsbox serve`` process on a free loopback port for face tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

DEFAULT_USERS = {"admin": "admin"}


class RunningPacsbox:
    """A ``python -m pacsbox serve`` child process with its own data directory; a context manager.

    The URL comes from the ready line the server prints, so the test exercises the CLI contract too.
    """

    def __init__(self, config: dict[str, Any] | None = None, *, startup_timeout: float = 90.0,
                 open_files: tuple[int, int] | None = None, env: dict[str, str] | None = None) -> None:
        """``open_files``: the (soft, hard) RLIMIT_NOFILE the server starts with; ``env``: variables added to
        its environment."""
        self.directory = Path(tempfile.mkdtemp(prefix="pacsbox-test-"))
        self.data_dir = self.directory / "data"
        self.config = {"RegisteredUsers": DEFAULT_USERS, "HttpPort": 0, "DicomPort": 0, **(config or {})}
        self.startup_timeout = startup_timeout
        self.open_files = open_files
        self.env = env or {}
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.aet = ""
        self.dicom_port = 0
        self.ready_line = ""
        self._output: list[str] = []

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
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                                        preexec_fn=self._limit_open_files if self.open_files else None)
        ready = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self._output.append(line)
                if line.startswith("pacsbox ready:") and not ready.is_set():
                    self.ready_line = line.strip()
                    self.url = line.split(" at ", 1)[1].split()[0]
                    dicom = re.search(r"DICOM AET (\S+) at \S+:(\d+);", line)
                    if dicom:
                        self.aet, self.dicom_port = dicom.group(1), int(dicom.group(2))
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.02):
            # the ready line may land between the wait and this check (a loaded machine, 4 workers on 2 cores)
            if (self.process.poll() is not None or time.monotonic() > deadline) and not ready.is_set():
                self.stop()
                raise RuntimeError("pacsbox serve did not become ready:\n" + "".join(self._output[-40:]))
        return self

    def _limit_open_files(self) -> None:
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def output(self) -> str:
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
