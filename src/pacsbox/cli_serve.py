"""``pacsbox serve``: its options, declared once, and what it does with them, without click.

A cold start is measured from the process's first instruction, and click alone costs a tenth of it; so
``python -m pacsbox serve ...`` (``__main__``) reads the command line here, with ``parse``, when every argument is
one of ``OPTIONS`` given plainly with a value that ``parse`` can tell is valid (an existing readable
``--config`` file, a port from 0 to 65535, ...). Anything else (``--help``, an unknown option, a value click
would refuse, an option given twice) goes to the click command line (``cli.py``), whose ``serve`` command is built
from the same ``OPTIONS`` and calls the same ``run``: its help, messages and exit statuses are click's own, and
whatever ``parse`` accepts click accepts too, with the same values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple


class Option(NamedTuple):
    """One option of ``serve``: its declaration as click takes it, its parameter name, the kind of its value."""

    declaration: str  # "--name", or "--name/--no-name" for a flag
    parameter: str
    kind: str  # "config" (an existing file), "folder", "file", "port" (0..65535), "text" or "flag"
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("--config", "config_file", "config", "Orthanc-style JSON configuration (comments allowed)."),
    Option("--data-dir", "data_dir", "folder",
           "Where the index and the files live (StorageDirectory). Default: ./pacsbox-storage"),
    Option("--http-port", "http_port", "port", "HTTP port (HttpPort); 0 picks a free one."),
    Option("--dicom-port", "dicom_port", "port", "DICOM port (DicomPort); 0 picks a free one."),
    Option("--host", "host", "text", "Address to listen on (BindAddress). Default: 127.0.0.1"),
    Option("--sample-data/--no-sample-data", "sample_data", "flag",
           "Store a small synthetic CT study at start (skipped when already stored)."),
    Option("--log-file", "log_file", "file",
           "Append stdout and stderr to this file, rotated past 5 MB (managed instances use it)."),
    Option("--ready-file", "ready_file", "file",
           "Write the PID and the bound ports here as JSON once both ports answer."),
    Option("--access-log/--no-access-log", "access_log", "flag", "Log every HTTP request."),
)


class ServeFailed(Exception):
    """``serve`` cannot start: one line saying why (click prints it as ``Error: ...`` and exits with status 1)."""


def parse(arguments: list[str]) -> dict[str, Any] | None:
    """``run``'s keyword arguments from ``serve``'s arguments, or None when they are anything but plain options
    with values valid beyond doubt (then click reads them, and words any error)."""
    names = {name: (option, not name.startswith("--no-"))
             for option in OPTIONS for name in option.declaration.split("/")}
    values: dict[str, Any] = {option.parameter: False if option.kind == "flag" else None for option in OPTIONS}
    given: set[str] = set()
    remaining = iter(arguments)
    for argument in remaining:
        name, equals, inline = argument.partition("=")
        found = names.get(name)
        if found is None:
            return None
        option, flag_value = found
        if option.parameter in given:  # click keeps the last one; the rare case is left to click
            return None
        given.add(option.parameter)
        if option.kind == "flag":
            if equals:
                return None
            values[option.parameter] = flag_value
            continue
        value = inline if equals else next(remaining, None)
        converted = None if value is None else _converted(option.kind, value)
        if converted is None:
            return None
        values[option.parameter] = converted
    return values


def _converted(kind: str, value: str) -> Any:
    """The value as click's type for ``kind`` gives it, or None when click might refuse it (or read it otherwise)."""
    if not value or value.startswith("-"):
        return None
    if kind == "port":
        return int(value) if value.isascii() and value.isdigit() and int(value) <= 65535 else None
    if kind == "text":
        return value
    exists = os.path.exists(value)
    if exists and not os.access(value, os.R_OK):
        return None
    if kind == "config":
        return Path(value) if exists and os.path.isfile(value) else None
    if kind == "folder":
        return Path(value) if not exists or os.path.isdir(value) else None
    return Path(value) if not exists or not os.path.isdir(value) else None  # "file"


