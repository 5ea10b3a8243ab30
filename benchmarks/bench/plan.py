"""What a run measures and how much: the full plan, the quick plan for CI, and the measures' names and directions.

Every option is declared once here; ``run.py`` only turns command-line flags into a ``Plan``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Plan:
    """How many of everything one run does (the same for both servers)."""

    rounds: int = 3  # fresh pair of servers per round; rounds alternate which server is measured first
    cold_starts: int = 5  # starts per server for the cold-start median
    rest_small: int = 1000  # files per REST ingest measure, ~2 KB each
    rest_large: int = 200  # files per REST ingest measure, ~150 KB each
    cstore_small: int = 1000
    cstore_large: int = 200
    stow: int = 1000  # ~2 KB files per STOW-RS ingest measure, one client
    stow_batch: int = 10  # instances per STOW-RS request (one multipart/related body)
    latency_set: int = 1000  # small instances loaded before the latency measures (20 studies, 10 patients)
    requests: int = 500  # timed requests per latency measure
    images: int = 20  # 512 x 512 CT slices per encoding (uncompressed, JPEG-LS) for the image latency measures
    scale: int = 100_000  # instances the growing archive reaches; 0 skips the scale measure
    step: int = 10_000  # instances per scale window
    scale_requests: int = 100  # timed queries per kind after each scale window
    cli_runs: int = 10  # timed `pacsbox start NAME` reuses per engine (bench/starts.py)
    workdir: Path | None = None  # where the run makes its folder for both archives and the files (default: TMPDIR)

    def __post_init__(self) -> None:
        counts = {key: value for key, value in asdict(self).items() if key != "workdir"}
        if any(value < 0 for value in counts.values()) or min(self.rounds, self.cold_starts, self.requests,
                                                                self.stow, self.stow_batch) < 1:
            raise ValueError(f"every count must be positive: {counts}")
        if self.scale and (self.step < 1 or self.scale % self.step):
            raise ValueError(f"--scale ({self.scale}) must be a multiple of --step ({self.step})")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "workdir": str(self.workdir) if self.workdir else None}


FULL = Plan()
#: For CI: every measure once, small counts; a few tens of seconds on a quiet 2-core machine.
QUICK = replace(FULL, rounds=1, cold_starts=2, rest_small=120, rest_large=20, cstore_small=120, cstore_large=20,
                stow=120, latency_set=200, requests=40, images=3, scale=1200, step=400, scale_requests=20,
                cli_runs=3)
#: For the test suite (tests/test_benchmarks.py checks the shape of the results, never a figure): every measure's
#: code path once against both servers, with the fewest files that still make each figure. The latency set is one
#: whole patient (2 studies, 4 series), which the find, C-FIND, QIDO-RS and child-list measures need; two growth
#: windows make a first and a last one.
SMOKE = replace(QUICK, cold_starts=1, rest_small=8, rest_large=4, cstore_small=8, cstore_large=4, stow=10,
                latency_set=100, requests=5, images=1, scale=100, step=50, scale_requests=5, cli_runs=1)


@dataclass(frozen=True)
class Measure:
    """One row of the table: what it is, its unit, and whether more is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


#: The encodings of the image measures (bench/images.py): 512 x 512 CT slices.
IMAGE_ENCODINGS = {"ct": "CT 512x512", "jpegls": "JPEG-LS CT 512x512"}


def _rows() -> list[Measure]:
    rows = [Measure("cold_start", "cold start to ready (REST + DICOM port)", "s", False),
            *_start_rows(),
            # a new managed server with the warm-start template running (bench/warm.py); Orthanc: its cold start
            Measure("warm_start", "warm start: ensure(NEW) to ready (Orthanc: cold start)", "s", False),
            Measure("warm_start_cli", "warm start: `pacsbox start NEW`, whole process (Orthanc: cold)", "s", False),
            Measure("idle_rss", "idle RSS after start", "MiB", False),
            Measure("peak_rss", "peak RSS (VmHWM) after the round's work", "MiB", False)]
    for size, about in (("small", "~2 KB"), ("large", "~150 KB")):
        for clients in (1, 4):
            clients_label = "1 client" if clients == 1 else f"{clients} clients"
            rows.append(Measure(f"rest_{size}_{clients}", f"REST ingest, {about}, {clients_label}", "inst/s", True))
    rows += [Measure("cstore_small", "C-STORE ingest (storescu), ~2 KB", "inst/s", True),
             Measure("cstore_large", "C-STORE ingest (storescu), ~150 KB", "inst/s", True),
             Measure("stow_small", f"STOW-RS ingest, ~2 KB, {Plan.stow_batch} a request, 1 client", "inst/s",
                     True)]
    for key, label in (("get_instance", "GET /instances/{id}"), ("get_tags", "GET /instances/{id}/tags"),
                       ("find", "POST /tools/find, study, PatientID"), ("cfind", "C-FIND study, PatientID"),
                       ("qido", "QIDO-RS /dicom-web/studies?PatientID="),
                       ("wado_metadata", "WADO-RS /dicom-web/studies/{uid}/metadata")):
        rows += [Measure(f"{key}_p50", f"{label} p50", "ms", False),
                 Measure(f"{key}_p95", f"{label} p95", "ms", False)]
    from .reads import rows as read_rows  # (reads imports this module)

    rows += read_rows()
    for encoding, about in IMAGE_ENCODINGS.items():
        for key, label in (("preview", "GET /instances/{id}/preview"), ("raw", "GET .../frames/0/raw")):
            rows += [Measure(f"{key}_{encoding}_p50", f"{label}, {about} p50", "ms", False),
                     Measure(f"{key}_{encoding}_p95", f"{label}, {about} p95", "ms", False)]
    return rows


def _start_rows() -> list[Measure]:
    """bench/starts.py's round rows."""
    return [Measure("cold_start_patient", "cold start to ready, client probing every 0.1 s", "s", False),
            Measure("cli_reuse", "`pacsbox start NAME` reusing it (whole process)", "s", False)]


ROUND_MEASURES = _rows()
SCALE_MEASURES = [
    Measure("scale_rate_first", "REST ingest x4 clients, first window", "inst/s", True),
    Measure("scale_rate_last", "REST ingest x4 clients, last window", "inst/s", True),
    Measure("scale_rate_kept", "ingest rate kept: last window / first window", "x", True),
    Measure("scale_find_p50", "POST /tools/find p50 at the final size", "ms", False),
    Measure("scale_cfind_p50", "C-FIND study p50 at the final size", "ms", False),
    Measure("scale_peak_rss", "peak RSS (VmHWM) at the final size", "MiB", False),
    Measure("restart_clean", "restart to ready at the final size, after a clean stop", "s", False),
    Measure("restart_killed", "restart to ready at the final size, after kill -9", "s", False),
]
