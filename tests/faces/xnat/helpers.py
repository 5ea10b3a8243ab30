"""Small helpers shared by the XNAT face suites: DICOM test data and snapshots of server state."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.support.dicomgen import make_dataset, to_bytes, uid


def mr_session(key: str, *, series: int = 2, per_series: int = 2, extra: dict | None = None,
               patient_id: str | None = None, patient_name: str = "Test^Patient") -> list[tuple[str, bytes]]:
    """A small MR study of its own (UIDs derived from ``key``), as (name, bytes) files."""
    files = []
    for number in range(1, series + 1):
        for index in range(1, per_series + 1):
            ds = make_dataset(
                patient_id=patient_id or f"PID-{key}", patient_name=patient_name,
                study_uid=uid("study", key), series_uid=uid("series", key, number),
                sop_uid=uid("instance", key, number, index), modality="MR", series_number=number,
                instance_number=index, extra={"SeriesDescription": f"T{number}w", **(extra or {})},
            )
            files.append((f"{key}/s{number}/{index}.dcm", to_bytes(ds)))
    return files


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its MD5, by relative path (empty when ``root`` is missing)."""
    if not root.exists():
        return {}
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
