"""``pacsbox datasets`` and ``pacsbox add-data`` as a user runs them, against a real server given by URL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pacsbox.cli_data import add_data_command, datasets_command
from pacsbox.datasets import names
from tests.support.orthanc_ref import free_port
from tests.support.pacsbox_proc import RunningPacsbox


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox() as running:
        yield running


def _url_options(server) -> list[str]:
    return ["--url", server.url, "--user", "admin", "--password", "admin", "--aet", server.aet,
            "--dicom-port", str(server.dicom_port)]


def test_datasets_lists_names_files_and_sizes():
    result = CliRunner().invoke(datasets_command, ["--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert list(rows) == names()
    assert (rows["dummydicom"]["files"], rows["user-training"]["files"], rows["simple-dir"]["files"]) == (28, 128, 6)
    assert rows["dummydicom"]["bytes"] < 300_000
    assert rows["simple-dir"]["methods"] == ["xnat-import"]
    assert rows["many"]["options"] == {"patients": 2, "studies": 1, "series": 2, "instances": 3}
    table = CliRunner().invoke(datasets_command, [])
    assert table.exit_code == 0 and all(name in table.output for name in names())


def test_add_data_uploads_and_prints_one_summary_line(server):
    result = CliRunner().invoke(add_data_command, ["dummydicom", *_url_options(server)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("dummydicom via xnat-import: 28 files, ")
    with server.session() as http:
        scans = http.get(server.url + "/data/projects/dummydicomproject/subjects/dummydicomsubject/experiments"
                         "/dummydicomsession/scans", params={"format": "json"}, timeout=30)
    assert scans.status_code == 200 and len(scans.json()["ResultSet"]["Result"]) == 3


def test_add_data_over_c_store_with_data_set_options(server):
    result = CliRunner().invoke(add_data_command, ["many", "--method", "c-store", "-o", "patients=2", "-o",
                                                   "instances=1", "--seed", "3", *_url_options(server)])
    assert result.exit_code == 0, result.output
    assert "many via c-store: 4 files" in result.output


@pytest.mark.parametrize(("arguments", "message"), [
    (["simple-dir", "--method", "orthanc-rest"], "holds no DICOM: only XNAT can take it"),
    (["many", "-o", "patients"], "expected KEY=VALUE"),
    (["many", "-o", "colour=3"], "has no option colour"),
    (["dummydicom", "--to", "other"], "either --to INSTANCE or --url URL, not both"),
])
def test_add_data_refusals_are_clear(server, arguments, message):
    result = CliRunner().invoke(add_data_command, [*arguments, *_url_options(server)])
    assert result.exit_code != 0 and message in result.output, result.output


def test_add_data_to_an_instance_that_does_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PACSBOX_HOME", str(tmp_path))
    result = CliRunner().invoke(add_data_command, ["dummydicom", "--to", "nothing-here"])
    assert result.exit_code == 1
    assert "no instance named 'nothing-here'" in result.output, result.output


def test_add_data_with_wrong_credentials(server):
    result = CliRunner().invoke(add_data_command, ["multiframe", "--method", "orthanc-rest", "--url", server.url,
                                                   "--user", "admin", "--password", "nope"])
    assert result.exit_code == 1 and "answered 401" in result.output, result.output


def test_add_data_to_a_server_that_is_not_there():
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(add_data_command, ["dummydicom", "--url", url])
    assert result.exit_code == 1 and f"cannot reach {url}" in result.output, result.output
