"""C-STORE ingest, pacsbox beside the real Orthanc in the same run: dcmtk storescu, one association, as a ratio.

    PYTHONPATH=. python benchmarks/dimse_store.py [--ct 150] [--mr 600]

Two sets of the same files for both servers: 512x512 CT slices (~0.5 MB) and small 64x64 MR images (~10 kB).
storescu sends a whole folder over one association with TCP_NODELAY=1. Needs Debian's orthanc and dcmtk
(bash scripts/install-test-deps.sh). Prints instances/s for each and pacsbox/Orthanc.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=150, help="number of 512x512 CT files")
    parser.add_argument("--mr", type=int, default=600, help="number of 64x64 MR files")
    options = parser.parse_args()
    # dcmtk reads TCP_NODELAY from the environment: storescu here, and the Orthanc process, which inherits it.
    os.environ["TCP_NODELAY"] = "1"
    with tempfile.TemporaryDirectory() as root:
        sets = {"CT 512x512": Path(root, "ct"), "MR 64x64": Path(root, "mr")}
        write_series(sets["CT 512x512"], "ct", options.ct, "CT", 512)
        write_series(sets["MR 64x64"], "mr", options.mr, "MR", 64)
        rates: dict[str, dict[str, float]] = {}
        for name, folder in sets.items():
            with ReferenceOrthanc(graceful_stop=False) as orthanc:
                reference = store_rate(folder, orthanc.aet, orthanc.dicom_port)
            with RunningPacsbox() as ours:
                mine = store_rate(folder, ours.aet, ours.dicom_port)
            rates[name] = {"orthanc": reference, "pacsbox": mine}
    print("C-STORE ingest with dcmtk storescu, one association, TCP_NODELAY=1")
    for name, rate in rates.items():
        print(f"  {name:11} orthanc 1.10.1 {rate['orthanc']:7.1f}/s   pacsbox {rate['pacsbox']:7.1f}/s   "
              f"ratio {rate['pacsbox'] / rate['orthanc']:.2f}")


if __name__ == "__main__":
    main()
