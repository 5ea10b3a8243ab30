"""Security defaults, each checked on real ``pacsbox serve`` processes:

* by default HTTP and DICOM listen on 127.0.0.1 only (the sockets the server's PID holds, not its ready line), for
  ``pacsbox serve``, a managed instance and the in-process ``Server``;
* listening anywhere else without authentication is refused at start (clear message, non-zero exit); with
  authentication it works, and the well-known admin/admin draws a warning;
* no route serves or writes a file outside the data directory: path traversal (``..``, encoded, double-encoded,
  backslashes, absolute paths, NUL) on every file-serving route of both faces, and links and escaping names in
  extracted uploads; a canary file beside the data directory never comes back and nothing appears outside;
* credentials are never logged: Basic (right and wrong), XNAT logins and JSESSION tokens, secrets in query
  strings, DICOM user identity negotiation; neither the log file, the access log nor stdout/stderr holds them,
  and a managed instance keeps its generated configuration and state record private (mode 0600).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
import requests

from pacsbox.core.config import Config, check_exposure, describe_users
from pacsbox.server import Server
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

STARTUP = 60.0


# -- a `pacsbox serve` child with a ready file -------------------------------------------------------------------
class Serve:
    """``python -m pacsbox serve`` with a config file and a ready file; stdout and stderr kept for inspection."""

    def __init__(self, folder: Path, config: dict[str, Any] | None, *args: str) -> None:
        self.folder = folder
        self.ready_file = folder / "ready.json"
        command = [sys.executable, "-m", "pacsbox", "serve", "--data-dir", str(folder / "data"),
                   "--ready-file", str(self.ready_file), *args]
        if config is not None:
            (folder / "config.json").write_text(json.dumps({"HttpPort": 0, "DicomPort": 0, **config}))
            command += ["--config", str(folder / "config.json")]
        self.stdout = open(folder / "stdout.txt", "w")  # closed in stop
        self.stderr = open(folder / "stderr.txt", "w")
        self.process = subprocess.Popen(command, stdout=self.stdout, stderr=self.stderr,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.ready: dict[str, Any] = {}

    def wait(self) -> Serve:
        """Until the ready file appears; raises with the output when the process exits first."""
        deadline = time.monotonic() + STARTUP
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pacsbox serve did not start:\n{self.output()}")
            time.sleep(0.05)
        self.ready = json.loads(self.ready_file.read_text())
        return self

    def exit_code(self, timeout: float = STARTUP) -> int:
        """The exit status of a server expected to refuse to start (it must not be ready meanwhile)."""
        try:
            code = self.process.wait(timeout)
        finally:
            self.stop()
        assert not self.ready_file.exists(), "the server got ready before refusing"
        return code

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.ready['http_port']}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for handle in (self.stdout, self.stderr):
            handle.close()

    def output(self) -> str:
        for handle in (self.stdout, self.stderr):
            if not handle.closed:
                handle.flush()
        return (self.folder / "stdout.txt").read_text() + (self.folder / "stderr.txt").read_text()


def listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs a process listens on."""
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


# -- (a) loopback by default --------------------------------------------------------------------------------------
def test_serve_with_no_options_listens_on_loopback_only(tmp_path):
    server = Serve(tmp_path, None, "--http-port", "0", "--dicom-port", "0").wait()
    try:
        sockets = listening(server.ready["pid"])
        assert {port for _, port in sockets} >= {server.ready["http_port"], server.ready["dicom_port"]}
        assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
        assert requests.get(server.url() + "/system", auth=("admin", "admin"), timeout=10).status_code == 200
    finally:
        server.stop()


def test_a_managed_instance_listens_on_loopback_only(tmp_path):
    from pacsbox import lifecycle

    instance = lifecycle.ensure("loopback", home=tmp_path)
    try:
        sockets = listening(instance.pid)
        assert {port for _, port in sockets} >= {instance.http_port, instance.dicom_port}
        assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    finally:
        lifecycle.stop("loopback", home=tmp_path)


def test_the_in_process_server_listens_on_loopback_only():
    with Server() as server:
        ours = {(address, port) for address, port in listening(os.getpid())
                if port in (server.http_port, server.dicom_port)}
        assert ours == {("127.0.0.1", server.http_port), ("127.0.0.1", server.dicom_port)}


