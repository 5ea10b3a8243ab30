"""The ``xnat4tests`` console command of the drop-in: ``xnat4tests [--config NAME|FILE] start|stop|restart|add-data``,
as xnat4tests' own, on a pacsbox server (no Docker).

Configurations are read as by :meth:`Config.load`: a name under ``$XNAT4TESTS_HOME/configs`` or a YAML file.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from .data import AVAILABLE_DATASETS

LEVELS = ("critical", "fatal", "error", "warning", "warn", "info", "debug")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_name", default="default", show_default=True, metavar="NAME|FILE",
              help="A configuration name (under $XNAT4TESTS_HOME/configs) or a YAML file.")
@click.option("--loglevel", "-l", type=click.Choice(LEVELS), default="warning", show_default=True,
              help="How much of the drop-in's log to show.")
@click.pass_context
def main(ctx: click.Context, config_name: str, loglevel: str) -> None:
    """xnat4tests' test XNAT without Docker: a pacsbox server whose XNAT face xnatpy and pyxnat use unchanged.

    \b
    Examples:
      xnat4tests start && xnat4tests add-data dummydicom
      xnat4tests --config ./xnat4tests-config.yaml stop
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("pacsbox.xnat4tests")
    logger.addHandler(handler)
    logger.setLevel({"warn": "WARNING", "fatal": "CRITICAL"}.get(loglevel, loglevel.upper()))
    ctx.obj = config_name


def _config(ctx: click.Context) -> Any:
    from .config import Config

    try:
        return Config.load(ctx.obj)
    except (FileNotFoundError, KeyError, TypeError, ValueError, ImportError) as error:
        raise click.ClickException(str(error).strip('"')) from None


def _describe(instance: Any, config: Any) -> str:
    return (f"test XNAT {instance.name!r} (pacsbox, pid {instance.pid}) at {config.xnat_uri} "
            f"({config.xnat_user}/{config.xnat_password}); data in {config.xnat_root_dir}")


@main.command()
@click.option("--keep-mounts/--dont-keep-mounts", default=False, help="Keep the data of an earlier launch.")
@click.option("--rebuild/--dont-rebuild", default=True, help="Accepted for xnat4tests; there is no image to build.")
@click.option("--relaunch/--dont-relaunch", default=False, help="Stop a running server and launch a new one.")
@click.pass_context
def start(ctx: click.Context, keep_mounts: bool, rebuild: bool, relaunch: bool) -> None:
    """Start the configuration's test XNAT, or reuse the running one.

    \b
    Example:
      xnat4tests start --relaunch
    """
    from ..lifecycle import InstanceError
    from .base import start_xnat

    config = _config(ctx)
    try:
        instance = start_xnat(config, keep_mounts=keep_mounts, rebuild=rebuild, relaunch=relaunch)
    except (InstanceError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"started {_describe(instance, config)}")


@main.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the configuration's test XNAT (its data stay in xnat_root_dir).

    \b
    Example:
      xnat4tests stop
    """
    from .. import lifecycle

    config = _config(ctx)
    stopped = lifecycle.stop(config.docker_container)
    click.echo(f"stopped test XNAT {config.docker_container!r}" if stopped
               else f"test XNAT {config.docker_container!r} was not running")


@main.command()
@click.pass_context
def restart(ctx: click.Context) -> None:
    """Restart the configuration's running test XNAT with its data.

    \b
    Example:
      xnat4tests restart
    """
    from ..lifecycle import InstanceError
    from .base import restart_xnat

    config = _config(ctx)
    try:
        instance = restart_xnat(config)
    except InstanceError as error:
        raise click.ClickException(f"{error}: start it with `xnat4tests start`") from None
    click.echo(f"restarted {_describe(instance, config)}")


@main.command("add-data")
@click.argument("dataset", type=click.Choice(AVAILABLE_DATASETS))
@click.option("--upload-method", type=click.Choice(["direct-archive", "prearchive", "direct"]),
              default="direct-archive", show_default=True, help="Through the import service, or into the prearchive.")
@click.pass_context
def add_data_command(ctx: click.Context, dataset: str, upload_method: str) -> None:
    """Upload one of xnat4tests' data sets (generated locally) to the configuration's test XNAT.

    \b
    Example:
      xnat4tests add-data user-training
    """
    from .data import add_data

    config = _config(ctx)
    try:
        summary = add_data(dataset, config, upload_method=upload_method)
    except (RuntimeError, NotImplementedError, ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(str(summary))
