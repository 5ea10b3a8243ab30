"""The DICOMweb face as the HTTP dispatcher sees it: its settings and path prefixes, and its application, built on
its first request (its modules and routes load then, in ``routing``, not while the server starts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..http_common import BuiltOnFirstRequest
from .cors import CorsSettings
from .server_registry import ServerRegistry

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from ...core.archive import Archive
    from ...core.config import Config


@dataclass(frozen=True)
class DicomWebSettings:
    """The ``DicomWeb`` configuration section of the Orthanc plugin (its defaults when absent)."""

    enable: bool = True
    root: str = "/dicom-web"
    enable_wado: bool = True
    wado_root: str = "/wado"
    cors: CorsSettings = field(default_factory=CorsSettings)

    @classmethod
    def from_config(cls, config: Config) -> DicomWebSettings:
        section = dict(config.DicomWeb or {})
        return cls(enable=bool(section.get("Enable", True)), root=_root(section.get("Root", "/dicom-web/")),
                   enable_wado=bool(section.get("EnableWado", True)), wado_root=_root(section.get("WadoRoot", "/wado")),
                   cors=CorsSettings.from_section(section.get("Cors")))


def _root(text: object) -> str:
    """A root as a path prefix without trailing slash (the plugin writes ``/dicom-web/``)."""
    root = "/" + str(text).strip().strip("/")
    if root == "/":
        raise ValueError("DicomWeb: Root and WadoRoot cannot be the server's root")
    return root


def prefixes(config: Config) -> list[str]:
    """The path prefixes this face serves (for the HTTP dispatcher)."""
    settings = DicomWebSettings.from_config(config)
    return ([settings.root] if settings.enable else []) + ([settings.wado_root] if settings.enable_wado else [])


def create_app(archive: Archive, config: Config) -> ASGIApp:
    """The DICOMweb face over ``archive`` (``routing.build_app``), built when its first request arrives; a
    configuration it refuses (``DicomWeb``'s roots, Cors, Servers) is refused now, as the server starts."""
    DicomWebSettings.from_config(config)
    servers_known = ServerRegistry(dict(config.DicomWeb or {}).get("Servers"))

    def build() -> ASGIApp:
        from .routing import build_app

        return build_app(archive, config, servers_known)

    return BuiltOnFirstRequest(build)
