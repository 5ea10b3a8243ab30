"""``pacsbox serve`` without click (``cli_serve``): what its own reader accepts, click accepts with the same values;
whatever else it leaves to click; and a failure reads as click's would."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from pacsbox import cli
from pacsbox.cli_serve import OPTIONS, parse


def _click_params(arguments: list[str]) -> dict:
    with cli.serve.make_context("serve", list(arguments)) as context:
        return dict(context.params)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("")
    return tmp_path


def test_plain_options_read_as_click_reads_them(files):
    config, folder = str(files / "config.json"), str(files / "folder")
    cases = [
        [],
        ["--config", config],
        [f"--config={config}", "--http-port=8042", "--dicom-port", "0"],
        ["--data-dir", folder, "--http-port", "65535", "--host", "::1", "--sample-data", "--access-log"],
        ["--data-dir", str(files / "new" / "data"), "--no-sample-data", "--no-access-log", "--http-port", "0080"],
        ["--log-file", str(files / "server.log"), "--ready-file", str(files / "afile"), "--host", "0.0.0.0"],
    ]
    for arguments in cases:
        fast = parse(arguments)
        assert fast is not None, arguments
        assert fast == _click_params(arguments), arguments


def test_everything_else_is_left_to_click(files):
    config = str(files / "config.json")
    cases = [
        ["--help"], ["-h"], ["--bogus"], ["--config"], ["--config", str(files / "missing.json")],
        ["--config", str(files / "folder")], ["--data-dir", str(files / "afile")], ["--log-file", str(files)],
        ["--http-port", "65536"], ["--http-port", "-1"], ["--http-port", "eighty"], ["--http-port", " 80"],
        ["--http-port", "8_042"], ["--http-port", "+80"], ["--http-port", "٨٠"], ["--host", ""],
        ["--config", config, "--config", config],  # (click keeps the last one; rare enough to leave to it)
        ["--sample-data=yes"], ["--", "--config", config], ["extra"],
    ]
    for arguments in cases:
        assert parse(arguments) is None, arguments


def test_the_option_table_is_the_click_commands():
    declared = [(option.parameter, option.help) for option in OPTIONS]
    assert [(parameter.name, parameter.help) for parameter in cli.serve.params] == declared
    assert all(isinstance(parameter, click.Option) for parameter in cli.serve.params)


def test_a_failure_reads_as_clicks_and_exits_as_it(tmp_path):
    """A data folder that cannot be created fails in ``run``: the fast path prints and exits as click does."""
    (tmp_path / "afile").write_text("")
    arguments = ["serve", "--data-dir", str(tmp_path / "afile" / "data"), "--http-port", "0", "--dicom-port", "0"]
    fast = subprocess.run([sys.executable, "-m", "pacsbox", *arguments], capture_output=True, text=True, timeout=60)
    through_click = subprocess.run(
        [sys.executable, "-c", "import sys; from pacsbox.cli import main; main(sys.argv[1:], prog_name='pacsbox')",
         *arguments], capture_output=True, text=True, timeout=60)
    assert fast.returncode == through_click.returncode == 1
    assert fast.stderr == through_click.stderr
    assert fast.stderr.startswith(f"Error: cannot create the data folder {tmp_path / 'afile' / 'data'} (--data-dir)")
    assert fast.stdout == through_click.stdout == ""
