"""Hostile HTTP through both web faces: zip and tar bombs, archive members that escape, labels that are paths, malformed
JSON and XML, names that would split headers, bodies streamed past MaximumUploadSize, unknown routes and methods,
and requests that are barely HTTP.

A rejected input gets a 4xx in its face's format (Orthanc's JSON error body, XNAT's plain text) and leaves the
archive, the XNAT catalog and the storage folder as they were; bombs and oversized bodies are refused in bounded
memory (the server's peak RSS, sampled during the request, grows by less than ``RSS_BOUND``). No answer is a 5xx.
"""

from __future__ import annotations

import functools
import io
import json
import socket
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import (
    PeakRss,
    archive_state,
    assert_alive,
    assert_orthanc_error,
    assert_xnat_error,
)

LIMIT = 8 * 1024 * 1024  # MaximumUploadSize of the server under test
BOMB = 300 * 1024 * 1024  # what a bomb inflates to
RSS_BOUND = 200 * 1024 * 1024  # a generous bound on the server's memory growth while it refuses one
IMPORT = "/data/services/import"
SEARCH_NS = "http://nrg.wustl.edu/security"


# -- the server, its baseline, and what must not change ---------------------------------------------------------

def _dicom(key: str, **extra) -> bytes:
    return to_bytes(make_dataset(patient_id=f"HH-{key}", patient_name="Hostile^Http", study_uid=uid("hh-st", key),
                                 series_uid=uid("hh-se", key), sop_uid=uid("hh-in", key), rows=4, cols=4,
                                 extra=extra or None))


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"MaximumUploadSize": LIMIT, "UserMetadata": {"Sample": 1024}, "StableAge": 100_000,
                         "DicomModalities": {"remote": ["REMOTE", "127.0.0.1", 1]},
                         "OrthancPeers": {"peer": {"Url": "http://127.0.0.1:1/"}}}) as running:
        http = running.session()
        assert http.post(running.url + "/instances", data=_dicom("base")).status_code == 200
        http.put(running.url + "/data/projects/P")
        response = http.post(running.url + IMPORT, params={"project": "P", "subject": "S", "session": "E",
                                                            "dest": "/archive"}, data=_dicom("session"))
        assert response.status_code == 200, response.text
        assert http.put(running.url + "/data/projects/P/resources/R/files/kept.txt", data=b"kept").status_code < 300
        http.close()
        yield running


def _tree(server: RunningPacsbox) -> dict[str, int]:
    """Every file below the server's folder with its size, except the index database's own files."""
    return {str(p.relative_to(server.directory)): p.stat().st_size for p in server.directory.rglob("*")
            if p.is_file() and not p.name.startswith("index.sqlite")}


def _xnat_state(http: requests.Session, url: str) -> tuple:
    def results(path: str) -> list:
        return http.get(url + path, params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]

    return (results("/data/projects"), results("/data/subjects"), results("/data/experiments"),
            results("/data/prearchive/projects"), results("/data/projects/P/resources/R/files"))


@pytest.fixture
def unchanged(server, http):
    """Checks that the test left the archive, the catalog and the storage folder as they were."""
    before = (archive_state(http, server.url), _xnat_state(http, server.url), _tree(server))
    yield
    assert archive_state(http, server.url) == before[0]
    assert _xnat_state(http, server.url) == before[1]
    assert _tree(server) == before[2]


def _send(http: requests.Session, tally, category: str, method: str, url: str, **kwargs) -> requests.Response:
    response = http.request(method, url, timeout=120, **kwargs)
    tally.count(category, f"{method} {url.split('//', 1)[-1].split('/', 1)[-1][:120]}", response.status_code)
    return response


def _is_xnat(path: str) -> bool:
    return path.split("?")[0].split("/")[1] in ("data", "REST", "xapi")


def _assert_face_error(path: str, response: requests.Response, status: int | None = None) -> None:
    if _is_xnat(path):
        assert_xnat_error(response, status)
    else:
        assert_orthanc_error(response, status)


# -- bombs -------------------------------------------------------------------------------------------------------

@functools.cache
def _deflated_zeros(size: int, prefix: bytes = b"") -> tuple[bytes, int]:
    """A raw deflate stream of ``prefix`` then ``size`` zeros, and its CRC-32, made in milliseconds: after a full
    flush the compressor's state is its window alone, all zeros, so every further MiB of zeros compresses to the
    same block, computed once and repeated."""
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = [compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) for _ in range(min(2, size >> 20))]
    whole = size >> 20
    body = b"".join(blocks) + blocks[-1] * (whole - len(blocks)) if blocks else b""
    tail = compressor.compress(bytes(size - (whole << 20))) + compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(whole):
        crc = zlib.crc32(chunk, crc)
    return head + body + tail, zlib.crc32(bytes(size - (whole << 20)), crc)


