"""The warm-start template (``python -m pacsbox.lifecycle.template FOLDER``): a process that has imported what
``pacsbox serve`` needs, runs no thread, opens no archive, and forks a new server on request.

A forked server is the same program a spawned ``python -m pacsbox serve ...`` runs, minus the 0.5-2 s of
interpreter start-up and imports. It is made to look like a spawned one: its own session and process group,
stdin from /dev/null, stdout and stderr appended to its log, the requester's environment and working directory,
the command line's own arguments run by the CLI, and its exit status written where the manager looks for it.
The template is only its parent: stopping the template stops the template alone (its servers are re-parented to
init), and as the template ignores SIGCHLD the kernel reaps a server that exits.

Requests come over an abstract Unix socket named after the template folder (no path length limit, no file left
behind), accepted only from the same user (``SO_PEERCRED``). One JSON object a request::

    {"fingerprint": "...", "argv": ["serve", "--config", ...], "env": {...}, "cwd": "...", "log_file": "...",
     "exit_file": "..."}

answered by ``{"pid": N}`` or ``{"error": "...", "stale": true|false}``. The template exits when it is stale (its
interpreter, package or imported source files changed: it says so, and the requester starts a new one), when
its record (``template.json``) no longer names it, on SIGTERM, or after ``PACSBOX_TEMPLATE_IDLE`` seconds
(default 900) without a request: it is never left behind for long.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

# what ``pacsbox serve`` imports on its way to answering, and what its first requests import
PREIMPORTS = (
    "pacsbox.cli", "pacsbox.cli_serve", "pacsbox.server", "pacsbox.http_app", "pacsbox.http_protocol",
    "pacsbox.core.archive", "pacsbox.core.assembly", "pacsbox.core.config", "pacsbox.core.config_check",
    "pacsbox.faces.dimse.scp_services", "pacsbox.faces.dimse.scu_services", "pacsbox.lua.engine",
    "pacsbox.lifecycle.logfile",
    "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl", "uvicorn.loops.asyncio",
    "uvicorn.lifespan.off", "uvicorn.logging", "uvicorn.loops.auto", "uvicorn.loops.uvloop", "uvloop", "asyncio",
    "sqlite3", "pydicom", "pynetdicom",
)
_TEMPLATE_CWD = os.getcwd()
MAX_REQUEST = 4 * 1024 * 1024
DEFAULT_IDLE = 900.0


def socket_name(folder: Path) -> bytes:
    """The abstract socket address of the template of ``folder`` (one per ``$PACSBOX_HOME``)."""
    digest = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:24]
    return b"\0pacsbox-template-" + digest.encode()


def runtime_fingerprint(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """What a forked server inherits from the template rather than from its request: the interpreter, the
    package's version and place, and the environment read while importing (``PYTHON*``)."""
    from .. import __file__ as package_file
    from .. import __version__

    env = os.environ if env is None else env
    python_env = {key: value for key, value in env.items() if key.startswith("PYTHON") and key != "PYTHONUNBUFFERED"}
    canonical = json.dumps({"python": sys.executable, "version": __version__, "package": package_file,
                            "env": python_env}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _source_times() -> dict[str, float]:
    """Modification times of every imported pacsbox source file (a changed one makes the template stale)."""
    times = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and getattr(module, "__name__", "").startswith("pacsbox"):
            try:
                times[path] = os.stat(path).st_mtime
            except OSError:
                times[path] = -1.0
    return times


class _Stopped(Exception):
    """SIGTERM or SIGINT: leave the wait at once (a flag would wait for select's timeout)."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stopped


class Template:
    """The listening template: one request at a time (a fork takes a few milliseconds)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.record = folder / "template.json"
        self.fingerprint = runtime_fingerprint()
        self.sources = _source_times()
        self.idle = float(os.environ.get("PACSBOX_TEMPLATE_IDLE") or DEFAULT_IDLE)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 2.0
        while True:  # a stale template that was just told to go may still hold the name for a moment
            try:
                self.listener.bind(socket_name(folder))
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.listener.close()
                    raise
                time.sleep(0.02)
        self.listener.listen(64)

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # servers that exit are reaped by the kernel: no zombies
        last_request = time.monotonic()
        print(f"pacsbox template ready (pid {os.getpid()}, {len(sys.modules)} modules imported)", flush=True)
        why = "stopped"
        try:
            while True:
                readable, _, _ = select.select([self.listener], [], [], 1.0)
                if readable:
                    connection, _ = self.listener.accept()
                    with connection:
                        last_request = time.monotonic()
                        if not self._answer(connection):
                            why = "stale"
                            break
                elif time.monotonic() - last_request > self.idle:
                    why = f"idle for {self.idle:g} s"
                    break
                elif not self._still_recorded():
                    why = "its record is gone"
                    break
        except _Stopped:
            pass
        finally:
            self.listener.close()
        print(f"pacsbox template {os.getpid()} exits: {why}", flush=True)

    def _still_recorded(self) -> bool:
        try:
            return json.loads(self.record.read_text()).get("pid") == os.getpid()
        except (OSError, ValueError):
            return False

    def _answer(self, connection: socket.socket) -> bool:
        """Fork the requested server and send its PID; False when this template should exit."""
        connection.settimeout(5.0)
        try:
            uid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.getuid():
                _send(connection, {"error": "refused: another user", "stale": False})
                return True
            request = json.loads(receive_line(connection))
            if request.get("fingerprint") != self.fingerprint or _source_times() != self.sources:
                _send(connection, {"error": "the template is stale (pacsbox or Python changed)", "stale": True})
                return False
            if threading.active_count() != 1:  # never fork a process with threads (their locks would be copied)
                _send(connection, {"error": "the template runs threads", "stale": True})
                return False
            pid = self._fork(request, connection)
            _send(connection, {"pid": pid})
        except (OSError, ValueError, KeyError, TypeError) as error:
            with contextlib.suppress(OSError):
                _send(connection, {"error": f"{type(error).__name__}: {error}", "stale": False})
        return True

    def _fork(self, request: dict[str, Any], connection: socket.socket) -> int:
        """One fork (a second one, to re-parent the server to init, would cost as much again: 5-20 ms for a
        process of this size); the template ignores SIGCHLD, so the kernel reaps its servers as they exit."""
        argv, env, cwd, log_file = (list(request["argv"]), dict(request["env"]), str(request["cwd"]),
                                    str(request["log_file"]))
        exit_file = request.get("exit_file")
        sys.stdout.flush()
        sys.stderr.flush()
        server = os.fork()
        if server == 0:
            try:
                self.listener.close()
                connection.close()
                _run_server(argv, env, cwd, log_file, exit_file)
            finally:
                os._exit(70)
        return server


def _run_server(argv: list[str], env: dict[str, str], cwd: str, log_file: str, exit_file: str | None) -> None:
    """In the forked server: become what ``spawn_detached`` would have started, then run the CLI. Its exit
    status goes to ``exit_file`` (the manager, not being its parent, cannot wait for it)."""
    os.setsid()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):  # as a freshly started program has them
        signal.signal(signum, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(cwd)
    if sys.path and sys.path[0] == _TEMPLATE_CWD:  # as `python -m` run there would have it
        sys.path[0] = cwd
    take_environment(env)
    _set_process_name(b"pacsbox-serve")
    sys.argv = ["pacsbox", *argv]
    code = 1
    try:
        from ..cli_serve import command_line

        command_line(argv, prog_name="pacsbox")  # as ``python -m pacsbox`` runs it
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # what an uncaught exception would print, then the same status
        import traceback

        traceback.print_exc()
    finally:
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        if exit_file:
            with contextlib.suppress(OSError):
                Path(exit_file).write_text(json.dumps({"pid": os.getpid(), "status": code}))
        os._exit(code)


def _set_process_name(name: bytes) -> None:
    """What ``ps -o comm`` and ``top`` show (the command line stays the template's): prctl(PR_SET_NAME)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def receive_line(connection: socket.socket) -> bytes:
    """One newline-ended message of the template's protocol (a request, or its answer), at most MAX_REQUEST bytes."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    return data


def _send(connection: socket.socket, answer: dict[str, Any]) -> None:
    connection.sendall(json.dumps(answer).encode() + b"\n")


def preimport() -> None:
    """Import what serving needs; a module that cannot load is left for the server to report as it would."""
    import importlib

    for name in PREIMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def take_environment(env: dict[str, str]) -> None:
    """Make ``env`` this process's environment, as a new process started with it would see it: the values the
    template read from its own environment and kept are read again (the folder of temporary files, which the
    warm-up's first temporary folder fixed, and the local time zone)."""
    import tempfile

    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR (TEMP, TMP) again on its next call
    if hasattr(time, "tzset"):
        time.tzset()


def warm_up() -> None:
    """One dry run of a server's start-up on a throwaway folder (archive, DICOM and HTTP apps built, nothing
    served), closed again: what it imports and caches (route regexes, codecs, schema text) the forked servers
    inherit. Then the DICOM contexts are built for the first server of each fork."""
    import tempfile

    from ..core.config import config_from_mapping
    from ..faces.dimse.policy import prebuild_contexts
    from ..faces.warm import warm_web_faces
    from ..server import _Runtime

    with tempfile.TemporaryDirectory(prefix="pacsbox-template-") as folder:
        runtime = _Runtime(config_from_mapping({"HttpPort": 0, "DicomPort": 0, "StorageDirectory": folder}))
        runtime.close()
    warm_web_faces()  # what the web faces load on first use: the forked servers' first requests find it ready
    deadline = time.monotonic() + 5.0
    while threading.active_count() > 1 and time.monotonic() < deadline:  # the DICOM server's threads end
        time.sleep(0.01)
    prebuild_contexts()


def open_files() -> list[str]:
    """Files (not sockets, pipes or devices) this process holds open past stdin, stdout and stderr: a template
    must fork with none (an SQLite file shared with the children would be corrupted)."""
    found = []
    for entry in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # the descriptor listdir itself used
        if int(entry) > 2 and target.startswith("/") and not target.startswith("/dev/"):
            found.append(target)
    return found


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    preimport()
    if os.environ.get("PACSBOX_TEMPLATE_WARM_UP", "1") != "0":
        warm_up()
    if threading.active_count() != 1 or open_files():
        print(f"pacsbox template: threads {threading.enumerate()} or open files {open_files()} remain after the "
              "warm-up; not serving (servers are spawned instead)", flush=True)
        return 1
    import gc

    gc.collect()
    gc.freeze()  # what was imported stays out of every collection: the forked servers do not touch (copy) it
    try:
        template = Template(folder)
    except OSError as error:
        print(f"pacsbox template: cannot listen ({error}); another template serves {folder}", flush=True)
        return 0
    template.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
