"""The remote DICOM modalities a server knows (Orthanc's ``DicomModalities``), with what each may ask of it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

from .errors import ArchiveError, BadFormat, InexistentItem, OutOfRange

# Orthanc's JSON keys of a modality (its /modalities/{id}/configuration), in the order Orthanc documents them.
PERMISSIONS = ("AllowEcho", "AllowFind", "AllowFindWorklist", "AllowGet", "AllowMove", "AllowStore",
               "AllowNAction", "AllowEventReport", "AllowTranscoding")


@dataclass(frozen=True)
class Modality:
    """One remote DICOM node: where it listens and what it is allowed to request from this server."""

    aet: str
    host: str
    port: int
    manufacturer: str = "Generic"
    allow_echo: bool = True
    allow_find: bool = True
    allow_find_worklist: bool = True
    allow_get: bool = True
    allow_move: bool = True
    allow_store: bool = True
    allow_n_action: bool = True
    allow_event_report: bool = True
    allow_transcoding: bool = True
    use_dicom_tls: bool = False
    local_aet: str = ""  # the calling AET to use towards this modality; empty: the server's DicomAet
    timeout: int = 0  # seconds; 0: the server's DicomScuTimeout

    def allows(self, request: str) -> bool:
        """Whether this modality may send ``request`` (``Echo``, ``Find``, ``Move``, ``Get``, ``Store``)."""
        return bool(getattr(self, "allow_" + _snake(request)))

    def to_json(self) -> dict[str, Any]:
        """The modality under Orthanc's keys (``AET``, ``Host``, ``Port``, ``Allow*``...)."""
        values = asdict(self)
        body: dict[str, Any] = {"AET": self.aet, "Host": self.host, "Port": self.port,
                                "Manufacturer": self.manufacturer}
        for key in PERMISSIONS:
            body[key] = values["allow_" + _snake(key[len("Allow"):])]
        body.update({"UseDicomTls": self.use_dicom_tls, "LocalAet": self.local_aet, "Timeout": self.timeout})
        return body


# Orthanc 1.10's manufacturers, and the retired names it still reads (Orthanc Book, "DicomModalities" option).
MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE")
_EXPECTED = ('expected ["AET", "host", port] or ["AET", "host", port, "Manufacturer"], or an object with AET, Host '
             'and Port')
LEGACY_MANUFACTURERS = {"ClearCanvas": "Generic", "Dcm4Chee": "Generic", "SyngoVia": "GenericNoWildcardInDates",
                        "AgfaImpax": "GenericNoWildcardInDates", "EFilm2": "Generic", "MedInria": "Generic"}


def parse_modality(name: str, value: Any) -> Modality:
    """Read one ``DicomModalities`` entry: ``["AET", "host", port(, "Manufacturer")]`` or Orthanc's object form.

    Errors are Orthanc's: a wrong structure is ``BadFormat`` (naming the field when Orthanc does), a port outside
    1..65534 or an unknown manufacturer is ``OutOfRange``. Unknown keys are ignored, as Orthanc does.
    """
    if isinstance(value, list):
        if len(value) not in (3, 4) or not all(isinstance(v, str) for v in value[:2]) or \
                (len(value) == 4 and not isinstance(value[3], str)):
            raise BadFormat()
        manufacturer = _manufacturer(value[3]) if len(value) == 4 else "Generic"
        return Modality(aet=value[0], host=value[1], port=_port(value[2]), manufacturer=manufacturer)
    if not isinstance(value, Mapping) or not all(key in value for key in ("AET", "Host", "Port")):
        raise BadFormat()
    options: dict[str, Any] = {}
    if "Manufacturer" in value:
        options["manufacturer"] = _manufacturer(_string(value, "Manufacturer"))
    if "AllowStorageCommitment" in value:  # Orthanc's shorthand for the two storage-commitment requests
        allowed = _boolean(value, "AllowStorageCommitment")
        options["allow_n_action"] = options["allow_event_report"] = allowed
    for key in PERMISSIONS:
        if key in value:
            options["allow_" + _snake(key[len("Allow"):])] = _boolean(value, key)
    if "UseDicomTls" in value:
        options["use_dicom_tls"] = _boolean(value, "UseDicomTls")
    if "LocalAet" in value:
        options["local_aet"] = _string(value, "LocalAet")
    if "Timeout" in value:
        options["timeout"] = unsigned_field(value, "Timeout")
    return Modality(aet=_string(value, "AET"), host=_string(value, "Host"), port=_port(value["Port"]), **options)


