"""Cross-origin access to the DICOMweb face, for browser viewers (OHIF, ...) served from another origin.

The ``DicomWeb.Cors`` section (a pacsbox extension; the Orthanc plugin has none) is off by default. When present,
allowed origins get ``Access-Control-Allow-Origin`` on every answer (401s included, so the viewer can read them)
and preflight ``OPTIONS`` requests are answered before authentication, since browsers send no credentials on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Send

METHODS = ("GET", "POST", "PUT", "DELETE")
# what a viewer reads from answers beyond the CORS-safelisted headers
EXPOSED_HEADERS = ("Content-Type", "Content-Location", "Content-Length", "Warning")
DEFAULT_MAX_AGE = 600


@dataclass(frozen=True)
class CorsSettings:
    """``DicomWeb.Cors``: ``AllowedOrigins`` (a list of origins, or ``"*"``), ``AllowCredentials``, ``MaxAge``."""

    allowed_origins: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int = DEFAULT_MAX_AGE

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)

    @classmethod
    def from_section(cls, section: object) -> CorsSettings:
        """The settings from the raw section; a malformed one is refused at start-up, not at the first request."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ValueError("DicomWeb.Cors must be an object (AllowedOrigins, AllowCredentials, MaxAge)")
        origins = section.get("AllowedOrigins", [])
        if isinstance(origins, str):
            origins = [origins]
        if not isinstance(origins, list) or not all(isinstance(origin, str) and origin for origin in origins):
            raise ValueError('DicomWeb.Cors.AllowedOrigins must be "*" or a list of origins')
        credentials = section.get("AllowCredentials", False)
        max_age = section.get("MaxAge", DEFAULT_MAX_AGE)
        if not isinstance(credentials, bool):
            raise ValueError("DicomWeb.Cors.AllowCredentials must be true or false")
        if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 86400:
            raise ValueError("DicomWeb.Cors.MaxAge must be a number of seconds between 0 and 86400")
        return cls(tuple(origin.rstrip("/") for origin in origins), credentials, max_age)


class _AllowedOnlyCors(CORSMiddleware):
    """Starlette's CORS handling, except that an answer to a disallowed origin carries no CORS header at all
    (Starlette adds Expose-Headers and Allow-Credentials to every answer to a cross-origin request)."""

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            headers = MutableHeaders(scope=message)
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])  # the answer depends on the origin
            await send(message)
            return
        await super().send(message, send, request_headers)


def with_cors(app: ASGIApp, settings: CorsSettings) -> ASGIApp:
    """``app`` behind the CORS policy, or ``app`` itself when CORS is off."""
    if not settings.enabled:
        return app
    return _AllowedOnlyCors(app, allow_origins=settings.allowed_origins, allow_methods=METHODS, allow_headers=["*"],
                          allow_credentials=settings.allow_credentials, expose_headers=EXPOSED_HEADERS,
                          max_age=settings.max_age)
