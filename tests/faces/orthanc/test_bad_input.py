"""Bad input gets the right 4xx with Orthanc's JSON error body, and leaves the archive exactly as it was.

Every test ends by comparing the archive with the snapshot taken after the baseline upload: the same
``/statistics``, the same ``/instances``, the same ``/changes`` Last, and every file still downloads byte for byte.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests

from tests.support.compare import orthanc_id
from tests.support.dicomgen import make_dataset, to_bytes, uid, zip_of
from tests.support.pacsbox_proc import RunningPacsbox

ERROR_KEYS = {"HttpError", "HttpStatus", "Message", "Method", "OrthancError", "OrthancStatus", "Uri"}
BASELINE = ("ct/1.dcm", "ct/2.dcm", "mr/s1/1.dcm", "seq/1.dcm")
UNKNOWN = "01234567-89abcdef-01234567-89abcdef-01234567"  # well formed, never stored


def ids_of(data: bytes) -> dict[str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    keys = [str(ds.PatientID), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    return {level: orthanc_id(*keys[:n]) for n, level in enumerate(("patients", "studies", "series", "instances"), 1)}


def assert_error(response: requests.Response, status: int, orthanc_status: int | None, message: str | None,
                 details: str | None = None) -> dict:
    """Status, Orthanc's error body, and its code and message (None: not checked)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= ERROR_KEYS, body
    assert set(body) <= ERROR_KEYS | {"Details"}, body
    assert body["HttpStatus"] == status
    assert body["Method"] == response.request.method
    assert body["Uri"] == response.request.path_url.split("?")[0]
    if orthanc_status is not None:
        assert body["OrthancStatus"] == orthanc_status, body
    if message is not None:
        assert body["Message"] == message, body
        assert body["OrthancError"] == message, body
    if details is not None:
        assert body.get("Details") == details, body
    return body


@dataclass
class Snapshot:
    statistics: dict
    instances: list[str]
    last_change: int
    files: dict[str, bytes]


def take_snapshot(http: requests.Session, url: str, files: dict[str, bytes]) -> Snapshot:
    return Snapshot(http.get(url + "/statistics").json(), sorted(http.get(url + "/instances").json()),
                    http.get(url + "/changes?last").json()["Last"], dict(files))


def assert_unchanged(http: requests.Session, url: str, before: Snapshot) -> None:
    after = take_snapshot(http, url, before.files)
    assert after.statistics == before.statistics
    assert after.instances == before.instances
    assert after.last_change == before.last_change
    for instance_id, data in before.files.items():
        response = http.get(f"{url}/instances/{instance_id}/file")
        assert response.status_code == 200
        assert response.content == data


# -- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(corpus) -> dict[str, bytes]:
    return dict(corpus)


@pytest.fixture(scope="module")
def url(spawned_pacsbox) -> str:
    return spawned_pacsbox.url


@pytest.fixture(scope="module")
def http(spawned_pacsbox):
    session = spawned_pacsbox.session()
    yield session
    session.close()


@pytest.fixture(scope="module")
def baseline(http, url, files) -> Snapshot:
    stored = {}
    for name in BASELINE:
        response = http.post(url + "/instances", data=files[name])
        assert response.status_code == 200, response.text
        stored[response.json()["ID"]] = files[name]
    snapshot = take_snapshot(http, url, stored)
    assert snapshot.statistics["CountInstances"] == len(BASELINE)
    return snapshot


@pytest.fixture
def unchanged(http, url, baseline):
    """Checks, after the test, that the archive still equals the baseline."""
    yield baseline
    assert_unchanged(http, url, baseline)


# -- bad uploads -----------------------------------------------------------------------------------------------

def test_non_dicom_body_is_400(http, url, unchanged):
    response = http.post(url + "/instances", data=b"this is not a DICOM file, only some text " * 5)
    assert_error(response, 400, 15, "Bad file format")


def test_empty_body_is_400_bad_file_format(http, url, unchanged):
    """Orthanc 1.10.1: 400, OrthancStatus 15, Details "Received an empty DICOM file"."""
    response = http.post(url + "/instances", data=b"")
    assert_error(response, 400, 15, "Bad file format")


@pytest.mark.parametrize("keep", [132, 600, -50], ids=["meta-only", "header-cut", "pixels-cut"])
def test_truncated_dicom_is_400(http, url, files, unchanged, keep):
    data = files["ct/3.dcm"]
    response = http.post(url + "/instances", data=data[:keep])
    assert_error(response, 400, 15, "Bad file format")
    assert http.get(f"{url}/instances/{ids_of(data)['instances']}").status_code == 404


