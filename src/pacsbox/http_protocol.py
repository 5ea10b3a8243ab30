"""Uvicorn's HTTP/1.1 protocol (httptools) with the limits a server facing hostile clients needs.

Uvicorn's httptools protocol takes headers of any size and count, lets a connection sit half-open forever and
accepts connections until file descriptors run out. This subclass bounds, per connection and before any
application code runs:

* the bytes and the number of header lines of a request (431) and the length of its target (414), counted while
  they arrive, so a header line that never ends costs at most one read buffer beyond the limit;
* the time to receive the headers of a request (``HttpHeaderTimeout``, from the connection or the request's first
  byte), and the longest pause while its body is being read (``HttpRequestTimeout``, Orthanc's key, whose civetweb
  sets the same bound on every read); the keep-alive wait between requests stays Uvicorn's own timeout;
* the time a client may leave its answer unread (``HttpRequestTimeout`` again, as civetweb's SO_SNDTIMEO);
* the number of open connections (``HttpMaximumConnections``): a connection past the cap evicts the oldest one
  that has no request in progress (silent, half-sent headers or idle keep-alive), else the oldest whose request
  barely moves (a body dripping in, an answer not read), so that stalled sockets cannot lock new clients out;
  only when every connection is busy and moving is the new one answered 503 and closed.

A refusal is written straight to the socket with ``Connection: close``: it happens before routing, so no face
exists yet to word it, and the connection is closed because its remaining bytes cannot be trusted.

The lean path: a GET without a body that arrives while its connection has nothing else in progress is first offered
to the application's ``quick_answer(scope)`` (each layer of the application has one: the event log, the metrics,
authentication, the Lua filter, the Orthanc face's few hot reads, see ``faces.orthanc.quick_reads``); an answer it
gives at once is written here, with the bytes Uvicorn's cycle would write, instead of going through a task and ASGI
messages (a third of a small read's server time). Whatever it does not answer (None) goes the normal way.
"""

from __future__ import annotations

import asyncio
import http
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httptools

from .core.config import Config
from .faces.http_common import LEAN_BODY
from .uvicorn_parts import STATUS_LINE, HttpToolsProtocol, get_client_addr, get_path_with_query_string

# After a refusal the connection is half-closed, and what the client still sends is read and dropped for this
# long (or this many bytes) before it is closed: closing a socket with unread bytes resets it, and the reset can
# destroy the refusal before the client reads it.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1024 * 1024
# Bytes of a request body read and dropped after its answer (sent early: a 401, a 404) before the connection is
# closed rather than kept alive.
_DROPPED_AFTER_ANSWER = 64 * 1024

# A request in progress whose connection has not moved for this long may be closed to make room for a new
# connection once every connection is taken (idle ones go first).
_STALLED_AFTER = 2.0
_SLOWEST_BODY = 1024  # bytes a second
_SLOWEST_BODY_AFTER = 5.0

# File descriptors kept for everything that is not an HTTP connection (DICOM associations, stored files being
# read or written, SQLite, spools, logs): the connection cap never takes more than this share of the limit.
_SHARE_OF_FILE_LIMIT = 0.5


# (status, headers, body) of an answer the application gives at once, without an ASGI cycle (the lean path)
QuickAnswer = tuple[int, list[tuple[bytes, bytes]], bytes]
_LEAN_BODY_LIMIT = 64 * 1024  # bytes of a body the lean path waits for: Uvicorn's HIGH_WATER_LIMIT (it pauses there)
# The targets of the POSTs the lean path waits for (the Orthanc face's upload, ``quick_reads.UPLOAD_HANDLERS``).
# Any other POST starts its cycle at once, so that a refusal (a 401, a 404) can come before the body.
_LEAN_POST_TARGETS = frozenset({b"/instances"})
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