def _zip(members: list[tuple[str, int]], *, declared: int | None = None) -> bytes:
    """A zip (PKWARE APPNOTE 4.3) of members of zeros (name, size), deflated; ``declared`` replaces every size in
    the headers, a lie."""
    local, central = bytearray(), bytearray()
    for name, size in members:
        data, crc = _deflated_zeros(size)
        encoded, offset, told = name.encode(), len(local), size if declared is None else declared
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), told, len(encoded), 0)
        local += encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), told,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    return bytes(local + central + end)


def _tar_gz_bomb() -> bytes:
    """A tar.gz of one member of BOMB zeros (gzip, RFC 1952, around a deflate stream)."""
    info = tarfile.TarInfo("bomb.dcm")
    info.size = BOMB
    header = info.tobuf(tarfile.USTAR_FORMAT)
    record = tarfile.RECORDSIZE
    total = -(-(len(header) + BOMB + 2 * tarfile.BLOCKSIZE) // record) * record  # end blocks, whole records
    data, crc = _deflated_zeros(total - len(header), header)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03" + data + struct.pack("<II", crc, total & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    made = {
        "one-member": _zip([("bomb.dcm", BOMB)]),
        "many-members": _zip([(f"part{n}.dcm", BOMB // 75) for n in range(75)]),  # each under the limit
        "lying-sizes": _zip([("liar.dcm", BOMB)], declared=1000),
        "tar-gz": _tar_gz_bomb(),
    }
    assert all(len(body) < LIMIT for body in made.values())
    return made


_BOMB_DOORS = [
    ("POST", "/instances", {}),
    ("POST", IMPORT, {"project": "P", "dest": "/archive", "subject": "B", "session": "B"}),
    ("POST", IMPORT, {"project": "P"}),
    ("PUT", "/data/projects/P/resources/R/files/bomb.zip", {"extract": "true"}),
]
_DOOR_NAMES = ["orthanc", "import-archive", "import-prearchive", "extract"]


@pytest.mark.parametrize("kind", ["one-member", "many-members", "lying-sizes", "tar-gz"])
@pytest.mark.parametrize("method,path,params", _BOMB_DOORS, ids=_DOOR_NAMES)
def test_bombs_are_refused_in_bounded_memory(server, http, tally, unchanged, bombs, kind, method, path, params):
    with PeakRss(server) as rss:
        response = _send(http, tally, "zip/tar bomb", method, server.url + path, params=params, data=bombs[kind])
    assert response.status_code in (400, 413), response.text
    _assert_face_error(path, response)
    assert rss.growth < RSS_BOUND, f"the server grew by {rss.growth / 2**20:.0f} MiB refusing a {kind} bomb"


# -- archive members that escape ---------------------------------------------------------------------------------

_ESCAPING = {  # (zipfile cuts a name at a NUL when it reads it: such a name cannot reach the server whole)
    "absolute": "/tmp/pacsbox-hostile/abs.dcm",
    "drive-letter": "C:\\pacsbox-hostile\\abs.dcm",
    "dot-dot-backslash": "a\\..\\..\\..\\pacsbox-hostile.dcm",
    "symlink": "link.dcm",
}
_COVERED = {("/instances", "absolute"), ("/instances", "dot-dot-backslash")}  # by tests/faces/orthanc/test_bad_input


def _escaping_zip(kind: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("good.dcm", _dicom("escaping-good"))
        info = zipfile.ZipInfo(_ESCAPING[kind])  # zipfile writes the name as given
        if kind == "symlink":
            info.external_attr, info.create_system = 0o120777 << 16, 3  # S_IFLNK: the content is the target
            archive.writestr(info, "/etc/passwd")
        else:
            archive.writestr(info, _dicom("escaping-evil"))
    return buffer.getvalue()


_ESCAPE_CASES = [(door, kind, f"{name}-{kind}") for door, name in zip(_BOMB_DOORS, _DOOR_NAMES, strict=True)
                 for kind in _ESCAPING if (door[1], kind) not in _COVERED]


@pytest.mark.parametrize("door,kind", [c[:2] for c in _ESCAPE_CASES], ids=[c[2] for c in _ESCAPE_CASES])
def test_archive_members_that_escape(server, http, tally, unchanged, door, kind):
    method, path, params = door
    body = _escaping_zip(kind)
    with zipfile.ZipFile(io.BytesIO(body)) as check:  # the hostile name is really there
        assert check.namelist()[1] == _ESCAPING[kind]
    response = _send(http, tally, "zip slip, absolute names, links", method, server.url + path, params=params,
                     data=body)
    assert response.status_code == 400, response.text
    _assert_face_error(path, response)
    assert not list(server.directory.parent.glob("pacsbox-hostile*"))
    assert not list(server.directory.rglob("pacsbox-hostile*"))


# -- XNAT labels that are paths ----------------------------------------------------------------------------------

_LABELS = {"dot-dot": "..", "dot": ".", "slash": "a/b", "backslash-dot-dot": "..\\..", "nul": "a\x00b",
           "long-300": "L" * 300, "long-5000": "L" * 5000, "empty-segment": "", "newline": "a\nb"}
_LABEL_ROUTES = {
    "project": "/data/projects/{label}",
    "subject": "/data/projects/P/subjects/{label}",
    "experiment": "/data/projects/P/subjects/S/experiments/{label}?xsiType=xnat:mrSessionData",
    "scan": "/data/projects/P/subjects/S/experiments/E/scans/{label}?xsiType=xnat:mrScanData",
    "resource": "/data/projects/P/resources/{label}",
    "file": "/data/projects/P/resources/R/files/{label}",
    "file-in-folder": "/data/projects/P/resources/R/files/sub/{label}/x.txt",
}


# a file's path may hold these: "sub/a/b/x.txt", "sub/./x.txt" and "sub//x.txt" are files in folders of the resource
_SUBPATHS = {("file", "slash"), ("file-in-folder", "slash"), ("file-in-folder", "dot"),
             ("file-in-folder", "empty-segment")}


@pytest.mark.parametrize("label", list(_LABELS))
@pytest.mark.parametrize("route", list(_LABEL_ROUTES))
def test_xnat_labels_that_are_paths(server, http, tally, unchanged, route, label):
    # dots encoded too, so that no client library folds "." and ".." segments away before sending
    path = _LABEL_ROUTES[route].replace("{label}", quote(_LABELS[label], safe="").replace(".", "%2E"))
    response = _send(http, tally, "XNAT labels", "PUT", server.url + path, data=b"x" if "files" in path else None)
    if (route, label) in _SUBPATHS and response.status_code < 300:
        assert http.delete(server.url + path).status_code == 200  # a folder inside the resource: no escape
        return
    assert 400 <= response.status_code < 500, response.text
    assert_xnat_error(response)


@pytest.mark.parametrize("label", ["..", "a/b", "a\x00b", "L" * 300, "a\nb"])
@pytest.mark.parametrize("field", ["subject", "session", "project"])
def test_xnat_import_labels_that_are_paths(server, http, tally, unchanged, field, label):
    params = {"project": "P", "subject": "S2", "session": "E2", "dest": "/archive", field: label}
    response = _send(http, tally, "XNAT labels", "POST", server.url + IMPORT, params=params, data=_dicom("labels"))
    assert 400 <= response.status_code < 500, response.text
    assert_xnat_error(response)


# -- malformed JSON and XML --------------------------------------------------------------------------------------

_BAD_JSON = {
    "broken": b"{not json", "truncated": b'{"Level": "Study", "Query": {', "not-utf8": b"\xff\xfe{\x00",
    "deep-array": b"[" * 100_000 + b"]" * 100_000, "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nan": b'{"Level": NaN, "Query": {"PatientID": Infinity}}', "huge-number": b'{"Limit": 1e999999, "Since": '
    + b"9" * 5000 + b"}", "bom": b'\xef\xbb\xbf{"Level": "Study", "Query": {}}',
}
_JSON_ROUTES = [  # (method, path, whether the route calls a remote modality or peer)
    ("POST", "/tools/find", False), ("POST", "/tools/create-archive", False),
    ("POST", "/patients/{patient}/archive", False), ("POST", "/studies/{study}/archive", False),
    ("PUT", "/modalities/hostile", False), ("POST", "/modalities/remote/echo", True),
    ("POST", "/modalities/remote/store", True), ("POST", "/modalities/remote/move", True),
    ("POST", "/modalities/remote/get", True), ("POST", "/modalities/remote/query", True),
    ("PUT", "/peers/hostile", False), ("POST", "/peers/peer/store", True), ("POST", "/queries/none/retrieve", True),
    ("POST", "/queries/none/answers/0/retrieve", True), ("POST", "/queries/none/answers/0/query-series", True),
    ("PUT", "/pacsbox/snapshots/hostile", False), ("POST", "/pacsbox/snapshots/none/restore", False),
    ("PUT", "/instances/{instance}/metadata/Sample", False), ("PUT", "/patients/{patient}/protected", False),
    ("POST", "/tools/lookup", False), ("POST", "/tools/create-dicom", False), ("POST", "/tools/bulk-content", False),
    ("POST", "/tools/bulk-delete", False),
]


@pytest.fixture(scope="module")
def ids(server, http) -> dict[str, str]:
    instance = http.get(server.url + "/instances").json()[0]
    patient = http.get(f"{server.url}/instances/{instance}/patient").json()
    study = http.get(f"{server.url}/instances/{instance}/study").json()
    return {"instance": instance, "patient": patient["ID"], "study": study["ID"]}


# valid enough JSON (NaN, a huge number, a BOM) is read by a route that then calls a remote: an unreachable one is
# Orthanc's 500 "Error in the network protocol", which is not about the body; those routes get the broken bodies
_NETWORK_SAFE = ("broken", "truncated", "not-utf8", "deep-array", "deep-object")
_JSON_CASES = [(method, path, body) for method, path, network in _JSON_ROUTES for body in _BAD_JSON
               if not network or body in _NETWORK_SAFE]


@pytest.mark.parametrize("method,path,body", _JSON_CASES, ids=[f"{m} {p} {b}" for m, p, b in _JSON_CASES])
def test_malformed_json(server, http, tally, ids, unchanged_archive, method, path, body):
    url = server.url + path.format(**ids)
    response = _send(http, tally, "malformed JSON", method, url, data=_BAD_JSON[body])
    assert response.status_code < 500, response.text
    if (method, path) == ("PUT", "/peers/hostile") and response.status_code == 404:
        assert response.content == b""  # Orthanc 1.10's answer to a peer that is not JSON: an empty 404
    elif response.status_code >= 400:
        assert_orthanc_error(response)


@pytest.fixture
def unchanged_archive(server, http):
    """As ``unchanged``, for routes that may legitimately store a snapshot or metadata (cleaned up here)."""
    before = archive_state(http, server.url)
    yield
    http.delete(server.url + "/pacsbox/snapshots/hostile")
    http.delete(server.url + "/modalities/hostile")
    http.delete(server.url + "/peers/hostile")
    after = archive_state(http, server.url)
    assert (after.statistics, after.instances) == (before.statistics, before.instances)


def _bundle(where: str = "") -> bytes:
    return (f'<?xml version="1.0"?><xdat:bundle xmlns:xdat="{SEARCH_NS}" ID="s">'
            f"<xdat:root_element_name>xnat:subjectData</xdat:root_element_name>{where}</xdat:bundle>").encode()


_BAD_XML = {
    "broken": b"<not xml", "empty": b"", "unclosed": _bundle()[:-12], "not-utf8": b"<?xml version='1.0'?>\xff\xfe<a/>",
    "wrong-root": b"<html><body>hello</body></html>",
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10) for n in range(1, 10))
    + b']><xdat:bundle xmlns:xdat="' + SEARCH_NS.encode() + b'">&lol9;</xdat:bundle>',
    "external-entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<xdat:bundle xmlns:xdat="' + SEARCH_NS.encode() + b'"><xdat:root_element_name>&xxe;'
    b"</xdat:root_element_name></xdat:bundle>",
    "deep-child-sets": _bundle('<xdat:search_where method="AND">'
                               + '<xdat:child_set method="OR">' * 20_000 + "</xdat:child_set>" * 20_000
                               + "</xdat:search_where>"),
    "deep-elements": b"<a>" * 100_000 + b"</a>" * 100_000,
    "over-a-megabyte": _bundle("<!--" + "x" * (2 << 20) + "-->"),
}


@pytest.mark.parametrize("body", list(_BAD_XML))
def test_malformed_xml_search(server, http, tally, unchanged, body):
    response = _send(http, tally, "malformed XML", "POST", server.url + "/data/search", data=_BAD_XML[body],
                     params={"format": "json"})
    assert response.status_code < 500, response.text
    assert "root:" not in response.text  # no entity reads a file
    if body != "deep-child-sets" or response.status_code >= 400:
        assert_xnat_error(response)


@pytest.mark.parametrize("body", ["broken", "billion-laughs", "external-entity", "deep-elements"])
@pytest.mark.parametrize("route", ["/data/projects/P/subjects/XML?xsiType=xnat:subjectData",
                                   "/data/projects/P/subjects/S/experiments/XML?xsiType=xnat:mrSessionData"])
def test_malformed_xml_bodies_of_puts(server, http, tally, route, body):
    """An XML body describes the object's fields (pyxnat's create(xml=...)): a malformed or hostile one is a 4xx."""
    response = _send(http, tally, "malformed XML", "PUT", server.url + route, data=_BAD_XML[body],
                     headers={"Content-Type": "text/xml"})
    assert response.status_code < 500, response.text
    http.delete(server.url + route.split("?")[0], params={"removeFiles": "true"})


# -- names that would split headers --------------------------------------------------------------------------------

_HEADER_NAMES = {"crlf": "evil\r\nX-Injected: 1", "lf": "evil\nX-Injected: 1", "quote": 'a"b', "semicolon": "a;b=c",
                 "non-ascii": "Müller_東京", "percent": "a%0d%0aX-Injected:%201", "tab-nul": "a\tb\x00c"}


def _assert_clean_headers(response: requests.Response) -> None:
    assert response.status_code < 500, response.text[:300]
    assert "X-Injected" not in response.headers
    for name, value in response.headers.items():
        assert "\r" not in value and "\n" not in value, (name, value)
        value.encode("latin-1")


@pytest.mark.parametrize("name", list(_HEADER_NAMES))
def test_names_do_not_split_headers(server, http, tally, name):
    text = _HEADER_NAMES[name]
    url = server.url
    label = quote(text, safe="")
    created = []
    for _kind, path, params, data in (
        ("resource label", f"/data/projects/P/resources/{label}", {}, None),
        ("file name", f"/data/projects/P/resources/R/files/{label}.txt", {}, b"x"),
        ("session label", f"/data/projects/P/subjects/S/experiments/{label}", {"xsiType": "xnat:mrSessionData"}, None),
        ("subject label", f"/data/projects/P/subjects/{label}", {}, None),
    ):
        response = _send(http, tally, "header injection", "PUT", url + path, params=params, data=data)
        _assert_clean_headers(response)
        if response.status_code < 300:
            created.append(path)
    for path in created:
        for suffix, params in (("", {"format": "json"}), ("/files", {"format": "zip"}), ("", {})):
            if path.endswith(".txt") and suffix:
                continue
            response = _send(http, tally, "header injection", "GET", url + path + suffix, params=params)
            _assert_clean_headers(response)
    data = _dicom(f"header-{name}", SpecificCharacterSet="ISO_IR 192", PatientName=text.replace("\x00", ""),
                  PatientID=f"HH-{name}\"; x=1", StudyDescription=text)
    response = _send(http, tally, "header injection", "POST", url + "/instances", data=data)
    _assert_clean_headers(response)
    if response.status_code == 200:
        stored = response.json()
        for path in (f"/patients/{stored['ParentPatient']}/archive", f"/studies/{stored['ParentStudy']}/archive",
                     f"/patients/{stored['ParentPatient']}", f"/instances/{stored['ID']}/simplified-tags"):
            _assert_clean_headers(_send(http, tally, "header injection", "GET", url + path))
        http.delete(f"{url}/patients/{stored['ParentPatient']}")
    for path in reversed(created):
        if not path.endswith(".txt"):
            http.delete(url + path, params={"removeFiles": "true"})
        else:
            http.delete(url + path)


# -- bodies streamed past the limit ------------------------------------------------------------------------------

def _chunks(total: int) -> Iterator[bytes]:
    chunk = b"\x00" * (1 << 20)
    for _ in range(total >> 20):
        yield chunk


_STREAM_ROUTES = [("POST", "/instances"), ("POST", IMPORT + "?project=P"),
                  ("PUT", "/data/projects/P/resources/R/files/streamed.bin"), ("POST", "/tools/find"),
                  ("POST", "/tools/create-archive"), ("PUT", "/modalities/streamed"), ("POST", "/data/search"),
                  ("PUT", "/instances/{instance}/metadata/Sample"), ("POST", "/data/services/auth")]


@pytest.mark.parametrize("method,path", _STREAM_ROUTES, ids=[f"{m} {p}" for m, p in _STREAM_ROUTES])
def test_bodies_streamed_past_the_limit(server, http, tally, ids, unchanged, method, path):
    """A chunked body (no Content-Length) of 40 times MaximumUploadSize: refused with 413 once past the limit."""
    url = server.url + path.format(**ids)
    with PeakRss(server) as rss:
        try:
            response = http.request(method, url, data=_chunks(40 * LIMIT), timeout=120)
        except requests.ConnectionError as error:  # the server may close before the client has sent it all
            pytest.fail(f"no answer to an oversized body: {error}")
    tally.count("oversized streamed body", f"{method} {path}", response.status_code)
    assert response.status_code == 413, response.text[:300]
    _assert_face_error(path, response, 413)
    assert rss.growth < RSS_BOUND, f"grew by {rss.growth / 2**20:.0f} MiB"


# -- unknown routes and methods, barely HTTP ----------------------------------------------------------------------

_ODD_REQUESTS = [
    ("PATCH", "/system"), ("OPTIONS", "/patients"), ("TRACE", "/instances"), ("FOO", "/statistics"),
    ("PROPFIND", "/"), ("GET", "/"), ("GET", "/%00"), ("GET", "/patients/%2e%2e/%2e%2e/system"), ("GET", "//system"),
    ("GET", "/system/"), ("GET", "/instances/" + "a" * 20_000), ("GET", "/%zz"), ("GET", "/patients?limit=%ff"),
    ("DELETE", "/system"), ("PUT", "/tools/find"), ("GET", "/tools/find"), ("GET", "/app/explorer.html"),
    ("PATCH", "/data/projects"), ("DELETE", "/data/projects"), ("OPTIONS", "/data/projects/P"),
    ("GET", "/data/projects/P/nonsense/x"), ("GET", "/REST/%2E%2E/%2E%2E/system"), ("GET", "/xapi/unknown"),
    ("GET", "/data"), ("GET", "/data/archive"), ("GET", "/data/services/import"), ("FOO", "/data/projects"),
    ("GET", "/data/projects/" + "p" * 20_000), ("GET", "/data/projects/%00"), ("POST", "/data/JSESSION"),
    ("GET", "/data/prearchive/projects/P/1/2/3/4/5/6/7/8"), ("PUT", "/xapi/siteConfig/siteId/extra"),
]


@pytest.mark.parametrize("method,path", _ODD_REQUESTS, ids=[f"{m} {p[:40]}" for m, p in _ODD_REQUESTS])
def test_unknown_routes_and_methods(server, http, tally, unchanged, method, path):
    response = _send(http, tally, "unknown routes and methods", method, server.url + path, allow_redirects=False)
    if path == "/system/":  # Starlette redirects to the path without its slash
        assert response.status_code == 307 and response.headers["Location"].endswith("/system")
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if method == "FOO":  # a method the HTTP parser does not know never reaches a face: Uvicorn's plain 400
        assert response.status_code == 400 and response.text == "Invalid HTTP request received."
        return
    _assert_face_error(path, response)


_BARELY_HTTP = {
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
    "no-version": b"GET /system\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "huge-header": b"GET /system HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    "nul-in-header": b"GET /system HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
    "bad-content-length": b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "negative-content-length": b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    "length-and-chunked": b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "bad-chunk-size": b"POST /tools/find HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\n{}\r\n0\r\n\r\n",
    "content-length-lies": b"POST /tools/find HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{}",
    "folded-header": b"GET /system HTTP/1.1\r\nHost: x\r\nAuthorization: Basic\r\n YWRtaW46YWRtaW4=\r\n\r\n",
    "many-headers": b"GET /system HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n",
    "pipelined-garbage": b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02 garbage\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(_BARELY_HTTP))
def test_barely_http(server, tally, kind):
    """Sent on a raw socket: any answer is a 4xx (Uvicorn's own for what never reaches a face), or the connection
    closes; the server goes on serving."""
    host, port = server.url.split("//")[1].split(":")
    statuses = []
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        try:
            sock.sendall(_BARELY_HTTP[kind])
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionError):
            answer = b""
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            statuses.append(int(line.split()[1]))
    tally.count("barely HTTP", kind, max(statuses, default=None))
    assert all(status < 500 for status in statuses), answer[:500]


def test_server_still_serves(server, http, tally):
    assert_alive(server)
    response = http.get(server.url + "/data/projects/P/resources/R/files/kept.txt")
    assert response.content == b"kept"
    assert len(http.get(server.url + "/instances").json()) == 2
    assert json.loads(http.get(server.url + "/statistics").text)["CountInstances"] == 2
