"""The benchmark harness (issue 7) runs end to end in its quick mode and reports every measure for both servers.

Only the shape of the results is checked: every figure present, positive and finite. Timings and ratios belong to
the benchmark, never to a test (a loaded CI machine would make any threshold flaky).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import dcmtk
from tests.support.orthanc_ref import SKIP_REASON, have_dicomweb_plugin

REPOSITORY = Path(__file__).resolve().parents[1]

# The table's rows: the measures issues 7, 18 and 19 ask for, under the keys of the JSON file.
ROW_KEYS = [
    "cold_start", "cold_start_patient", "cli_reuse", "warm_start", "warm_start_cli", "idle_rss", "peak_rss",
    "rest_small_1", "rest_small_4", "rest_large_1", "rest_large_4", "cstore_small", "cstore_large", "stow_small",
    "get_instance_p50", "get_instance_p95", "get_tags_p50", "get_tags_p95", "find_p50", "find_p95",
    "cfind_p50", "cfind_p95", "qido_p50", "qido_p95", "wado_metadata_p50", "wado_metadata_p95",
    "preview_ct_p50", "preview_ct_p95", "raw_ct_p50", "raw_ct_p95", "preview_jpegls_p50", "preview_jpegls_p95",
    "raw_jpegls_p50", "raw_jpegls_p95",
    *(f"{key}_{quantile}" for key in ("get_simplified", "get_study", "get_series", "study_series", "series_instances")
      for quantile in ("p50", "p95")),  # issue 24: bench/reads.py
    "scale_rate_first", "scale_rate_last", "scale_rate_kept", "scale_find_p50", "scale_cfind_p50", "scale_peak_rss",
    "restart_clean", "restart_killed",  # issue 24: the grown archive started again
]
SERVERS = ("pacsbox", "orthanc")


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    if not have_dicomweb_plugin():  # the real Orthanc and its DICOMweb plugin (the STOW, QIDO and WADO rows)
        pytest.skip(SKIP_REASON)
    if dcmtk.tool("storescu") is None:
        pytest.skip(dcmtk.SKIP_REASON)
    folder = tmp_path_factory.mktemp("benchmark")
    output = folder / "results.json"
    # As the README says to run it: from the repository root, no PYTHONPATH.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # the smoke plan (benchmarks/bench/plan.py): only the shape is checked, so every measure runs once with the
    # fewest files that still give each figure; two growth windows (what "every window" needs), and each latency row
    # still gets its p50 and p95
    finished = subprocess.run([sys.executable, "benchmarks/run.py", "--smoke", "--json", str(output),
                               "--workdir", str(folder)],
                              cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(output.read_text()), finished.stdout


def test_every_measure_has_positive_figures_for_both_servers_and_a_ratio(quick_run: tuple[dict, str]) -> None:
    results, _ = quick_run
    rows = {row["key"]: row for row in results["rows"]}
    assert sorted(rows) == sorted(ROW_KEYS)
    for key, row in rows.items():
        assert row["better"] in ("higher", "lower"), key
        for figure in (*SERVERS, "ratio"):
            assert positive(row[figure]), (key, figure, row[figure])


def test_every_round_and_every_growth_window_is_recorded(quick_run: tuple[dict, str]) -> None:
    results, _ = quick_run
    plan = results["plan"]
    for server in SERVERS:
        figures = results["per_round"][server]
        assert len(figures["cold_start"]) == len(figures["cold_start_patient"]) == plan["cold_starts"]
        assert len(figures["cli_reuse"]) == 1 and positive(figures["cli_reuse"][0])  # a median of cli_runs runs
        for key in ("warm_start", "warm_start_cli"):  # one figure a start, as the cold start
            assert len(figures[key]) == plan["cold_starts"] and all(map(positive, figures[key])), (server, key)
        for key in ROW_KEYS:
            if not key.startswith(("scale_", "cold_start", "restart_", "cli_", "warm_start")):
                assert len(figures[key]) == plan["rounds"] and all(map(positive, figures[key])), (server, key)
    points = results["scale"]["points"]
    assert [point["instances"] for point in points] == list(range(plan["step"], plan["scale"] + 1, plan["step"]))
    for point in points:
        for server in SERVERS:
            assert all(positive(point[server][key]) for key in ("ingest_per_s", "find_p50_ms", "cfind_p50_ms"))


def test_the_report_names_the_machine_and_the_settings(quick_run: tuple[dict, str]) -> None:
    results, stdout = quick_run
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0 and machine["orthanc"] and machine["python"]
    assert results["settings"]["StorageCompression"] is False and results["settings"]["SyncStorageArea"] is True
    assert "Orthanc" in stdout and "pacsbox" in stdout and "ratio" in stdout
    assert "machine:" in stdout
