"""The lifecycle commands of ``pacsbox``: start, stop, restart, status/ls, logs, reset, snapshot, restore.

Every command names its instance the same way (``NAME`` argument, ``--name`` alias) and, with ``--json``, prints
JSON on failure too. Exit codes: 0 done; 1 failed (one line saying why and what to do); 2 a usage mistake; 3
``status NAME`` of a known server that is not running (as ``systemctl status``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .cli_common import JSON as _JSON
from .cli_common import JsonCommand, check_known, name_options, pick_name, unknown_instance


def register(group: click.Group) -> None:
    """Add the lifecycle commands to the ``pacsbox`` group."""
    for command in (start, stop, restart, status, ls, logs, reset, snapshot, restore):
        group.add_command(command)


def _failure(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


def _describe(instance, how: str) -> str:
    from .core.config import describe_users

    if instance.engine == "command":
        from .lifecycle.command import describe_instance

        return (f"pacsbox instance {instance.name!r} {how} (command, pid {instance.pid}): "
                f"{describe_instance(instance)}; log {instance.log_file}")
    users = describe_users(instance.users, instance.authentication)
    # the real Orthanc has no XNAT face: only what it serves is shown
    xnat = f"XNAT REST API at {instance.xnat_url}/data; " if instance.engine == "builtin" else ""
    return (f"pacsbox instance {instance.name!r} {how} ({instance.engine}, pid {instance.pid}): "
            f"Orthanc REST API at {instance.url} ({users}); {xnat}"
            f"DICOM AET {instance.aet} at {instance.dicom_host}:{instance.dicom_port}; log {instance.log_file}")


def _emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


class _TrailingCommand(JsonCommand):
    """A command whose arguments after ``--`` are another program's: kept apart before click parses the rest,
    so that ``pacsbox start NAME --engine command -- CMD ARGS...`` is never ambiguous."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta["pacsbox.command"] = args[split + 1:]
            args = args[:split]
        return super().parse_args(ctx, args)


def _env_pair(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r}: write NAME=VALUE")
        pairs[key] = text
    return pairs


@click.command(cls=_TrailingCommand)
@name_options
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Orthanc-style JSON configuration (comments allowed).")
@click.option("--with-data", "datasets", multiple=True, metavar="DATASET",
              help="Load a generated data set (see `pacsbox datasets`); repeatable.")
@click.option("--http-port", type=click.IntRange(1, 65535), help="HTTP port (default: a free one).")
@click.option("--dicom-port", type=click.IntRange(1, 65535), help="DICOM port (default: a free one).")
@click.option("--engine", type=click.Choice(["builtin", "orthanc", "command"]), default="builtin", show_default=True,
              help="pacsbox itself, the installed real Orthanc, or any program given after `--`.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the archive lives (default: the instance folder's data/).")
@click.option("--ready-pattern", metavar="REGEX",
              help="command: ready once this regular expression appears in its output.")
@click.option("--ready-port", type=click.IntRange(1, 65535), help="command: ready once this port accepts.")
@click.option("--ready-url", metavar="URL", help="command: ready once this URL answers HTTP (status < 500).")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", callback=_env_pair,
              help="command: an environment variable added to ours; repeatable.")
@click.option("--cwd", type=click.Path(file_okay=False, path_type=Path),
              help="command: its working directory (default: the instance folder).")
