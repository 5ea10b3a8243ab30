"""Generate and upload the default ``dummydicom`` through each face of a fresh pacsbox: seconds per method.

    PYTHONPATH=src:. python benchmarks/datasets.py [--repeat 3] [--size small]

Each run starts its own server (an XNAT session is uploaded once: a second import would be skipped), warms it with
a one-file upload, and calls ``pacsbox.datasets.add_data``; generation happens in the same call, after one warm-up
generation so that imports (numpy, pydicom, pynetdicom) are not counted. Prints the median of the runs: a benchmark
figure, not an assertion.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pacsbox.datasets import METHODS, add_data, sessions
from tests.support.pacsbox_proc import RunningPacsbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (median reported)")
    parser.add_argument("--size", default="small", choices=("small", "full"))
    options = parser.parse_args()
    started = time.perf_counter()
    files = sum(len(s.files) for s in sessions("dummydicom", size=options.size))  # warm-up: imports, caches
    print(f"dummydicom ({options.size}): {files} files; cold first generation {time.perf_counter() - started:.2f} s")
    print(f"{'method':16} {'generate s':>10} {'upload s':>9} {'total s':>8} {'files/s':>8}")
    for method in METHODS:
        runs = []
        for run in range(options.repeat):
            with RunningPacsbox() as server:
                add_data("multiframe", server, method=method)  # warm-up: the server's and the client's first use
                summary = add_data("dummydicom", server, method=method, size=options.size, seed=run)
            runs.append((summary.generate_seconds, summary.seconds - summary.generate_seconds, summary.seconds))
        generate, upload, total = (statistics.median(values) for values in zip(*runs, strict=True))
        print(f"{method:16} {generate:10.3f} {upload:9.3f} {total:8.3f} {files / upload:8.0f}")


if __name__ == "__main__":
    main()