# -- (b) elsewhere only with authentication -----------------------------------------------------------------------
@pytest.mark.parametrize(("args", "config", "reason"), [
    (["--host", "0.0.0.0"], {"AuthenticationEnabled": False}, "AuthenticationEnabled is false"),
    (["--host", "0.0.0.0"], {"RegisteredUsers": {}}, "RegisteredUsers is empty"),
    ([], {"BindAddress": "0.0.0.0", "AuthenticationEnabled": False}, "AuthenticationEnabled is false"),
    (["--host", "::"], {"AuthenticationEnabled": False}, "AuthenticationEnabled is false"),
], ids=["host-flag-auth-off", "host-flag-no-users", "config-auth-off", "ipv6-any-auth-off"])
def test_listening_beyond_loopback_without_authentication_is_refused(tmp_path, args, config, reason):
    server = Serve(tmp_path, config, *args)
    assert server.exit_code() != 0
    output = server.output()
    assert "refusing to listen on" in output and reason in output, output
    assert "set AuthenticationEnabled to true with at least one user in RegisteredUsers" in output, output


def test_the_in_process_server_refuses_it_too():
    with pytest.raises(ValueError, match=r"refusing to listen on '0\.0\.0\.0' without authentication"):
        Server({"BindAddress": "0.0.0.0", "AuthenticationEnabled": False}).start()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_without_authentication_stays_allowed(host):
    check_exposure(Config(BindAddress=host, AuthenticationEnabled=False))  # no exception


def test_listening_everywhere_with_authentication_works(tmp_path):
    secret = "S3cr3t-" + secrets.token_hex(8)
    server = Serve(tmp_path, {"RegisteredUsers": {"alice": secret}}, "--host", "0.0.0.0").wait()
    try:
        sockets = listening(server.ready["pid"])
        assert ("0.0.0.0", server.ready["http_port"]) in sockets and ("0.0.0.0", server.ready["dicom_port"]) in sockets
        url = server.url("127.0.0.1")  # a loopback client only: nothing leaves this machine
        assert requests.get(url + "/system", timeout=10).status_code == 401
        assert requests.get(url + "/system", auth=("alice", secret), timeout=10).status_code == 200
        assert "well-known" not in server.output()
    finally:
        server.stop()


def test_listening_everywhere_with_the_default_password_warns(tmp_path):
    server = Serve(tmp_path, {}, "--host", "0.0.0.0").wait()
    try:
        assert "warning: listening on 0.0.0.0 with the well-known password of admin" in server.output()
    finally:
        server.stop()


