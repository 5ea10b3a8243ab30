"""The parent of a managed command (``python .../lifecycle/supervise.py SPEC``): runs it with its arguments,
environment and working directory, copies its stdout and stderr into a size-capped, rotated log, passes on
SIGTERM, SIGINT and SIGHUP, and exits with the command's status.

A command cannot rotate its own log the way ``pacsbox serve`` does (``logfile.redirect_output``), and a detached
process has nobody else reading its output: this small parent is that reader. It is the recorded process of a
``command`` instance, so the tree kill of the lifecycle manager takes the command and its children with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

if __package__:
    from .logfile import DEFAULT_MAX_BYTES, rotate_file
else:  # run by path, as the manager does: the sibling logfile.py (standard library only) is loaded alone, not
    # the pacsbox package (psutil, filelock, ...), which saves up to a second of start-up on a busy machine
    import importlib.util

    _spec = importlib.util.spec_from_file_location("_pacsbox_logfile", Path(__file__).with_name("logfile.py"))
    assert _spec is not None and _spec.loader is not None
    _logfile = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_logfile)
    DEFAULT_MAX_BYTES, rotate_file = _logfile.DEFAULT_MAX_BYTES, _logfile.rotate_file

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: list[str]) -> int:
    """Run the command described by the JSON file ``argv[0]`` (written by the lifecycle manager)."""
    spec = json.loads(Path(argv[0]).read_text())
    log_path = Path(spec["log"])
    max_bytes = int(spec.get("max_bytes") or DEFAULT_MAX_BYTES)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        child = subprocess.Popen(spec["command"], cwd=spec["cwd"], env=spec["env"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as error:  # the manager checks first; this covers a file removed in between
        os.write(log, f"pacsbox lifecycle: cannot run {spec['command'][0]!r}: {error}\n".encode())
        return 127

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    assert child.stdout is not None
    reader = child.stdout.fileno()
    written = os.fstat(log).st_size
    while True:
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        os.write(log, chunk)
        written += len(chunk)
        if written > max_bytes:
            os.close(log)
            rotate_file(log_path)
            log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            written = 0
    code = child.wait()
    if code < 0:  # killed by a signal: die of the same one, so that our parent sees what happened
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
