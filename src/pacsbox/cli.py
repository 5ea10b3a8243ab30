"""The ``pacsbox`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import click

from . import __version__
from .cli_common import JsonGroup


class _LazyGroup(JsonGroup):
    """The ``pacsbox`` group, whose commands' modules are imported when one of their commands is named.

    ``pacsbox start NAME`` on a running server must answer in a few tens of milliseconds: it loads the lifecycle
    commands only, not the data sets, the fault rules or rich. Help lists every command, as a plain group would;
    reading ``commands`` loads them all.
    """

    # command name -> the module whose register(group) adds it (with its neighbours)
    LAZY: ClassVar[dict[str, str]] = {
            **dict.fromkeys(("start", "stop", "restart", "status", "ls", "logs", "reset", "snapshot", "restore"),
                            "pacsbox.cli_lifecycle"),
            **dict.fromkeys(("datasets", "add-data"), "pacsbox.cli_data"),
            "worklists": "pacsbox.cli_worklists",
            **dict.fromkeys(("faults", "events"), "pacsbox.cli_faults"),
            "config": "pacsbox.cli_config",
            **dict.fromkeys(("info", "snapshots", "rm", "prune"), "pacsbox.cli_housekeeping")}

    def __init__(self, *args, **kwargs) -> None:
        self._registered: set[str] = set()
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> dict[str, click.Command]:
        for module in dict.fromkeys(self.LAZY.values()):
            self._register(module)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _register(self, module: str) -> None:
        if module not in self._registered:
            self._registered.add(module)
            import importlib

            importlib.import_module(module).register(self)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._commands[name] = cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._commands and cmd_name in self.LAZY:
            self._register(self.LAZY[cmd_name])
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._commands, *self.LAZY})


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pacsbox")
def main() -> None:
    """Throwaway Orthanc-, XNAT- and DICOM-compatible archives for test suites."""


@main.command()
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Orthanc-style JSON configuration (comments allowed).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the index and the files live (StorageDirectory). Default: ./pacsbox-storage")
@click.option("--http-port", type=click.IntRange(0, 65535), help="HTTP port (HttpPort); 0 picks a free one.")
@click.option("--dicom-port", type=click.IntRange(0, 65535), help="DICOM port (DicomPort); 0 picks a free one.")
@click.option("--host", help="Address to listen on (BindAddress). Default: 127.0.0.1")
@click.option("--sample-data/--no-sample-data", default=False,
              help="Store a small synthetic CT study at start (skipped when already stored).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append stdout and stderr to this file, rotated past 5 MB (managed instances use it).")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the PID and the bound ports here as JSON once both ports answer.")
@click.option("--access-log/--no-access-log", default=False, help="Log every HTTP request.")
def serve(config_file: Path | None, data_dir: Path | None, http_port: int | None, dicom_port: int | None,
          host: str | None, sample_data: bool, log_file: Path | None, ready_file: Path | None,
          access_log: bool) -> None:
    """Run a server in the foreground; prints one line with its URL when it answers.

    The configuration file is checked first: every mistake is listed and nothing starts.

    \b
    Example:
      pacsbox serve --config orthanc.json --data-dir ./storage --http-port 8042
    """
    from .core.config import Config, check_exposure, describe_users, exposure_warning, load_config
    from .server import serve as run

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
                click.echo(f"warning: {line}", err=True)
        except ValueError:
            pass  # read_config below says what is wrong with the file
        warnings.filterwarnings("ignore", message="pacsbox: unknown configuration key")
    try:
        config = read_config()
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    _check_storage(config, "--data-dir" if data_dir else "StorageDirectory")
    try:
        check_exposure(config)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    warning = exposure_warning(config)
    if warning:
        click.echo(warning, err=True)

    def ready(urls: dict[str, str]) -> None:
        users = describe_users(config.RegisteredUsers, config.AuthenticationEnabled)
        click.echo(f"pacsbox ready: Orthanc REST API at {urls['orthanc']} ({users}); "
                   f"XNAT REST API at {urls['orthanc']}/data; DICOM AET {urls['dicom'].replace('@', ' at ')}; data in "
                   f"{Path(config.StorageDirectory).resolve()}")
        sys.stdout.flush()
        if ready_file is not None:
            _write_ready_file(ready_file, urls)

    try:
        run(config, on_ready=ready, preload=_sample_files if sample_data else None, access_log=access_log,
            reload_config=read_config)
    except OSError as error:
        raise click.ClickException(str(error)) from None


def _check_storage(config, chosen_by: str) -> None:
    """The data folder can be created and written, else one line naming the option that chose it."""
    import os

    for folder, option in ((config.storage_path, chosen_by), (config.index_path, "IndexDirectory")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            writable = os.access(folder, os.W_OK | os.X_OK)
        except OSError as error:
            raise click.ClickException(f"cannot create the data folder {folder} ({option}): "
                                       f"{error.strerror or error}; choose a writable folder") from None
        if not writable:
            raise click.ClickException(f"cannot write the data folder {folder} ({option}): permission denied; "
                                       "choose a writable folder")


def _write_ready_file(path: Path, urls: dict[str, str]) -> None:
    import json
    import os

    http_port = int(urls["orthanc"].rsplit(":", 1)[1])
    dicom_port = int(urls["dicom"].rsplit(":", 1)[1])
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "http_port": http_port, "dicom_port": dicom_port}))
    temporary.replace(path)  # whole or absent: the manager never reads half a file


def _sample_files():
    from .datasets import ct_study

    return (data for _, data in ct_study())


if __name__ == "__main__":
    main()