# -- (c) nothing outside the data directory -----------------------------------------------------------------------
def _raw(server: RunningPacsbox, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A request whose path is sent exactly as written (clients fold ``..`` away; an attacker does not)."""
    host, port = server.url.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    token = base64.b64encode(":".join(server.auth).encode()).decode()
    try:
        connection.request(method, path, body=body, headers={"Authorization": f"Basic {token}"})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _escapes(canary: Path, data_dir: Path) -> list[str]:
    """Paths that try to leave the folder they are resolved in, to reach ``canary`` (beside the data folder)."""
    absolute = str(canary)
    relative = os.path.relpath(canary, data_dir)  # ../canary-<token>.txt
    name = canary.name
    forms = []
    for depth in range(1, 11):
        for up in ("../", "%2e%2e/", "..%2f", "%2e%2e%2f", "..%5c", "..\\", "%252e%252e%252f", ".%2e/", "....//",
                   "%c0%ae%c0%ae/"):
            forms.append(up * depth + name)
    forms += [
        "../" * 12 + absolute.lstrip("/"),
        "%2e%2e/" * 12 + quote(absolute.lstrip("/")),
        "/" + absolute.lstrip("/"), quote(absolute, safe=""), absolute.replace("/", "%2f"),
        absolute.replace("/", "\\"), relative, quote(relative, safe=""),
        f"{name}%00", f"a.txt%00/../../{name}", "..", "%2e%2e", ".", "/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd",
        "../" * 12 + "etc/passwd", "%2e%2e%2f" * 12 + "etc%2fpasswd",
    ]
    return forms


def _upload_archives(link_target: Path, token: str) -> list[tuple[str, bytes]]:
    """Uploads extracted server-side whose members try to escape: links, hard links, absolute and dotted names."""
    archives = []
    for kind in ("symlink", "hardlink", "symlink-then-through", "absolute", "dotdot"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            member = tarfile.TarInfo("ok.txt")
            member.size = 2
            tar.addfile(member, io.BytesIO(b"ok"))
            if kind in ("symlink", "symlink-then-through"):
                link = tarfile.TarInfo("link")
                link.type, link.linkname = tarfile.SYMTYPE, str(link_target.parent)
                tar.addfile(link)
                if kind == "symlink-then-through":
                    through = tarfile.TarInfo(f"link/escaped-{token}.txt")
                    through.size = len(token)
                    tar.addfile(through, io.BytesIO(token.encode()))
            elif kind == "hardlink":
                link = tarfile.TarInfo("hard")
                link.type, link.linkname = tarfile.LNKTYPE, str(link_target)
                tar.addfile(link)
            else:
                name = f"/tmp/escaped-{token}.txt" if kind == "absolute" else f"a/../../../escaped-{token}.txt"
                evil = tarfile.TarInfo(name)
                evil.size = len(token)
                tar.addfile(evil, io.BytesIO(token.encode()))
        archives.append((f"{kind}.tar", buffer.getvalue()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("ok.txt", b"ok")
        info = zipfile.ZipInfo("zlink")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(info, str(link_target))
    archives.append(("symlink.zip", buffer.getvalue()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"../../escaped-{token}.txt", token.encode())
    archives.append(("dotdot.zip", buffer.getvalue()))
    return archives


def _listing(folder: Path, skip: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.lstat().st_mtime for p in folder.rglob("*")
            if skip not in p.parents and p != skip}


def test_no_route_serves_or_writes_a_file_outside_the_data_directory(tmp_path):
    token, content = secrets.token_hex(12), "CANARY-CONTENT-" + secrets.token_hex(12)
    with RunningPacsbox() as server:
        canary = server.directory / f"canary-{token}.txt"  # errors may echo the name; the content must never show
        canary.write_text(content)
        http = server.session()
        files = [to_bytes(make_dataset(patient_id="SEC", patient_name="Sec^Urity", study_uid=uid("sec", 1),
                                       series_uid=uid("sec", 2), sop_uid=uid("sec", 3, n), instance_number=n))
                 for n in (1, 2)]
        instance = http.post(server.url + "/instances", data=files[0]).json()["ID"]
        archive_zip = io.BytesIO()
        with zipfile.ZipFile(archive_zip, "w") as zipped:
            for number, data in enumerate(files):
                zipped.writestr(f"{number}.dcm", data)
        assert http.put(server.url + "/data/projects/P").status_code in (200, 201)
        imported = http.post(server.url + "/data/services/import", data=archive_zip.getvalue(), params={
            "project": "P", "subject": "S", "session": "E", "dest": "/archive", "overwrite": "append"})
        assert imported.status_code == 200, imported.text
        prearchived = http.post(server.url + "/data/services/import", data=archive_zip.getvalue(), params={
            "project": "P", "dest": "/prearchive"})
        assert prearchived.status_code == 200, prearchived.text
        prearchive = prearchived.text.strip().splitlines()[0]
        assert http.put(server.url + "/data/projects/P/resources/R/files/a.txt", data=b"hello").status_code == 200
        assert http.put(server.url + "/data/projects/P/subjects/S/resources/R/files/a.txt",
                        data=b"hello").status_code == 200
        scan = http.get(server.url + "/data/projects/P/subjects/S/experiments/E/scans",
                        params={"format": "json"}).json()["ResultSet"]["Result"][0]["ID"]
        outside_before = _listing(server.directory, server.data_dir)
        read_prefixes = [
            "/data/projects/P/resources/R/files/", "/data/archive/projects/P/resources/R/files/",
            "/REST/projects/P/resources/R/files/", "/data/projects/P/subjects/S/resources/R/files/",
            f"/data/projects/P/subjects/S/experiments/E/scans/{scan}/resources/DICOM/files/",
            f"{prearchive}/scans/{scan}/resources/DICOM/files/", "/data/projects/", "/data/projects/P/resources/",
            "/xapi/schemas/", "/instances/", f"/instances/{instance}/content/", "/patients/", "/studies/",
        ]
        seen = []
        for evil in _escapes(canary, server.data_dir):
            for prefix in read_prefixes:
                for suffix in ("", "/file", "/files/a.txt", "?format=zip"):
                    status, body = _raw(server, "GET", prefix + evil + suffix)
                    seen.append(status)
                    assert content.encode() not in body and b"root:x:0:0" not in body, (prefix, evil, suffix, status)
                    assert status < 500, (prefix, evil, suffix, status, body[:300])
            for write in ("/data/projects/P/resources/R/files/", "/pacsbox/snapshots/"):
                status, body = _raw(server, "PUT", write + evil, f"EVIL-{token}".encode())
                assert status < 500 and (status >= 400 or write.endswith("files/")), (write, evil, status, body[:200])
        assert len(seen) > 3000 and seen.count(200) < len(seen)  # the prefixes were reached, and most refused
        for name, body in _upload_archives(canary, token):
            answer = http.put(f"{server.url}/data/projects/P/resources/UP/files/{name}", params={"extract": "true"},
                              data=body)
            assert answer.status_code == 400, (name, answer.status_code, answer.text[:200])
        answer = http.post(server.url + "/instances", data=_upload_archives(canary, token)[-1][1])
        assert answer.status_code == 400, answer.text[:200]
        assert _listing(server.directory, server.data_dir) == outside_before
        assert canary.read_text() == content
        links = [p for p in server.data_dir.rglob("*") if p.is_symlink()]
        assert links == []
        for folder in (server.directory.parent, Path("/tmp"), Path("/")):
            assert not list(folder.glob(f"*{token}*")), folder
        assert server.process is not None and server.process.poll() is None


# -- (d) credentials never logged ---------------------------------------------------------------------------------
def _dicom_with_identity(host: str, port: int, aet: str, user: str, password: str, data: bytes) -> None:
    """A C-ECHO association and a storage association, each sending a username and passcode (PS3.7 D.3.3.7)."""
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    def identity() -> UserIdentityNegotiation:
        negotiation = UserIdentityNegotiation()
        negotiation.user_identity_type = 2
        negotiation.primary_field = user.encode()
        negotiation.secondary_field = password.encode()
        negotiation.positive_response_requested = True
        return negotiation

    ae = AE(ae_title="SECTEST")
    ae.add_requested_context("1.2.840.10008.1.1")
    association = ae.associate(host, port, ae_title=aet, ext_neg=[identity()])
    assert association.is_established, "C-ECHO association with a user identity refused"
    assert association.send_c_echo().Status == 0
    association.release()
    ae = AE(ae_title="SECTEST")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    association = ae.associate(host, port, ae_title=aet, ext_neg=[identity()])
    assert association.is_established, "storage association with a user identity refused"
    assert association.send_c_store(dcmread(io.BytesIO(data))).Status == 0
    association.release()


def _forbidden(secret: str, wrong: str, tokens: list[str]) -> list[str]:
    basic = [base64.b64encode(f"alice:{p}".encode()).decode() for p in (secret, wrong)]
    return [secret, wrong, *basic, quote(secret), *(t for t in tokens if t)]


def test_credentials_never_reach_the_logs(tmp_path):
    secret, wrong = "S3cr3t-" + secrets.token_hex(8), "Wr0ng-" + secrets.token_hex(8)
    config = {"RegisteredUsers": {"alice": secret}, "DicomAlwaysAllowStore": True}
    log_file = tmp_path / "server.log"
    server = Serve(tmp_path, config, "--log-file", str(log_file), "--access-log").wait()
    tokens: list[str] = []
    try:
        url = server.url()
        assert requests.get(url + "/system", auth=("alice", secret), timeout=10).status_code == 200
        assert requests.get(url + "/system", auth=("alice", wrong), timeout=10).status_code == 401
        assert requests.get(url.replace("//", f"//alice:{secret}@") + "/statistics", timeout=10).status_code == 200
        login = requests.put(url + "/data/services/auth", data={"username": "alice", "password": secret}, timeout=10)
        assert login.status_code == 200
        tokens.append(login.text.strip())
        assert requests.post(url + "/data/services/auth", data={"username": "alice", "password": wrong},
                             timeout=10).status_code == 401
        jsession = requests.get(url + "/data/JSESSION", auth=("alice", secret), timeout=10)
        tokens.append(jsession.text.strip())
        for token in tokens:
            answer = requests.get(url + "/data/projects", cookies={"JSESSIONID": token}, timeout=10)
            assert answer.status_code == 200
            requests.get(f"{url}/data/projects;jsessionid={token}", timeout=10)
            requests.get(f"{url}/data/projects", params={"JSESSIONID": token}, timeout=10)
        requests.post(url + "/data/JSESSION", auth=("alice", secret), timeout=10)
        for params in ({"user": "alice", "password": secret}, {"username": "alice", "pwd": wrong},
                       {"token": secret}, {"auth": f"alice:{secret}"}):
            requests.get(url + "/system", params=params, auth=("alice", secret), timeout=10)
            requests.put(url + "/data/services/auth", params=params, timeout=10)
        requests.delete(url + "/data/JSESSION", cookies={"JSESSIONID": tokens[0]}, timeout=10)
        data = to_bytes(make_dataset(patient_id="LOG", patient_name="Log^Ged", study_uid=uid("log", 1),
                                     series_uid=uid("log", 2), sop_uid=uid("log", 3)))
        _dicom_with_identity("127.0.0.1", server.ready["dicom_port"], "PACSBOX", "alice", secret, data)
        time.sleep(0.5)  # the access log is written after each answer
    finally:
        server.stop()
    logged = "".join(p.read_text(errors="replace") for p in tmp_path.glob("server.log*"))
    everything = logged + server.output()
    assert "GET /system" in logged and "/data/services/auth" in logged, "the access log was not written"
    assert "alice/***" in logged, "the ready line names the user"
    leaks = [value for value in _forbidden(secret, wrong, tokens) if value in everything]
    assert leaks == [], leaks


def test_a_managed_instance_keeps_passwords_out_of_its_log_and_private(tmp_path):
    secret = "S3cr3t-" + secrets.token_hex(8)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"RegisteredUsers": {"alice": secret}}))
    environment = {**os.environ, "PACSBOX_HOME": str(tmp_path / "home")}
    started = subprocess.run([sys.executable, "-m", "pacsbox", "start", "--name", "secret", "--config", str(config)],
                             capture_output=True, text=True, env=environment, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        assert secret not in started.stdout + started.stderr and "alice/***" in started.stdout
        folder = tmp_path / "home" / "instances" / "secret"
        state = json.loads((folder / "state.json").read_text())
        assert requests.get(f"http://127.0.0.1:{state['http_port']}/system", auth=("alice", secret),
                            timeout=10).status_code == 200
        for private in ("state.json", "config.json"):  # the manager needs the password there: owner-only
            assert stat.S_IMODE((folder / private).stat().st_mode) == 0o600, private
    finally:
        stopped = subprocess.run([sys.executable, "-m", "pacsbox", "stop", "secret"], env=environment,
                                 capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
    assert secret not in (folder / "server.log").read_text()


def test_describe_users_prints_only_the_well_known_default():
    assert describe_users({"admin": "admin"}, True) == "admin/admin"
    assert describe_users({"admin": "s3cret", "bob": "x"}, True) == "admin/***, bob/***"
    assert describe_users({"admin": "admin"}, False) == "authentication off"


def test_the_access_log_hides_secret_parameters():
    import logging

    from pacsbox.server import _REDACT_SECRETS

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', (
        "127.0.0.1:1", "GET", "/data/x%3Bjsessionid%3DT1K?username=a&password=pw1;jsessionid=T0K&x=1&token=t2", "1.1",
        200),
        None)
    assert _REDACT_SECRETS.filter(record)
    message = record.getMessage()
    assert "pw1" not in message and "T0K" not in message and "T1K" not in message and "t2" not in message
    assert "password=***" in message and "username=a" in message and "x=1" in message
    with contextlib.suppress(Exception):  # the filter never breaks a record it does not understand
        record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "plain %s", ("x",), None)
        assert _REDACT_SECRETS.filter(record) and record.getMessage() == "plain x"
