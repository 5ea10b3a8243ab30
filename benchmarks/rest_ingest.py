"""REST ingest, pacsbox beside the real Orthanc in the same run: small CT files, one client, as a ratio.

    PYTHONPATH=. python benchmarks/rest_ingest.py [--files 600]

Needs Debian's orthanc (bash scripts/install-test-deps.sh). Prints instances/s for each and pacsbox/Orthanc.
"""

from __future__ import annotations

import argparse
import time

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import ReferenceOrthanc
from tests.support.pacsbox_proc import RunningPacsbox


def files(count: int) -> list[bytes]:
    return [to_bytes(make_dataset(patient_id=f"P{i // 100}", patient_name="Bench^Mark", study_uid=uid("st", i // 100),
                                  series_uid=uid("se", i // 20), sop_uid=uid("in", i), instance_number=i % 20 + 1))
            for i in range(count)]


def ingest_rate(url: str, session, payloads: list[bytes]) -> float:
    started = time.perf_counter()
    for data in payloads:
        session.post(url + "/instances", data=data).raise_for_status()
    return len(payloads) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600)
    payloads = files(parser.parse_args().files)
    with ReferenceOrthanc(graceful_stop=False) as orthanc:
        reference = ingest_rate(orthanc.url, orthanc.session, payloads)
    with RunningPacsbox() as ours:
        mine = ingest_rate(ours.url, ours.session(), payloads)
    size = sum(map(len, payloads)) // len(payloads)
    print(f"REST ingest, {len(payloads)} files of ~{size} bytes, 1 client")
    print(f"  orthanc 1.10.1 {reference:7.1f} instances/s")
    print(f"  pacsbox        {mine:7.1f} instances/s   ratio {mine / reference:.2f}")


if __name__ == "__main__":
    main()