@click.option("--fresh", is_flag=True, help="Stop a running instance of that name (and empty its data) first.")
@click.option("--startup-timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for it.")
@_JSON
@click.pass_context
def start(ctx: click.Context, name_argument: str | None, name_option: str | None, config_file: Path | None,
          datasets: tuple[str, ...], http_port: int | None, dicom_port: int | None, engine: str,
          data_dir: Path | None, ready_pattern: str | None, ready_port: int | None, ready_url: str | None,
          env: dict[str, str], cwd: Path | None, fresh: bool, startup_timeout: float, as_json: bool) -> None:
    """Start a detached server, or reuse the running one when its configuration matches.

    The configuration file is checked first (every mistake listed, nothing started); its HttpPort and DicomPort
    are used unless --http-port/--dicom-port say otherwise. A running server with another configuration is
    restarted, saying what changed.

    \b
    Examples:
      pacsbox start mytests --config orthanc.json --with-data ct-study
      pacsbox start reference --engine orthanc
    Any long-running program, managed the same way:
      pacsbox start myapp --engine command --ready-pattern "listening" -- python -m http.server 8000
    """
    from .lifecycle import InstanceError, ensure

    name = pick_name(name_argument, name_option)
    command = ctx.meta.get("pacsbox.command")
    command_options = {"--ready-pattern": ready_pattern, "--ready-port": ready_port, "--ready-url": ready_url,
                       "--env": env or None, "--cwd": cwd}
    if engine == "command":
        if not command:
            raise click.UsageError("--engine command needs the program after `--`: "
                                   "pacsbox start NAME --engine command --ready-pattern REGEX -- CMD ARGS...")
        if config_file or datasets or http_port or dicom_port or data_dir:
            raise click.UsageError("--config, --with-data, --http-port, --dicom-port and --data-dir are pacsbox "
                                   "and Orthanc settings; a command takes its own arguments (its port: --ready-port)")
    elif command is not None or any(value is not None for value in command_options.values()):
        given = [option for option, value in command_options.items() if value is not None]
        raise click.UsageError(f"{', '.join(given) or 'a program after `--`'}: only with --engine command")
    for dataset in datasets:  # before anything starts: a typo or a missing extra must not leave a server behind
        _check_dataset(dataset)
    if config_file is not None:
        _check_config_file(config_file)
    started = time.perf_counter()
    try:
        if engine == "command":
            ready = {"pattern": ready_pattern, "port": ready_port, "url": ready_url}
            instance = ensure(name, command=command, ready=ready, env=env, cwd=cwd, fresh=fresh,
                              startup_timeout=startup_timeout)
        else:
            instance = ensure(name, config_file, engine=engine, http_port=http_port, dicom_port=dicom_port,
                              data_dir=data_dir, startup_timeout=startup_timeout, fresh=fresh,
                              report=lambda text: click.echo(f"note: {text}", err=True))
    except (InstanceError, OSError, ValueError) as error:
        raise _failure(error) from None
    elapsed = time.perf_counter() - started
    how = "started" if instance.spawned else "reused"  # of concurrent starts, only the one that spawned it
    try:
        loaded = [_load_dataset(instance, dataset) for dataset in datasets]
    except click.ClickException:
        if instance.spawned:  # nothing half-done left running: the server this call started goes too
            instance.stop(grace=5)
        raise
    _emit(as_json, {**instance.to_json(), "how": how, "seconds": round(elapsed, 4), "datasets": loaded},
          _describe(instance, f"{how} in {elapsed * 1000:.0f} ms") + "".join(f"\n{line}" for line in loaded))


