"""C-STORE ingest, pacsbox beside the real Orthanc in the same run: dcmtk storescu, one association, as a ratio.

    PYTHONPATH=.:src python benchmarks/dimse_store.py [--ct 150] [--mr 600] [--rounds 3]

Two sets of the same files for both servers: 512x512 CT slices (~0.5 MB) and small 64x64 MR images (~10 kB).
storescu sends a whole folder over one association with TCP_NODELAY=1, into a fresh server each time. Rounds
alternate which server goes first, so that load from other work on the machine falls on both; the ratio printed
is the median of the rounds' ratios. Needs Debian's orthanc and dcmtk (bash scripts/install-test-deps.sh).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import dcmtk
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import ReferenceOrthanc
from tests.support.pacsbox_proc import RunningPacsbox


def write_series(folder: Path, key: str, count: int, modality: str, size: int) -> None:
    folder.mkdir(parents=True)
    for number in range(count):
        dataset = make_dataset(patient_id=f"BENCH-{key}", patient_name="Bench^Mark", study_uid=uid(key, "study"),
                               series_uid=uid(key, "series", number // 100), sop_uid=uid(key, number),
                               instance_number=number + 1, modality=modality, rows=size, cols=size)
        (folder / f"{number:05d}.dcm").write_bytes(to_bytes(dataset))


def store_rate(folder: Path, aet: str, port: int) -> float:
    files = len(list(folder.iterdir()))
    started = time.perf_counter()
    result = subprocess.run([dcmtk.tool("storescu"), "-aec", aet, "+sd", "127.0.0.1", str(port), str(folder)],
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return files / elapsed


def orthanc_rate(folder: Path) -> float:
    with ReferenceOrthanc(graceful_stop=False) as orthanc:
        return store_rate(folder, orthanc.aet, orthanc.dicom_port)


def pacsbox_rate(folder: Path) -> float:
    with RunningPacsbox() as ours:
        return store_rate(folder, ours.aet, ours.dicom_port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=150, help="number of 512x512 CT files")
    parser.add_argument("--mr", type=int, default=600, help="number of 64x64 MR files")
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers and a measure of each, per set")
    options = parser.parse_args()
    # dcmtk reads TCP_NODELAY from the environment: storescu here, and the Orthanc process, which inherits it.
    os.environ["TCP_NODELAY"] = "1"
    print("C-STORE ingest with dcmtk storescu, one association, TCP_NODELAY=1 (instances/s)")
    with tempfile.TemporaryDirectory() as root:
        sets = {"CT 512x512": Path(root, "ct"), "MR 64x64": Path(root, "mr")}
        write_series(sets["CT 512x512"], "ct", options.ct, "CT", 512)
        write_series(sets["MR 64x64"], "mr", options.mr, "MR", 64)
        for name, folder in sets.items():
            ratios = []
            for round_number in range(options.rounds):
                if round_number % 2 == 0:
                    reference, mine = orthanc_rate(folder), pacsbox_rate(folder)
                else:
                    mine, reference = pacsbox_rate(folder), orthanc_rate(folder)
                ratios.append(mine / reference)
                print(f"  {name:11} round {round_number + 1}: orthanc 1.10.1 {reference:7.1f}   pacsbox {mine:7.1f}"
                      f"   ratio {ratios[-1]:.2f}")
            print(f"  {name:11} median ratio pacsbox/orthanc {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
