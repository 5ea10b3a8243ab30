"""One HTTP port for every web face: requests are dispatched to a face by their path prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from .core.archive import Archive
from .core.config import Config

if TYPE_CHECKING:
    from .http_protocol import QuickAnswer


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

    def quick_answer(self, scope: Scope) -> QuickAnswer | None:
        """The lean path (``http_protocol``), for the default face only."""
        path = scope["path"]
        for prefix in self.by_prefix:
            if path == prefix or path.startswith(prefix + "/"):
                return None
        quick = getattr(self.default, "quick_answer", None)
        return None if quick is None else quick(scope)


def create_http_app(archive: Archive, config: Config, http_port: int, dicom_port: int | None = None,
                    control: ServerControl | None = None, lua_engine=None) -> ASGIApp:
    """The ASGI application serving every HTTP face of one archive."""
    from .faces.dicomweb.app import create_app as dicomweb_app
    from .faces.dicomweb.app import prefixes as dicomweb_prefixes
    from .faces.orthanc.app import create_app as orthanc_app
    from .faces.xnat.app import PREFIXES as XNAT_PREFIXES
    from .faces.xnat.app import create_app as xnat_app

    xnat = xnat_app(archive, config)
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
