"""Helpers of the modification differential tests: the two servers asked the same thing, and the tags of what a
job made, with the values it generated (UIDs, anonymized patient IDs and names) replaced by tokens.

Tokens are numbered in the order the values first appear, over every instance a job made (paired with their
sources through ModifiedFrom/AnonymizedFrom), so two servers compare equal only when they generated new values at
the same places with the same pattern of reuse: one new StudyInstanceUID for a whole study, one per series, the
same new UID wherever the same old one was referenced.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pydicom

from tests.support.compare import DEFAULT_IGNORE_KEYS, assert_equivalent, assert_same

IGNORE = DEFAULT_IGNORE_KEYS | {"HttpUsername", "RemoteIP", "PixelDataOffset", "DicomDiskSize*",
                                "DicomUncompressedSize*"}
_GENERATED = re.compile(r"^([0-9]+\.){4,}[0-9]+$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
                        r"|^Anonymized[0-9]+$")


class Pair:
    """pacsbox and the real Orthanc, asked the same thing."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.sessions = (ours.session(), reference.session)
        self.urls = (ours.url, reference.url)

    def call(self, method: str, path: str, **kwargs):
        return tuple(session.request(method, url + path, **kwargs)
                     for session, url in zip(self.sessions, self.urls, strict=True))

    def get(self, path: str, side: int = 1) -> Any:
        return self.sessions[side].get(self.urls[side] + path).json()

    def both(self, path: str) -> tuple[Any, Any]:
        return self.get(path, 0), self.get(path, 1)


_RATIO = re.compile(r"(compression ratio |factor )[0-9.e+-]+")


class Tokens:
    """Generated values replaced by ``<new N>``, numbered by first appearance."""

    def __init__(self, original_values: set[str]) -> None:
        self.original = original_values
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, str) and value not in self.original and _GENERATED.match(value):
            return self.seen.setdefault(value, f"<new {len(self.seen)}>")
        if isinstance(value, str):  # compressed sizes differ between two encoders of the same syntax
            return _RATIO.sub(r"\1<ratio>", value)
        return value


def values_of(tags: Any, into: set[str] | None = None) -> set[str]:
    """Every string value of a tags JSON (at every depth)."""
    into = set() if into is None else into
    if isinstance(tags, dict):
        for item in tags.values():
            values_of(item, into)
    elif isinstance(tags, list):
        for item in tags:
            values_of(item, into)
    elif isinstance(tags, str):
        into.add(tags)
    return into


def made_instances(pair: Pair, side: int, level: str, public_id: str) -> list[tuple[str, dict]]:
    """``(source instance, tags?short)`` of every instance below a new resource, sorted by source."""
    made = []
    for instance in pair.get(f"/{level}/{public_id}/instances", side) if level != "instances" else [{"ID": public_id}]:
        metadata = pair.get(f"/instances/{instance['ID']}/metadata?expand", side)
        source = metadata.get("ModifiedFrom") or metadata.get("AnonymizedFrom") or instance["ID"]
        made.append((source, pair.get(f"/instances/{instance['ID']}/tags?short", side)))
    return sorted(made, key=lambda entry: (entry[0], entry[1].get("0020,0013", "")))


def compare_made(pair: Pair, level: str, ours_id: str, reference_id: str,
                 departures: frozenset[str] = frozenset()) -> list[dict]:
    """The new resource on both sides: same counts, same metadata, same tags but for generated values (whose
    pattern must match) and the top-level ``departures`` (tags where pacsbox knowingly differs: left out). A lossy
    compression's ratio (0028,2112) depends on the encoder: compared for presence only. Returns the reference's
    tags."""
    made = (made_instances(pair, 0, level, ours_id), made_instances(pair, 1, level, reference_id))
    assert [source for source, _ in made[0]] == [source for source, _ in made[1]]
    originals: set[str] = set()
    for source, _ in made[1]:
        if pair.get(f"/instances/{source}", 1).get("ID") == source:
            values_of(pair.get(f"/instances/{source}/tags?short", 1), originals)
    tokens = (Tokens(originals), Tokens(originals))
    for (_, ours), (_, theirs) in zip(*made, strict=True):
        ours, theirs = ({key: "<ratio>" if key == "0028,2112" else value for key, value in tags.items()
                         if key not in departures} for tags in (ours, theirs))
        assert_equivalent(tokens[0](ours), tokens[1](theirs), context=f"tags below {level}/{reference_id}")
    if level != "instances":
        ours_stats, their_stats = pair.get(f"/{level}/{ours_id}/statistics", 0), pair.get(
            f"/{level}/{reference_id}/statistics", 1)
        assert_equivalent(ours_stats, their_stats, ignore_keys=IGNORE)
        assert_equivalent(pair.get(f"/{level}/{ours_id}/metadata?expand", 0),
                          pair.get(f"/{level}/{reference_id}/metadata?expand", 1), ignore_keys=IGNORE)
    for (_, ours), (_, theirs) in zip(*made, strict=True):
        ours_instance = _instance_id(pair, 0, ours)
        their_instance = _instance_id(pair, 1, theirs)
        assert_equivalent(pair.get(f"/instances/{ours_instance}/metadata?expand", 0),
                          pair.get(f"/instances/{their_instance}/metadata?expand", 1), ignore_keys=IGNORE)
    return [tags for _, tags in made[1]]


def _instance_id(pair: Pair, side: int, tags: dict) -> str:
    found = pair.sessions[side].post(pair.urls[side] + "/tools/lookup", data=tags["0008,0018"]).json()
    return next(item["ID"] for item in found if item["Type"] == "Instance")


def same_answer(ours: dict, theirs: dict, originals: set[str]) -> None:
    """Two job answers: the same keys and values, except the IDs of new resources (and their paths), which need
    only be new on both sides."""
    assert_same(_new_ids(ours, originals), _new_ids(theirs, originals))


def _new_ids(value: Any, originals: set[str]) -> Any:
    if isinstance(value, dict):
        return {key: _new_ids(item, originals) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_new_ids(item, originals) for item in value), key=repr)
    if isinstance(value, str):
        for public_id in re.findall(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}", value):
            if public_id not in originals:
                return "<new resource>"
        if _GENERATED.match(value):
            return "<new UID>"
    return value


def dicom_tags(data: bytes) -> dict:
    """A DICOM file's data set as PS3.18 JSON (for files that are answers, not stored)."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    return dataset.to_json_dict(bulk_data_threshold=1 << 30, bulk_data_element_handler=lambda element: "")
