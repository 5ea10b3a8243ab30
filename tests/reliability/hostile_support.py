"""Helpers of the hostile-input suites: the tally of inputs tried, archive snapshots, process gauges, and a raw
DICOM upper-layer client that sends whatever bytes a test wants (PS3.8 9.3) where pynetdicom would refuse to.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psutil
import requests
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from tests.support.dimse import echo
from tests.support.pacsbox_proc import RunningPacsbox

ORTHANC_ERROR_KEYS = {"HttpError", "HttpStatus", "Message", "Method", "OrthancError", "OrthancStatus", "Uri"}
VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
SUCCESS = 0x0000


# -- the tally -----------------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Hostile inputs tried, by category; reads of what was accepted; every answer in the 5xx range (none allowed)."""

    tried: Counter = field(default_factory=Counter)
    reads: int = 0
    server_errors: list[str] = field(default_factory=list)

    def count(self, category: str, what: str, status: int | None = None) -> None:
        """One hostile input of ``category`` sent; ``status`` is its HTTP answer (None: not HTTP)."""
        self.tried[category] += 1
        self.check(what, status)

    def read(self, what: str, status: int) -> None:
        """One read of something a hostile input left in the archive."""
        self.reads += 1
        self.check(what, status)

    def check(self, what: str, status: int | None) -> None:
        if status is not None and status >= 500:
            self.server_errors.append(f"{what} -> {status}")

    def merge(self, other: Tally) -> None:
        self.tried.update(other.tried)
        self.reads += other.reads
        self.server_errors += other.server_errors

    def summary(self) -> str:
        lines = [f"  {category}: {number}" for category, number in sorted(self.tried.items())]
        return "\n".join([f"hostile inputs tried: {sum(self.tried.values())}; reads of what they left: {self.reads};"
                          f" 5xx answers: {len(self.server_errors)}", *lines, *self.server_errors])


class _Summary:
    """A plugin registered by the first suite that counts: prints every suite's tally after the run."""

    NAME = "pacsbox-hostile-tally"

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}

    def pytest_terminal_summary(self, terminalreporter) -> None:
        total = Tally()
        for tally in self.tallies.values():
            total.merge(tally)
        terminalreporter.write_sep("-", "hostile inputs")
        terminalreporter.write_line(total.summary())


def tally_for(config, suite: str) -> Tally:
    """The tally of one suite (a test module), summed with the others at the end of the run."""
    plugin = config.pluginmanager.get_plugin(_Summary.NAME)
    if plugin is None:
        plugin = _Summary()
        config.pluginmanager.register(plugin, _Summary.NAME)
    return plugin.tallies.setdefault(suite, Tally())


# -- the archive and the server process -------------------------------------------------------------------------

@dataclass(frozen=True)
class ArchiveState:
    """What a rejected input must leave unchanged: statistics, instances, the change log's end."""

    statistics: dict
    instances: tuple[str, ...]
    last_change: int


def archive_state(http: requests.Session, url: str) -> ArchiveState:
    return ArchiveState(http.get(url + "/statistics", timeout=30).json(),
                        tuple(sorted(http.get(url + "/instances", timeout=30).json())),
                        http.get(url + "/changes?last", timeout=30).json()["Last"])


def assert_orthanc_error(response: requests.Response, status: int | None = None) -> dict:
    """A 4xx (``status`` if given) with Orthanc's JSON error body."""
    assert response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= ORTHANC_ERROR_KEYS, body
    assert body["HttpStatus"] == response.status_code
    return body


def assert_xnat_error(response: requests.Response, status: int | None = None) -> None:
    """A 4xx (``status`` if given) in XNAT's plain-text form."""
    assert response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers
    assert not response.text.lstrip().startswith(("<!DOCTYPE", "<html")), response.text


def server_process(server: RunningPacsbox) -> psutil.Process:
    assert server.process is not None and server.process.poll() is None, server.output()[-2000:]
    return psutil.Process(server.process.pid)


def rss(server: RunningPacsbox) -> int:
    return server_process(server).memory_info().rss


class PeakRss:
    """The server's resident memory sampled every 5 ms while the block runs, and ``settle`` seconds after it (what
    a refused attack leaves in flight): ``growth`` is the peak over the level at the start."""

    def __init__(self, server: RunningPacsbox, settle: float = 0.0) -> None:
        self.process = server_process(server)
        self.settle = settle
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(self.settle)
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


def threads_and_fds(server: RunningPacsbox) -> tuple[int, int]:
    process = server_process(server)
    return process.num_threads(), process.num_fds()


def settle(server: RunningPacsbox, baseline: tuple[int, int], slack: tuple[int, int],
           timeout: float) -> tuple[int, int]:
    """Threads and descriptors once they are back within ``slack`` of ``baseline`` (or when ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        now = threads_and_fds(server)
        if (now[0] <= baseline[0] + slack[0] and now[1] <= baseline[1] + slack[1]) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def assert_alive(server: RunningPacsbox) -> None:
    """The server answers REST and a pynetdicom C-ECHO."""
    session = server.session()
    try:
        assert session.get(server.url + "/system", timeout=30).status_code == 200
    finally:
        session.close()
    assert echo(server.dicom_port, server.aet) == SUCCESS


# -- DICOM bytes ------------------------------------------------------------------------------------------------

def part10(body: bytes, sop_class: str, sop_uid: str, transfer_syntax: str = EXPLICIT_LE) -> bytes:
    """A Part 10 file around a raw dataset ``body``: preamble, ``DICM``, a valid file meta group."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1137.1"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=False)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue() + body


def explicit(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element, its length field as given (default: the value's length)."""
    length = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"):
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, length) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, length & 0xFFFF) + value


def implicit(tag: int, value: bytes, length: int | None = None) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value) if length is None else length) + value


