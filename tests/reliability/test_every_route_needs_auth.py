"""Every route of both web faces refuses a request without valid credentials, in its face's format.

The routes come from the faces' own route tables (what the running app serves), path parameters filled with
plausible values; each route and method is sent with no credentials, a wrong password, an unknown user, a malformed
Authorization header (not base64, bytes that are not ASCII, credentials that are not UTF-8) and the right pair
under another scheme, and must answer 401: Orthanc's JSON error body, or
XNAT's plain text, with a ``WWW-Authenticate: Basic`` challenge. The one exception is the health check; the login
route answers a wrong form with 401 without a challenge (it is the login). XNAT's JSESSIONID cookie opens the XNAT
face only while its session lasts: a forged, a logged-out or a malformed one gets 401.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from pacsbox.faces.orthanc.app import HEALTH_PATH
from pacsbox.faces.orthanc.app import routes as orthanc_routes
from pacsbox.faces.xnat.app import routes as xnat_routes
from pacsbox.faces.xnat.auth import LOGIN_PATH
from tests.support.pacsbox_proc import RunningPacsbox

PLAUSIBLE = {  # a value for each path parameter of the route tables
    "id": "6816cb19-844d5aee-85245eba-1b4f6e41-4a8e1f48", "name": "Sample", "index": "0", "path": "sub/file.txt",
    "project": "P", "subject": "S", "experiment": "E", "scan": "1", "resource": "R", "timestamp": "20240101_120000",
    "action": "move", "element": "xnat:subjectData", "key": "archive", "frame": "0",
    # the XNAT face's other routes (XAPI, tokens, access, sharing, assessors, reconstructions)
    "plugin": "a-plugin", "request_id": "1", "alias": "an-alias", "secret": "a-secret",
    "user": "admin", "login": "admin", "group": "Members", "value": "public", "target": "Q", "assessor": "A",
    "reconstruction": "R", "code": "4", "search_id": "saved",
}
_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
_WRONG: dict[str, dict[str, str]] = {  # the Authorization header of each case (none: no header)
    "none": {},
    "wrong-password": {"Authorization": "Basic " + base64.b64encode(b"admin:not-the-password").decode()},
    "unknown-user": {"Authorization": "Basic " + base64.b64encode(b"intruder:admin").decode()},
    "malformed-header": {"Authorization": "Basic !!!not-base64!!!"},
    "other-scheme": {"Authorization": "Bearer YWRtaW46YWRtaW4="},  # the right pair, wrong scheme
    "non-ascii-token": {"Authorization": "Basic \xe9\xe9"},  # sent as Latin-1 bytes
    "not-utf8-credentials": {"Authorization": "Basic " + base64.b64encode(b"admin:\xff").decode()},
}


class _Answer:
    """What the checks read of a response (the names ``requests`` gives them)."""

    def __init__(self, method: str, url: str, response: http.client.HTTPResponse) -> None:
        self.url = url
        self.status_code = response.status
        self.headers = response.headers  # an email.message.Message: names looked up in any case
        self.content = response.read()
        self.text = self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _KeepAlive:
    """The walk's client: one keep-alive connection, each request written as it is (``requests`` spends about a
    millisecond of CPU on each of its 10,000 requests, six times what the server does; this is the same bytes on
    the wire for a fifth of it). A connection the server closed is opened again, once a request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.base = url
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def request(self, method: str, path: str, headers: dict[str, str]) -> _Answer:
        # as requests sends them: a body of {} on PUT and POST, an empty one (Content-Length: 0) on DELETE
        body = b"{}" if method in ("PUT", "POST") else (b"" if method == "DELETE" else None)
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                return _Answer(method, self.base + path, self.connection.getresponse())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def _filled(path: str) -> str:
    return _PARAMETER.sub(lambda match: PLAUSIBLE[match.group(1)], path)


def _every_route() -> list[tuple[str, str, str]]:
    """(face, method, path) of every route of both faces, XNAT's also under its /REST and /data/archive aliases."""
    found = []
    for face, table in (("orthanc", orthanc_routes()), ("xnat", xnat_routes())):
        for route in table:
            path = _filled(route.path)
            for method in sorted(route.methods):
                found.append((face, method, path))
                if face == "xnat" and method == "GET" and path.startswith("/data/projects"):
                    found += [(face, method, "/REST" + path[5:]), (face, method, "/data/archive" + path[5:])]
    return found


ROUTES = _every_route()


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as running:
        yield running


def _assert_unauthorized(face: str, method: str, response: requests.Response | _Answer, login: bool = False) -> None:
    """401 in the face's format, with a Basic challenge (not from the login route: it checks its form)."""
    assert response.status_code == 401, (method, response.url, response.status_code, response.text[:300])
    if not login:
        assert response.headers["WWW-Authenticate"].startswith("Basic "), (method, response.url, response.headers)
    if method == "HEAD":
        return
    if face == "orthanc":
        assert response.headers["Content-Type"].startswith("application/json"), response.headers
        body = response.json()
        assert (body["HttpStatus"], body["HttpError"], body["OrthancStatus"]) == (401, "Unauthorized", 29), body
        assert body["Method"] == method
    else:
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers
        assert "Login attempt failed" in response.text


