"""One HTTP port for every web face: requests are dispatched to a face by their path prefix."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from .core.archive import Archive
from .core.config import Config

# The XNAT face's paths (``faces.xnat.app.PREFIXES``), named here so that the face loads with its first request
XNAT_PREFIXES = ("/data", "/REST", "/xapi")


class ServerControl(Protocol):
    """What the server running the faces lets them ask of it (Orthanc's /tools/reset, /tools/shutdown and
    /tools/dicom-conformance), and where the main log level is kept across restarts."""

    log_level: str  # GET /tools/log-level: "default", "verbose" or "trace"

    def restart(self) -> None:
        """Once the current answers are sent: read the configuration again and restart, data and ports kept."""

    def shutdown(self) -> None:
        """Once the current answers are sent: stop cleanly (the process exits with status 0)."""

    def dicom_conformance(self) -> str:
        """The DICOM face's conformance statement, as it negotiates now."""


class PrefixDispatcher:
    """Sends each request to the first face whose prefix starts its path, else to the default face.

    Orthanc's routes, XNAT's (``/data``, ``/REST``, ``/xapi``) and DICOMweb's (``/dicom-web``, ``/wado``, the
    Orthanc plugin's roots) do not overlap, so one port serves all, as a client of each expects to find its whole
    API at the server's root.
    """

    def __init__(self, default: ASGIApp, by_prefix: dict[str, ASGIApp]) -> None:
        self.default = default
        self.by_prefix = by_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        for prefix, app in self.by_prefix.items():
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        await self.default(scope, receive, send)


class FirstUse:
    """An application built when its first request comes, in a worker thread (the event loop serves the other faces
    meanwhile); concurrent first requests wait for the one build, and a build that fails is tried again by the
    next request."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock: asyncio.Lock | None = None  # made on the event loop that serves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            app = await self._built()
        await app(scope, receive, send)

    async def _built(self) -> ASGIApp:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._app is None:
                self._app = await asyncio.get_running_loop().run_in_executor(None, self._build)
        return self._app


def create_http_app(archive: Archive, config: Config, http_port: int, dicom_port: int | None = None,
                    control: ServerControl | None = None, lua_engine=None) -> ASGIApp:
    """The ASGI application serving every HTTP face of one archive."""
    from .faces.dicomweb.app import create_app as dicomweb_app
    from .faces.dicomweb.app import prefixes as dicomweb_prefixes
    from .faces.orthanc.app import create_app as orthanc_app

    def xnat_app() -> ASGIApp:
        from .faces.xnat.app import create_app

        return create_app(archive, config)

    # The XNAT face is imported and built by its first request: its modules, schemas and route table (600 regular
    # expressions) are no part of a start. (It checks no configuration; DICOMweb's checks its DicomWeb section, so
    # a mistake there stops the start: that face is built now.)
    xnat = FirstUse(xnat_app)
    dicomweb = dicomweb_app(archive, config)
    by_prefix: dict[str, ASGIApp] = {**dict.fromkeys(dicomweb_prefixes(config), dicomweb),
                                     **dict.fromkeys(XNAT_PREFIXES, xnat)}
    # each face refuses oversized bodies itself, in its own words and with its own upload routes
    dispatcher = PrefixDispatcher(orthanc_app(archive, config, http_port=http_port, dicom_port=dicom_port,
                                              control=control, lua_engine=lua_engine), by_prefix)
    return with_faults(dispatcher, archive, {**dict.fromkeys(dicomweb_prefixes(config), "dicomweb"),
                                             **dict.fromkeys(XNAT_PREFIXES, "xnat")})


def with_faults(app: ASGIApp, archive: Archive, face_by_prefix: dict[str, str]) -> ASGIApp:
    """Every request recorded in the event log and matched against the fault rules (``pacsbox.faults``), named by
    its face: the prefix's, else ``orthanc``."""
    faults = getattr(archive, "faults", None)
    if faults is None:  # an archive opened without core.assembly
        return app
    from .faults.http import FaultsMiddleware

    def face_of(path: str) -> str:
        for prefix, face in face_by_prefix.items():
            if path == prefix or path.startswith(prefix + "/"):
                return face
        return "orthanc"

    return FaultsMiddleware(app, faults, face_of)
