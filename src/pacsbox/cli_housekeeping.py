"""Housekeeping commands of ``pacsbox``: ``info`` (what an instance holds and where to reach it), ``snapshots``
(list, delete), ``rm`` and ``prune`` (remove stopped instances and their data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from .cli_common import JSON, JsonCommand, check_known, name_options, pick_name


def register(group: click.Group) -> None:
    for command in (info, snapshots, rm, prune):
        group.add_command(command)


def data_folder(instance: Any, paths: Any) -> Path:
    """Where an instance's archive lives: from its record, else (stopped) from the configuration it last ran."""
    if instance is not None and instance.engine != "command":
        return Path(instance.data_dir)
    try:
        return Path(json.loads(paths.config_file.read_text())["StorageDirectory"])
    except (OSError, ValueError, KeyError, TypeError):
        return paths.default_data_dir


def _record(name: str) -> tuple[Any, str]:
    """The instance's record (None if it has none) and its status."""
    from .lifecycle import list_instances

    for found, instance, status in list_instances():
        if found == name:
            return instance, status
    return None, "stopped"


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (hard links counted once: snapshots share the archive's files)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    if not folder.is_dir():
        return 0
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink() and (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    return total


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def faces(instance: Any) -> dict[str, str]:
    """The faces this instance serves and their URLs (the real Orthanc: its REST API and DICOM only)."""
    found = {"Orthanc REST API": instance.url}
    if instance.engine == "builtin":
        found["XNAT REST API"] = f"{instance.xnat_url}/data"
        dicomweb = instance.settings.get("DicomWeb") or {}
        if dicomweb.get("Enable", True) is not False:
            root = "/" + str(dicomweb.get("Root", "/dicom-web/")).strip("/")
            found["DICOMweb"] = instance.url + root
    found["DICOM"] = f"{instance.aet}@{instance.dicom_host}:{instance.dicom_port}"
    return found


@click.command(cls=JsonCommand)
@name_options
@JSON
def info(name_argument: str | None, name_option: str | None, as_json: bool) -> None:
    """What an instance holds (counts per level, XNAT projects, snapshots, disk size) and where its faces are.

    \b
    Example:
      pacsbox info mytests
    """
    name = pick_name(name_argument, name_option)
    check_known(name)
    instance, status = _record(name)
    from .lifecycle import InstancePaths

    paths = InstancePaths.of(name)
    data = data_folder(instance, paths)
    summary: dict[str, Any] = {"name": name, "status": status, "engine": instance.engine if instance else None,
                               "data_dir": str(data), "disk_bytes": folder_size(data)
                               + (folder_size(paths.snapshots_dir) if paths.snapshots_dir.is_dir() else 0)}
    if instance is not None and status == "running" and instance.engine != "command":
        statistics = instance.call("GET", "/statistics")
        summary["counts"] = {level: statistics.get(f"Count{level}") for level in
                             ("Patients", "Studies", "Series", "Instances")}
        summary["faces"] = faces(instance)
        summary["snapshots"] = [entry.get("Name") for entry in instance.snapshots()]
        if instance.engine == "builtin":
            projects = instance.call("GET", "/data/projects?format=json")
            summary["xnat_projects"] = sorted(row.get("ID") or row.get("id") for row in
                                              projects.get("ResultSet", {}).get("Result", []))
    else:
        summary["snapshots"] = _stored_snapshots(instance, paths)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    lines = [f"{name}: {status}" + (f" ({summary['engine']})" if summary["engine"] else ""),
             f"  data: {summary['data_dir']} ({_megabytes(summary['disk_bytes'])} on disk, snapshots included)"]
    if "counts" in summary:
        counts = summary["counts"]
        lines.append("  holds: " + ", ".join(f"{counts[level]} {level.lower()}" for level in counts))
    if summary.get("xnat_projects") is not None:
        lines.append(f"  XNAT projects: {', '.join(summary['xnat_projects']) or 'none'}")
    lines.append(f"  snapshots: {', '.join(summary['snapshots']) or 'none'}")
    for face, url in summary.get("faces", {}).items():
        lines.append(f"  {face}: {url}")
    click.echo("\n".join(lines))


def _stored_snapshots(instance: Any, paths: Any) -> list[str]:
    """Snapshot names read from disk (a stopped instance cannot be asked)."""
    folders = [paths.snapshots_dir, data_folder(instance, paths) / "snapshots"]
    found = set()
    for folder in folders:
        if folder.is_dir():
            found |= {entry.name for entry in folder.iterdir() if not entry.name.startswith(".")
                      and (entry.is_dir() or entry.is_symlink())}
    return sorted(found)


@click.command(cls=JsonCommand)
@name_options
@click.option("--delete", "to_delete", multiple=True, metavar="SNAPSHOT", help="Delete this snapshot; repeatable.")
@JSON
def snapshots(name_argument: str | None, name_option: str | None, to_delete: tuple[str, ...], as_json: bool) -> None:
    """List the snapshots of an instance (of every instance without NAME), or delete some.

    \b
    Examples:
      pacsbox snapshots mytests
      pacsbox snapshots mytests --delete loaded
    """
    from .lifecycle import InstanceError, InstancePaths, list_instances

    named = pick_name(name_argument, name_option) if (name_argument or name_option) else None
    if to_delete and named is None:
        raise click.UsageError("--delete needs the instance: pacsbox snapshots NAME --delete SNAPSHOT")
    if named is not None:
        check_known(named)
    rows = [(name, instance, status) for name, instance, status in list_instances() if named in (None, name)]
    if to_delete:
        name, instance, status = rows[0]
        if instance is None or status != "running":
            raise click.ClickException(f"instance {name!r} is not running: start it (`pacsbox start {name}`) to "
                                       "delete its snapshots")
        known = [entry.get("Name") for entry in instance.snapshots()]
        for snapshot in to_delete:
            if snapshot not in known:
                raise click.ClickException(f"instance {name!r} has no snapshot named {snapshot!r} "
                                           f"({'its snapshots: ' + ', '.join(known) if known else 'it has none'})")
        for snapshot in to_delete:
            try:
                if instance.engine == "builtin":
                    instance.call("DELETE", f"/pacsbox/snapshots/{quote(snapshot, safe='')}")
                else:
                    shutil.rmtree(instance.paths.snapshots_dir / snapshot)
            except InstanceError as error:
                raise click.ClickException(str(error)) from None
        _echo(as_json, [{"name": name, "deleted": list(to_delete)}], f"deleted {', '.join(to_delete)} of {name!r}")
        return
    listing = []
    for name, instance, status in rows:
        if instance is not None and status == "running" and instance.engine != "command":
            listed = [entry.get("Name") for entry in instance.snapshots()]
        else:
            listed = _stored_snapshots(instance, InstancePaths.of(name))
        listing.append({"name": name, "status": status, "snapshots": listed})
    text = "\n".join(f"{row['name']}: {', '.join(row['snapshots']) or 'no snapshots'}" for row in listing)
    _echo(as_json, listing, text or "no instances")


def _echo(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def _remove(name: str) -> tuple[int, str | None]:
    """Remove a stopped instance's folder (state, log, data, snapshots); bytes freed, and a data folder kept
    because it lies elsewhere (chosen with --data-dir) if any."""
    from .lifecycle import InstancePaths

    paths = InstancePaths.of(name)
    instance, _ = _record(name)
    kept = None
    if instance is None or instance.engine != "command":
        data = data_folder(instance, paths).resolve()
        if paths.root.resolve() not in data.parents and data.exists():
            kept = str(data)
    freed = folder_size(paths.root)
    shutil.rmtree(paths.root, ignore_errors=True)
    return freed, kept


@click.command(cls=JsonCommand)
@click.argument("names", nargs=-1, metavar="NAME...")
@click.option("--name", "name_options", multiple=True, metavar="NAME", help="An instance (same as NAME); repeatable.")
@click.option("--force", is_flag=True, help="Stop a running instance first instead of refusing.")
@JSON
def rm(names: tuple[str, ...], name_options: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Remove instances: their state, log, data and snapshots (a data folder chosen with --data-dir is kept).

    \b
    Example:
      pacsbox rm mytests
    """
    from .lifecycle import stop

    targets = list(dict.fromkeys((*names, *name_options)))
    if not targets:
        raise click.UsageError("name the instances to remove: pacsbox rm NAME...")
    for name in targets:  # all checked before anything is removed
        check_known(name)
        _, status = _record(name)
        if status in ("running", "starting") and not force:
            raise click.ClickException(f"instance {name!r} is running: stop it first (`pacsbox stop {name}`), "
                                       "or use --force")
    results = []
    for name in targets:
        stop(name, grace=5)
        freed, kept = _remove(name)
        results.append({"name": name, "freed_bytes": freed, "kept_data_dir": kept})
    _echo(as_json, results, "\n".join(
        f"removed {r['name']!r} ({_megabytes(r['freed_bytes'])})"
        + (f"; its data folder {r['kept_data_dir']} is kept" if r["kept_data_dir"] else "") for r in results))


@click.command(cls=JsonCommand)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@JSON
def prune(dry_run: bool, as_json: bool) -> None:
    """Remove every instance that is not running (stopped, or whose process is gone), with its data.

    \b
    Example:
      pacsbox prune --dry-run
    """
    from .lifecycle import InstancePaths, list_instances

    targets = [name for name, _, status in list_instances() if status in ("stopped", "stale")]
    results = []
    for name in targets:
        if dry_run:
            results.append({"name": name, "freed_bytes": folder_size(InstancePaths.of(name).root),
                            "kept_data_dir": None})
        else:
            freed, kept = _remove(name)
            results.append({"name": name, "freed_bytes": freed, "kept_data_dir": kept})
    verb = "would remove" if dry_run else "removed"
    text = "\n".join(f"{verb} {r['name']!r} ({_megabytes(r['freed_bytes'])})"
                     + (f"; its data folder {r['kept_data_dir']} is kept" if r["kept_data_dir"] else "")
                     for r in results) or "nothing to prune: every instance is running"
    _echo(as_json, results, text)
