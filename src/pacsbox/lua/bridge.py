"""How Lua reaches pacsbox's REST API in-process and other HTTP servers (RestApi* and Http* functions).

``RestApiGet('/system')`` calls the Orthanc face's ASGI application directly: no socket, no authentication (Orthanc's
own calls skip it) and no IncomingHttpRequestFilter. A Lua callback may run on any thread, including the server's
event loop (an HTTP filter) or a thread of the ASGI application's own: the call therefore runs on a fresh event
loop in a short-lived thread of its own, and waits for it at most ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

_MAX_BODY = 256 * 1024 * 1024  # bytes of one answer kept (a Lua string of it must fit the state's memory anyway)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class RestApi:
    """In-process calls to one ASGI application."""

    def __init__(self, timeout: float) -> None:
        self.app: ASGIApp | None = None
        self.timeout = timeout

    def call(self, method: str, uri: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Answer:
        if self.app is None:
            return Answer(503, b"")
        app = self.app
        result: list[Answer] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                result.append(asyncio.run(_request(app, method, uri, body, headers or {})))
            except BaseException as error:  # reported to the caller below
                failure.append(error)

        worker = threading.Thread(target=run, name="pacsbox-lua-rest", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            return Answer(504, b"")
        if failure:
            raise failure[0]
        return result[0]


async def _request(app: ASGIApp, method: str, uri: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    path, _, query = uri.partition("?")
    if not path.startswith("/"):
        path = "/" + path
    header_list = [(b"host", b"localhost"), (b"content-length", str(len(body)).encode())]
    header_list += [(str(k).lower().encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
                    for k, v in headers.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
        "scheme": "http", "path": path, "raw_path": path.encode("utf-8", "replace"),
        "query_string": query.encode("utf-8", "replace"), "root_path": "", "headers": header_list,
        "client": None, "server": ("127.0.0.1", 0), "state": {"user": ""},
        "pacsbox.origin": "Lua",  # what the request's origin is (Orthanc's RequestOrigin_Lua)
    }
    sent = False
    status = 500
    chunks: list[bytes] = []
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the application asks again only to notice a disconnection
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                raise ValueError("the answer is too large for Lua")
            chunks.append(chunk)

    await app(scope, receive, send)
    return Answer(status, b"".join(chunks))


class HttpClient:
    """Lua's HttpGet/Post/Put/Delete, with SetHttpCredentials and SetHttpTimeout (per Lua state)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.credentials: tuple[str, str] | None = None

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        if not url.lower().startswith(("http://", "https://")):
            return Answer(400, b"")
        request = urllib.request.Request(url, data=body, method=method)
        for name, value in (headers or {}).items():
            request.add_header(str(name), str(value))
        if self.credentials is not None:
            token = base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, response.read(_MAX_BODY + 1)[:_MAX_BODY])
        except urllib.error.HTTPError as error:
            return Answer(error.code, b"")
        except (OSError, ValueError):
            return Answer(0, b"")
