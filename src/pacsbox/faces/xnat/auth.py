"""XNAT's authentication: HTTP Basic on any request, or the JSESSIONID cookie a login handed out.

xnatpy logs in with ``PUT /data/services/auth`` and then sends only the cookie; pyxnat sends Basic credentials
on every request and asks ``/data/JSESSION`` for a token. Both are accepted on every route; the login route
itself checks the credentials of its form body.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Mapping
from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..http_common import basic_credentials
from .errors import XnatError, error_response

LOGIN_PATH = "/data/services/auth"
GUEST = "guest"


class Sessions:
    """JSESSION tokens handed out by this server, to the user each stands for (kept in memory: a restart
    logs everybody out, as restarting XNAT does)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def open(self, user: str) -> str:
        token = secrets.token_hex(16).upper()  # Tomcat's JSESSIONID shape: 32 hex digits
        with self._lock:
            self._tokens[token] = user
        return token

    def user_of(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def close(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)


def cookie_token(request_or_scope) -> str:
    headers = request_or_scope.headers if isinstance(request_or_scope, Request) else Request(request_or_scope).headers
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no session, not a server error
        return ""
    morsel = cookie.get("JSESSIONID")
    return morsel.value if morsel else ""


class XnatAuth:
    """Authenticates every request (when AuthenticationEnabled) and puts the user in ``request.state.user``."""

    def __init__(self, app: ASGIApp, sessions: Sessions, enabled: bool) -> None:
        self.app, self.sessions, self.enabled = app, sessions, enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        user = self._user(scope)
        if user is None and self.enabled and scope["path"] != LOGIN_PATH:
            response = error_response(XnatError(401, "Login attempt failed. Please try again."),
                                      headers={"WWW-Authenticate": 'Basic realm="XNAT"'})
            return await response(scope, receive, send)
        scope.setdefault("state", {})["user"] = user or GUEST
        await self.app(scope, receive, send)

    def _user(self, scope: Scope) -> str | None:
        credentials = basic_credentials(scope)
        if credentials is not None:
            return credentials[0] if self.sessions.check_password(*credentials) else None
        token = cookie_token(scope)
        return self.sessions.user_of(token) if token else None
