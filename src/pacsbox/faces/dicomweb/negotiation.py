"""Accept headers of WADO-RS (PS3.18 8.7.4): which media types and transfer syntaxes a client takes."""

from __future__ import annotations

from dataclasses import dataclass

from .multipart import media_type_of


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``multipart/related; type=...; transfer-syntax=...`` or a single type."""

    kind: str
    part_type: str
    transfer_syntax: str

    def takes(self, single: str, transfer_syntax: str | None = None) -> bool:
        """Whether this range accepts parts of media type ``single`` (in ``transfer_syntax`` if given), sent as
        multipart/related. An absent ``type`` or ``transfer-syntax`` takes anything here; the retrievals that give
        an absent ``transfer-syntax`` its PS3.18 default (Explicit VR Little Endian) read it themselves (``wado``)."""
        if self.kind not in ("*/*", "multipart/*", "multipart/related"):
            return False
        if self.part_type not in ("", "*", "*/*", single):
            return False
        return transfer_syntax is None or self.transfer_syntax in ("", "*", transfer_syntax)


def accepted(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, in order; none (or empty) means anything."""
    if not header or not header.strip():
        return [MediaRange("*/*", "", "")]
    ranges = []
    for entry in _split(header):
        kind, options = media_type_of(entry)
        if options.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        ranges.append(MediaRange(kind, options.get("type", "").strip().lower(),
                                 options.get("transfer-syntax", "").strip()))
    return ranges


def _split(header: str) -> list[str]:
    """Split on commas outside quoted strings (a ``type="..."`` may hold none, but be safe)."""
    entries, current, quoted = [], [], False
    for character in header:
        if character == '"':
            quoted = not quoted
        if character == "," and not quoted:
            entries.append("".join(current))
            current = []
        else:
            current.append(character)
    entries.append("".join(current))
    return [entry for entry in entries if entry.strip()]


def model_format(ranges: list[MediaRange]) -> str | None:
    """``json`` or ``xml``: the first DICOM model a client takes for a search or metadata answer (None: neither).

    XML comes as ``multipart/related; type="application/dicom+xml"`` (PS3.18 8.7.3.5); a bare
    ``application/dicom+xml`` is read as asking for it too.
    """
    for entry in ranges:
        if entry.kind in ("*/*", "application/*", "application/dicom+json", "application/json"):
            return "json"
        if entry.kind == "application/dicom+xml" or (
                entry.kind in ("multipart/related", "multipart/*") and entry.part_type == "application/dicom+xml"):
            return "xml"
        if entry.kind in ("multipart/related", "multipart/*") and entry.part_type in ("", "*", "*/*"):
            return "json"
    return None
