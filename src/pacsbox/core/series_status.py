"""Orthanc's completeness of a series: how many instances its main tags announce, and its Status."""

from __future__ import annotations

from collections.abc import Mapping


def expected_instances(series_tags: Mapping[str, str]) -> int | None:
    """Orthanc's ExpectedNumberOfInstances of a series, from the main tags that announce it."""
    def number(keyword: str) -> int | None:
        try:
            return int(series_tags[keyword])
        except (KeyError, ValueError):
            return None

    for first, second in (("ImagesInAcquisition", "NumberOfTemporalPositions"),
                          ("NumberOfSlices", "NumberOfTimeSlices")):
        a, b = number(first), number(second)
        if a is not None and b is not None:
            return a * b
    return number("CardiacNumberOfImages")


def series_status(expected: int | None, indexes: list[int | None]) -> str:
    """Orthanc's series Status: Unknown, Complete, Missing or Inconsistent."""
    if expected is None:
        return "Unknown"
    seen: set[int] = set()
    for index in indexes:
        if index is None:
            return "Unknown"
        if index < 1 or index > expected or index in seen:
            return "Inconsistent"
        seen.add(index)
    return "Complete" if len(seen) == expected else "Missing"