def test_zip_with_a_non_dicom_member_is_rejected_whole(http, url, files, unchanged):
    good = files["ct/4.dcm"]
    response = http.post(url + "/instances", data=zip_of([("a/good.dcm", good), ("a/readme.txt", b"not DICOM")]))
    assert_error(response, 400, 15, "Bad file format")
    assert http.get(f"{url}/instances/{ids_of(good)['instances']}").status_code == 404


def test_zip_with_a_truncated_member_is_rejected_whole(http, url, files, unchanged):
    good, cut = files["ct/4.dcm"], files["ct/5.dcm"][:700]
    response = http.post(url + "/instances", data=zip_of([("good.dcm", good), ("cut.dcm", cut)]))
    assert_error(response, 400, 15, "Bad file format")
    assert http.get(f"{url}/instances/{ids_of(good)['instances']}").status_code == 404


@pytest.mark.parametrize("member", ["../../evil.dcm", "/abs.dcm", "ok/../../evil.dcm", "..\\..\\evil.dcm"])
def test_zip_slip_member_names_are_rejected(spawned_pacsbox, http, url, files, unchanged, member):
    good = files["ct/4.dcm"]
    response = http.post(url + "/instances", data=zip_of([("fine.dcm", files["ct/5.dcm"]), (member, good)]))
    assert_error(response, 400, 15, "Bad file format")
    assert http.get(f"{url}/instances/{ids_of(good)['instances']}").status_code == 404
    root = Path(spawned_pacsbox.directory)
    assert not list(root.rglob("evil.dcm")) and not (root.parent / "evil.dcm").exists()
    assert not Path("/abs.dcm").exists()


@pytest.mark.parametrize("kind", ["cut-in-half", "magic-then-zeros", "central-directory-garbage"])
def test_corrupt_zip_is_400(http, url, files, unchanged, kind):
    archive = zip_of([("a.dcm", files["ct/4.dcm"]), ("b.dcm", files["ct/5.dcm"])])
    data = {
        "cut-in-half": archive[: len(archive) // 2],
        "magic-then-zeros": b"PK\x03\x04" + b"\x00" * 200,
        "central-directory-garbage": archive[:-40] + b"\xff" * 40,
    }[kind]
    response = http.post(url + "/instances", data=data)
    assert_error(response, 400, 15, "Bad file format")


def test_unauthenticated_upload_stores_nothing(url, files, unchanged):
    response = requests.post(url + "/instances", data=files["ct/4.dcm"])
    assert response.status_code == 401
    response = requests.post(url + "/instances", data=files["ct/4.dcm"], auth=("admin", "wrong"))
    assert response.status_code == 401


# -- unknown resources -----------------------------------------------------------------------------------------

def _unknown_routes(public_id: str) -> list[tuple[str, str]]:
    routes = []
    for level in ("patients", "studies", "series", "instances"):
        one = f"/{level}/{public_id}"
        routes += [("GET", one), ("DELETE", one), ("GET", one + "/statistics"), ("GET", one + "/metadata"),
                   ("GET", one + "/metadata/LastUpdate"), ("PUT", one + "/metadata/Sample"),
                   ("DELETE", one + "/metadata/Sample")]
    for level, subroutes in {
        "patients": ["studies", "series", "instances", "shared-tags", "archive"],
        "studies": ["patient", "series", "instances", "shared-tags", "archive"],
        "series": ["patient", "study", "instances", "shared-tags", "archive"],
        "instances": ["patient", "study", "series", "file", "tags", "simplified-tags", "header", "frames",
                      "content", "content/0010-0010"],
    }.items():
        routes += [("GET", f"/{level}/{public_id}/{sub}") for sub in subroutes]
    routes += [("POST", f"/{level}/{public_id}/archive") for level in ("patients", "studies", "series")]
    return routes


@pytest.mark.parametrize("method,path", _unknown_routes(UNKNOWN) + _unknown_routes("not-an-id"))
def test_unknown_id_is_404(http, url, unchanged, method, path):
    kwargs = {"data": b"x"} if method == "PUT" else {"json": {}} if method == "POST" else {}
    response = http.request(method, url + path, **kwargs)
    assert_error(response, 404, 17, "Unknown resource")


def test_unknown_id_in_create_archive_is_404(http, url, baseline, unchanged):
    known = next(iter(baseline.files))
    response = http.post(url + "/tools/create-archive", json=[known, UNKNOWN])
    assert_error(response, 404, 17, "Unknown resource")


@pytest.mark.parametrize("given,under", [
    ("studies", "series"), ("studies", "instances"), ("studies", "patients"),
    ("patients", "studies"), ("series", "instances"), ("instances", "series"),
])
def test_id_of_the_wrong_level_is_404(http, url, files, unchanged, given, under):
    """Orthanc checks the level on the resource itself and its metadata (some of its sub-routes do not)."""
    public_id = ids_of(files["ct/1.dcm"])[given]
    suffixes = ["", "/metadata", "/metadata/LastUpdate"] + (["/file", "/tags"] if under == "instances" else [])
    for suffix in suffixes:
        response = http.get(f"{url}/{under}/{public_id}{suffix}")
        assert_error(response, 404, 17, "Unknown resource")
    response = http.delete(f"{url}/{under}/{public_id}")
    assert_error(response, 404, 17, "Unknown resource")


# -- /tools/find -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b"\"Patient\"", b"\xff\xfe"],
                         ids=["broken", "empty", "array", "string", "not-utf8"])
