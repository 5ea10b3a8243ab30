"""Warm start: servers forked by the template process of this ``$PACSBOX_HOME`` (see ``template.py``).

The lifecycle manager asks here first; None means "spawn as usual". The template is started on first use (the
first start then waits for it, about as long as a cold start), recorded in ``$PACSBOX_HOME/template/``, replaced
when it died or is stale, and stopped by ``pacsbox stop --all`` (:func:`stop_template`). ``PACSBOX_WARM_START=0``
turns warm start off; so does a platform without ``fork`` or abstract Unix sockets (anything but Linux).
``PACSBOX_TEMPLATE_HOME`` lends another home's template to every home (:func:`lending_home`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .home import pacsbox_home
from .process import creation_time, is_same_process, spawn_detached, wait_gone

# template.py is imported only when used: it is also run as ``python -m pacsbox.lifecycle.template``, which must
# not find it imported already through the package

# A template imports as much as a cold server does (seconds on a busy machine, where spawning instead would be as
# slow); past this, spawn instead.
DEFAULT_WAIT = 30.0


def enabled() -> bool:
    """Warm start applies: Linux (abstract sockets, SO_PEERCRED, fork) and not turned off."""
    setting = os.environ.get("PACSBOX_WARM_START", "1").strip().lower()
    return sys.platform.startswith("linux") and hasattr(os, "fork") and setting not in ("0", "false", "no", "off")


def template_folder(home: Path | None = None) -> Path:
    """Where the template's record and log live."""
    return (home or pacsbox_home()) / "template"


def lending_home(home: Path) -> Path:
    """The home whose template forks ``home``'s servers: ``PACSBOX_TEMPLATE_HOME`` when set (one template
    shared by many homes, e.g. one per test in a suite: each would otherwise start its own), else ``home``
    itself. A borrowed template stays its own home's: ``stop_template`` of a borrowing home leaves it alone."""
    shared = os.environ.get("PACSBOX_TEMPLATE_HOME", "").strip()
    return Path(shared) if shared else home


def fork_server(home: Path, command: list[str], log_file: Path, env: dict[str, str], cwd: str | None = None,
                exit_file: Path | None = None, wait: float = DEFAULT_WAIT) -> int | None:
    """The PID of a server running ``command`` (``python -m pacsbox ARGS...``) forked by the template, starting
    or replacing the template if needed; None when warm start does not apply or the template cannot answer in
    ``wait`` seconds (the caller spawns). The server writes its exit status to ``exit_file`` (see
    :func:`exit_status`)."""
    if not enabled() or command[:3] != [sys.executable, "-m", "pacsbox"]:
        return None
    from .template import runtime_fingerprint

    folder = template_folder(lending_home(home))
    request = {"fingerprint": runtime_fingerprint(env), "argv": command[3:], "env": env,
               "cwd": cwd or os.getcwd(), "log_file": str(log_file),
               "exit_file": str(exit_file) if exit_file else None}
    deadline = time.monotonic() + wait
    while True:
        answer = _ask(folder, request)
        if answer is not None and "pid" in answer:
            return int(answer["pid"])
        if answer is not None and not answer.get("stale"):
            return None  # it refused this request (says why in its answer); a spawned server may still work
        # nobody listens, or a stale template just left: start one unless one is already starting
        if not _starting_or_running(folder):
            try:
                start_template(folder, env)
            except OSError:
                return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def exit_status(exit_file: Path, pid: int) -> int | None:
    """The exit status a forked server ``pid`` recorded, if it exited by itself (not by a signal)."""
    try:
        record = json.loads(exit_file.read_text())
        return int(record["status"]) if record.get("pid") == pid else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start_template(folder: Path, env: dict[str, str]) -> int | None:
    """Spawn a template for ``folder`` (if no live one is recorded) and record it; its PID, or None if another
    caller started one meanwhile."""
    from filelock import FileLock, Timeout  # here, not at the top: reusing a running server never needs it

    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(folder / "lock"), timeout=10):
            if _starting_or_running(folder):
                return None
            log = folder / "template.log"
            _trim(log)
            pid = spawn_detached([sys.executable, "-m", "pacsbox.lifecycle.template", str(folder)], log,
                                 {**env, "PYTHONUNBUFFERED": "1"})
            record = {"pid": pid, "created": creation_time(pid) or time.time(), "started_at": time.time()}
            temporary = folder / "template.json.tmp"
            temporary.write_text(json.dumps(record))
            temporary.replace(folder / "template.json")
            return pid
    except Timeout:
        return None


def template_record(home: Path | None = None) -> dict[str, Any] | None:
    """The recorded template of ``home`` if it still runs: ``pid``, ``created``, ``started_at``."""
    record = _record(template_folder(home))
    if record is None or not is_same_process(int(record["pid"]), float(record["created"])):
        return None
    return record


def stop_template(home: Path | None = None, grace: float = 5.0) -> bool:
    """Stop the template of ``home`` (the servers it forked keep running). True when a live template was
    stopped."""
    folder = template_folder(home)
    record = _record(folder)
    stopped = record is not None and _stop_alone(int(record["pid"]), float(record["created"]), grace)
    (folder / "template.json").unlink(missing_ok=True)
    return stopped


def _stop_alone(pid: int, created: float, grace: float) -> bool:
    """SIGTERM the template itself (not its tree: its children are servers, each stopped by its own name),
    SIGKILL after ``grace`` seconds. Gone means exited: the template is nobody's child here (started detached), and
    whoever adopted it reaps it when it likes (psutil's wait for a non-child counted the zombie as running: every
    ``pacsbox stop --all`` waited out both timeouts, 10 s)."""
    if not is_same_process(pid, created):
        return False
    import psutil  # here, not at the top: the CLI's hot path (reusing a running server) does not load it

    try:
        process = psutil.Process(pid)
        process.terminate()
    except psutil.NoSuchProcess:
        return True
    if wait_gone([process], grace):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
        wait_gone([process], 5)
    return True


def _starting_or_running(folder: Path) -> bool:
    record = _record(folder)
    return record is not None and is_same_process(int(record["pid"]), float(record["created"]))


def _record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / "template.json").read_text())
        return record if isinstance(record, dict) and "pid" in record and "created" in record else None
    except (OSError, ValueError):
        return None


def _ask(folder: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    """The template's answer, or None when nobody listens or the exchange failed."""
    from .template import receive_line, socket_name

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(10.0)
            connection.connect(socket_name(folder))
            connection.sendall(json.dumps(request).encode() + b"\n")
            data = receive_line(connection)
        answer = json.loads(data)
        return answer if isinstance(answer, dict) else None
    except (OSError, ValueError):
        return None


def _trim(path: Path, keep: int = 64 * 1024) -> None:
    """The template's log stays small: it says when the template started, why it exited, and any failure."""
    try:
        if path.stat().st_size > keep:
            path.write_bytes(path.read_bytes()[-keep:])
    except OSError:
        pass
