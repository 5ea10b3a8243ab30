"""Orthanc's public resource identifiers: SHA-1 of the DICOM identifiers, in five dash-separated groups."""

from __future__ import annotations

from enum import IntEnum

try:  # CPython's own SHA-1: hashlib would load OpenSSL's library at start (4 ms here) for a digest of a few UIDs
    from _sha1 import sha1
except ImportError:  # an interpreter built without it
    from hashlib import sha1


class Level(IntEnum):
    """The four levels of the DICOM patient-root hierarchy, in parent-to-child order."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3

    @property
    def title(self) -> str:
        """Orthanc's name of the level, as in the ``Type`` field of its JSON (``"Patient"``, ...)."""
        return _TITLES[self]

    @property
    def plural(self) -> str:
        """The URI segment of the level (``patients``, ``studies``, ``series``, ``instances``)."""
        return _PLURALS[self]

    @classmethod
    def parse(cls, text: str) -> Level:
        """Accept Orthanc's spellings of a level (``Study``, ``study``, ``studies``, ``STUDY``)."""
        key = text.strip().lower()
        for level in cls:
            if key in (level.title.lower(), level.plural):
                return level
        raise ValueError(text)


_TITLES = {Level.PATIENT: "Patient", Level.STUDY: "Study", Level.SERIES: "Series", Level.INSTANCE: "Instance"}
_PLURALS = {Level.PATIENT: "patients", Level.STUDY: "studies", Level.SERIES: "series", Level.INSTANCE: "instances"}


def hash_id(*parts: str) -> str:
    """Orthanc's ID for a resource: SHA-1 of its identifiers joined with ``|``, as ``xxxxxxxx-...`` (5 x 8)."""
    digest = sha1("|".join(parts).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def resource_ids(patient_id: str, study_uid: str, series_uid: str, sop_uid: str) -> tuple[str, str, str, str]:
    """The four public IDs (patient, study, series, instance) of one instance."""
    return (
        hash_id(patient_id),
        hash_id(patient_id, study_uid),
        hash_id(patient_id, study_uid, series_uid),
        hash_id(patient_id, study_uid, series_uid, sop_uid),
    )
