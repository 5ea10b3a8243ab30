"""The XNAT face as the HTTP dispatcher sees it: its path prefixes, and its application, built on its first request.

The face's modules, its ~270 routes and the XNAT schemas it parses load with that first request (``routing``), not
while the server starts: a server that answers only Orthanc's API never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..http_common import BuiltOnFirstRequest

if TYPE_CHECKING:
    from starlette.routing import Route
    from starlette.types import ASGIApp

    from ...core.archive import Archive
    from ...core.config import Config

PREFIXES = ("/data", "/REST", "/xapi")  # what the HTTP dispatcher sends to this face


def create_app(archive: Archive, config: Config) -> ASGIApp:
    """The XNAT REST face over ``archive`` (``routing.build_app``), built when its first request arrives."""

    def build() -> ASGIApp:
        from .routing import build_app

        return build_app(archive, config)

    return BuiltOnFirstRequest(build)


def routes() -> list[Route]:
    """The face's routes (``routing.routes``), loading the face's modules if no request has yet."""
    from .routing import routes as face_routes

    return face_routes()
