"""Warm start (issue 24): a new managed pacsbox server while the home's template process runs, in process
(``pacsbox.lifecycle.ensure(NEW)``) and as a whole process (``pacsbox start NEW``, CLI start-up included).

The first start of the home starts the template and is not counted; each timed start uses a new name, and each
server is stopped (untimed) before the next start so that no more than two run at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pacsbox.lifecycle import ensure, list_instances, stop
from pacsbox.lifecycle.warm import stop_template, template_record

from .plan import Plan


def warm_starts(plan: Plan, root: Path) -> dict[str, list[float]]:
    """Seconds to a ready server: ``warm_start`` (ensure) and ``warm_start_cli`` (the whole CLI process)."""
    home = root / "warm-home"
    environment = {**os.environ, "PACSBOX_HOME": str(home), "PACSBOX_WARM_START": "1"}
    environment.pop("PACSBOX_TEMPLATE_HOME", None)  # this home's own template is measured, never a lent one
    figures: dict[str, list[float]] = {"warm_start": [], "warm_start_cli": []}
    previous = os.environ.get("PACSBOX_HOME")
    lent = os.environ.pop("PACSBOX_TEMPLATE_HOME", None)
    os.environ["PACSBOX_HOME"] = str(home)  # what the forked servers inherit, as from the CLI below
    try:
        ensure("warm-first", home=home)  # starts the template: a cold start, not counted
        if template_record(home) is None:
            raise RuntimeError(f"no warm-start template came up; see {home / 'template' / 'template.log'}")
        for attempt in range(plan.cold_starts):
            started = time.perf_counter()
            ensure(f"warm-{attempt}", home=home)
            figures["warm_start"].append(time.perf_counter() - started)
            stop(f"warm-{attempt}", home=home, grace=5)
            started = time.perf_counter()
            finished = subprocess.run([sys.executable, "-m", "pacsbox", "start", f"warm-cli-{attempt}"],
                                      env=environment, capture_output=True, text=True, timeout=120)
            figures["warm_start_cli"].append(time.perf_counter() - started)
            if finished.returncode != 0 or "started" not in finished.stdout:
                raise RuntimeError(f"pacsbox start failed: {finished.stdout}{finished.stderr}")
            stop(f"warm-cli-{attempt}", home=home, grace=5)
    finally:
        for name, _, _ in list_instances(home):
            stop(name, home=home, grace=5)
        stop_template(home)
        if previous is None:
            os.environ.pop("PACSBOX_HOME", None)
        else:
            os.environ["PACSBOX_HOME"] = previous
        if lent is not None:
            os.environ["PACSBOX_TEMPLATE_HOME"] = lent
    return figures
