"""The DICOMweb servers the face knows (``DicomWeb.Servers``, then PUT/DELETE /dicom-web/servers/{id}): read from
the configuration when the server starts, so that a mistake in it stops the start."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ...core.errors import ArchiveError
from ...core.peers import Peer, parse_peer
from .errors import DicomWebError, out_of_range


class ServerRegistry:
    """The known DICOMweb servers by name; the plugin puts no rule on names beyond being a path segment."""

    def __init__(self, entries: object = None) -> None:
        if entries is None:
            entries = {}
        if not isinstance(entries, Mapping):
            raise ValueError("DicomWeb.Servers must be an object: name -> [url, user, password] or {\"Url\", ...}")
        self._lock = threading.Lock()
        self._servers: dict[str, Peer] = {}
        for name, value in entries.items():
            try:
                self._servers[str(name)] = parse_peer(value)
            except ArchiveError as error:  # a configuration mistake: say which entry
                details = error.details or "expected [url, user, password] or an object with Url"
                raise ValueError(f"DicomWeb.Servers entry {name!r}: {details}") from None

    def items(self) -> list[tuple[str, Peer]]:
        with self._lock:
            return sorted(self._servers.items())

    def get(self, name: str) -> Peer:
        with self._lock:
            found = self._servers.get(name)
        if found is None:
            raise DicomWebError(404, 7, "Accessing an inexistent item", f"Inexistent server: {name}")
        return found

    def put(self, name: str, server: Peer) -> None:
        with self._lock:
            self._servers[name] = server

    def remove(self, name: str) -> None:
        with self._lock:
            if self._servers.pop(name, None) is None:
                raise out_of_range(f"Unknown DICOMweb server: {name}")
