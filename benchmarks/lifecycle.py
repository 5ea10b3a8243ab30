"""Lifecycle timings through the public API, with the real Orthanc's cold start in the same run.

    PYTHONPATH=. python benchmarks/lifecycle.py [--instances 1000] [--repeat 5] [--json out.json]

Measures: cold start to ready (a detached subprocess answering HTTP and DICOM), ensure on a live server,
reset, snapshot and restore of an N-instance archive, and the same cold start for the installed Orthanc.
Medians of ``--repeat`` runs; nothing here is asserted (timings belong in benchmarks, not tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import requests

from pacsbox.datasets import ct_study
from pacsbox.lifecycle import ensure, stop
from pacsbox.lifecycle.engines import orthanc_binary


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cold_starts(home: Path, engine: str, repeat: int) -> list[float]:
    figures = []
    for attempt in range(repeat):
        name = f"cold-{engine}-{attempt}"
        figures.append(timed(lambda name=name: ensure(name, engine=engine, home=home)))
        stop(name, home=home, grace=2)
    return figures


def populate(instance, count: int) -> None:
    with requests.Session() as session:
        session.auth = instance.auth
        for _, data in ct_study(slices=count, size=32):
            session.post(instance.url + "/instances", data=data, timeout=60).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pacsbox-bench-") as folder:
        home = Path(folder)
        results["pacsbox cold start to ready"] = statistics.median(cold_starts(home, "builtin", options.repeat))
        if orthanc_binary() is not None:
            results["orthanc cold start to ready"] = statistics.median(cold_starts(home, "orthanc", options.repeat))
        instance = ensure("bench", home=home)
        results["ensure on a live server"] = statistics.median(
            timed(lambda: ensure("bench", home=home)) for _ in range(options.repeat * 4))
        populate(instance, options.instances)
        results[f"snapshot of {options.instances} instances"] = statistics.median(
            timed(lambda: instance.snapshot("bench")) for _ in range(options.repeat))
        restores, resets = [], []
        for _ in range(options.repeat):
            instance.reset()
            restores.append(timed(lambda: instance.restore("bench")))  # into an empty archive: every file relinked
            resets.append(timed(instance.reset))  # of the full archive just restored
        results[f"restore of {options.instances} instances into an empty archive"] = statistics.median(restores)
        results[f"reset of {options.instances} instances"] = statistics.median(resets)
        results["reset of an empty archive"] = statistics.median(timed(instance.reset) for _ in range(options.repeat))
        stop("bench", home=home)
    width = max(map(len, results))
    for label, seconds in results.items():
        print(f"{label:<{width}}  {seconds * 1000:9.1f} ms")
    if "orthanc cold start to ready" in results:
        ratio = results["orthanc cold start to ready"] / results["pacsbox cold start to ready"]
        print(f"{'cold start: pacsbox is faster by':<{width}}  {ratio:9.2f} x")
    if options.json:
        options.json.write_text(json.dumps({k: round(v, 5) for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