@dataclass(frozen=True)
class HttpLimits:
    """Per-connection limits of the HTTP server, resolved from the configuration."""

    header_bytes: int
    header_count: int
    target_bytes: int
    header_timeout: float
    body_pause_timeout: float
    max_connections: int

    @classmethod
    def from_config(cls, config: Config, file_limit: int | None = None) -> HttpLimits:
        """The configured limits; the connection cap is lowered to half of ``file_limit`` (the process's
        RLIMIT_NOFILE) when that is smaller, so that connections alone never exhaust file descriptors."""
        connections = config.HttpMaximumConnections
        if file_limit is not None and file_limit > 0:
            connections = max(8, min(connections, int(file_limit * _SHARE_OF_FILE_LIMIT)))
        return cls(header_bytes=config.HttpMaximumHeaderSize, header_count=config.HttpMaximumHeaderCount,
                   target_bytes=config.HttpMaximumUrlLength, header_timeout=float(config.HttpHeaderTimeout),
                   body_pause_timeout=float(config.HttpRequestTimeout), max_connections=connections)


class _Refusal(Exception):
    """Raised from a parser callback to stop parsing and answer ``status`` before the request reaches the app."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class ConnectionTable:
    """The open connections of one server, oldest first, with the cap they share."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[LimitedHttpToolsProtocol, None] = {}  # insertion-ordered: oldest first

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: LimitedHttpToolsProtocol) -> bool:
        """Register a new connection; past the cap, close the oldest one without a request in progress, else the
        oldest whose request barely moves. False when every other connection is busy and moving (the new one is
        then to be refused)."""
        self._open[connection] = None
        if len(self._open) <= self.cap:
            return True
        others = [other for other in self._open if other is not connection]
        victim = next((other for other in others if other.is_idle), None) or \
            next((other for other in others if other.is_stalled), None)
        if victim is None:
            self.discard(connection)  # refused: it must not count, nor be taken for an idle one
            return False
        self.discard(victim)  # at once: its connection_lost comes a loop turn later
        victim.evict()
        return True

    def discard(self, connection: LimitedHttpToolsProtocol) -> None:
        self._open.pop(connection, None)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header, time and connection limits; build a bound subclass with ``protocol_for``."""

    limits: HttpLimits
    table: ConnectionTable

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True  # from the connection or the end of a request until the next headers end
        self._reading_body = False
        self._header_bytes = 0  # of the request line and header lines parsed so far
        self._header_read_bytes = 0  # of the reads since the request began that ended no headers
        self._header_count = 0
        self._boundary_in_read = False
        self._lingering: int | None = None  # bytes dropped since a refusal, None before any
        self._dropped_after_answer = 0  # bytes of the current request's body that arrived after its answer
        self._write_paused_since: float | None = None
        self._body_started = 0.0
        self._body_received = 0
        self._declared_length: int | None = None  # Content-Length of the request being read
        self._write_timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # a request begun whose headers have not all arrived: its header timer is armed once a read ends with the
        # headers still incomplete (a request read whole in one read, the usual case, arms no timer at all)
        self._headers_pending = False
        self._quick_answer = getattr(self.app, "quick_answer", None)  # the lean path, when the app offers it
        self._answered_at_once = False  # the request being parsed was answered by the lean path
        self._lean_body: bytearray | None = None  # the body of a request offered to the lean path once complete

    # -- connections ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.table.admit(self):
            self._refuse(503, "Too many open connections", linger=False)
            return
        self._arm_header_timer()  # a client that connects and says nothing is closed as well

    def connection_lost(self, exc: Exception | None) -> None:
        self.table.discard(self)
        self._cancel_timers()
        super().connection_lost(exc)

    @property
    def is_idle(self) -> bool:
        """No request in progress: nothing received yet, headers still arriving, or a keep-alive wait."""
        return self._reading_headers and (self.cycle is None or self.cycle.response_complete)

    @property
    def is_stalled(self) -> bool:
        """A request in progress that barely moves: its answer has not been read for _STALLED_AFTER seconds, or
        its body (while the application waits for it) has stopped for that long or comes slower than
        _SLOWEST_BODY bytes a second since the first _SLOWEST_BODY_AFTER seconds (a client dripping a byte now
        and then stays under the body timeout)."""
        now = self.loop.time()
        if self._write_paused_since is not None and now - self._write_paused_since >= _STALLED_AFTER:
            return True
        if not self._reading_body or self.flow.read_paused:
            return False
        reading = now - self._body_started
        return now - self._last_read >= _STALLED_AFTER or (
            reading >= _SLOWEST_BODY_AFTER and self._body_received < _SLOWEST_BODY * reading)

    def evict(self) -> None:
        """Close this idle or stalled connection to make room for a new one."""
        self._cancel_timers()
        if self.transport.is_closing():
            return
        if self._write_paused_since is not None:
            self.transport.abort()  # close() would wait for the unread answer to drain
        else:
            self.transport.close()

    # -- reading -------------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # evicted: what is still in flight is not parsed
        if self._lingering is not None:
            self._lingering += len(data)  # refused: dropped unparsed
            if self._lingering > _LINGER_BYTES:
                self.transport.close()
            return
        self._last_read = self.loop.time()
        self._unset_keepalive_if_required()
        self._boundary_in_read = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            refusal = error.__context__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.status, refusal.reason)
            else:
                self._refuse(400, "Invalid HTTP request received.")
            return
        if self._reading_headers and not self._boundary_in_read and not self.transport.is_closing():
            # Only reads that hold nothing but headers are counted (a read that ends some headers or a body may
            # hold a whole body): what a never-ending header costs is the limit plus one read.
            self._header_read_bytes += len(data)
            if self._header_read_bytes > self.limits.header_bytes:
                self._refuse(431, "Request Header Fields Too Large")
                return
        # The timers of a request still arriving, armed once a read ends with it incomplete (not per request)
        if self._headers_pending and self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()
        elif self._reading_body and self._body_timer is None and not self.transport.is_closing() \
                and self._lingering is None:
            self._body_timer = self.loop.call_later(self.limits.body_pause_timeout, self._check_body_progress)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_read_bytes = self._header_count = 0
        self._headers_pending = True
        self._cancel_header_timer()  # (the connection's own, or the last request's): this one is armed if need be

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.target_bytes:
            raise _Refusal(414, "URI Too Long")
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.header_count:
            raise _Refusal(431, "Request Header Fields Too Large")
        self._count_header_bytes(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        """Count parsed header bytes exactly (the reads are only counted while no headers end in them)."""
        self._header_bytes += size
        if self._header_bytes > self.limits.header_bytes:
            raise _Refusal(431, "Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        self._reading_headers, self._reading_body = False, True
        self._headers_pending = False
        self._dropped_after_answer = self._body_received = 0
        self._body_started = self.loop.time()
        self._boundary_in_read = True
        self._cancel_header_timer()
        self._declared_length = next((int(value) for name, value in self.headers
                                      if name == b"content-length" and value.isdigit()), None)
        if self._quick_answer is not None:
            if self._answer_at_once():
                self._answered_at_once = True
                return
            if self._may_answer_with_body():
                self._lean_body = bytearray()  # its cycle starts once the body is in, if the lean path declines it
                return
        self._start_cycle()

    def _start_cycle(self) -> None:
        """Uvicorn's start of the request: its ASGI cycle (a task, or a place in the pipeline)."""
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:
            self._watch_early_answer(self.cycle)

    def _watch_early_answer(self, cycle: Any) -> None:
        """An answer that starts before its request's body is all received (a 401, a 404, a 413) says
        ``Connection: close`` unless what is left is known and small (then it is read and dropped, and the
        connection stays usable); the close then lingers (``_LingeringClose``) so that the answer arrives."""
        send = cycle.send
        transport = _LingeringClose(self)

        async def send_closing_early(message: dict) -> None:
            if message["type"] == "http.response.start":
                if cycle is self.cycle and self._reading_body:
                    left = None if self._declared_length is None else self._declared_length - self._body_received
                    if left is None or left > _DROPPED_AFTER_ANSWER:
                        cycle.keep_alive = False
                transport.hold_next_write()  # the status line and headers go out with the body's first part
                try:
                    await send(message)
                except BaseException:
                    transport.flush()
                    raise
                return
            try:
                await send(message)
            finally:
                transport.flush()  # (a HEAD answer, or a body part Uvicorn did not write)

        cycle.send = send_closing_early
        cycle.transport = transport

    def on_message_complete(self) -> None:
        if self._lean_body is not None:
            body, self._lean_body = bytes(self._lean_body), None
            if not self._answer_with_body(body):  # the normal way, as if the body had come after the headers
                self._start_cycle()
                if body:
                    super().on_body(body)
                super().on_message_complete()
        elif self._answered_at_once:
            self._answered_at_once = False  # (no cycle of its own: Uvicorn's would be another request's)
        else:
            super().on_message_complete()
        self._reading_headers, self._reading_body = True, False
        self._boundary_in_read = True
        self._cancel_body_timer()

    # -- the lean path ---------------------------------------------------------------------------------------
    def _answer_at_once(self) -> bool:
        """Answer the request whose headers just ended from the application's ``quick_answer``, if it is a GET
        without a body, nothing else is in progress on the connection (pipelined answers keep their order), the
        client reads what is written, and the application answers it at once."""
        if self.parser.get_method() != b"GET" or not self._lean_path_open():
            return False
        for name, _ in self.headers:
            if name in _BODY_HEADERS:
                return False
        return self._answer_lean("GET", None)

    def _may_answer_with_body(self) -> bool:
        """Whether the request whose headers just ended may be offered to the lean path once its body is in: an
        upload (``_LEAN_POST_TARGETS``) of a declared length of at most _LEAN_BODY_LIMIT bytes (what Uvicorn
        buffers before it pauses reading anyway: no more memory before authentication than the normal path), on
        the same conditions as a GET, without ``Expect: 100-continue``. Its answer, a refusal included, comes once
        its body is in."""
        if self.parser.get_method() != b"POST" or self.url not in _LEAN_POST_TARGETS \
                or self._declared_length is None or self._declared_length > _LEAN_BODY_LIMIT \
                or self.expect_100_continue or not self._lean_path_open():
            return False
        return all(name != b"transfer-encoding" for name, _ in self.headers)

    def _answer_with_body(self, body: bytes) -> bool:
        """Offer the POST whose body just ended to the lean path (its body in the scope, at ``LEAN_BODY``); False
        when the application declines it (it then goes the normal way, its body as received)."""
        if self.transport.is_closing() or self.flow.write_paused:
            return False
        return self._answer_lean("POST", body)

    def _lean_path_open(self) -> bool:
        parser = self.parser
        return not (parser.should_upgrade() or self.pipeline
                    or (self.cycle is not None and not self.cycle.response_complete)
                    or self.flow.write_paused or self.limit_concurrency is not None or self.transport.is_closing())

    def _answer_lean(self, method: str, body: bytes | None) -> bool:
        """Ask ``quick_answer`` with the scope ``HttpToolsProtocol.on_headers_complete`` would make; write its
        answer, if any, as Uvicorn's cycle would (its default headers, then the answer's, ``connection: close``
        when the request asked for it), then end the request as Uvicorn does (keep-alive timer, total request
        count, access log)."""
        parser = self.parser
        try:  # (a URL it refuses goes the normal way, which answers it)
            parsed_url = httptools.parse_url(self.url)
            path = parsed_url.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return False
        http_version = parser.get_http_version()
        keep_alive = http_version != "1.0" and parser.should_keep_alive()
        scope = dict(self.scope)  # the application's changes stay out of the normal path's scope
        scope["state"] = dict(scope["state"])
        scope["method"] = method
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = self.root_path + (urllib.parse.unquote(path) if "%" in path else path)
        scope["raw_path"] = self.root_path.encode("ascii") + parsed_url.path
        scope["query_string"] = parsed_url.query or b""
        if body is not None:
            scope[LEAN_BODY] = body
        try:
            answer = self._quick_answer(scope)
        except Exception:  # the normal path meets the same error and answers it
            return False
        if answer is None:
            return False
        status, headers, content_body = answer
        if self.access_log:
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), method,
                                    get_path_with_query_string(scope), scope["http_version"], status)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        if not keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", content_body)
        self.transport.write(b"".join(content))
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        return True

    # -- writing: a client that does not read its answer --------------------------------------------------------
    def pause_writing(self) -> None:
        """The client reads the answer more slowly than it is written: after HttpRequestTimeout without progress
        (as Orthanc's SO_SNDTIMEO), the connection is closed."""
        super().pause_writing()
        self._write_paused_since = self.loop.time()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.body_pause_timeout, self._write_timeout)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused_since = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timeout(self) -> None:
        self._write_timer = None
        if self._write_paused_since is not None and not self.transport.is_closing():
            self.transport.abort()  # close() would wait for the unread answer to drain

    # -- timers --------------------------------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self._reading_headers or self.transport.is_closing() or self._lingering is not None:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_header_timer()  # a pipelined request waits for the answer to the one before it
            return
        self._refuse(408, "Request Timeout", linger=False)  # every byte received so far was read

    def _check_body_progress(self) -> None:
        self._body_timer = None
        if not self._reading_body or self.transport.is_closing() or self._lingering is not None:
            return
        wait = self.limits.body_pause_timeout
        if not self.flow.read_paused:  # paused: the application is not reading, the client is not to blame
            silent = self.loop.time() - self._last_read
            if silent >= wait:
                self.transport.close()  # the application sees a disconnect
                return
            wait -= silent
        self._body_timer = self.loop.call_later(wait, self._check_body_progress)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    # -- answers -------------------------------------------------------------------------------------------
    def _refuse(self, status: int, reason: str, *, linger: bool = True) -> None:
        """Answer ``status`` with a plain-text reason and close, before the request reaches the application;
        ``linger`` when the client may still be sending (see _LINGER_SECONDS)."""
        self._cancel_timers()
        if self.transport.is_closing() or self._lingering is not None:
            return
        body = reason.encode("ascii")
        self.transport.write(b"".join([
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode("ascii"),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n", body]))
        if linger:
            self._close_lingering()
        else:
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        if self._lean_body is not None:
            self._lean_body += body  # (at most _LEAN_BODY_LIMIT bytes: the parser stops at the declared length)
            return
        if self.cycle.response_complete and not self.transport.is_closing():
            # Answered before its body was all received (a 401, a 404): Uvicorn reads the rest and drops it, which
            # would let a client without credentials stream for ever. A small rest is dropped (the connection
            # stays usable); past _DROPPED_AFTER_ANSWER bytes the connection is closed.
            self._dropped_after_answer += len(body)
            if self._dropped_after_answer > _DROPPED_AFTER_ANSWER:
                self._cancel_timers()
                self._close_lingering()
                return
        super().on_body(body)

    def _close_lingering(self) -> None:
        """Send FIN after what was written, drop what still arrives, close after _LINGER_SECONDS."""
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._lingering = 0
        self.flow.resume_reading()
        self.loop.call_later(_LINGER_SECONDS, self._end_lingering)

    def _end_lingering(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _LingeringClose:
    """The transport as a request's cycle sees it: closing it while the request's body is still arriving (after
    an answer sent before the body was read) half-closes and drops the rest for a while, instead of resetting the
    connection and with it, maybe, the answer the client has not read yet."""

    def __init__(self, protocol: LimitedHttpToolsProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport
        self._holding = False
        self._held = b""

    def hold_next_write(self) -> None:
        """Keep the next write (an answer's status line and headers) to send it with the one after (its body's
        first part): one send and one TCP segment for a small answer instead of two, which the client also reads
        at once (Uvicorn writes the headers as soon as the answer starts)."""
        self._holding = True

    def write(self, data: bytes) -> None:
        if self._holding:
            self._holding, self._held = False, bytes(data)
            return
        if self._held:
            data, self._held = self._held + data, b""
        self._transport.write(data)

    def flush(self) -> None:
        """Send what is held, if anything."""
        self._holding = False
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        protocol = self._protocol
        if protocol._reading_body and not self._transport.is_closing() and protocol._lingering is None:
            protocol._cancel_timers()
            protocol._close_lingering()
        else:
            self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol_for(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class bound to ``limits`` and to a connection table of its own, for ``uvicorn.Config(http=)``
    (Uvicorn builds one protocol per connection from the class)."""
    return type("BoundHttpToolsProtocol", (LimitedHttpToolsProtocol,),
                {"limits": limits, "table": ConnectionTable(limits.max_connections)})