def command_line(arguments: list[str], prog_name: str | None = None) -> None:
    """The whole command line: ``serve`` with plain options here, anything else by click (``cli.main``, named
    ``prog_name`` in its messages; None: as click finds it)."""
    if arguments[:1] != ["serve"] or not main(arguments[1:]):
        from .cli import main as click_main

        click_main(args=arguments, prog_name=prog_name)


def main(arguments: list[str]) -> bool:
    """Run ``serve`` with ``arguments`` as click's command would, and exit as it would; False, having done nothing,
    when ``parse`` leaves them to click."""
    options = parse(arguments)
    if options is None:
        return False
    try:
        run(**options)
    except ServeFailed as error:  # as click.ClickException.show, then its exit status
        _echo(f"Error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:  # as click's standalone mode: a new line, then "Aborted!"
        _echo("", err=True)
        _echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(0)


def run(config_file: Path | None, data_dir: Path | None, http_port: int | None, dicom_port: int | None,
        host: str | None, sample_data: bool, log_file: Path | None, ready_file: Path | None,
        access_log: bool) -> None:
    """Run a server in the foreground until it is stopped; ``ServeFailed`` when it cannot start."""
    from .core.config import Config, check_exposure, describe_users, exposure_warning, load_config
    from .server import serve

    if log_file is not None:
        from .lifecycle.logfile import redirect_output

        redirect_output(log_file)

    def read_config() -> Config:
        """The configuration file with the command line's options over it (again on POST /tools/reset)."""
        loaded = load_config(config_file) if config_file else Config()
        return loaded.with_overrides(
            StorageDirectory=str(data_dir) if data_dir else None, HttpPort=http_port, DicomPort=dicom_port,
            BindAddress=host
        )

    if config_file is not None:
        import warnings

        from .core.config_check import read_file, unknown_keys

        try:
            for line in unknown_keys(read_file(config_file)):  # on the console, not only in the server's log
                _echo(f"warning: {line}", err=True)
        except ValueError:
            pass  # read_config below says what is wrong with the file
        warnings.filterwarnings("ignore", message="pacsbox: unknown configuration key")
    try:
        config = read_config()
    except (OSError, ValueError) as error:
        raise ServeFailed(str(error)) from None
    _check_storage(config, "--data-dir" if data_dir else "StorageDirectory")
    try:
        check_exposure(config)
    except ValueError as error:
        raise ServeFailed(str(error)) from None
    warning = exposure_warning(config)
    if warning:
        _echo(warning, err=True)

    def ready(urls: dict[str, str]) -> None:
        users = describe_users(config.RegisteredUsers, config.AuthenticationEnabled)
        _echo(f"pacsbox ready: Orthanc REST API at {urls['orthanc']} ({users}); "
              f"XNAT REST API at {urls['orthanc']}/data; DICOM AET {urls['dicom'].replace('@', ' at ')}; data in "
              f"{Path(config.StorageDirectory).resolve()}")
        if ready_file is not None:
            _write_ready_file(ready_file, urls)

    try:
        serve(config, on_ready=ready, preload=_sample_files if sample_data else None, access_log=access_log,
              reload_config=read_config)
    except OSError as error:
        raise ServeFailed(str(error)) from None


def _echo(message: str, *, err: bool = False) -> None:
    """One line on stdout or stderr, flushed at once (as ``click.echo``): a manager waits for the ready line."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def _check_storage(config, chosen_by: str) -> None:
    """The data folder can be created and written, else one line naming the option that chose it."""
    from .data_folder import data_folder_problem

    for folder, option in ((config.storage_path, chosen_by), (config.index_path, "IndexDirectory")):
        problem = data_folder_problem(folder, option)
        if problem is not None:
            raise ServeFailed(problem)


def _write_ready_file(path: Path, urls: dict[str, str]) -> None:
    import json

    http_port = int(urls["orthanc"].rsplit(":", 1)[1])
    dicom_port = int(urls["dicom"].rsplit(":", 1)[1])
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "http_port": http_port, "dicom_port": dicom_port}))
    temporary.replace(path)  # whole or absent: the manager never reads half a file


def _sample_files() -> Iterator[bytes]:
    from .datasets import ct_study

    return (data for _, data in ct_study())
