"""Fault rules: what to match (face, method, path, DIMSE operation, AETs, SOP class), when to fire (always, the
first N matches, after N matches, with a seeded probability) and what to do (an HTTP status, a delay, a closed
connection, a DIMSE status, a rejected or aborted association, delayed PDUs, failed sub-operations).

The JSON spellings are the public format (README "Testing failures"): ``{"face": "orthanc", "method": "POST",
"path": "/instances", "first": 2, "action": {"http_status": 503}}``. Every value is checked when the rule is
added; a bad one raises ``RuleError`` with the reason (answered 400).
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HTTP_FACES = frozenset({"orthanc", "xnat", "dicomweb"})
FACES = HTTP_FACES | {"dimse"}
ASSOCIATION = "association"
OPERATIONS = frozenset({"C-ECHO", "C-STORE", "C-FIND", "C-MOVE", "C-GET", ASSOCIATION})
RETRIEVES = frozenset({"C-MOVE", "C-GET"})
MAXIMUM_DELAY = 300.0  # seconds: longer than any client's timeout worth testing, short enough to end a test
MAXIMUM_RULES = 1000
# Statuses a fault may not answer: success, pending and cancel are not failures (PS3.7 C)
_NOT_FAULTS = frozenset({0x0000, 0xFF00, 0xFF01, 0xFE00})
_RULE_KEYS = frozenset({"face", "method", "path", "operation", "calling_aet", "called_aet", "sop_class", "first",
                        "after", "probability", "seed", "action", "comment"})
_HTTP_ACTIONS = frozenset({"http_status", "message", "headers", "delay", "close"})
_DIMSE_ACTIONS = frozenset({"dimse_status", "delay", "reject", "abort", "pdu_delay", "failed_suboperations"})
# PS3.8 9.3.4 A-ASSOCIATE-RJ: result 1 permanent / 2 transient; source 1 user, 2 provider (ACSE), 3 provider
# (presentation); the default is the one Orthanc and pynetdicom send for a busy server
DEFAULT_REJECTION = (2, 3, 2)  # transient, service provider (presentation), local limit exceeded
DEFAULT_ABORT = (2, 0)  # PS3.8 9.3.8: source service provider, reason not specified


class RuleError(ValueError):
    """A rule that cannot be used: the message says which value and why."""


@dataclass(frozen=True)
class Action:
    """What a rule does when it fires (only the fields of its face's kind are set)."""

    http_status: int | None = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    close: bool = False
    dimse_status: int | None = None
    reject: tuple[int, int, int] | None = None
    abort: tuple[int, int] | None = None
    pdu_delay: float = 0.0
    failed_suboperations: int = 0


@dataclass(frozen=True)
class Request:
    """What arrived, as a rule matches it: an HTTP request or a DIMSE request (or an association request)."""

    face: str
    method: str = ""
    path: str = ""
    operation: str = ""
    calling_aet: str = ""
    called_aet: str = ""
    sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fired:
    """A rule that fired on a request: its ID (named by the events it causes) and its action."""

    rule_id: str
    action: Action


class Rule:
    """One rule, its counters and its random generator (seeded: the same requests fire in every run)."""

    def __init__(self, rule_id: str, source: dict[str, Any], action: Action, *, face: str, method: str | None,
                 path: re.Pattern[str] | None, operation: str | None, calling_aet: str | None,
                 called_aet: str | None, sop_class: str | None, first: int | None, after: int | None,
                 probability: float | None, seed: int | None) -> None:
        self.id = rule_id
        self.source = source
        self.action = action
        self.face, self.method, self.path, self.operation = face, method, path, operation
        self.calling_aet, self.called_aet, self.sop_class = calling_aet, called_aet, sop_class
        self.first, self.after, self.probability, self.seed = first, after, probability, seed
        self.random = random.Random(seed)
        self.matched = 0
        self.fired = 0

    def matches(self, request: Request) -> bool:
        if request.face != self.face:
            return False
        if self.face == "dimse":
            if (self.operation or "") == ASSOCIATION:
                if request.operation != ASSOCIATION:
                    return False
            elif request.operation == ASSOCIATION or (self.operation and request.operation != self.operation):
                return False
            if self.calling_aet is not None and request.calling_aet != self.calling_aet:
                return False
            if self.called_aet is not None and request.called_aet != self.called_aet:
                return False
            return self.sop_class is None or self.sop_class in request.sop_classes
        if self.method is not None and request.method != self.method \
                and not (self.method == "GET" and request.method == "HEAD"):
            return False
        return self.path is None or self.path.fullmatch(request.path) is not None

    def fires(self) -> bool:
        """Count one match and say whether the rule fires on it (called under the rules' lock)."""
        self.matched += 1
        if self.first is not None and self.matched > self.first:
            return False
        if self.after is not None and self.matched <= self.after:
            return False
        if self.probability is not None and self.random.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        """The rule as given, with its ``id``, its ``seed`` (chosen when none was given) and its counters."""
        shown = {"id": self.id, **self.source, "matched": self.matched, "fired": self.fired}
        if self.probability is not None:
            shown["seed"] = self.seed
        return shown


def _integer(value: Any, name: str, lowest: int = 0, highest: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(f"{name} must be an integer, not {value!r}")
    if value < lowest or (highest is not None and value > highest):
        span = f"between {lowest} and {highest}" if highest is not None else f"at least {lowest}"
        raise RuleError(f"{name} must be {span}, not {value}")
    return value


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAXIMUM_DELAY:
        raise RuleError(f"{name} must be a number of seconds between 0 and {MAXIMUM_DELAY:g}, not {value!r}")
    return float(value)


def _text(value: Any, name: str, limit: int = 1024) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise RuleError(f"{name} must be a string of at most {limit} characters, not {value!r}"[:300])
    return value


def path_pattern(pattern: str) -> re.Pattern[str]:
    """A path glob: ``*`` matches within one segment, ``**`` across segments, anything else literally
    (``/instances``, ``/instances/*/file``, ``/data/**``)."""
    if not pattern.startswith("/"):
        raise RuleError(f"path must start with '/', not {pattern!r}")
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part) for part in parts)
    return re.compile(regex)