# -- a raw DICOM upper-layer client -----------------------------------------------------------------------------

def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def associate_rq(contexts: list[tuple[int, str, list[str]]], called: str = "PACSBOX", calling: str = "HOSTILE",
                 maximum_length: int = 65536) -> bytes:
    """An A-ASSOCIATE-RQ PDU (PS3.8 9.3.2) proposing ``contexts`` as (ID, abstract syntax, transfer syntaxes)."""
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for context_id, abstract, syntaxes in contexts:
        items.append(_item(0x20, bytes([context_id, 0, 0, 0]) + _item(0x30, abstract.encode())
                           + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)))
    items.append(_item(0x50, _item(0x51, struct.pack(">I", maximum_length))
                       + _item(0x52, b"1.2.826.0.1.3680043.10.1137.1")))
    body = (b"\x00\x01\x00\x00" + called.encode().ljust(16) + calling.encode().ljust(16) + bytes(32)
            + b"".join(items))
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def pdv(context_id: int, header: int, fragment: bytes) -> bytes:
    """One presentation data value (PS3.8 9.3.5.1); header bit 0: command, bit 1: last fragment."""
    return struct.pack(">IBB", len(fragment) + 2, context_id, header) + fragment


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """A DIMSE command set in implicit VR little endian (PS3.7 6.3.1), with its group length first."""
    body = b"".join(implicit(tag, value + (b"\x00" if len(value) % 2 else b"")) for tag, value in elements)
    return implicit(0x00000000, struct.pack("<I", len(body))) + body


def c_store_rq(sop_class: str, sop_uid: str, message_id: int = 1) -> bytes:
    return command_set([(0x00000002, sop_class.encode()), (0x00000100, struct.pack("<H", 0x0001)),
                        (0x00000110, struct.pack("<H", message_id)), (0x00000700, struct.pack("<H", 0)),
                        (0x00000800, struct.pack("<H", 0x0000)), (0x00001000, sop_uid.encode())])


def c_echo_rq(message_id: int = 1) -> bytes:
    return command_set([(0x00000002, VERIFICATION.encode()), (0x00000100, struct.pack("<H", 0x0030)),
                        (0x00000110, struct.pack("<H", message_id)), (0x00000800, struct.pack("<H", 0x0101))])


STORE_CONTEXTS = [(1, VERIFICATION, [IMPLICIT_LE]), (3, CT_IMAGE_STORAGE, [EXPLICIT_LE]),
                  (5, CT_IMAGE_STORAGE, [IMPLICIT_LE])]


class RawAssociation:
    """A socket speaking the DICOM upper layer byte by byte; a context manager that closes it."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.accepted: dict[int, str] = {}

    def __enter__(self) -> RawAssociation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self) -> tuple[int, bytes]:
        """The next PDU's type and body; (0, b"") when the server closed the connection."""
        header = self._exactly(6)
        if len(header) < 6:
            return 0, b""
        pdu_type, _, length = struct.unpack(">BBI", header)
        return pdu_type, self._exactly(length)

    def _exactly(self, size: int) -> bytes:
        chunks, received = [], 0
        while received < size:
            chunk = self.sock.recv(min(size - received, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def associate(self, contexts: list[tuple[int, str, list[str]]] = STORE_CONTEXTS, called: str = "PACSBOX") -> None:
        """Request the association; ``accepted`` maps each accepted context ID to its transfer syntax."""
        self.send(associate_rq(contexts, called=called))
        pdu_type, body = self.read_pdu()
        assert pdu_type == 0x02, (pdu_type, body[:40])  # A-ASSOCIATE-AC
        offset = 68
        while offset < len(body):
            item_type, _, length = struct.unpack_from(">BBH", body, offset)
            item = body[offset + 4:offset + 4 + length]
            if item_type == 0x21 and item[2] == 0:
                syntax = item[8:8 + struct.unpack_from(">H", item, 6)[0]]
                self.accepted[item[0]] = syntax.decode().rstrip("\x00")
            offset += 4 + length

    def status(self) -> int | None:
        """The Status of the next response, or None when the association ended (abort or close) instead."""
        fragments = []
        while True:
            pdu_type, body = self.read_pdu()
            if pdu_type != 0x04:
                return None
            offset = 0
            while offset < len(body):
                length, _, header = struct.unpack_from(">IBB", body, offset)
                fragments.append(body[offset + 6:offset + 4 + length])
                offset += 4 + length
                if header & 0x03 == 0x03:
                    return _status_of(b"".join(fragments))

    def c_echo(self) -> int | None:
        self.send(pdu(0x04, pdv(1, 0x03, c_echo_rq())))
        return self.status()

    def c_store(self, dataset: bytes, sop_uid: str, context_id: int = 3, sop_class: str = CT_IMAGE_STORAGE
                ) -> int | None:
        """Send one C-STORE with ``dataset`` as its raw data set; its Status (None: the server ended it)."""
        self.send(pdu(0x04, pdv(context_id, 0x03, c_store_rq(sop_class, sop_uid))))
        for start in range(0, max(len(dataset), 1), 16000):
            last = start + 16000 >= len(dataset)
            self.send(pdu(0x04, pdv(context_id, 0x02 if last else 0x00, dataset[start:start + 16000])))
        return self.status()

    def release(self) -> bool:
        """A-RELEASE-RQ; whether the server answered A-RELEASE-RP."""
        try:
            self.send(pdu(0x05, bytes(4)))
            return self.read_pdu()[0] == 0x06
        except OSError:
            return False


def _status_of(command: bytes) -> int | None:
    offset = 0
    while offset + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHI", command, offset)
        if (group, element) == (0x0000, 0x0900):
            return struct.unpack_from("<H", command, offset + 8)[0]
        offset += 8 + length
    return None
