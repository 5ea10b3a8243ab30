"""``pacsbox config check FILE``: every mistake of a configuration file, before any server reads it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group("config")
def config_group() -> None:
    """Check configuration files.

    \b
    Example:
      pacsbox config check orthanc.json
    """


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {file, valid, errors, warnings} as JSON.")
def check(file: Path, as_json: bool) -> None:
    """Check every key of FILE (types, ranges, AE titles, ports, modalities); exit 1 listing every mistake.

    \b
    Example:
      pacsbox config check orthanc.json && pacsbox start --config orthanc.json
    """
    from .core.config_check import check_values, read_file, unknown_keys

    try:
        values = read_file(file)
    except ValueError as error:
        _finish(as_json, file, [{"path": "", "expected": "a readable JSON object", "message": str(error)}], [],
                str(error))
        return
    problems = check_values(values)
    warnings = unknown_keys(values)
    errors = [{"path": p.path, "expected": p.expected, "value": p.value, "message": str(p)} for p in problems]
    text = (f"{file}: {len(problems)} error{'s' if len(problems) != 1 else ''}:\n"
            + "\n".join(f"  {problem}" for problem in problems)) if problems else f"{file}: valid ({len(values)} keys)"
    _finish(as_json, file, errors, warnings, text)


def _finish(as_json: bool, file: Path, errors: list[dict], warnings: list[str], text: str) -> None:
    if as_json:
        click.echo(json.dumps({"file": str(file), "valid": not errors, "errors": errors, "warnings": warnings},
                              indent=2, default=str))
    else:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(text, err=bool(errors))
    if errors:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(config_group)
