"""The indexed router picks the route Starlette's own scan picks, for every route of the Orthanc face."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match

from pacsbox.faces.orthanc.app import routes
from pacsbox.faces.route_index import IndexedRouter

ROUTES = routes()
ROUTER = IndexedRouter(ROUTES)


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}


def _first_full_match(candidates, scope):
    for route in candidates:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def _paths() -> list[str]:
    """Each route's path with its parameters filled in several ways, and near misses of it."""
    found = []
    for route in ROUTES:
        for value in ("x", "instances"):
            path = re.sub(r"\{[^}]*\}", value, route.path)
            found += [path, path + "/", path + "/extra", path.replace(value, "", 1), "/" + path.lstrip("/") + "//"]
    return found + ["/", "", "/unknown", "//", "/instances//tags", "/instances/x/content/", "/instances/x/content/a/b"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
def test_the_same_route_as_starlettes_scan(method):
    checked = 0
    for path in _paths():
        scope = _scope(method, path)
        expected = _first_full_match(ROUTES, scope)
        indexed = _first_full_match([route for _, route in ROUTER._candidates(path)], scope) if path.startswith(
            "/") else None
        assert indexed is expected, (method, path)
        checked += expected is not None
    assert checked > 20  # the paths do reach the routes
