"""A small HTTP client on the standard library: one kept-alive connection, Basic credentials, plain bytes.

``requests`` is not one of pacsbox's dependencies; uploads only need a few verbs on one host, so ``http.client``
serves, and reusing its connection saves a TCP handshake per file.
"""

from __future__ import annotations

import base64
import http.client
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class HttpError(RuntimeError):
    """An answer other than the one expected; the message carries the method, the path, the status and the body."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        text = body.decode("utf-8", "replace").strip()
        super().__init__(f"{method} {path} answered {status}: {text[:500] or '(empty body)'}")
        self.status = status


class HttpClient:
    """Requests to one server (``url`` is its base, e.g. ``http://127.0.0.1:8042``) over a kept-alive connection."""

    def __init__(self, url: str, auth: tuple[str, str] | None, timeout: float = 300.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not an HTTP URL: {url!r}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"User-Agent": "pacsbox-datasets"}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._connection is not None:
            return self._connection, True
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(self.host, self.port, timeout=self.timeout)
        return self._connection, False

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: bytes = b"",
                content_type: str = "application/octet-stream", expect: tuple[int, ...] = (200, 201)) -> bytes:
        """Send one request; return the body of an expected answer, raise :class:`HttpError` otherwise."""
        target = self.prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = {**self.headers, "Content-Type": content_type} if body or method in ("POST", "PUT") \
            else self.headers
        while True:
            connection, reused = self._connect()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except _STALE:
                self.close()
                if reused:  # the server closed a kept-alive connection before reading: send again on a new one
                    continue
                raise
            if response.will_close:
                self.close()
            if response.status not in expect:
                raise HttpError(method, target, response.status, data)
            return data

    def status(self, path: str, query: Mapping[str, str] | None = None) -> int:
        """The status of a GET (its body read and dropped)."""
        try:
            self.request("GET", path, query=query, expect=(200,))
        except HttpError as error:
            return error.status
        return 200

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def path(*parts: str) -> str:
    """``/a/b/c`` from path segments, each percent-encoded (labels may hold characters URLs reserve)."""
    return "".join("/" + quote(part, safe="") for part in parts)
