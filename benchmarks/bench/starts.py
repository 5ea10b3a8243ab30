"""Start-up figures beside the real Orthanc: a cold start seen by a patient client, the CLI's reuse of a running
managed server, and the restart of the grown archive after a clean stop and after ``kill -9``.

The polling cold start (``suite.cold_starts``) probes every 5 ms, as a test fixture waiting for its server does; the
patient client here probes every 100 ms, so it measures the start-up without a client competing for the CPU (its
figure is rounded up to the next probe). CLI reuse is ``pacsbox start NAME`` on a running instance, the command
every test run and xdist worker calls, timed as a whole process (interpreter start-up included) for both engines
(``builtin`` and ``orthanc``): its figure is the CLI's and the probe's, nearly the same for both.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import servers
from .plan import Plan

PATIENT_INTERVAL = 0.1  # seconds between the patient client's probes
ENGINES = {"pacsbox": "builtin", "orthanc": "orthanc"}


def compile_package() -> None:
    """Write the bytecode of pacsbox's modules before any start is timed, as installing the package does (pip
    compiles what it installs). An editable install under ``PYTHONDONTWRITEBYTECODE`` never caches it: each start
    would compile the package's 150-odd modules again, a cost no installed pacsbox pays and Orthanc has no
    counterpart of."""
    import compileall

    import pacsbox

    compileall.compile_dir(Path(pacsbox.__file__).parent, quiet=1)


def patient_cold_starts(plan: Plan, root: Path) -> dict[str, list[float]]:
    """Seconds from spawn to ready, both servers probed every ``PATIENT_INTERVAL`` seconds, in turns."""
    compile_package()
    figures: dict[str, list[float]] = {name: [] for name in servers.NAMES}
    for attempt in range(plan.cold_starts):
        for name in servers.NAMES if attempt % 2 == 0 else reversed(servers.NAMES):
            with servers.start(name, root, interval=PATIENT_INTERVAL) as server:
                figures[name].append(server.started_in)
    return figures


def cli_reuse(plan: Plan, root: Path) -> dict[str, float]:
    """Median seconds of ``pacsbox start NAME`` as a whole process when NAME already runs, per engine."""
    home = root / "cli-home"
    env = {**os.environ, "PACSBOX_HOME": str(home)}
    figures: dict[str, float] = {}
    for name, engine in ENGINES.items():
        command = [str(Path(sys.executable).with_name("pacsbox")), "start", f"bench-{name}", "--engine", engine]
        if not Path(command[0]).exists():  # an interpreter without the console script beside it
            command[:1] = [sys.executable, "-m", "pacsbox"]
        try:
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)  # starts it (untimed)
            times = []
            for _ in range(plan.cli_runs + 1):  # the first run warms the page cache, not counted
                began = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, timeout=60)
                times.append(time.perf_counter() - began)
                if done.returncode != 0 or b"reused" not in done.stdout:
                    raise servers.ServerFailed(f"`pacsbox start` did not reuse {name}: {done.stdout!r} {done.stderr!r}")
            figures[name] = statistics.median(times[1:])
        finally:
            subprocess.run([*command[:-4], "stop", f"bench-{name}", "--grace", "5"], env=env, capture_output=True,
                           timeout=60)
    return figures


def restarts(server: servers.Server) -> dict[str, float]:
    """Seconds to ready again after a clean stop (SIGTERM, waited for) and after SIGKILL, on the same archive."""
    figures = {}
    for key, sig in (("restart_clean", signal.SIGTERM), ("restart_killed", signal.SIGKILL)):
        server.process.send_signal(sig)
        server.process.wait(120)
        figures[key] = servers.respawn(server)
    return figures