def _check_dataset(dataset: str) -> None:
    """A known data set whose extra is installed; otherwise one line with the nearest name or the pip line."""
    import difflib

    from .datasets import DATASETS, MissingExtra, sessions

    if dataset not in DATASETS:
        near = difflib.get_close_matches(dataset, list(DATASETS), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise click.ClickException(f"no data set named {dataset!r}: {hint}known: {', '.join(DATASETS)} "
                                   "(see `pacsbox datasets`)")
    if DATASETS[dataset].extra:
        try:
            next(iter(sessions(dataset)), None)  # its generator imports what it needs first
        except MissingExtra as error:
            raise click.ClickException(str(error)) from None


def _check_config_file(path: Path) -> None:
    """Every mistake of the file before anything starts; unknown keys as warnings on the console."""
    from .core.config_check import ConfigError, check_or_raise, read_file, unknown_keys

    try:
        values = read_file(path)
        for line in unknown_keys(values):
            click.echo(f"warning: {line}", err=True)
        check_or_raise(values, f"the configuration file {path}")
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _load_dataset(instance, dataset: str) -> str:
    from .datasets import add_data

    method = "xnat-import" if instance.engine == "builtin" else "orthanc-rest"
    try:
        return str(add_data(dataset, instance, method=method))
    except (KeyError, ValueError, RuntimeError, OSError) as error:
        raise click.ClickException(f"could not load data set {dataset!r}: {error}") from None


@click.command(cls=JsonCommand)
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--name", "name_options", multiple=True, metavar="NAME", help="An instance (same as NAME); repeatable.")
@click.option("--all", "every", is_flag=True,
              help="Stop every instance under $PACSBOX_HOME, and its warm-start template.")
@click.option("--grace", type=float, default=10.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL.")
@_JSON
def stop(names: tuple[str, ...], name_options: tuple[str, ...], every: bool, grace: float, as_json: bool) -> None:
    """Stop instances (default: "default") and their whole process trees; the data stay (`pacsbox rm` removes).

    \b
    Examples:
      pacsbox stop mytests
      pacsbox stop --all
    """
    from .lifecycle import list_instances
    from .lifecycle import stop as stop_instance

    names = (*names, *name_options)
    if every and names:
        raise click.UsageError("give instance names or --all, not both")
    targets = [name for name, _, _ in list_instances()] if every else list(dict.fromkeys(names or ["default"]))
    if not every:
        for name in targets:  # every name checked before any is stopped
            check_known(name)
    results = []
    for name in targets:
        try:
            results.append({"name": name, "stopped": stop_instance(name, grace=grace)})
        except ValueError as error:
            raise _failure(error) from None
    lines = [f"stopped {r['name']!r}" if r["stopped"] else f"{r['name']!r} was not running" for r in results]
    if every:  # the warm-start template of this home goes too (the servers it forked are stopped above)
        from .lifecycle.warm import stop_template

        if stop_template(grace=grace):
            lines.append("stopped the warm-start template")
    _emit(as_json, results, "\n".join(lines) or "no instances")


@click.command(cls=JsonCommand)
@name_options
@click.option("--startup-timeout", type=float, default=60.0, show_default=True)
@_JSON
def restart(name_argument: str | None, name_option: str | None, startup_timeout: float, as_json: bool) -> None:
    """Stop an instance and start it again with the same configuration, ports and data.

    \b
    Example:
      pacsbox restart mytests
    """
    from .lifecycle import InstanceError
    from .lifecycle import restart as restart_instance

    name = pick_name(name_argument, name_option)
    check_known(name)
    try:
        instance = restart_instance(name, startup_timeout=startup_timeout)
    except (InstanceError, OSError, ValueError) as error:
        raise _failure(error) from None
    _emit(as_json, instance.to_json(), _describe(instance, "restarted"))


_COLUMNS = ("NAME", "ENGINE", "STATUS", "PID", "HTTP", "DICOM", "UPTIME", "DATA")
_TABLE_WIDTH = 200


def _table(rows: list[tuple[str, Any, str]]) -> None:
    cells = [_cells(name, instance, state) for name, instance, state in rows]
    if not sys.stdout.isatty() and _plain_table(cells):
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None)
    for column in _COLUMNS:
        table.add_column(column)
    for row in cells:
        table.add_row(*row)
    Console(width=_TABLE_WIDTH).print(table)


def _cells(name: str, instance: Any, state: str) -> tuple[str, ...]:
    if instance is None:
        return (name, "", state, "", "", "", "", "")
    uptime = f"{time.time() - instance.started_at:.0f}s" if state == "running" else ""
    if instance.engine == "command":
        ready = instance.settings.get("ready", {})
        where = ready.get("url") or (f"port {ready['port']}" if ready.get("port") else "")
        return (name, instance.engine, state, str(instance.pid), where, "", uptime, str(instance.data_dir))
    return (name, instance.engine, state, str(instance.pid), instance.url,
            f"{instance.aet}@{instance.dicom_host}:{instance.dicom_port}", uptime, str(instance.data_dir))


def _plain_table(cells: list[tuple[str, ...]]) -> bool:
    """Print the table as rich prints it to a file or pipe (no box, one space of padding each side of a cell),
    without importing rich (~50 ms, on the path of every scripted `pacsbox status`). False, printing nothing,
    when rich would have to fold or measure something: a line wider than its console, or non-ASCII text."""
    table = [_COLUMNS, *cells]
    if not all(value.isascii() and value.isprintable() for row in table for value in row):
        return False
    widths = [max(len(row[column]) for row in table) for column in range(len(_COLUMNS))]
    if sum(widths) + 2 * len(widths) > _TABLE_WIDTH:
        return False
    click.echo("\n".join("".join(f" {value.ljust(width)} " for value, width in zip(row, widths, strict=True))
                         for row in table))
    return True


@click.command(cls=JsonCommand)
@click.argument("name_argument", metavar="[NAME]", required=False)
@click.option("--name", "name_option", metavar="NAME", help="One instance (same as NAME).")
@_JSON
def status(name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """Show instances (all, or one by NAME; exit code 3 when that one is not running, 1 when it is unknown).

    \b
    Examples:
      pacsbox status
      pacsbox status mytests --json
    """
    from .lifecycle import list_instances

    name = pick_name(name_argument, name_option) if (name_argument or name_option) else None
    try:
        rows = [row for row in list_instances() if name is None or row[0] == name]
    except ValueError as error:
        raise _failure(error) from None
    if name is not None and not rows:
        raise unknown_instance(name)
    if as_json:
        click.echo(json.dumps([{"name": n, "status": s, **(i.to_json() if i else {})} for n, i, s in rows],
                              indent=2))
    elif rows:
        _table(rows)
    else:
        click.echo("no instances (start one with `pacsbox start`)")
    if name is not None and rows[0][2] != "running":
        sys.exit(3)


@click.command(cls=JsonCommand)
@_JSON
def ls(as_json: bool) -> None:
    """List every instance (same as `status` without a name).

    \b
    Example:
      pacsbox ls --json
    """
    status.callback(None, None, as_json)


@click.command(cls=JsonCommand)
@name_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until interrupted.")
@click.option("-n", "--lines", type=click.IntRange(1), default=40, show_default=True)
@_JSON
def logs(name_argument: str | None, name_option: str | None, follow: bool, lines: int, as_json: bool) -> None:
    """Print the tail of an instance's log.

    \b
    Example:
      pacsbox logs mytests -n 100 -f
    """
    from .lifecycle import InstancePaths
    from .lifecycle.process import log_tail

    name = pick_name(name_argument, name_option)
    check_known(name)
    try:
        path = InstancePaths.of(name).log_file
    except ValueError as error:
        raise _failure(error) from None
    if not path.exists():
        raise click.ClickException(f"instance {name!r} has no log yet ({path})")
    tail = log_tail(path, lines)
    _emit(as_json, {"name": name, "log_file": str(path), "lines": tail.splitlines()}, tail)
    if follow:
        _follow(path)


def _follow(path: Path) -> None:
    position = path.stat().st_size
    try:
        while True:
            size = path.stat().st_size if path.exists() else 0
            if size < position:  # rotated: the new file starts from the beginning
                position = 0
            if size > position:
                with open(path, "rb") as handle:
                    handle.seek(position)
                    sys.stdout.write(handle.read().decode("utf-8", "replace"))
                    sys.stdout.flush()
                    position = handle.tell()
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass


def _running(name: str):
    from .lifecycle import InstanceNotRunning, get_instance

    check_known(name)
    try:
        return get_instance(name)
    except (InstanceNotRunning, ValueError) as error:
        raise _failure(error) from None


def _admin(action: str, name: str, as_json: bool, *arguments: str) -> None:
    from .lifecycle import InstanceError

    instance = _running(name)
    if action == "restore":
        _check_snapshot(instance, arguments[0])
    try:
        result = getattr(instance, action)(*arguments)
    except InstanceError as error:
        raise _failure(error) from None
    snapshot_name = arguments[0] if arguments else ""
    text = {"reset": f"emptied {name!r}", "snapshot": f"saved snapshot {snapshot_name!r} of {name!r}",
            "restore": f"restored snapshot {snapshot_name!r} into {name!r}"}[action]
    _emit(as_json, result, f"{text} in {result.get('Seconds', 0) * 1000:.0f} ms")


def _check_snapshot(instance, snapshot_name: str) -> None:
    from .lifecycle import InstanceError

    try:
        known = [entry.get("Name") for entry in instance.snapshots()]
    except InstanceError as error:
        raise _failure(error) from None
    if snapshot_name not in known:
        listed = f"its snapshots: {', '.join(known)}" if known else "it has none yet"
        raise click.ClickException(f"instance {instance.name!r} has no snapshot named {snapshot_name!r} ({listed}; "
                                   f"save one with `pacsbox snapshot {snapshot_name} {instance.name}`)")


@click.command(cls=JsonCommand)
@name_options
@_JSON
def reset(name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """Empty an instance's archive (index, files, change log) without restarting it.

    \b
    Example:
      pacsbox reset mytests
    """
    _admin("reset", pick_name(name_argument, name_option), as_json)


@click.command(cls=JsonCommand)
@click.argument("snapshot_name", metavar="SNAPSHOT")
@name_options
@_JSON
def snapshot(snapshot_name: str, name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """Save an instance's archive under SNAPSHOT (replacing an older one of that name).

    \b
    Example:
      pacsbox snapshot loaded mytests
    """
    _admin("snapshot", pick_name(name_argument, name_option), as_json, snapshot_name)


@click.command(cls=JsonCommand)
@click.argument("snapshot_name", metavar="SNAPSHOT")
@name_options
@_JSON
def restore(snapshot_name: str, name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """Bring an instance's archive back to SNAPSHOT.

    \b
    Example:
      pacsbox restore loaded mytests
    """
    _admin("restore", pick_name(name_argument, name_option), as_json, snapshot_name)
