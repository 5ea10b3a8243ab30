"""Detached child processes: spawn in their own session, recognise them later, kill their whole tree."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from base64 import b64encode
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

# psutil and urllib.request are imported where they are used: ``pacsbox start NAME`` on a running server only
# reads /proc and sends one HTTP probe, and must return in a few tens of milliseconds as a whole process.


def spawn_detached(command: list[str], log_file: Path, env: dict[str, str]) -> int:
    """Start ``command`` in a new session (so Ctrl-C in the terminal and the end of the test run leave it
    alone), stdin from /dev/null, stdout and stderr appended to ``log_file``; return its PID.

    ``posix_spawn`` rather than ``subprocess.Popen``: no Popen object whose garbage collection would warn about
    a still-running child, and nothing between fork and exec.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_file), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawnp(command[0], command, env, file_actions=actions, setsid=True)


def creation_time(pid: int) -> float | None:
    """When the process started (None if there is no such live process); PID plus this names a process.

    A zombie counts as dead; it is left for ``reap`` so that its exit status can still be reported."""
    if os.path.isdir("/proc/self"):
        return _proc_creation_time(pid)
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _proc_creation_time(pid: int) -> float | None:
    """``creation_time`` read from Linux's /proc as psutil reads it (proc(5): the start time in clock ticks since
    boot, plus the boot time of /proc/stat), so that both give the same figure for the same process."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()  # the command name, in parentheses, may hold spaces
        with open("/proc/stat", "rb") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith(b"btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    if not fields or fields[0] == b"Z":  # a zombie (field 3, state)
        return None
    return float(fields[19]) / os.sysconf("SC_CLK_TCK") + boot  # field 22, starttime


def is_same_process(pid: int, created: float) -> bool:
    """True when ``pid`` is still the process that started at ``created`` (not dead, not a reused PID)."""
    current = creation_time(pid)
    return current is not None and abs(current - created) < 0.05


def reap(pid: int, wait: float = 0.0) -> int | None:
    """Collect the exit status of our own child if it has ended (waiting up to ``wait`` seconds for it to
    finish exiting); None while it runs or if it is not our child."""
    deadline = time.monotonic() + wait
    while True:
        try:
            finished, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if finished:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def kill_tree(pid: int, created: float, grace: float = 10.0) -> bool:
    """SIGTERM the process and its descendants, SIGKILL whatever is left after ``grace`` seconds.

    Returns False when ``pid`` no longer names that process (nothing to kill).
    """
    if not is_same_process(pid, created):
        return False
    import psutil

    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    alive = wait_gone(family, grace, pid)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    wait_gone(alive, 5, pid)
    reap(pid)
    return True


def wait_gone(processes: list[psutil.Process], timeout: float, own_child: int | None = None) -> list[psutil.Process]:
    """Wait until the processes are gone; a zombie counts as gone (its parent, perhaps another test run, reaps
    it whenever it likes). ``own_child``: a child of this process among them, reaped as it exits. Returns those
    still running at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if own_child is not None:
            reap(own_child)
        alive = [process for process in processes if _running(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _running(process: psutil.Process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def port_accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_status(host: str, port: int, path: str, auth: tuple[str, str] | None = None,
                 timeout: float = 2.0) -> int:
    """The status of ``GET path`` over plain HTTP/1.0 (0 when nothing answered): the readiness probe of a running
    server, on the hot path of ``pacsbox start NAME``, where loading http.client (and with it ssl and OpenSSL)
    would cost more than the whole answer. RFC 9112 section 4: the answer starts ``HTTP/1.x NNN``."""
    named = f"[{host}]" if ":" in host else host
    lines = [f"GET {path} HTTP/1.0", f"Host: {named}:{port}", "Connection: close"]
    if auth is not None:
        lines.append("Authorization: Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head = b""
            while b"\r\n" not in head and len(head) < 1024:
                chunk = connection.recv(1024)
                if not chunk:
                    break
                head += chunk
    except (OSError, UnicodeError):
        return 0
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
        return 0
    return int(status[1])


def http_status(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0, method: str = "GET",
                body: bytes | None = None) -> tuple[int, bytes]:
    """Status and body of one HTTP request (0 and the reason when nothing answered)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method)
    if auth is not None:
        request.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError) as error:
        return 0, str(error).encode()


def log_tail(path: Path, lines: int = 40, start: int = 0) -> str:
    """The last ``lines`` lines of a log file from byte offset ``start`` (empty if there is no log)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(start if start <= size else 0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
