"""The Python API of fault injection and the event log: ``Instance.faults``/``.events`` and ``Server.faults``/
``.events`` are these clients of ``/pacsbox/faults`` and ``/pacsbox/events`` (plain ``urllib``: no dependency).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

_LONG_POLL = 20.0  # seconds of one GET /pacsbox/events?wait= (a wait_for repeats it until its timeout)


class FaultsApiError(RuntimeError):
    """The server refused a call; ``status`` is its HTTP status, the message its reason (a bad rule: 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Caller = Callable[..., Any]


def http_caller(url: str, auth: tuple[str, str] | None) -> Caller:
    """``call(method, path, payload=None, timeout=30)`` → the JSON answer; a non-200 raises ``FaultsApiError``."""
    header = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth and auth[0] else None

    def call(method: str, path: str, payload: Any = None, timeout: float = 30.0) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url.rstrip("/") + path, data=body, method=method)
        if header:
            request.add_header("Authorization", header)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                reason = json.loads(raw).get("Details") or raw.decode("utf-8", "replace")
            except (ValueError, AttributeError):
                reason = raw.decode("utf-8", "replace")
            raise FaultsApiError(error.code, f"{method} {path} answered {error.code}: {reason}") from None
        return json.loads(raw) if raw.strip() else None

    return call


class FaultsClient:
    """The server's fault rules: ``add`` (a rule's JSON form, or its keys as arguments), ``list``, ``remove``,
    ``clear``."""

    def __init__(self, call: Caller) -> None:
        self._call = call

    def add(self, rule: Any = None, **fields: Any) -> dict[str, Any]:
        """Add a rule; returns it with its ``id``. ``add(face="orthanc", path="/instances",
        action={"http_status": 503})`` is ``add({"face": "orthanc", ...})``."""
        payload = {**rule, **fields} if isinstance(rule, dict) else rule if rule is not None else fields
        return self._call("POST", "/pacsbox/faults", payload)

    def add_many(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add several rules at once (none if one is invalid); returns them with their ``id``."""
        return self._call("POST", "/pacsbox/faults", list(rules))

    def list(self) -> list[dict[str, Any]]:
        """Every rule, with how often it ``matched`` and ``fired``."""
        return self._call("GET", "/pacsbox/faults")

    def get(self, rule_id: str | dict[str, Any]) -> dict[str, Any]:
        return self._call("GET", f"/pacsbox/faults/{quote(_id_of(rule_id), safe='')}")

    def remove(self, rule_id: str | dict[str, Any]) -> None:
        self._call("DELETE", f"/pacsbox/faults/{quote(_id_of(rule_id), safe='')}")

    def clear(self) -> None:
        self._call("DELETE", "/pacsbox/faults")


def _id_of(rule: str | dict[str, Any]) -> str:
    return str(rule["id"]) if isinstance(rule, dict) else str(rule)


def _query(**values: Any) -> str:
    pairs = [(key, value) for key, value in values.items() if value not in (None, "", ())]
    pairs = [(key, ",".join(value) if isinstance(value, (list, tuple, set)) else value) for key, value in pairs]
    return "?" + urlencode(pairs) if pairs else ""


class EventsClient:
    """The server's event log. ``since`` (a ``seq``) is where ``list`` and ``wait_for`` start by default:
    ``mark()`` moves it to now, so that a test sees only what it caused."""

    def __init__(self, call: Caller, since: int = 0) -> None:
        self._call = call
        self.since = since

    def last_seq(self) -> int:
        return int(self._call("GET", "/pacsbox/events/last")["seq"])

    def mark(self) -> int:
        """Start ``list`` and ``wait_for`` after the events recorded so far; returns that ``seq``."""
        self.since = self.last_seq()
        return self.since

    def list(self, *, since: int | None = None, limit: int | None = None, face: str | Iterable[str] | None = None,
             kind: str | Iterable[str] | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The events after ``since`` (default: the mark), oldest first; ``fields`` keep those whose values are
        equal (``operation="C-STORE"``, ``status=0``)."""
        events = self._call("GET", "/pacsbox/events" + _query(
            since=self.since if since is None else since, limit=limit, face=_names(face), kind=_names(kind)))
        return [event for event in events if _has(event, fields)]

    def page(self, since: int = 0, limit: int | None = None, face: Iterable[str] | str | None = None,
             kind: Iterable[str] | str | None = None, wait: float | None = None) -> list[dict[str, Any]]:
        """One answer of ``GET /pacsbox/events``: the events after ``since``, waiting up to ``wait`` seconds (at
        most 60) for a first one."""
        return self._call("GET", "/pacsbox/events" + _query(since=since, limit=limit, face=_names(face),
                                                            kind=_names(kind), wait=wait),
                          timeout=(wait or 0) + 30)

    def clear(self) -> None:
        """Forget every event the server holds."""
        self._call("DELETE", "/pacsbox/events")

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool] | None = None, *, timeout: float = 10.0,
                 since: int | None = None, face: str | None = None, kind: str | None = None,
                 **fields: Any) -> dict[str, Any]:
        """The first event after ``since`` (default: the mark) of that face and kind whose ``fields`` are equal
        and for which ``predicate`` holds, waiting for it (long polls: no sleep); ``TimeoutError`` saying what
        was seen otherwise. ``wait_for(kind="dimse", operation="C-STORE", status=0)``."""
        start = self.since if since is None else since
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            wait = max(0.0, min(_LONG_POLL, remaining))
            events = self._call("GET", "/pacsbox/events" + _query(since=start, face=face, kind=kind,
                                                                  wait=f"{wait:.3f}"), timeout=wait + 30)
            for event in events:
                if _has(event, fields) and (predicate is None or predicate(event)):
                    return event
            if events:
                start = events[-1]["seq"]
                seen = (seen + events)[-5:]
            if remaining <= 0:
                wanted = ", ".join(f"{k}={v!r}" for k, v in {"face": face, "kind": kind, **fields}.items()
                                   if v is not None)
                raise TimeoutError(f"no event with {wanted or 'the predicate'} within {timeout:g} s; the last ones "
                                   f"seen: {json.dumps(seen)[:1500]}")


def _names(value: str | Iterable[str] | None) -> Any:
    return value if value is None or isinstance(value, str) else list(value)


def _has(event: dict[str, Any], fields: dict[str, Any]) -> bool:
    return all(event.get(key) == value for key, value in fields.items())
