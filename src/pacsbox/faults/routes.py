"""The REST routes of fault injection and the event log, served by the Orthanc face under ``/pacsbox`` (behind its
authentication, errors in Orthanc's JSON body):

* ``GET /pacsbox/faults`` the rules with their counters; ``POST`` one rule (or a list) → the rule with its ``id``;
  ``GET``/``DELETE /pacsbox/faults/{id}``; ``DELETE /pacsbox/faults`` removes every rule.
* ``GET /pacsbox/events`` the events, oldest first: ``since`` (a ``seq``), ``limit``, ``face`` and ``kind``
  (comma-separated or repeated), ``wait`` (seconds to wait for a first event, at most 60);
  ``GET /pacsbox/events/last`` the last ``seq``; ``DELETE /pacsbox/events`` forgets them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..faces.orthanc.errors import bad_request, inexistent_item, out_of_range
from ..faces.orthanc.json import json_response
from ..faces.orthanc.params import integer, loads
from .eventlog import KINDS
from .rules import FACES, RuleError, parse_rule
from .state import Faults

MAXIMUM_WAIT = 60.0  # seconds a long poll may last: under the usual client and proxy timeouts
_EVENT_FACES = FACES | {"archive", "http"}


def _faults(request: Request) -> Faults:
    faults = getattr(request.app.state.archive, "faults", None)
    if faults is None:
        raise inexistent_item("This archive has no fault rules or event log (opened without core.assembly)")
    return faults


async def list_rules(request: Request) -> Response:
    return json_response(_faults(request).rules.list())


async def add_rule(request: Request) -> Response:
    """One rule (an object) or several (a list, added together or not at all)."""
    raw = await request.body()
    try:
        body = await loads(request, raw)
    except (ValueError, RecursionError) as error:
        raise bad_request(f"The body must be a fault rule in JSON: {error}") from None
    rules = _faults(request).rules
    try:
        if isinstance(body, list):
            for number, item in enumerate(body):  # every rule checked before any is added
                try:
                    parse_rule(item, "check")
                except RuleError as error:
                    raise RuleError(f"rule {number}: {error}") from None
            return json_response([rules.add(item) for item in body])
        return json_response(rules.add(body))
    except RuleError as error:
        raise bad_request(f"Bad fault rule: {error}") from None


async def get_rule(request: Request) -> Response:
    rule = _faults(request).rules.get(request.path_params["id"])
    if rule is None:
        raise inexistent_item(f"No fault rule {request.path_params['id']!r}")
    return json_response(rule)


async def delete_rule(request: Request) -> Response:
    if not _faults(request).rules.remove(request.path_params["id"]):
        raise inexistent_item(f"No fault rule {request.path_params['id']!r}")
    return json_response({})


async def clear_rules(request: Request) -> Response:
    _faults(request).rules.clear()
    return json_response({})


def _choices(request: Request, name: str, allowed: frozenset[str] | tuple[str, ...]) -> list[str]:
    values = [part.strip() for value in request.query_params.getlist(name) for part in value.split(",")
              if part.strip()]
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise out_of_range(f"Unknown {name} {unknown[0]!r} (one of {', '.join(sorted(allowed))})")
    return values


async def list_events(request: Request) -> Response:
    log = _faults(request).log
    since = integer(request, "since", 0)
    limit = integer(request, "limit", 0) if request.query_params.get("limit") else None
    faces, kinds = _choices(request, "face", _EVENT_FACES), _choices(request, "kind", KINDS)
    text = request.query_params.get("wait", "")
    if text:
        try:
            wait = float(text)
        except ValueError:
            raise bad_request(f"Argument \"wait\" should be a number of seconds, not {text!r}") from None
        if not 0 <= wait <= MAXIMUM_WAIT:
            raise out_of_range(f"Argument \"wait\" must be between 0 and {MAXIMUM_WAIT:g} seconds")
        await log.wait_async(since, wait, lambda: log.events(since, 1, faces, kinds))
    return json_response(log.events(since, limit, faces, kinds))


async def last_event(request: Request) -> Response:
    return json_response({"seq": _faults(request).log.last_seq})


async def clear_events(request: Request) -> Response:
    _faults(request).log.clear()
    return json_response({})
