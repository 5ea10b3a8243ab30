"""A Starlette router that finds a request's route among the few that could match it, not by trying them all.

Starlette tries every route's regular expression in table order until one matches fully; with the Orthanc face's
~240 routes a GET /instances/{id} tried ~135 of them, a third of the face's own time for a small answer. This
router indexes each route by the shape of its path (number of segments, first and last segment when literal) and
tries, in table order, only the routes whose shape fits the request's path, plus those whose shape is not fixed
(a ``{name:path}`` parameter may span segments). A route of another shape cannot match fully, so the first full
match is the one Starlette would find; when none matches fully (unknown path, wrong method: 404, 405, the
trailing-slash redirect), Starlette's own scan runs, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

_Shape = tuple[int, str | None, str | None]  # segments, first literal segment, last literal segment


def _literal(segment: str) -> str | None:
    return None if "{" in segment else segment


def _shape_of(route: BaseRoute) -> _Shape | None:
    """A route's shape, or None when it has none (not a plain Route, or a parameter that may hold slashes)."""
    if not isinstance(route, Route) or ":path}" in route.path or not route.path.startswith("/"):
        return None
    segments = route.path[1:].split("/")
    return len(segments), _literal(segments[0]), _literal(segments[-1])


class IndexedRouter(Router):
    """``Router`` with its routes indexed by shape (see the module's docstring)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=list(routes))
        self._by_shape: dict[_Shape, list[tuple[int, BaseRoute]]] = {}
        self._shapeless: list[tuple[int, BaseRoute]] = []
        for position, route in enumerate(self.routes):
            shape = _shape_of(route)
            if shape is None:
                self._shapeless.append((position, route))
            else:
                self._by_shape.setdefault(shape, []).append((position, route))
        self._firsts = frozenset(shape[1] for shape in self._by_shape if shape[1] is not None)
        self._lasts = frozenset(shape[2] for shape in self._by_shape if shape[2] is not None)
        self._longest = max((shape[0] for shape in self._by_shape), default=0)
        self._memo: dict[tuple[int, str | None, str | None], list[tuple[int, BaseRoute]]] = {}

    def _candidates(self, path: str) -> list[tuple[int, BaseRoute]]:
        segments = path[1:].split("/")
        count, first, last = len(segments), segments[0], segments[-1]
        # a literal no route has at that place is no key of its own: the memo holds at most one list per shape
        # the table knows, whatever paths arrive
        if first not in self._firsts:
            first = None
        if last not in self._lasts:
            last = None
        key = (count, first, last)
        found = self._memo.get(key)
        if found is None:
            found = [self._by_shape.get(shape, ()) for shape in
                     {(count, first, last), (count, first, None), (count, None, last), (count, None, None)}]
            found = sorted(chain(self._shapeless, *found), key=lambda pair: pair[0])
            if count <= self._longest:  # longer paths match only shapeless routes: not kept, one list per length
                self._memo[key] = found
        return found

    def full_match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The route ``app`` below would hand the request to and its child scope, when one matches fully."""
        path = scope.get("path", "")
        if scope["type"] == "http" and not scope.get("root_path") and path.startswith("/"):
            for _, route in self._candidates(path):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    return route, child_scope
        return None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.full_match(scope)
        if found is not None:
            route, child_scope = found
            scope.setdefault("router", self)
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await super().app(scope, receive, send)
