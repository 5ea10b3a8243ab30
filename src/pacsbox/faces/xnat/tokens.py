"""XNAT's alias tokens (``/data/services/tokens/issue[/user/NAME]``, ``validate``, ``invalidate``): a token's
alias and secret log in wherever a user name and password do (HTTP Basic, ``/data/services/auth``)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from . import render
from .access import user_of
from .errors import XnatError


async def issue(request: Request) -> Response:
    """A token for the current user, or (site administrators only) for the user named in the URL."""
    config = request.app.state.config
    user = request.path_params.get("user") or user_of(request)
    if user != user_of(request) and config.AuthenticationEnabled \
            and user_of(request) not in config.XnatSiteAdministrators:
        raise XnatError(403, "Only site administrators issue tokens for other users")
    if user not in config.RegisteredUsers:
        raise XnatError(404, f"Unknown user {user!r}")
    alias, secret, expiry = request.app.state.sessions.issue_alias(user)
    now = int(time.time() * 1000)
    return render.json_response({"alias": alias, "secret": secret, "xdatUserId": user, "enabled": True,
                                 "singleUse": False, "created": now, "timestamp": now,
                                 "estimatedExpirationTime": int(expiry * 1000), "validIPAddresses": []})


async def validate(request: Request) -> Response:
    user = request.app.state.sessions.authenticate(request.path_params["alias"], request.path_params["secret"])
    if user is None or user == request.path_params["alias"]:
        raise XnatError(404, "No valid token with that alias and secret")
    return render.json_response({"valid": user})


async def invalidate(request: Request) -> Response:
    if not request.app.state.sessions.invalidate_alias(request.path_params["alias"], request.path_params["secret"]):
        raise XnatError(404, "No valid token with that alias and secret")
    return render.text_response("")
