"""The remote DICOM modalities a server knows (Orthanc's ``DicomModalities``), with what each may ask of it."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

from .errors import BadRequest, InexistentItem

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


def parse_modality(name: str, value: Any) -> Modality:
    """Read one ``DicomModalities`` entry: ``["AET", "host", port(, "Manufacturer")]`` or Orthanc's object form."""
    if isinstance(value, list):
        if len(value) not in (3, 4) or not all(isinstance(v, (str, int)) for v in value):
            raise BadRequest(f"Modality {name!r}: expected [AET, host, port] or [AET, host, port, manufacturer]")
        value = dict(zip(("AET", "Host", "Port", "Manufacturer"), value, strict=False))
    if not isinstance(value, Mapping):
        raise BadRequest(f"Modality {name!r}: expected an array or an object")
    try:
        aet, host = value["AET"], value["Host"]
        port = int(value["Port"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest(f"Modality {name!r}: AET, Host and Port are required") from None
    if not isinstance(aet, str) or not aet or len(aet) > 16 or not isinstance(host, str) or not 0 < port < 65536:
        raise BadRequest(f"Modality {name!r}: invalid AET, Host or Port")
    options: dict[str, Any] = {}
    for key in PERMISSIONS:
        if key in value:
            options["allow_" + _snake(key[len("Allow"):])] = _boolean(name, key, value[key])
    if "UseDicomTls" in value:
        options["use_dicom_tls"] = _boolean(name, "UseDicomTls", value["UseDicomTls"])
    if "Manufacturer" in value:
        options["manufacturer"] = str(value["Manufacturer"])
    if "LocalAet" in value:
        options["local_aet"] = str(value["LocalAet"])
    if "Timeout" in value:
        options["timeout"] = int(value["Timeout"])
    return Modality(aet=aet, host=host, port=port, **options)


class ModalityRegistry:
    """The known modalities by symbolic name; changed at run time through REST (kept in memory, as Orthanc
    does with ``DicomModalitiesInDatabase`` false)."""

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._modalities: dict[str, Modality] = {
            name: parse_modality(name, value) for name, value in (entries or {}).items()
        }

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
                raise InexistentItem(f"No modality with symbolic name: {name}")

    def by_aet(self, aet: str) -> list[Modality]:
        """Every modality with this AET (Orthanc compares AETs exactly when ``StrictAetComparison`` is off,
        apart from surrounding spaces)."""
        wanted = aet.strip()
        with self._lock:
            return [m for m in self._modalities.values() if m.aet.strip() == wanted]


def _snake(camel: str) -> str:
    words = {"NAction": "n_action", "FindWorklist": "find_worklist", "EventReport": "event_report"}
    return words.get(camel, camel.lower())


def _boolean(name: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"Modality {name!r}: {key} must be true or false")
    return value


class RemoteDicom(Protocol):
    """What the archive can ask of remote modalities (the DICOM SCU); implemented by the DIMSE face and wired in
    by the server, so that other faces (Orthanc's ``/modalities`` routes) reach remote nodes through the core."""

    def echo(self, modality: Modality) -> None:
        """C-ECHO; raises ``NetworkError`` when the modality does not answer or refuses."""

    def store(self, modality: Modality, instance_ids: Sequence[str], move_originator: tuple[str, int] | None = None
              ) -> StoreReport:
        """C-STORE each archived instance to the modality."""

    def find(self, modality: Modality, level: str, identifier: Dataset) -> list[Dataset]:
        """C-FIND at a query/retrieve ``level`` (``PATIENT``, ``STUDY``, ``SERIES``, ``IMAGE``)."""

    def move(self, modality: Modality, level: str, identifier: Dataset, target_aet: str) -> None:
        """C-MOVE from the modality to ``target_aet``."""

    def get(self, modality: Modality, level: str, identifier: Dataset) -> StoreReport:
        """C-GET from the modality; the received instances are stored in the archive."""


@dataclass
class StoreReport:
    """The outcome of a batch of C-STOREs (sent by C-STORE SCU, or received through C-GET)."""

    instances: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
