"""The remote Orthanc servers this one knows as HTTP peers (Orthanc's ``OrthancPeers``), and the small HTTP
client that sends them instances (standard library only, one kept-alive connection per call).

Parsing, the two JSON renderings and the failure wording follow Orthanc 1.10.1 as observed from the real server
(tests/faces/orthanc/test_peers.py): its HTTP client is libcurl, so connection failures carry curl's messages.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import re
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

from .errors import ArchiveError, BadFormat, InexistentItem, NetworkError, UnknownResource, Unsupported
from .modalities import unsigned_field

DEFAULT_TIMEOUT = 60  # seconds: Orthanc's "HttpTimeout" default, used by peers whose "Timeout" is 0
_RESERVED = frozenset(["Url", "URL", "Username", "Password", "HttpHeaders", "CertificateFile", "CertificateKeyFile",
                       "CertificateKeyPassword", "Pkcs11", "Timeout"])
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_EXPECTED = 'expected ["http://host:port/"] or ["http://host:port/", "user", "password"], or an object with Url'


class InexistentFile(InexistentItem):
    """A certificate or key file named by a peer that is not on disk (Orthanc's "Inexistent file")."""


@dataclass(frozen=True)
class Peer:
    """One remote Orthanc: its base URL (ending with ``/``), credentials, extra headers and client options."""

    url: str
    username: str = ""
    password: str = ""
    http_headers: Mapping[str, str] = field(default_factory=dict)
    certificate_file: str = ""
    certificate_key_file: str = ""
    certificate_key_password: str = ""
    pkcs11: bool = False
    timeout: int = 0  # seconds; 0: DEFAULT_TIMEOUT
    user_properties: Mapping[str, str] = field(default_factory=dict)

    def public_json(self) -> dict[str, Any]:
        """What ``/peers?expand`` and ``/peers/{id}/configuration`` show: secrets as null, header names only."""
        body: dict[str, Any] = {"Url": self.url}
        if self.username:
            body.update(Username=self.username, Password=None)
        if self.certificate_file:
            body.update(CertificateFile=self.certificate_file, CertificateKeyFile=None, CertificateKeyPassword=None)
        body.update(Pkcs11=self.pkcs11, Timeout=self.timeout, HttpHeaders=sorted(self.http_headers))
        body.update(self.user_properties)
        return body

    def job_json(self) -> list[str] | dict[str, Any]:
        """The ``Peer`` of a store report: Orthanc's array form when it suffices (password blanked), else its
        object form without passwords (header values included, as Orthanc shows them)."""
        if not (self.http_headers or self.certificate_file or self.pkcs11 or self.timeout or self.user_properties):
            return [self.url, self.username, ""] if self.username else [self.url]
        body: dict[str, Any] = {"Url": self.url}
        if self.username:
            body["Username"] = self.username
        if self.certificate_file:
            body.update(CertificateFile=self.certificate_file, CertificateKeyFile=self.certificate_key_file)
        body.update(Pkcs11=self.pkcs11, Timeout=self.timeout, HttpHeaders=dict(self.http_headers))
        body.update(self.user_properties)
        return body


def check_name(name: str) -> None:
    """Orthanc's rule for the symbolic names of peers (and modalities) created at run time."""
    if not _NAME.match(name):
        raise BadFormat("Only alphanumeric, dash characters and underscores are allowed in the names of "
                        f"modalities/peers, but found: {name}")


def parse_peer(value: Any) -> Peer:
    """Read one ``OrthancPeers`` entry: ``["url"]``, ``["url", "user", "password"]`` or Orthanc's object form
    (``Url``, ``Username``, ``Password``, ``HttpHeaders``, ``CertificateFile``, ``CertificateKeyFile``,
    ``CertificateKeyPassword``, ``Pkcs11``, ``Timeout``; other keys are kept as user-defined properties).

    A wrong structure is ``BadFormat`` (with Orthanc's details when it gives some); a certificate or key file
    that does not exist is ``InexistentFile``.
    """
    if isinstance(value, list):
        if len(value) not in (1, 3):
            raise BadFormat()
        items = [_as_string(item) for item in value]
        return _peer(items[0], *(items[1:] or ("", "")))
    if not isinstance(value, Mapping):
        raise BadFormat()
    url = value.get("Url", value.get("URL", ""))
    username, password = value.get("Username", ""), value.get("Password", "")
    if not all(isinstance(text, str) for text in (url, username, password)):
        raise BadFormat()
    options: dict[str, Any] = {}
    certificate = _string(value, "CertificateFile")
    if certificate:
        key, key_password = _string(value, "CertificateKeyFile"), _string(value, "CertificateKeyPassword")
        if not Path(certificate).is_file():
            raise InexistentFile(f"Cannot open certificate file: {certificate}")
        if key and not Path(key).is_file():
            raise InexistentFile(f"Cannot open key file: {key}")
        options.update(certificate_file=certificate, certificate_key_file=key, certificate_key_password=key_password)
    if "Pkcs11" in value:
        if not isinstance(value["Pkcs11"], bool):
            raise BadFormat()
        options["pkcs11"] = value["Pkcs11"]
    if "Timeout" in value:
        options["timeout"] = unsigned_field(value, "Timeout")
        if options["timeout"] > 0xFFFFFFFF:
            raise BadFormat()
    headers = value.get("HttpHeaders", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise BadFormat()
    options["http_headers"] = dict(headers)
    options["user_properties"] = {key: _property(key, item) for key, item in value.items() if key not in _RESERVED}
    return _peer(url, username, password, **options)


def _peer(url: str, username: str, password: str, **options: Any) -> Peer:
    if not url:
        raise BadFormat("Empty URL")
    if "://" in url and not url.startswith(("http://", "https://")):
        raise BadFormat(f"Bad URL: {url}")
    if password and not username:
        raise BadFormat()
    return Peer(url=url if url.endswith("/") else url + "/", username=username, password=password, **options)


def _as_string(item: Any) -> str:
    """An item of the array form as Orthanc's JSON library converts it to text."""
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (str, int)):
        return str(item)
    raise BadFormat()


def _string(value: Mapping[str, Any], key: str) -> str:
    if not isinstance(value.get(key, ""), str):
        raise BadFormat()
    return value.get(key, "")


def _property(key: str, item: Any) -> str:
    if isinstance(item, bool):
        return "1" if item else "0"
    if isinstance(item, (str, int)):
        return str(item)
    raise BadFormat(f"User-defined properties associated with a Web service must be strings: {key}")


class PeerRegistry:
    """The known peers by symbolic name; changed at run time through REST (kept in memory, as Orthanc does with
    ``OrthancPeersInDatabase`` false)."""

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        for name, value in (entries or {}).items():
            try:
                check_name(name)
                self._peers[name] = parse_peer(value)
            except ArchiveError as error:  # a configuration mistake: say which entry, and what is expected
                raise BadFormat(f"OrthancPeers entry {name!r}: {error.details or _EXPECTED}") from None

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._peers)

    def items(self) -> list[tuple[str, Peer]]:
        with self._lock:
            return sorted(self._peers.items())

    def get(self, name: str) -> Peer:
        with self._lock:
            found = self._peers.get(name)
        if found is None:
            raise UnknownResource(f"No peer with symbolic name: {name}")
        return found

    def put(self, name: str, peer: Peer) -> None:
        check_name(name)
        with self._lock:
            self._peers[name] = peer

    def remove(self, name: str) -> None:
        with self._lock:
            if self._peers.pop(name, None) is None:
                raise InexistentItem(f"Unknown Orthanc peer: {name}")


