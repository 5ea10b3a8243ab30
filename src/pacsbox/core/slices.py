"""The order of the slices of a series (Orthanc's ``/series/{id}/ordered-slices``).

Orthanc's rule (its ``SliceOrdering``): when every instance has an ImagePositionPatient and all share the normal
of the series' ImageOrientationPatient, the slices are sorted along that normal and the series is a ``Volume``;
otherwise, when every instance has an IndexInSeries (InstanceNumber, else ImageIndex), they are sorted by it (two
alike are shown anyway) and the series is a ``Sequence``; otherwise the series cannot be ordered. One slice is a
``Sequence`` of itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from .errors import BadRequest
from .index_rows import ResourceRow

_EPSILON = 1e-6
_SPACING = 10 * 1.1920929e-07  # Orthanc: slices closer than 10 float epsilons along the normal are at one place


class CannotOrderSlices(BadRequest):
    """Neither positions nor IndexInSeries order the slices (Orthanc's ErrorCode_CannotOrderSlices)."""


@dataclass(frozen=True)
class Slice:
    """One instance of the series in order, with how many frames it holds."""

    instance_id: str
    frames: int


@dataclass(frozen=True)
class OrderedSlices:
    is_volume: bool
    slices: list[Slice]


def _numbers(text: str | None, count: int) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = tuple(float(part) for part in text.split("\\"))
    except ValueError:
        return None
    return values if len(values) == count else None


def _normal(orientation: tuple[float, ...]) -> tuple[float, float, float]:
    (ax, ay, az, bx, by, bz) = orientation
    return (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)


def _parallel_or_opposite(first: tuple[float, ...], second: tuple[float, ...]) -> bool:
    """Whether two normals are on one line (Orthanc's GeometryToolbox::IsParallelOrOpposite)."""
    cross = _normal((*first, *second))
    return all(abs(value) < _EPSILON for value in cross)


def _frames(row: ResourceRow) -> int:
    try:
        return max(1, int(row.main_tags.get("NumberOfFrames") or 1))
    except ValueError:
        return 1


def order_slices(series: ResourceRow, instances: list[ResourceRow]) -> OrderedSlices:
    """Order the instances of a series; CannotOrderSlices when neither positions nor indexes order them."""
    # the normal of the volume: that of the series' ImageOrientationPatient (a main tag of the series)
    orientation = _numbers(series.main_tags.get("ImageOrientationPatient"), 6)
    if len(instances) <= 1:  # one slice is in order
        return OrderedSlices(False, [Slice(row.public_id, _frames(row)) for row in instances])
    ordered = _by_position(instances, orientation)
    if ordered is not None:
        return OrderedSlices(True, [Slice(row.public_id, _frames(row)) for row in ordered])
    by_index = _by_index(instances)
    if by_index is None:
        raise CannotOrderSlices(f"Unable to order the slices of series {series.public_id}")
    return OrderedSlices(False, [Slice(row.public_id, _frames(row)) for row in by_index])


def _by_position(instances: list[ResourceRow], orientation: tuple[float, ...] | None) -> list[ResourceRow] | None:
    if orientation is None:
        return None
    normal = _normal(orientation)
    keyed: list[tuple[float, ResourceRow]] = []
    for row in instances:
        position = _numbers(row.main_tags.get("ImagePositionPatient"), 3)
        if position is None:
            return None
        own = _numbers(row.main_tags.get("ImageOrientationPatient"), 6)
        if own is not None and not _parallel_or_opposite(_normal(own), normal):
            return None
        keyed.append((sum(p * n for p, n in zip(position, normal, strict=True)), row))
    keyed.sort(key=lambda pair: pair[0])
    for (before, _), (after, _) in pairwise(keyed):
        if abs(after - before) <= _SPACING:  # two slices at one place: no single order
            return None
    return [row for _, row in keyed]


def _by_index(instances: list[ResourceRow]) -> list[ResourceRow] | None:
    """By IndexInSeries, when every instance has one (two alike: Orthanc shows them anyway, in a stable order)."""
    if any(row.index_in_series is None for row in instances):
        return None
    return sorted(instances, key=lambda row: row.index_in_series or 0)