def _pair_or_triple(value: Any, name: str, default: tuple[int, ...], keys: Sequence[str]) -> tuple[int, ...]:
    """``true`` (the default) or an object of the PDU's fields (``{"result": 1, "source": 1, "reason": 3}``)."""
    if value is True:
        return default
    if not isinstance(value, Mapping):
        raise RuleError(f"action.{name} must be true or an object with {', '.join(keys)}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise RuleError(f"action.{name}: unknown key {unknown[0]!r} (known: {', '.join(keys)})")
    return tuple(_integer(value.get(key, fallback), f"action.{name}.{key}", 0, 255)
                 for key, fallback in zip(keys, default, strict=True))


def _http_action(data: Mapping[str, Any]) -> Action:
    status = data.get("http_status")
    if status is not None:
        status = _integer(status, "action.http_status", 200, 599)
    headers = data.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
            and "\n" not in k + v and "\r" not in k + v for k, v in headers.items()):
        raise RuleError("action.headers must be an object of ASCII header names to ASCII values")
    close = data.get("close", False)
    if not isinstance(close, bool):
        raise RuleError(f"action.close must be true or false, not {close!r}")
    action = Action(http_status=status, message=_text(data["message"], "action.message", 4096)
                    if "message" in data else None, headers=tuple(headers.items()),
                    delay=_seconds(data.get("delay", 0), "action.delay"), close=close)
    if status is None and not action.delay and not close:
        raise RuleError("action needs http_status, delay or close")
    return action


def _dimse_action(data: Mapping[str, Any], operation: str | None) -> Action:
    status = data.get("dimse_status")
    if status is not None:
        status = _integer(status, "action.dimse_status", 0, 0xFFFF)
        if status in _NOT_FAULTS:
            raise RuleError(f"action.dimse_status 0x{status:04X} is not a failure or warning status")
    reject = _pair_or_triple(data["reject"], "reject", DEFAULT_REJECTION, ("result", "source", "reason")) \
        if data.get("reject", False) is not False else None
    abort = _pair_or_triple(data["abort"], "abort", DEFAULT_ABORT, ("source", "reason")) \
        if data.get("abort", False) is not False else None
    if reject is not None and reject[0] not in (1, 2):
        raise RuleError("action.reject.result must be 1 (permanent) or 2 (transient)")
    if reject is not None and reject[1] not in (1, 2, 3):
        raise RuleError("action.reject.source must be 1, 2 or 3 (PS3.8 9.3.4)")
    if abort is not None and abort[0] not in (0, 2):
        raise RuleError("action.abort.source must be 0 (service user) or 2 (service provider)")
    failed = data.get("failed_suboperations")
    if failed is not None:
        failed = _integer(failed, "action.failed_suboperations", 1)
    action = Action(dimse_status=status, reject=reject, abort=abort, failed_suboperations=failed or 0,
                    delay=_seconds(data.get("delay", 0), "action.delay"),
                    pdu_delay=_seconds(data.get("pdu_delay", 0), "action.pdu_delay"))
    kinds = [name for name in ("dimse_status", "reject", "abort", "failed_suboperations")
             if data.get(name) not in (None, False)]
    if len(kinds) > 1:
        raise RuleError(f"action: choose one of {', '.join(kinds)}")
    if not kinds and not action.delay and not action.pdu_delay:
        raise RuleError("action needs dimse_status, reject, abort, delay, pdu_delay or failed_suboperations")
    if reject is not None and operation not in (None, ASSOCIATION):
        raise RuleError("action.reject answers an association request: operation must be \"association\"")
    if failed and operation not in RETRIEVES:
        raise RuleError("action.failed_suboperations needs operation C-MOVE or C-GET")
    if status is not None and operation == ASSOCIATION:
        raise RuleError("action.dimse_status answers a DIMSE request, not an association")
    return action


