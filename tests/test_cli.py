"""The ``pacsbox`` command line as a user runs it: the README's serve command, its ready line, its errors."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from tests.support.orthanc_ref import free_port


def _serve(*arguments: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "pacsbox", "serve", *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    return process, line


def test_serve_with_sample_data_prints_url_and_keeps_data_across_restarts(tmp_path):
    port = free_port()
    for _ in range(2):  # the second start finds the sample study already stored
        process, line = _serve("--sample-data", "--data-dir", str(tmp_path / "data"), "--http-port", str(port),
                               "--dicom-port", "0")
        try:
            expected = (f"pacsbox ready: Orthanc REST API at http://127.0.0.1:{port} (admin/admin); "
                        f"XNAT REST API at http://127.0.0.1:{port}/data; DICOM AET PACSBOX at 127.0.0.1:")
            assert line.startswith(expected), line
            stats = requests.get(f"http://127.0.0.1:{port}/statistics", auth=("admin", "admin"), timeout=10).json()
            assert (stats["CountPatients"], stats["CountSeries"], stats["CountInstances"]) == (1, 1, 8)
        finally:
            process.terminate()
            assert process.wait(10) == 0


def test_serve_reports_a_busy_port_and_exits_non_zero(tmp_path):
    port = free_port()
    first, line = _serve("--data-dir", str(tmp_path / "a"), "--http-port", str(port), "--dicom-port", "0")
    try:
        assert line.startswith("pacsbox ready:")
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "pacsbox", "serve", "--data-dir", str(tmp_path / "b"),
                                 "--http-port", str(port), "--dicom-port", "0"], capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert time.monotonic() - started < 30
    finally:
        first.terminate()
        first.wait(10)


def test_serve_rejects_a_broken_configuration(tmp_path):
    config = tmp_path / "broken.json"
    config.write_text('{"HttpPort": 8042, /* unterminated')
    result = subprocess.run([sys.executable, "-m", "pacsbox", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "not a valid JSON configuration" in result.stderr
