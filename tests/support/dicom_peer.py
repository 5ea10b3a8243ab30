"""A small pynetdicom PACS that tests start on a free loopback port, as the remote modality of a server under test.

It answers C-ECHO, keeps what it receives by C-STORE (the dataset bytes exactly as they arrived), answers C-FIND
from the instances it holds (PS3.4 C.2.2.2 matching, simplified: single values, ``*``/``?`` wildcards, ranges are
not needed by the tests), and serves C-MOVE (to the AETs it knows) and C-GET. Every request is recorded, so a test
can compare what two servers sent to the same peer.

Usage::

    with DicomPeer("PEER") as peer:            # peer.port, peer.aet
        peer.add(dicom_bytes)                    # something to find, move or get
        ...
        peer.received                            # [ReceivedInstance(...)], in arrival order
        peer.requests                            # [PeerRequest(kind, calling_aet, identifier)]
"""

from __future__ import annotations

import fnmatch
import io
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom import sop_class as sop
from pynetdicom.presentation import build_context

__all__ = ["DicomPeer", "PeerRequest", "ReceivedInstance", "dataset_bytes"]

_LEVEL_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
               "IMAGE": "SOPInstanceUID"}
_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_STORAGE = [str(uid) for uid in sop._STORAGE_CLASSES.values()]
_QR = [sop.PatientRootQueryRetrieveInformationModelFind, sop.StudyRootQueryRetrieveInformationModelFind,
       sop.PatientRootQueryRetrieveInformationModelMove, sop.StudyRootQueryRetrieveInformationModelMove,
       sop.PatientRootQueryRetrieveInformationModelGet, sop.StudyRootQueryRetrieveInformationModelGet]


@dataclass(frozen=True)
class ReceivedInstance:
    """One C-STORE the peer received: who sent it, and the dataset bytes as encoded on the wire."""

    calling_aet: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    data: bytes
    move_originator_aet: str = ""
    move_originator_id: int | None = None


@dataclass(frozen=True)
class PeerRequest:
    """One C-FIND, C-MOVE or C-GET request: its kind, the caller, the SOP class, the identifier, the move
    destination."""

    kind: str
    calling_aet: str
    sop_class_uid: str
    identifier: Dataset
    move_destination: str = ""


@dataclass
class _Held:
    dataset: Dataset
    transfer_syntax: str


