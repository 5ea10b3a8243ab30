"""``pacsbox datasets`` and ``pacsbox add-data``: list the generated data sets, upload one through a face.

Register them on the ``pacsbox`` group with ``main.add_command(datasets_command)`` and
``main.add_command(add_data_command)`` (or ``register(main)``).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import click

from .datasets import DATASETS, METHODS, SIZES, MissingExtra, names


def _measure(name: str) -> tuple[int, int]:
    """Files and bytes of a data set at the default size (generated in memory: nothing is stored)."""
    from .datasets import sessions

    files = size = 0
    for session in sessions(name):
        files += len(session.files)
        size += sum(len(item.data) for item in session.files)
    return files, size


def _rows() -> list[dict[str, Any]]:
    rows = []
    for dataset in DATASETS.values():
        row: dict[str, Any] = {"name": dataset.name, "description": dataset.description}
        try:
            row["files"], row["bytes"] = _measure(dataset.name)
        except MissingExtra as error:
            row["files"] = row["bytes"] = None
            row["missing"] = str(error)
        row["methods"] = list(METHODS) if dataset.dicom else ["xnat-import"]
        row["options"] = dict(dataset.options)
        row["extra"] = dataset.extra or None
        rows.append(row)
    return rows


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 1000:
        return f"{count} B"
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (name, description, files, bytes, ...).")
def datasets_command(as_json: bool) -> None:
    """List the data sets pacsbox generates, with their number of files and size at the default size.

    \b
    Example:
      pacsbox datasets --json
    """
    rows = _rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column, justify in (("name", "left"), ("files", "right"), ("size", "right"), ("description", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        description = row["description"] + (f" (needs pacsbox[{row['extra']}])" if row.get("missing") else "")
        files = "-" if row["files"] is None else str(row["files"])
        table.add_row(row["name"], files, _size(row["bytes"]), description)
    Console().print(table)


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, not {pair!r}", param_hint="--option")
        options[key.strip()] = value.strip()
    return options


def _server(instance: str | None, url: str | None, user: str | None, password: str | None, aet: str,
            dicom_port: int | None) -> Any:
    """The server to upload to: a running pacsbox instance by name, or one given by its URL."""
    if url:
        if instance:
            raise click.UsageError("Give either --to INSTANCE or --url URL, not both")
        if (user is None) != (password is None):
            raise click.UsageError("--user and --password go together")
        return SimpleNamespace(url=url.rstrip("/"), auth=(user, password) if user is not None else None, aet=aet,
                               dicom_port=dicom_port or 4242)
    try:
        from .lifecycle import InstanceNotRunning, get_instance
    except ImportError:
        raise click.ClickException("This pacsbox has no instance manager: give the server with --url URL"
                                   " [--user U --password P --aet A --dicom-port N]") from None
    from .cli_common import check_known

    check_known(instance or "default")
    try:
        return get_instance(instance or "default")
    except InstanceNotRunning as error:
        raise click.ClickException(str(error)) from None


@click.command("add-data")
@click.argument("name", metavar="DATASET", type=click.Choice(names()))
@click.argument("instance_argument", metavar="[NAME]", required=False)
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="The face to upload through: XNAT import service (archive or prearchive), Orthanc REST, C-STORE "
                   "(default: xnat-import, or orthanc-rest for the real Orthanc).")
@click.option("--name", "--to", "instance", metavar="NAME",
              help="A running instance (same as the NAME argument; default: 'default').")
@click.option("--url", help="Any server's HTTP base URL instead of --to, e.g. http://127.0.0.1:8042.")
@click.option("--user", help="User name for --url (HTTP Basic).")
@click.option("--password", help="Password for --url.")
@click.option("--aet", default="PACSBOX", show_default=True, help="The server's AE title, for --url with c-store.")
@click.option("--dicom-port", type=click.IntRange(1, 65535), help="The server's DICOM port, for --url (default 4242).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True)
@click.option("--option", "-o", "extra", multiple=True, metavar="KEY=VALUE",
              help="A data set's own option, e.g. -o patients=100 for 'many'.")
def add_data_command(name: str, instance_argument: str | None, method: str | None, instance: str | None,
                     url: str | None, user: str | None, password: str | None, aet: str, dicom_port: int | None,
                     seed: int, size: str, extra: tuple[str, ...]) -> None:
    """Generate data set DATASET and upload it to a server, with a progress bar; prints a one-line summary.

    \b
    Examples:
      pacsbox add-data dummydicom mytests
      pacsbox add-data many mytests --method c-store -o patients=100
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .datasets import add_data
    from .datasets.http import HttpError
    from .datasets.upload import UploadError

    if instance_argument and instance and instance_argument != instance:
        raise click.UsageError(f"two names given: {instance_argument!r} and --name {instance!r}")
    server = _server(instance_argument or instance, url, user, password, aet, dicom_port)
    method = _method_for(server, method)
    options = _options(extra)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeElapsedColumn())
    # the bars go to stderr, so stdout carries only the summary line
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        making = bar.add_task(f"generating {name}", total=None)
        sending = bar.add_task(f"uploading via {method}", total=None, visible=False)

        def generated(files: int, _total: int) -> None:
            bar.update(making, completed=files)

        def progress(done: int, total: int) -> None:
            if not bar.tasks[sending].visible:  # generation is over: its count is the total
                bar.update(making, total=total, completed=total)
                bar.update(sending, visible=True)
            bar.update(sending, completed=done, total=total)

        try:
            summary = add_data(name, server, method=method, seed=seed, size=size, progress=progress,
                               generated=generated, **options)
        except (ValueError, MissingExtra, UploadError, HttpError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(str(summary))


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        """Files per second of a task (blank until rich has measured one)."""

        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} files/s" if task.speed else "", style="progress.data.speed")

    return Rate()


_Rate = _rate_column


def _method_for(server: Any, method: str | None) -> str:
    """The method asked for, or the one the server supports: the real Orthanc has no XNAT face."""
    orthanc = getattr(server, "engine", "builtin") == "orthanc"
    if method is None:
        return "orthanc-rest" if orthanc else "xnat-import"
    if orthanc and method.startswith("xnat-"):
        raise click.UsageError(f"instance {server.name!r} is the real Orthanc, which has no XNAT API: use "
                               "--method orthanc-rest or --method c-store")
    return method


def register(group: click.Group) -> None:
    """Add both commands to ``group``."""
    group.add_command(datasets_command)
    group.add_command(add_data_command)
