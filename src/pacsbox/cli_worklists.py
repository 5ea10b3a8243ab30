"""``pacsbox worklists add/ls/rm``: the modality worklist items a running server's worklist SCP serves, through
its ``/pacsbox/worklists`` routes. Register with ``register(main)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .cli_data import _server

_TARGET = [
    click.option("--to", "--name", "instance", metavar="NAME",
                 help="A running pacsbox instance (default: 'default')."),
    click.option("--url", help="Any pacsbox's HTTP base URL instead of --to, e.g. http://127.0.0.1:8042."),
    click.option("--user", help="User name for --url (HTTP Basic)."),
    click.option("--password", help="Password for --url."),
]


def _targeted(command):
    for option in reversed(_TARGET):
        command = option(command)
    return command


def _call(server: Any, method: str, path: str, **kwargs: Any) -> Any:
    import requests

    try:
        answer = requests.request(method, server.url + "/pacsbox/worklists" + path, auth=server.auth, timeout=30,
                                  **kwargs)
    except requests.RequestException as error:
        raise click.ClickException(f"{server.url} cannot be reached: {error}") from None
    if answer.status_code >= 400:
        try:
            details = answer.json().get("Details") or answer.json().get("Message")
        except ValueError:
            details = answer.text[:200]
        raise click.ClickException(f"{method} {path or '/'}: HTTP {answer.status_code}: {details}")
    return answer.json()


@click.group("worklists")
def worklists_group() -> None:
    """The modality worklist items a running server serves (its Modality Worklist C-FIND SCP)."""


@worklists_group.command("add")
@click.argument("sources", nargs=-1, required=True)
@click.option("--id", "item_id", help="The item's ID (one source only; the same ID replaces an item).")
@_targeted
def add_command(sources: tuple[str, ...], item_id: str | None, instance: str | None, url: str | None,
                user: str | None, password: str | None) -> None:
    """Add items: .wl or other DICOM files, .json files (DICOM JSON or Orthanc's simplified tags), or a JSON
    object given inline ('{"PatientName": "Doe^John", ...}'). Prints each new ID.

    \b
    Example:
      pacsbox worklists add '{"PatientName": "Doe^John", "PatientID": "P1"}' --name mytests
    """
    if item_id is not None and len(sources) != 1:
        raise click.UsageError("--id names one item: give one source")
    server = _server(instance, url, user, password, "PACSBOX", None)
    params = {"id": item_id} if item_id else {}
    for source in sources:
        path = Path(source)
        if source.lstrip().startswith("{"):
            data = source.encode()
        elif path.is_file():
            data = path.read_bytes()
        else:
            raise click.BadParameter(f"{source!r} is neither a file nor a JSON object", param_hint="SOURCES")
        click.echo(_call(server, "POST", "", data=data, params=params)["ID"])


@worklists_group.command("ls")
@click.argument("name_argument", metavar="[NAME]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print every item's tags as JSON.")
@_targeted
def ls_command(name_argument: str | None, as_json: bool, instance: str | None, url: str | None, user: str | None,
               password: str | None) -> None:
    """List the items of instance NAME (or --name, --to): ID, patient, accession number, first scheduled step.

    \b
    Example:
      pacsbox worklists ls mytests --json
    """
    from .cli_common import pick_name

    if name_argument or instance:
        instance = pick_name(name_argument, instance)
    server = _server(instance, url, user, password, "PACSBOX", None)
    items = _call(server, "GET", "", params={"expand": ""})
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for item_id, tags in items.items():
        tags = tags or {}
        steps = tags.get("ScheduledProcedureStepSequence") or [{}]
        step = steps[0] if isinstance(steps, list) and steps else {}
        click.echo("\t".join([item_id, str(tags.get("PatientName", "")), str(tags.get("PatientID", "")),
                              str(tags.get("AccessionNumber", "")), str(step.get("Modality", "")),
                              str(step.get("ScheduledStationAETitle", "")),
                              str(step.get("ScheduledProcedureStepStartDate", ""))]))


@worklists_group.command("rm")
@click.argument("item_ids", nargs=-1)
@click.option("--all", "remove_all", is_flag=True, help="Remove every item.")
@_targeted
def rm_command(item_ids: tuple[str, ...], remove_all: bool, instance: str | None, url: str | None,
               user: str | None, password: str | None) -> None:
    """Remove items by ID (or --all).

    \b
    Example:
      pacsbox worklists rm --all --name mytests
    """
    if remove_all == bool(item_ids):
        raise click.UsageError("Give item IDs, or --all")
    server = _server(instance, url, user, password, "PACSBOX", None)
    if remove_all:
        click.echo(f"removed {_call(server, 'DELETE', '')['Removed']} item(s)")
        return
    for item_id in item_ids:
        _call(server, "DELETE", f"/{item_id}")


def register(group: click.Group) -> None:
    """Add ``worklists`` to ``group``."""
    group.add_command(worklists_group)