class ModalityRegistry:
    """The known modalities by symbolic name; changed at run time through REST (kept in memory, as Orthanc
    does with ``DicomModalitiesInDatabase`` false)."""

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._modalities: dict[str, Modality] = {}
        for name, value in (entries or {}).items():
            try:
                self._modalities[name] = parse_modality(name, value)
            except ArchiveError as error:  # a configuration mistake: say which entry, and what is expected
                raise BadFormat(f"DicomModalities entry {name!r}: {error.details or _EXPECTED}") from None

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._modalities)

    def get(self, name: str) -> Modality:
        with self._lock:
            found = self._modalities.get(name)
        if found is None:
            raise InexistentItem(f"No modality with symbolic name: {name}")
        return found

    def items(self) -> list[tuple[str, Modality]]:
        with self._lock:
            return sorted(self._modalities.items())

    def put(self, name: str, modality: Modality) -> None:
        with self._lock:
            self._modalities[name] = modality

    def remove(self, name: str) -> None:
        with self._lock:
            if self._modalities.pop(name, None) is None:
                raise InexistentItem(f"Unknown DICOM modality with symbolic name: {name}")

    def by_aet(self, aet: str) -> list[Modality]:
        """Every modality with this AET (Orthanc compares AETs exactly when ``StrictAetComparison`` is off,
        apart from surrounding spaces)."""
        wanted = aet.strip()
        with self._lock:
            return [m for m in self._modalities.values() if m.aet.strip() == wanted]


def _snake(camel: str) -> str:
    words = {"NAction": "n_action", "FindWorklist": "find_worklist", "EventReport": "event_report"}
    return words.get(camel, camel.lower())


def _port(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadFormat()
    if not 0 < value < 65535:
        raise OutOfRange(f"A TCP port number must be in range [1..65534], but found: {value}")
    return value


def _manufacturer(text: str) -> str:
    if text in MANUFACTURERS:
        return text
    if text in LEGACY_MANUFACTURERS:
        return LEGACY_MANUFACTURERS[text]
    raise OutOfRange(f"Unknown modality manufacturer: \"{text}\"")


def _string(value: Mapping[str, Any], key: str) -> str:
    if not isinstance(value[key], str):
        raise BadFormat(f"String value expected in field: {key}")
    return value[key]


def _boolean(value: Mapping[str, Any], key: str) -> bool:
    if not isinstance(value[key], bool):
        raise BadFormat(f"Boolean value expected in field: {key}")
    return value[key]


def unsigned_field(value: Mapping[str, Any], key: str) -> int:
    """An integer field of a JSON object that must not be negative, with Orthanc's messages."""
    number = value[key]
    if isinstance(number, bool) or not isinstance(number, int):
        raise BadFormat(f"Integer value expected in field: {key}")
    if number < 0:
        raise BadFormat(f"Unsigned integer value expected in field: {key}")
    return number


class RemoteDicom(Protocol):
    """What the archive can ask of remote modalities (the DICOM SCU); implemented by the DIMSE face and wired in
    by the server, so that other faces (Orthanc's ``/modalities`` routes) reach remote nodes through the core.

    Every method raises ``NetworkError`` (or a subclass) when the modality cannot be reached, refuses the
    association, or answers a failure status. ``modality.local_aet`` and ``modality.timeout`` apply to the call.
    """

    def echo(self, modality: Modality) -> None:
        """C-ECHO."""

    def store(self, modality: Modality, instance_ids: Sequence[str], move_originator: tuple[str, int] | None = None,
              permissive: bool = False, before_each: Callable[[int], None] | None = None) -> StoreReport:
        """C-STORE each archived instance, as stored; stops at the first failure unless ``permissive``.
        ``before_each(done)`` is called before each instance with the number already handled (a job's progress
        and checkpoint: an exception it raises ends the store, the association released)."""

    def find(self, modality: Modality, level: str, identifier: Dataset) -> list[Dataset]:
        """C-FIND at a query/retrieve ``level`` (``PATIENT``, ``STUDY``, ``SERIES``, ``IMAGE``); the answers."""

    def move(self, modality: Modality, level: str, identifiers: Sequence[Dataset], target_aet: str) -> None:
        """C-MOVE each identifier from the modality to ``target_aet``, on one association."""

    def get(self, modality: Modality, level: str, identifiers: Sequence[Dataset]) -> StoreReport:
        """C-GET each identifier from the modality; the received instances are stored in the archive."""


@dataclass
class StoreReport:
    """The outcome of a batch of C-STOREs (sent by C-STORE SCU, or received through C-GET)."""

    instances: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
