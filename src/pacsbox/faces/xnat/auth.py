"""XNAT's authentication: HTTP Basic on any request, or the JSESSIONID cookie a login handed out.

xnatpy logs in with ``PUT /data/services/auth`` and then sends only the cookie; pyxnat sends Basic credentials
on every request and asks ``/data/JSESSION`` for a token. Both are accepted on every route; the login route
itself checks the credentials of its form body.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..http_common import basic_credentials
from .errors import XnatError, error_response

LOGIN_PATH = "/data/services/auth"
ALIAS_LIFETIME = 2 * 24 * 3600  # seconds an alias token lives (XNAT's default: two days)
GUEST = "guest"


class Sessions:
    """JSESSION tokens handed out by this server, to the user each stands for (kept in memory: a restart
    logs everybody out, as restarting XNAT does).

    As XNAT's sessions, a token ends after ``timeout`` seconds unused; and at most ``capacity`` live at once, the
    least recently used one ending first. pyxnat asks for a new token on every connection and xnatpy on every
    login, and nobody is obliged to log out: without both bounds the table would grow with every request.
    """

    def __init__(self, users: Mapping[str, str], *, timeout: float = 900.0, capacity: int = 10_000) -> None:
        self.users = dict(users)
        self.timeout, self.capacity = timeout, capacity
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()  # least recently used first
        self._aliases: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # alias: user, secret, expiry
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired(time.monotonic())
            return len(self._tokens)

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def authenticate(self, name: str, password: str) -> str | None:
        """The user a name and password log in: a registered user's password, or an alias token and its secret
        (``/data/services/tokens/issue``); None when neither matches."""
        if self.check_password(name, password):
            return name
        now = time.time()
        with self._lock:
            entry = self._aliases.get(name)
            if entry is None or entry[2] <= now or not hmac.compare_digest(entry[1].encode(), password.encode()):
                return None
            return entry[0]

    def issue_alias(self, user: str) -> tuple[str, str, float]:
        """A new alias token for ``user``: (alias, secret, expiry as a Unix time), usable in place of the user's
        name and password until it expires or is invalidated (XNAT's alias tokens last two days)."""
        alias, secret = str(uuid.uuid4()), secrets.token_urlsafe(48)
        expiry = time.time() + ALIAS_LIFETIME
        with self._lock:
            now = time.time()
            for old in [key for key, (_, _, ends) in self._aliases.items() if ends <= now]:
                del self._aliases[old]
            while len(self._aliases) >= self.capacity:
                self._aliases.popitem(last=False)
            self._aliases[alias] = (user, secret, expiry)
        return alias, secret, expiry

    def invalidate_alias(self, alias: str, secret: str) -> bool:
        with self._lock:
            entry = self._aliases.get(alias)
            if entry is None or not hmac.compare_digest(entry[1].encode(), secret.encode()):
                return False
            del self._aliases[alias]
            return True

    def open(self, user: str) -> str:
        token = secrets.token_hex(16).upper()  # Tomcat's JSESSIONID shape: 32 hex digits
        now = time.monotonic()
        with self._lock:
            self._forget_expired(now)
            while len(self._tokens) >= self.capacity:
                self._tokens.popitem(last=False)
            self._tokens[token] = (user, now)
        return token

    def user_of(self, token: str) -> str | None:
        """The user of a live token (its use restarts its timeout); None for an unknown or expired one."""
        now = time.monotonic()
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return None
            user, last_used = entry
            if now - last_used >= self.timeout:
                del self._tokens[token]
                return None
            self._tokens[token] = (user, now)
            self._tokens.move_to_end(token)
            return user

    def close(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def _forget_expired(self, now: float) -> None:
        """Drop expired tokens; they are the least recently used, so they lead the table."""
        while self._tokens:
            token, (_, last_used) = next(iter(self._tokens.items()))
            if now - last_used < self.timeout:
                return
            del self._tokens[token]


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
            return self.sessions.authenticate(*credentials)
        token = cookie_token(scope)
        return self.sessions.user_of(token) if token else None
