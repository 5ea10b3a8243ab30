"""pacsbox and the real Orthanc side by side, knowing the same remote modalities: for differential tests of the SCU
routes (/modalities, /queries), where both servers talk to the same recording peers.

The two servers have different AETs (pacsbox's ``PACSBOX``, Orthanc's ``ORTHANC``), so that a peer can move data to
either; answers are compared with pacsbox's AET read as Orthanc's.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from pydicom.dataset import Dataset

from tests.support.compare import DEFAULT_IGNORE_KEYS, assert_equivalent
from tests.support.dicom_peer import DicomPeer
from tests.support.dicomgen import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, MULTIFRAME_GRAYSCALE_WORD_SC_STORAGE

IGNORE = DEFAULT_IGNORE_KEYS | {"ID", "Path"}  # query IDs are UUIDs
# The SOP classes of the standard corpus: a peer that accepts only these negotiates associations faster.
CORPUS_SOP_CLASSES = [CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, MULTIFRAME_GRAYSCALE_WORD_SC_STORAGE]


class RemotePair:
    """The two servers, asked the same thing."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.ours_session: requests.Session = ours.session()
        self.reference_session: requests.Session = reference.session

    def call(self, method: str, path: str, *, data: Any = None, **kwargs) -> tuple[requests.Response,
                                                                                   requests.Response]:
        """The same request to both (``data`` not bytes/str is sent as JSON text); pacsbox first."""
        return self.to_ours(method, path, data=data, **kwargs), self.to_reference(method, path, data=data, **kwargs)

    def to_ours(self, method: str, path: str, *, data: Any = None, **kwargs) -> requests.Response:
        return self.ours_session.request(method, self.ours.url + path, data=_text(data), timeout=60, **kwargs)

    def to_reference(self, method: str, path: str, *, data: Any = None, **kwargs) -> requests.Response:
        return self.reference_session.request(method, self.reference.url + path, data=_text(data), timeout=60,
                                              **kwargs)

    def as_reference(self, value: Any) -> Any:
        """pacsbox's answer with its AET written as Orthanc's."""
        if isinstance(value, dict):
            return {k: self.as_reference(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.as_reference(v) for v in value]
        return self.reference.aet if value == self.ours.aet else value

    def assert_same(self, ours: requests.Response, reference: requests.Response, context: str,
                    ignore=IGNORE) -> Any:
        assert ours.status_code == reference.status_code, (context, ours.text, reference.text)
        if not reference.content:
            assert not ours.content, (context, ours.text)
            return None
        if "json" not in (reference.headers.get("content-type") or "json") and reference.status_code < 400:
            assert ours.text == reference.text, (context, ours.text, reference.text)
            return ours.text
        assert_equivalent(self.as_reference(ours.json()), reference.json(), context=context, ignore_keys=ignore)
        return ours.json()

    def compare(self, method: str, path: str, *, data: Any = None, ignore=IGNORE, **kwargs) -> Any:
        """Both answers must have the same status and the same JSON (or the same text); returns pacsbox's."""
        ours, reference = self.call(method, path, data=data, **kwargs)
        return self.assert_same(ours, reference, f"{method} {path} {data!r}"[:300], ignore)


def _text(data: Any) -> Any:
    return json.dumps(data) if data is not None and not isinstance(data, (bytes, str)) else data


def identifier_json(identifier: Dataset) -> list[tuple[str, str, str]]:
    """An identifier as comparable rows: tag, VR and value as text."""
    rows = []
    for element in identifier:
        value = element.value
        if element.VR == "SQ":
            text = f"<{len(value)} items>"
        elif value is None:
            text = ""
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        rows.append((f"{element.tag.group:04x},{element.tag.elem:04x}", element.VR, text))
    return rows


def sent(peer: DicomPeer) -> list[list]:
    """What a peer was asked since it was last cleared (kind, SOP class, move destination, identifier rows),
    without the caller's AET."""
    return [[r.kind, r.sop_class_uid, r.move_destination, [list(row) for row in identifier_json(r.identifier)]]
            for r in peer.requests]


def calling_aets(peer: DicomPeer) -> list[str]:
    return [r.calling_aet for r in peer.requests]