def test_find_needs_a_json_object(http, url, unchanged, body):
    response = http.post(url + "/tools/find", data=body)
    assert_error(response, 400, 8, "Bad request", "The body must contain a JSON object")


@pytest.mark.parametrize("body,details", [
    ({"Level": "Patient", "Query": {"PatientID": 5}}, 'Tag "PatientID" should be associated with a string'),
    ({"Level": "Patient", "Query": {}, "Limit": "x"}, 'Field "Limit" should be an integer'),
    ({"Level": "Patient", "Query": {}, "Since": "x"}, 'Field "Since" should be an integer'),
    ({"Level": "Patient", "Query": {}, "CaseSensitive": "yes"}, 'Field "CaseSensitive" should be a Boolean'),
    ({"Level": "Patient"}, 'Field "Query" is missing, or should be a JSON object'),
    ({"Query": {}}, 'Field "Level" is missing, or should be a string'),
])
def test_find_with_wrong_json_types_is_400(http, url, unchanged, body, details):
    response = http.post(url + "/tools/find", json=body)
    assert_error(response, 400, 8, "Bad request", details)


@pytest.mark.parametrize("body", [
    {"Level": "Patient", "Query": []},
    {"Level": "Patient", "Query": {}, "Expand": "yes"},
    {"Level": 3, "Query": {}},
], ids=["query-list", "expand-string", "level-number"])
def test_find_with_other_wrong_types_is_400(http, url, unchanged, body):
    """Orthanc 1.10.1 answers 500 to these; a client mistake deserves a 400 with the error body."""
    response = http.post(url + "/tools/find", json=body)
    assert_error(response, 400, None, None)


@pytest.mark.parametrize("level", ["Bogus", "Patients?", ""])
def test_find_with_an_unknown_level_is_400(http, url, unchanged, level):
    response = http.post(url + "/tools/find", json={"Level": level, "Query": {}})
    assert_error(response, 400, 3, "Parameter out of range")


@pytest.mark.parametrize("tag", ["NoSuchTag", "PatientsName", "zzzz,0010"])
def test_find_with_an_unknown_tag_is_4xx(http, url, unchanged, tag):
    response = http.post(url + "/tools/find", json={"Level": "Patient", "Query": {tag: "x"}})
    assert_error(response, 400, 27, "Unknown DICOM tag")


# -- lists, metadata, lookup -----------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["since=x&limit=2", "since=0&limit=y"])
def test_list_paging_with_a_non_integer_is_400(http, url, unchanged, query):
    """Orthanc 1.10.1: 400, OrthancStatus 5 "Bad type for a parameter"."""
    response = http.get(f"{url}/instances?{query}")
    assert_error(response, 400, 5, "Bad type for a parameter")


def test_metadata_writes_are_checked(http, url, baseline, unchanged):
    instance_id = next(iter(baseline.files))
    base = f"{url}/instances/{instance_id}/metadata"
    assert http.put(base + "/Origin", data=b"forged").status_code == 403
    assert_error(http.put(base + "/NotDeclared", data=b"x"), 404, 7, "Accessing an inexistent item")
    assert_error(http.get(base + "/Sample"), 404, 7, "Accessing an inexistent item")
    assert http.get(base + "/Origin").text == "RestApi"


