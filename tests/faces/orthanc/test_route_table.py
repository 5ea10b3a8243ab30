"""The Orthanc face's route table names its handlers as text ("module:attribute"), imported on a route's first
request: every name must lead to an async handler that takes the route's bound arguments, so that a typo fails here
rather than on a user's first request."""

from __future__ import annotations

import importlib
import inspect

from pacsbox.faces.orthanc import route_table
from pacsbox.faces.orthanc.app import UPLOADS, routes


def test_every_handler_exists_and_takes_its_bound_arguments():
    for entry in route_table.table():
        module = importlib.import_module(route_table.module_of(entry.handler))
        handler = getattr(module, entry.handler.partition(":")[2])
        assert inspect.iscoroutinefunction(handler), entry
        inspect.signature(handler).bind("request", **entry.bound)  # TypeError when an argument is missing or extra


def test_the_built_routes_are_the_tables_paths_in_its_order():
    paths = list(dict.fromkeys(entry.path for entry in route_table.table()))  # grouped by path, first seen first
    assert [route.path for route in routes()] == paths
    assert len(paths) > 200


def test_upload_routes_take_files():
    def scope(method: str, path: str) -> dict:
        return {"type": "http", "method": method, "path": path}

    assert scope("POST", "/instances") in UPLOADS
    assert scope("PUT", "/studies/x/attachments/report") in UPLOADS
    assert scope("POST", "/modalities/x/store-straight") in UPLOADS
    assert scope("POST", "/tools/find") not in UPLOADS
    assert scope("GET", "/instances") not in UPLOADS