@dataclass
class DicomPeer:
    """The peer PACS; ``known`` maps move destinations (AETs) to ``(host, port)``."""

    aet: str = "PEER"
    known: dict[str, tuple[str, int]] = field(default_factory=dict)
    refuse: bool = False  # reject every association (as a modality that does not know the caller)
    store_status: int = 0x0000  # the status every C-STORE gets (0xA700: out of resources...)
    storage_classes: list[str] | None = None  # the storage SOP classes accepted (default: all)
    port: int = 0
    received: list[ReceivedInstance] = field(default_factory=list)
    requests: list[PeerRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._held: list[_Held] = []
        self._lock = threading.Lock()
        self._server = None

    # -- life ----------------------------------------------------------------------------------------------
    def start(self) -> DicomPeer:
        ae = AE(ae_title=self.aet)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 10
        ae.maximum_associations = 32
        # Few transfer syntaxes: pynetdicom deep-copies the supported contexts for every association.
        transfer_syntaxes = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99",
                             "1.2.840.10008.1.2.4.70"]
        ae.add_supported_context(sop.Verification)
        for uid in _STORAGE if self.storage_classes is None else self.storage_classes:
            # C-GET: the requestor may take the SCP role for storage (PS3.7 D.3.3.4)
            ae.add_supported_context(uid, transfer_syntaxes, scu_role=True, scp_role=True)
        for uid in _QR:
            ae.add_supported_context(uid)
        if self.refuse:
            ae.require_calling_aet = ["NOBODY-KNOWN"]
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_FIND, self._on_find),
                    (evt.EVT_C_MOVE, self._on_move), (evt.EVT_C_GET, self._on_get)]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        # Accepted sockets inherit TCP_NODELAY on Linux; without it each DIMSE reply waits for a delayed ACK.
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self._server.socket.getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> DicomPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def modality(self, **options) -> dict:
        """This peer as an entry of ``DicomModalities`` (object form)."""
        return {"AET": self.aet, "Host": "127.0.0.1", "Port": self.port, **options}

    # -- content -------------------------------------------------------------------------------------------
    def add(self, data: bytes) -> None:
        """Hold a DICOM file (Part 10 bytes) for C-FIND, C-MOVE and C-GET."""
        dataset = dcmread(io.BytesIO(data), force=True)
        syntax = str(dataset.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in dataset.file_meta else \
            "1.2.840.10008.1.2"
        with self._lock:
            self._held.append(_Held(dataset, syntax))

    def add_all(self, files: Iterable[bytes]) -> None:
        for data in files:
            self.add(data)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.requests.clear()

    # -- services ------------------------------------------------------------------------------------------
    def _on_store(self, event) -> int:
        request = event.request
        originator = request.MoveOriginatorApplicationEntityTitle
        with self._lock:
            self.received.append(ReceivedInstance(
                event.assoc.requestor.ae_title.strip(), str(request.AffectedSOPClassUID),
                str(request.AffectedSOPInstanceUID), str(event.context.transfer_syntax),
                request.DataSet.getvalue(), originator.strip() if originator else "",
                request.MoveOriginatorMessageID))
        return self.store_status

    def _record(self, event, kind: str, destination: str = "") -> Dataset:
        identifier = event.identifier
        with self._lock:
            self.requests.append(PeerRequest(kind, event.assoc.requestor.ae_title.strip(),
                                             str(event.request.AffectedSOPClassUID), identifier, destination))
        return identifier

    def _matches(self, identifier: Dataset) -> list[_Held]:
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if level not in _LEVELS:
            return []
        depth = _LEVELS.index(level)
        with self._lock:
            held = list(self._held)
        found: dict[str, _Held] = {}
        for item in held:
            if all(_match(element, item.dataset) for element in identifier):
                key = "|".join(str(item.dataset.get(_LEVEL_KEYS[lv], "")) for lv in _LEVELS[:depth + 1])
                found.setdefault(key, item)
        return list(found.values())

    def _on_find(self, event):
        identifier = self._record(event, "FIND")
        for item in self._matches(identifier):
            answer = Dataset()
            for element in identifier:
                if element.keyword == "QueryRetrieveLevel":
                    answer.QueryRetrieveLevel = element.value
                elif element.keyword == "SpecificCharacterSet":
                    continue
                elif element.tag in item.dataset:
                    answer[element.tag] = item.dataset[element.tag]
                else:
                    answer.add_new(element.tag, element.VR, None)
            if "SpecificCharacterSet" in item.dataset:
                answer.SpecificCharacterSet = item.dataset.SpecificCharacterSet
            answer.RetrieveAETitle = self.aet
            yield 0xFF00, answer

    def _instances(self, identifier: Dataset) -> list[_Held]:
        matched = self._matches(identifier)
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if not matched:
            return []
        keys = {str(item.dataset.get(_LEVEL_KEYS[level], "")) for item in matched}
        with self._lock:
            return [item for item in self._held if str(item.dataset.get(_LEVEL_KEYS[level], "")) in keys]

    def _on_move(self, event):
        destination = event.move_destination.strip()
        identifier = self._record(event, "MOVE", destination)
        if destination not in self.known:
            yield None, None
            return
        host, port = self.known[destination]
        instances = self._instances(identifier)
        yield host, port, {"contexts": _contexts_for(instances)}
        yield len(instances)
        for item in instances:
            yield 0xFF00, item.dataset

    def _on_get(self, event):
        identifier = self._record(event, "GET")
        instances = self._instances(identifier)
        yield len(instances)
        for item in instances:
            yield 0xFF00, item.dataset


def _contexts_for(instances: list[_Held]) -> list:
    pairs = sorted({(str(item.dataset.SOPClassUID), item.transfer_syntax) for item in instances})
    return [build_context(sop_class, syntax) for sop_class, syntax in pairs] or [build_context(sop.Verification)]


def _match(element, dataset: Dataset) -> bool:
    """Single value, wildcard or universal matching of one identifier element (PS3.4 C.2.2.2)."""
    if element.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet") or element.VR == "SQ":
        return True
    wanted = "" if element.value is None else str(element.value)
    if wanted in ("", "*"):
        return True
    value = dataset.get(element.tag)
    text = "" if value is None or value.value is None else str(value.value)
    if "\\" in wanted:
        return text in wanted.split("\\")
    if "*" in wanted or "?" in wanted:
        return fnmatch.fnmatchcase(text.upper(), wanted.upper())
    return text == wanted if element.VR != "PN" else text.upper() == wanted.upper()


def dataset_bytes(part10: bytes) -> bytes:
    """The bytes of a DICOM file after its preamble and file meta group: what C-STORE puts on the wire."""
    if part10[128:132] != b"DICM":
        return part10
    offset = 132
    while part10[offset:offset + 2] == b"\x02\x00":
        vr = part10[offset + 4:offset + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            length = int.from_bytes(part10[offset + 8:offset + 12], "little")
            offset += 12 + length
        else:
            length = int.from_bytes(part10[offset + 6:offset + 8], "little")
            offset += 8 + length
    return part10[offset:]
