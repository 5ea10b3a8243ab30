"""The results as one table (plain text and Markdown), the growth series, the machine they ran on, and JSON.

Ratio convention: every row's ratio says how many times better pacsbox did, whichever way the row counts, i.e.
pacsbox/Orthanc for rates (higher is better) and Orthanc/pacsbox for times and memory (lower is better). A ratio
above 1 always means pacsbox did better.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import pacsbox

from . import servers
from .plan import ROUND_MEASURES, SCALE_MEASURES, Measure, Plan

CONVENTION = ("ratio = how many times better pacsbox did: pacsbox/Orthanc for rates, Orthanc/pacsbox for times "
              "and memory; above 1 means pacsbox is better")
REPOSITORY = Path(__file__).resolve().parents[2]


def machine(orthanc_version: str) -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, load, software versions, pacsbox commit."""
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        memory_kib = int(info.readline().split()[1])  # MemTotal comes first
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(memory_kib / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "orthanc": orthanc_version,
        "pacsbox": pacsbox.__version__,
        "pacsbox_commit": _commit(),
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _commit() -> str:
    try:  # read-only: rev-parse writes nothing in the repository
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def advantage(measure: Measure, ours: float, theirs: float) -> float:
    return ours / theirs if measure.higher_is_better else theirs / ours


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured row: label, unit, direction, both medians and the ratio."""
    table = []
    figures = [(measure, result["medians"]) for measure in ROUND_MEASURES]
    if "scale" in result:
        figures += [(measure, result["scale"]["summary"]) for measure in SCALE_MEASURES]
    for measure, source in figures:
        ours, theirs = source["pacsbox"][measure.key], source["orthanc"][measure.key]
        table.append({"key": measure.key, "label": measure.label, "unit": measure.unit,
                      "better": "higher" if measure.higher_is_better else "lower",
                      "pacsbox": ours, "orthanc": theirs, "ratio": advantage(measure, ours, theirs)})
    return table


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _cells(table: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["measure", "unit", "better", "Orthanc", "pacsbox", "ratio"]
    body = [[row["label"], row["unit"], row["better"], _number(row["orthanc"]), _number(row["pacsbox"]),
             f"{row['ratio']:.2f}"] for row in table]
    return header, body


def _scale_cells(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["instances", "ingest/s Orthanc", "ingest/s pacsbox", "find p50 ms Orthanc", "find p50 ms pacsbox",
              "C-FIND p50 ms Orthanc", "C-FIND p50 ms pacsbox"]
    body = []
    for point in result["scale"]["points"]:
        cells = [f"{point['instances']:,}"]
        for key in ("ingest_per_s", "find_p50_ms", "cfind_p50_ms"):
            cells += [_number(point["orthanc"][key]), _number(point["pacsbox"][key])]
        body.append(cells)
    return header, body


def _text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[column]) for line in [header, *body]) for column in range(len(header))]
    lines = []
    for line in [header, None, *body]:
        if line is None:
            lines.append("  ".join("-" * width for width in widths))
            continue
        cells = [cell.ljust(width) if _is_text(header[column]) else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(line, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _is_text(column: str) -> bool:
    return column in ("measure", "unit", "better", "instances")


def _markdown(header: list[str], body: list[list[str]]) -> str:
    align = [":---" if _is_text(column) else "---:" for column in header]
    return "\n".join("| " + " | ".join(line) + " |" for line in [header, align, *body])


def _machine_line(info: dict[str, Any]) -> str:
    return (f"{info['cpu']}, {info['usable_cores']} of {info['cores']} cores, {info['ram_gib']} GiB RAM, "
            f"{info['os']}, Python {info['python']}, Orthanc {info['orthanc']}, pacsbox {info['pacsbox']} "
            f"({info['pacsbox_commit']}), load average at the end {info['load_average_at_end']}, {info['date']}")


def _plan_line(plan: Plan, result: dict[str, Any]) -> str:
    sizes = result["file_sizes"]
    text = (f"medians of {plan.rounds} round(s), {plan.cold_starts} cold start(s) per server; files of "
            f"{sizes['small']:,} B and {sizes['large']:,} B; REST {plan.rest_small}/{plan.rest_large} files, "
            f"C-STORE {plan.cstore_small}/{plan.cstore_large}, STOW-RS {plan.stow} in requests of "
            f"{plan.stow_batch}; latencies over {plan.requests} requests on "
            f"{plan.latency_set} instances")
    if plan.scale:
        text += f"; archive grown to {plan.scale:,} in windows of {plan.step:,}"
    return text


def render(result: dict[str, Any], plan: Plan, info: dict[str, Any], *, markdown: bool) -> str:
    """The whole report: the table, the growth series, the settings and the machine."""
    render_table = _markdown if markdown else _text
    parts = [render_table(*_cells(rows(result)))]
    notes = [CONVENTION, _plan_line(plan, result),
             "settings of both: " + ", ".join(f"{key}={value}" for key, value in servers.SETTINGS.items()
                                              if key != "RegisteredUsers") + ", SQLite index, TCP_NODELAY=1",
             "machine: " + _machine_line(info)]
    if "scale" in result:
        parts += ["growth of the archive (4 clients; queries after each window):", render_table(*_scale_cells(result))]
    bullet = "- " if markdown else ""
    parts.append("\n".join(bullet + note for note in notes))
    return "\n\n".join(parts)


def document(result: dict[str, Any], plan: Plan, info: dict[str, Any]) -> dict[str, Any]:
    """The JSON written by ``--json``: the table rows, every round's figures, the series, plan and machine."""
    return {
        "convention": CONVENTION,
        "machine": info,
        "plan": plan.as_json(),
        "settings": servers.SETTINGS,
        "file_sizes": result["file_sizes"],
        "rows": rows(result),
        "per_round": result["per_round"],
        "scale": result.get("scale"),
        "seconds": result["seconds"],
    }
