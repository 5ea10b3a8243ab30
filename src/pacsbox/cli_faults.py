"""``pacsbox faults add|ls|rm|clear`` and ``pacsbox events [-f] [--json]``: a running instance's fault rules and
event log (README "Testing failures").

Register them on the ``pacsbox`` group with ``register(main)``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from .cli_common import JSON as _JSON
from .cli_common import JsonCommand, name_options, pick_name

# rm takes IDs as its arguments: its instance is --name only
_NAME_OPTION = click.option("--name", "name_option", metavar="NAME", help='The instance (default: "default").')


def register(group: click.Group) -> None:
    """Add ``faults`` and ``events`` to the ``pacsbox`` group."""
    group.add_command(faults)
    group.add_command(events)


def _instance(name: str):
    from .lifecycle import InstanceError, InstanceNotRunning, get_instance

    try:
        instance = get_instance(name)
        instance.faults  # noqa: B018 (refuses an engine without fault rules, with the reason)
    except (InstanceNotRunning, InstanceError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    return instance


def _calling(action):
    from .faults.client import FaultsApiError

    try:
        return action()
    except FaultsApiError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"the server did not answer: {error}") from None


def _describe(rule: dict[str, Any]) -> str:
    match = " ".join(f"{key}={rule[key]}" for key in ("face", "method", "path", "operation", "calling_aet",
                                                     "called_aet", "sop_class", "first", "after", "probability",
                                                     "seed") if key in rule)
    return f"{rule['id']:>4}  {match}  action={json.dumps(rule['action'])}  fired {rule['fired']}/{rule['matched']}"


@click.group()
def faults() -> None:
    """A running instance's fault rules: make it fail on purpose."""


@faults.command("add", cls=JsonCommand)
@click.argument("rule")
@name_options
@_JSON
def add(rule: str, name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """Add RULE, a JSON object (or list), e.g. '{"face": "orthanc", "method": "POST", "path": "/instances",
    "first": 2, "action": {"http_status": 503}}'; '@FILE' reads it from a file.

    \b
    Example:
      pacsbox faults add @rule.json mytests
    """
    name = pick_name(name_argument, name_option)
    if rule.startswith("@"):
        try:
            with open(rule[1:], encoding="utf-8") as handle:
                rule = handle.read()
        except OSError as error:
            raise click.ClickException(f"cannot read {rule[1:]}: {error}") from None
    try:
        data = json.loads(rule)
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="RULE") from None
    instance = _instance(name)
    added = _calling(lambda: instance.faults.add_many(data) if isinstance(data, list) else instance.faults.add(data))
    rules = added if isinstance(added, list) else [added]
    click.echo(json.dumps(added, indent=2) if as_json else "\n".join(f"added rule {r['id']}" for r in rules))


@faults.command("ls", cls=JsonCommand)
@name_options
@_JSON
def ls(name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """List the rules, with how often each matched and fired.

    \b
    Example:
      pacsbox faults ls mytests --json
    """
    instance = _instance(pick_name(name_argument, name_option))
    rules = _calling(instance.faults.list)
    if as_json:
        click.echo(json.dumps(rules, indent=2))
    elif rules:
        click.echo("\n".join(_describe(rule) for rule in rules))
    else:
        click.echo("no fault rules")


@faults.command("rm")
@click.argument("rule_ids", nargs=-1, required=True, metavar="ID...")
@_NAME_OPTION
def rm(rule_ids: tuple[str, ...], name_option: str | None) -> None:
    """Remove rules by ID.

    \b
    Example:
      pacsbox faults rm 1 2 --name mytests
    """
    instance = _instance(pick_name(None, name_option))
    for rule_id in rule_ids:
        _calling(lambda rule_id=rule_id: instance.faults.remove(rule_id))
        click.echo(f"removed rule {rule_id}")


@faults.command("clear")
@name_options
def clear(name_argument: str | None, name_option: str | None) -> None:
    """Remove every rule.

    \b
    Example:
      pacsbox faults clear mytests
    """
    instance = _instance(pick_name(name_argument, name_option))
    _calling(instance.faults.clear)
    click.echo("removed every fault rule")


def _line(event: dict[str, Any]) -> str:
    moment = time.strftime("%H:%M:%S", time.localtime(event["time"])) + f".{int(event['time'] % 1 * 1000):03d}"
    shown = {k: v for k, v in event.items() if k not in ("seq", "time", "kind", "face")}
    summary = " ".join(f"{key}={value if not isinstance(value, (dict, list)) else json.dumps(value)}"
                       for key, value in shown.items())
    return f"{event['seq']:>6} {moment} {event['face']:<8} {event['kind']:<15} {summary}"


@click.command(cls=JsonCommand)
@name_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--since", type=click.IntRange(0), default=0, help="Only events after this seq.")
@click.option("-n", "--limit", type=click.IntRange(1), help="At most this many (the oldest first).")
@click.option("--face", multiple=True, help="Only this face (orthanc, xnat, dicomweb, dimse, archive); repeatable.")
@click.option("--kind", multiple=True,
              help="Only this kind (http, association, association-end, dimse, scu, stored, deleted, reset, job).")
@click.option("--clear", "clear_log", is_flag=True, help="Forget every event instead of printing.")
@_JSON
def events(name_argument: str | None, name_option: str | None, follow: bool, since: int, limit: int | None,
           face: tuple[str, ...], kind: tuple[str, ...], clear_log: bool, as_json: bool) -> None:
    """What a running instance received and sent: HTTP requests, associations, DIMSE messages, SCU operations,
    stored and deleted resources, fired fault rules (one line each, or JSON lines with --json).

    \b
    Example:
      pacsbox events mytests -f
    """
    instance = _instance(pick_name(name_argument, name_option))
    log = instance.events
    if clear_log:
        _calling(log.clear)
        click.echo("event log cleared")
        return
    try:
        while True:
            found = _calling(lambda after=since: log.page(after, limit, face or None, kind or None,
                                                          wait=20 if follow else None))
            for event in found:
                click.echo(json.dumps(event) if as_json else _line(event))
            if found:
                since = found[-1]["seq"]
            if not follow:
                return
    except KeyboardInterrupt:
        pass