def test_the_tables_hold_every_route():
    assert len({(face, method, path) for face, method, path in ROUTES}) == len(ROUTES)
    assert sum(face == "orthanc" for face, _, _ in ROUTES) > 100
    assert sum(face == "xnat" for face, _, _ in ROUTES) > 300


@pytest.mark.parametrize("wrong", list(_WRONG))
def test_every_route_refuses_wrong_credentials(server, tally, wrong):
    client = _KeepAlive(server.url)
    refused = 0
    for face, method, path in ROUTES:
        response = client.request(method, path, _WRONG[wrong])
        tally.count(f"credentials: {wrong}", f"{method} {path}", response.status_code)
        if path == HEALTH_PATH:
            assert response.status_code == 200 and (method == "HEAD" or response.text == "ok")
            continue
        _assert_unauthorized(face, method, response, login=path == LOGIN_PATH)
        refused += 1
    assert refused == len(ROUTES) - 2  # all but GET and HEAD of the health check
    client.close()


def test_nothing_was_changed_by_refused_requests(server):
    http = server.session()
    assert http.get(server.url + "/statistics").json()["CountInstances"] == 0
    assert http.get(server.url + "/data/projects", params={"format": "json"}).json()["ResultSet"]["Result"] == []
    assert http.get(server.url + "/modalities").json() == []


# -- XNAT's session cookie ----------------------------------------------------------------------------------------

def _cookie_request(server, token: str, path: str = "/data/projects") -> requests.Response:
    return requests.get(server.url + path, headers={"Cookie": f"JSESSIONID={token}"}, params={"format": "json"},
                        timeout=30)


def test_jsession_cookie_opens_only_while_its_session_lasts(server, tally):
    token = requests.get(server.url + "/data/JSESSION", auth=server.auth, timeout=30).text.strip()
    assert re.fullmatch(r"[0-9A-F]{32}", token), token
    assert _cookie_request(server, token).status_code == 200
    cases = {
        "forged": secrets.token_hex(16).upper(),
        "forged-lowercase-of-real": token.lower(),
        "empty": "",
        "malformed-cookie": '"unterminated; Path=/',
        "escaped-line-break": f"{token}\\r\\nX-Admin: 1",
        "long": "A" * 10_000,
    }
    for name, value in cases.items():
        response = _cookie_request(server, value)
        tally.count("credentials: JSESSIONID", name, response.status_code)
        _assert_unauthorized("xnat", "GET", response)
    # a valid cookie does not beat wrong Basic credentials, and does not open the Orthanc face
    response = requests.get(server.url + "/data/projects", headers={"Cookie": f"JSESSIONID={token}"},
                            auth=("admin", "wrong"), timeout=30)
    tally.count("credentials: JSESSIONID", "cookie with wrong Basic", response.status_code)
    _assert_unauthorized("xnat", "GET", response)
    response = requests.get(server.url + "/system", headers={"Cookie": f"JSESSIONID={token}"}, timeout=30)
    tally.count("credentials: JSESSIONID", "cookie on the Orthanc face", response.status_code)
    _assert_unauthorized("orthanc", "GET", response)
    # logged out: the token is expired
    logout = requests.delete(server.url + "/data/JSESSION", headers={"Cookie": f"JSESSIONID={token}"}, timeout=30)
    assert logout.status_code == 200, logout.text
    response = _cookie_request(server, token)
    tally.count("credentials: JSESSIONID", "expired", response.status_code)
    _assert_unauthorized("xnat", "GET", response)


@pytest.mark.parametrize("form", [b"", b"username=admin&password=wrong", b"username=nobody&password=admin",
                                  b"username=admin", b"\xff\xfe=\x00", b"username=admin&password=admin&" * 2000],
                         ids=["empty", "wrong-password", "unknown-user", "no-password", "not-utf8", "repeated"])
def test_login_route_checks_its_form(server, tally, form):
    response = requests.post(server.url + "/data/services/auth", data=form, timeout=30,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    tally.count("credentials: XNAT login form", form[:40].decode("latin-1"), response.status_code)
    if form.startswith(b"username=admin&password=admin"):
        assert response.status_code == 200, response.text  # the same right pair, repeated
        return
    _assert_unauthorized("xnat", "POST", response, login=True)


def test_server_with_authentication_off_is_not_tested_here(server):
    """The defaults (AuthenticationEnabled true, admin/admin) are what this module checks."""
    assert server.config.get("AuthenticationEnabled", True) is True
