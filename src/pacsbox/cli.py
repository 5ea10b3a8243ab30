"""The ``pacsbox`` command line."""

from __future__ import annotations

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


def _serve_options(function):
    """``serve``'s options, as ``cli_serve.OPTIONS`` declares them (the fast path reads the same table)."""
    from .cli_serve import OPTIONS

    types = {"config": click.Path(exists=True, dir_okay=False, path_type=Path),
             "folder": click.Path(file_okay=False, path_type=Path),
             "file": click.Path(dir_okay=False, path_type=Path), "port": click.IntRange(0, 65535)}
    for option in reversed(OPTIONS):  # decorators apply bottom-up: the first option is listed first
        if option.kind == "flag":
            function = click.option(option.declaration, option.parameter, default=False, help=option.help)(function)
        else:
            function = click.option(option.declaration, option.parameter, type=types.get(option.kind),
                                    help=option.help)(function)
    return function


@main.command()
@_serve_options
def serve(**options) -> None:
    """Run a server in the foreground; prints one line with its URL when it answers.

    The configuration file is checked first: every mistake is listed and nothing starts.

    \b
    Example:
      pacsbox serve --config orthanc.json --data-dir ./storage --http-port 8042
    """
    from .cli_serve import ServeFailed, run

    try:
        run(**options)
    except ServeFailed as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