def test_empty_lookup_finds_nothing(http, url, unchanged):
    """Orthanc 1.10.1 answers 200 with an empty list."""
    response = http.post(url + "/tools/lookup", data=b"")
    assert response.status_code == 200, response.text
    assert response.json() == []


# -- authentication, routes, methods ---------------------------------------------------------------------------

@pytest.mark.parametrize("auth", [None, ("admin", "wrong"), ("intruder", "admin"), ("", "")],
                         ids=["none", "wrong-password", "unknown-user", "empty"])
@pytest.mark.parametrize("method,path", [("GET", "/system"), ("GET", "/patients"), ("POST", "/tools/find"),
                                         ("DELETE", "/changes")])
def test_missing_or_wrong_credentials_are_401(url, unchanged, auth, method, path):
    response = requests.request(method, url + path, auth=auth, json={"Level": "Patient", "Query": {}})
    body = assert_error(response, 401, None, None)
    assert body["HttpError"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_malformed_authorization_header_is_401(url, unchanged):
    for header in ("Basic !!!not-base64!!!", "Bearer abc", "Basic", "Basic YWRtaW4="):  # the last: "admin", no ':'
        response = requests.get(url + "/system", headers={"Authorization": header})
        assert_error(response, 401, None, None)


@pytest.mark.parametrize("method,path", [("GET", "/nowhere"), ("GET", "/tools/nothing"), ("POST", "/tools/nothing"),
                                         ("GET", f"/instances/{UNKNOWN}/nonsense"), ("GET", "/patients/a/b/c/d")])
def test_unknown_route_is_404(http, url, unchanged, method, path):
    response = http.request(method, url + path)
    assert_error(response, 404, 17, "Unknown resource")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/system", {"GET"}),
    ("POST", "/statistics", {"GET"}),
    ("PUT", "/instances", {"GET", "POST"}),
    ("POST", "/patients", {"GET"}),
    ("GET", "/tools/find", {"POST"}),
    ("PUT", "/changes", {"GET", "DELETE"}),
])
def test_wrong_method_is_405(http, url, unchanged, method, path, allowed):
    response = http.request(method, url + path, data=b"x" if method in ("PUT", "POST") else None)
    assert_error(response, 405, None, None)
    listed = {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD"}
    assert listed == allowed


# -- MaximumUploadSize ---------------------------------------------------------------------------------------

def _big_file() -> bytes:
    ds = make_dataset(patient_id="PBX-BIG", patient_name="Big^Body", study_uid=uid("study", "PBX-BIG"),
                      series_uid=uid("series", "PBX-BIG"), sop_uid=uid("instance", "PBX-BIG"), rows=64, cols=64)
    return to_bytes(ds)


def test_body_over_maximum_upload_size_is_413(files):
    small, big = files["ct/1.dcm"], _big_file()
    limit = len(small) + 10
    assert len(big) > 2 * limit
    with RunningPacsbox({"MaximumUploadSize": limit}) as server:
        http = server.session()
        response = http.post(server.url + "/instances", data=big)
        body = assert_error(response, 413, None, None)
        assert body["HttpError"] == "Request Entity Too Large"
        assert "MaximumUploadSize" in body.get("Details", "")
        response = http.post(server.url + "/instances", data=zip_of([("a.dcm", small), ("b.dcm", big)]))
        assert_error(response, 413, None, None)
        assert http.get(server.url + "/instances").json() == []
        assert http.get(server.url + "/statistics").json()["CountInstances"] == 0
        # a body within the limit still goes in, and the server still answers
        response = http.post(server.url + "/instances", data=small)
        assert response.status_code == 200, response.text
        assert http.get(server.url + "/instances").json() == [ids_of(small)["instances"]]


# -- afterwards ------------------------------------------------------------------------------------------------

def test_server_still_answers(http, url, baseline):
    assert http.get(url + "/system").json()["Version"] == "1.10.1"
    assert_unchanged(http, url, baseline)
    response = http.post(url + "/tools/find", json={"Level": "Instance", "Query": {"PatientID": "PBX-001"}})
    assert sorted(response.json()) == sorted(
        ids_of(data)["instances"] for data in baseline.files.values()
        if pydicom.dcmread(io.BytesIO(data), force=True).PatientID == "PBX-001")