# -- the HTTP client ------------------------------------------------------------------------------------------
class PeerAnswer(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str] = {}  # lower-case names (what a relaying caller needs, e.g. Content-Type)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class PeerStoreReport:
    """The outcome of sending instances to a peer: how many, how many failed, the bytes sent."""

    instances: int = 0
    failed: int = 0
    size: int = 0


_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class PeerConnection:
    """Requests to one peer over one kept-alive connection, with its credentials and headers; a context manager.

    Every failure to exchange with the peer raises ``NetworkError`` with libcurl's wording (what Orthanc reports);
    an HTTP answer of any status is returned, for the caller to judge.
    """

    def __init__(self, peer: Peer, default_timeout: int = DEFAULT_TIMEOUT) -> None:
        if peer.pkcs11:
            raise Unsupported("PKCS#11 authentication of Orthanc peers (\"Pkcs11\": true) is not supported")
        url = peer.url if "://" in peer.url else "http://" + peer.url  # curl's guess for a URL without scheme
        try:
            parts = urlsplit(url)
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port out of range or not a number, an unclosed IPv6 bracket
            raise NetworkError("libCURL error: URL using bad/illegal format or missing URL") from None
        if not parts.hostname:
            raise NetworkError("libCURL error: Couldn't resolve host name")
        self.peer, self.https, self.prefix = peer, parts.scheme == "https", parts.path or "/"
        self.host, self.timeout = parts.hostname, peer.timeout or default_timeout
        self.headers = {"Accept": "*/*", **peer.http_headers}
        if peer.username and peer.password:
            token = base64.b64encode(f"{peer.username}:{peer.password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> PeerConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is not None:
            return self._connection
        if self.https:
            context = ssl.create_default_context()
            if self.peer.certificate_file:
                context.load_cert_chain(self.peer.certificate_file, self.peer.certificate_key_file or None,
                                        self.peer.certificate_key_password or None)
            self._connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                           context=context, blocksize=65536)
        else:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                                          blocksize=65536)
        return self._connection

    def request(self, method: str, path: str, body: bytes | BinaryIO | None = None, size: int = 0,
                headers: Mapping[str, str] | None = None) -> PeerAnswer:
        """``method`` on the peer's URL + ``path``; ``body`` (bytes, or a file of ``size`` bytes) is sent as is."""
        all_headers = {**self.headers, **(headers or {})}
        if body is not None:
            all_headers["Content-Length"] = str(len(body) if isinstance(body, bytes) else size)
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        while True:
            reused = self._connection is not None
            try:
                connection = self._connect()
                connection.request(method, self.prefix + path, body=body, headers=all_headers)
                response = connection.getresponse()
                answer = PeerAnswer(response.status, response.read(),
                                    {name.lower(): value for name, value in response.getheaders()})
                if response.will_close:
                    self.close()
                return answer
            except _STALE as error:
                self.close()
                if not reused:  # a kept-alive connection the peer closed meanwhile: retry once on a new one
                    raise NetworkError(_curl_message(error)) from None
                if body is not None and not isinstance(body, bytes):
                    body.seek(start)
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise NetworkError(_curl_message(error)) from None

    def store(self, files: Sequence[Path], *, compress: bool = False, permissive: bool = False) -> PeerStoreReport:
        """``POST instances`` each file (streamed; gzipped in memory with ``compress``, as Orthanc's "Compress").

        Stops at the first failure (``NetworkError``; without details when the peer answered an error status, as
        Orthanc) unless ``permissive``, which counts failures and goes on.
        """
        report = PeerStoreReport()
        for path in files:
            report.instances += 1
            try:
                answer = self._send_file(path, compress, report)
                if not answer.ok:
                    raise NetworkError()
            except NetworkError:
                if not permissive:
                    raise
                report.failed += 1
        return report

    def _send_file(self, path: Path, compress: bool, report: PeerStoreReport) -> PeerAnswer:
        if compress:
            data = gzip.compress(path.read_bytes())
            report.size += len(data)
            return self.request("POST", "instances", data, headers={"Content-Encoding": "gzip",
                                                                     "Content-Type": "application/dicom"})
        with open(path, "rb") as handle:
            size = path.stat().st_size
            report.size += size
            return self.request("POST", "instances", handle, size, headers={"Content-Type": "application/dicom"})


def _curl_message(error: BaseException) -> str:
    """libcurl's text for a failed exchange, as Orthanc puts it in its error's details."""
    if isinstance(error, socket.gaierror):
        reason = "Couldn't resolve host name"
    elif isinstance(error, ConnectionRefusedError):
        reason = "Couldn't connect to server"
    elif isinstance(error, TimeoutError):
        reason = "Timeout was reached"
    elif isinstance(error, ssl.SSLError):
        reason = "SSL connect error"
    elif isinstance(error, http.client.RemoteDisconnected):
        reason = "Server returned nothing (no headers, no data)"
    else:
        reason = "Failure when receiving data from the peer"
    return f"libCURL error: {reason}"
