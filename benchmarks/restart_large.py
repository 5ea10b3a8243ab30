"""Restart of a large archive, pacsbox beside the real Orthanc: seconds from spawn to ready after a clean stop
(SIGTERM, waited for) and after ``kill -9``, on archives of the same files, beside a cold start on an empty archive
in the same rounds (the part of a start that does not depend on the archive's size).

    cd benchmarks && python restart_large.py --instances 100000 --root /tmp/restarts --keep   # load, measure
    cd benchmarks && python restart_large.py --root /tmp/restarts --reuse                     # measure again

The archives are loaded faster than ``run.py``'s scale windows (which also measure while they grow): pacsbox's
in-process, through ``pacsbox.core.assembly.open_archive`` with 4 threads; Orthanc's through ``POST /instances``
with 4 clients. Both load with ``SyncStorageArea`` off and restart with the bench's usual settings
(``bench/servers.py``), through the bench's own launcher and probe (``bench/starts.restarts``). ``--reuse`` measures
an archive kept by an earlier run (for example with another pacsbox on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import corpus, measures, servers, starts

LOT = 7  # the UIDs of this benchmark's files, apart from run.py's lots
WINDOW = 5000  # files generated at a time


def _windows(instances: int):
    generator = corpus.Generator("small")
    for start in range(0, instances, WINDOW):
        yield generator.lot(LOT, min(WINDOW, instances - start), start=start)


def _config(server: servers.Server) -> dict:
    return json.loads((server.directory / "config.json").read_text())


def load_pacsbox(server: servers.Server, instances: int) -> None:
    """Store the files into the stopped server's archive, in this process."""
    from pacsbox.core.assembly import open_archive
    from pacsbox.core.config import config_from_mapping

    config = {**_config(server), "SyncStorageArea": False}
    archive = open_archive(config_from_mapping(config))
    try:
        with ThreadPoolExecutor(4) as pool:
            for window in _windows(instances):
                list(pool.map(archive.store, window))
    finally:
        archive.close()


def load_orthanc(server: servers.Server, instances: int) -> None:
    """Store the files through the REST API of the real Orthanc, run on the server's folder without fsync."""
    config = {**_config(server), "SyncStorageArea": False}
    loading = server.directory / "config-loading.json"
    loading.write_text(json.dumps(config))
    binary = servers.orthanc_binary()
    assert binary is not None
    with open(server.directory / "loading.log", "ab") as log:
        server.process = subprocess.Popen([binary, str(loading)], stdout=log, stderr=subprocess.STDOUT,
                                          cwd=server.directory, start_new_session=True)
    try:
        servers._wait_ready(server, time.perf_counter(), 120, 0.05)
        for window in _windows(instances):
            measures.rest_ingest(server, window, 4)
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(300)


def prepare(root: Path, instances: int) -> dict[str, servers.Server]:
    """One stopped server per engine, its archive holding ``instances`` files."""
    prepared = {}
    for name, load in (("pacsbox", load_pacsbox), ("orthanc", load_orthanc)):
        server = servers.start(name, root)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(60)
        began = time.perf_counter()
        load(server, instances)
        print(f"{name}: {instances} instances loaded in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        prepared[name] = server
    (root / "servers.json").write_text(json.dumps({name: [str(s.directory), s.http_port, s.dicom_port]
                                                   for name, s in prepared.items()}))
    return prepared


def reuse(root: Path) -> dict[str, servers.Server]:
    found = json.loads((root / "servers.json").read_text())
    return {name: servers.Server(name, subprocess.Popen(["true"]), Path(folder), http, dicom)
            for name, (folder, http, dicom) in found.items()}


def measure(prepared: dict[str, servers.Server], rounds: int, root: Path) -> dict[str, dict[str, list[float]]]:
    """``rounds`` of: a cold start on an empty archive (the reference: what does not depend on the size), a start
    of the large one (untimed, after whatever stop came before), then its clean and its killed restart."""
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in prepared}
    for number in range(rounds):
        for name in prepared if number % 2 == 0 else reversed(list(prepared)):
            with servers.start(name, root) as empty:
                figures[name].setdefault("empty_start", []).append(empty.started_in)
            shutil.rmtree(empty.directory, ignore_errors=True)
            server = prepared[name]
            servers.respawn(server)
            count = measures.instance_count(server)
            for key, value in starts.restarts(server).items():
                figures[name].setdefault(key, []).append(value)
            figures[name].setdefault("instances", []).append(count)
            server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", type=Path, help="the folder of the archives (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the archives for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure the archives an earlier --keep left")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="pacsbox-restarts-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        prepared = reuse(root) if args.reuse else prepare(root, args.instances)
        print(f"load average before measuring: {os.getloadavg()}", file=sys.stderr)
        figures = measure(prepared, args.rounds, root)
        print(f"load average after measuring: {os.getloadavg()}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    for key in ("empty_start", "restart_clean", "restart_killed"):
        row = {name: statistics.median(values[key]) for name, values in figures.items()}
        print(f"{key}: " + "  ".join(f"{name} {value:.3f} s ({', '.join(f'{v:.3f}' for v in figures[name][key])})"
                                     for name, value in row.items())
              + f"  ratio {row['orthanc'] / row['pacsbox']:.2f}")
    print("instances: " + "  ".join(f"{name} {values['instances'][0]}" for name, values in figures.items()))


if __name__ == "__main__":
    main()