def parse_rule(data: Any, rule_id: str) -> Rule:
    """A rule from its JSON form; ``RuleError`` saying what is wrong otherwise."""
    if not isinstance(data, Mapping):
        raise RuleError(f"a rule must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})")
    face = data.get("face")
    if face not in FACES:
        raise RuleError(f"face must be one of {', '.join(sorted(FACES))}, not {face!r}")
    action_data = data.get("action")
    if not isinstance(action_data, Mapping):
        raise RuleError("action must be a JSON object, e.g. {\"http_status\": 503}")
    known = _DIMSE_ACTIONS if face == "dimse" else _HTTP_ACTIONS
    unknown = sorted(set(action_data) - known)
    if unknown:
        raise RuleError(f"action.{unknown[0]} does not apply to face {face} (known: {', '.join(sorted(known))})")
    method = path = operation = calling = called = sop_class = None
    if face == "dimse":
        for key in ("method", "path"):
            if key in data:
                raise RuleError(f"{key} applies to HTTP faces, not to dimse")
        if "operation" in data:
            operation = _text(data["operation"], "operation", 16).upper().replace("_", "-")
            operation = ASSOCIATION if operation == "ASSOCIATION" else operation
            if operation not in OPERATIONS:
                raise RuleError(f"operation must be one of {', '.join(sorted(OPERATIONS))}, not {data['operation']!r}")
        elif action_data.get("reject", False) is not False or action_data.get("pdu_delay"):
            operation = ASSOCIATION  # what only an association can have
        calling = _text(data["calling_aet"], "calling_aet", 16).strip() if "calling_aet" in data else None
        called = _text(data["called_aet"], "called_aet", 16).strip() if "called_aet" in data else None
        sop_class = _text(data["sop_class"], "sop_class", 64).strip() if "sop_class" in data else None
        action = _dimse_action(action_data, operation)
    else:
        for key in ("operation", "calling_aet", "called_aet", "sop_class"):
            if key in data:
                raise RuleError(f"{key} applies to face dimse, not to {face}")
        method = _text(data["method"], "method", 16).upper() if "method" in data else None
        path = path_pattern(_text(data["path"], "path")) if "path" in data else None
        action = _http_action(action_data)
    first = _integer(data["first"], "first") if data.get("first") is not None else None
    after = _integer(data["after"], "after") if data.get("after") is not None else None
    probability = seed = None
    if data.get("probability") is not None:
        probability = data["probability"]
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise RuleError(f"probability must be a number between 0 and 1, not {probability!r}")
        probability = float(probability)
        seed = data.get("seed")
        seed = random.randrange(2**31) if seed is None else _integer(seed, "seed")
    elif data.get("seed") is not None:
        raise RuleError("seed needs a probability")
    if "comment" in data:
        _text(data["comment"], "comment")
    source = {key: data[key] for key in data if key in _RULE_KEYS}
    return Rule(rule_id, source, action, face=face, method=method, path=path, operation=operation,
                calling_aet=calling, called_aet=called, sop_class=sop_class, first=first, after=after,
                probability=probability, seed=seed)


class FaultRules:
    """The rules a running server holds, in the order they were added; the first that fires on a request wins.

    ``active`` is the one attribute the hot paths read: false while there is no rule, so a server without rules
    does nothing more per request than read it.
    """

    def __init__(self, rules: Sequence[Any] = ()) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._next = 1
        self.active = False
        for data in rules:
            self.add(data)

    def add(self, data: Any) -> dict[str, Any]:
        """Add a rule (its JSON form); returns it with its ``id``. ``RuleError`` if it is invalid."""
        with self._lock:
            if len(self._rules) >= MAXIMUM_RULES:
                raise RuleError(f"at most {MAXIMUM_RULES} rules; remove some first")
            rule = parse_rule(data, str(self._next))
            self._next += 1
            self._rules.append(rule)
            self.active = True
            return rule.to_json()

    def remove(self, rule_id: str) -> bool:
        """Remove one rule; False if there is none of that ID."""
        with self._lock:
            kept = [rule for rule in self._rules if rule.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
            self.active = bool(kept)
            return removed

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self.active = False

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def get(self, rule_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((rule.to_json() for rule in self._rules if rule.id == rule_id), None)

    def fire(self, request: Request) -> Fired | None:
        """The first rule that matches ``request`` and fires on it (its counters advance), else None."""
        if not self.active:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(request) and rule.fires():
                    return Fired(rule.id, rule.action)
        return None
