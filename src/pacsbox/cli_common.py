"""What every ``pacsbox`` command shares: the instance named the same way, and ``--json`` errors as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

DEFAULT_NAME = "default"
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text (errors too).")


class JsonCommand(click.Command):
    """A command whose failures, with ``--json``, print ``{"error": ..., "exit_code": ...}`` on stdout instead of
    text on stderr, so that a script reading the JSON always gets JSON."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        as_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            if not as_json:
                raise
            click.echo(json.dumps({"error": error.format_message(), "exit_code": error.exit_code}, indent=2))
            ctx.exit(error.exit_code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            if not ctx.params.get("as_json"):
                raise
            click.echo(json.dumps({"error": error.format_message(), "exit_code": error.exit_code}, indent=2))
            ctx.exit(error.exit_code)


class JsonGroup(click.Group):
    """The ``pacsbox`` group: an unknown command given with ``--json`` is refused in JSON too."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                              list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            if "--json" not in (args[: args.index("--")] if "--" in args else args):
                raise
            click.echo(json.dumps({"error": error.format_message(), "exit_code": error.exit_code}, indent=2))
            ctx.exit(error.exit_code)


def name_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``[NAME]`` as an argument and ``--name NAME`` as its alias (parameters ``name_argument``, ``name_option``)."""
    function = click.option("--name", "name_option", metavar="NAME",
                            help='The instance (same as the NAME argument; default: "default").')(function)
    return click.argument("name_argument", metavar="[NAME]", required=False)(function)


def pick_name(argument: str | None, option: str | None) -> str:
    """The instance name given either way (both: they must agree)."""
    if argument and option and argument != option:
        raise click.UsageError(f"two names given: {argument!r} and --name {option!r}")
    return argument or option or DEFAULT_NAME


def unknown_instance(name: str) -> click.ClickException:
    """One line saying that no instance has that name, and which ones exist."""
    from .lifecycle.home import instance_names

    known = instance_names()
    return click.ClickException(f"no instance named {name!r} ({'known: ' + ', '.join(known) if known else 'none yet'}"
                                f"; start one with `pacsbox start {name}`)")


def check_known(name: str) -> None:
    """Raise :func:`unknown_instance` when ``name`` was never started under ``$PACSBOX_HOME``."""
    from .lifecycle import InstancePaths

    try:
        known = InstancePaths.of(name).root.is_dir()
    except ValueError as error:  # an invalid name
        raise click.ClickException(str(error)) from None
    if not known:
        raise unknown_instance(name)
