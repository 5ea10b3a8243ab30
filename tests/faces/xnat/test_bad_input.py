"""Bad input gets a clear 4xx in plain text and leaves everything as it was: the archive seen through the Orthanc
face, the XNAT listings, the prearchive, and the XNAT folders on disk."""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass

import pytest
import requests

from tests.support.dicomgen import zip_of
from tests.support.pacsbox_proc import RunningPacsbox

from .helpers import mr_session, tree

IMPORT = "/data/services/import"


@dataclass
class Snapshot:
    statistics: dict
    instances: list
    experiments: list
    prearchive: list
    files: dict


def snapshot(http: requests.Session, server) -> Snapshot:
    url = server.url
    return Snapshot(
        statistics=http.get(url + "/statistics").json(),
        instances=sorted(http.get(url + "/instances").json()),
        experiments=http.get(url + "/data/experiments", params={"format": "json"}).json()["ResultSet"]["Result"],
        prearchive=http.get(url + "/data/prearchive/projects", params={"format": "json"}).json()["ResultSet"]["Result"],
        files={**tree(server.data_dir / "archive"), **{"pre/" + k: v for k, v in
                                                        tree(server.data_dir / "prearchive").items()}},
    )


@pytest.fixture(scope="module")
def baseline(xnat_server):
    """A project with a session, a resource and a prearchive session, before any bad request."""
    http = xnat_server.session()
    url = xnat_server.url
    http.put(url + "/data/projects/BAD")
    response = http.post(url + IMPORT, params={"project": "BAD", "subject": "s", "session": "good", "dest": "/archive"},
                         data=zip_of(mr_session("good", series=1, per_series=2)))
    assert response.status_code == 200, response.text
    http.put(url + "/data/projects/BAD/resources/DOCS/files/readme.txt", data=b"kept")
    assert http.post(url + IMPORT, params={"project": "BAD", "dest": "/prearchive"},
                     data=zip_of(mr_session("waiting", series=1, per_series=1))).status_code == 200
    return snapshot(http, xnat_server)


def assert_rejected(response: requests.Response, status: int, words: str, http, server, baseline: Snapshot) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert not response.text.startswith(("<!DOCTYPE", "<html>"))
    assert words.lower() in response.text.lower(), response.text
    assert snapshot(http, server) == baseline


def _zip_with(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_corrupt_zip_to_the_import_service(http, xnat_server, baseline):
    body = zip_of(mr_session("corrupt", series=1, per_series=2))
    damaged = body[:60] + bytes(b ^ 0x5A for b in body[60:400]) + body[400:]
    response = http.post(xnat_server.url + IMPORT, params={"project": "BAD", "dest": "/archive", "subject": "x",
                                                          "session": "x"}, data=damaged)
    assert_rejected(response, 400, "archive", http, xnat_server, baseline)


def test_truncated_member_rejects_the_whole_import(http, xnat_server, baseline):
    files = mr_session("partial", series=1, per_series=3)
    files[-1] = (files[-1][0], files[-1][1][:300])  # the last file cut short: nothing of the others is stored
    response = http.post(xnat_server.url + IMPORT, params={"project": "BAD", "dest": "/archive", "subject": "x",
                                                          "session": "x"}, data=zip_of(files))
    assert_rejected(response, 400, "not a DICOM file", http, xnat_server, baseline)


def test_zip_slip_entry_to_the_import_service(http, xnat_server, baseline):
    files = mr_session("slip", series=1, per_series=2)
    body = _zip_with([files[0], ("../../escaped.dcm", files[1][1])])
    response = http.post(xnat_server.url + IMPORT, params={"project": "BAD", "dest": "/archive", "subject": "x",
                                                          "session": "x"}, data=body)
    assert_rejected(response, 400, "unsafe", http, xnat_server, baseline)


def test_zip_slip_entry_in_an_extracted_upload(http, xnat_server, baseline):
    body = _zip_with([("fine.txt", b"fine"), ("sub/../../../../escaped.txt", b"evil")])
    url = xnat_server.url + "/data/projects/BAD/resources/DOCS/files/upload.zip"
    response = http.put(url, params={"extract": "true"}, data=body)
    assert_rejected(response, 400, "unsafe", http, xnat_server, baseline)
    assert not list(xnat_server.directory.rglob("escaped.txt"))


def test_absolute_name_and_link_in_an_extracted_tar(http, xnat_server, baseline):
    url = xnat_server.url + "/data/projects/BAD/resources/DOCS/files/upload.tar"
    for member in ("absolute", "symlink"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("ok.txt")
            info.size = 2
            archive.addfile(info, io.BytesIO(b"ok"))
            if member == "absolute":
                info = tarfile.TarInfo("/tmp/escaped.txt")
                info.size = 4
                archive.addfile(info, io.BytesIO(b"evil"))
            else:
                info = tarfile.TarInfo("link")
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
        response = http.put(url, params={"extract": "true"}, data=buffer.getvalue())
        assert_rejected(response, 400, "unsafe", http, xnat_server, baseline)


def test_file_path_with_dot_dot(http, xnat_server, baseline):
    # encoded, so that no client library folds the dots away before sending
    url = xnat_server.url + "/data/projects/BAD/resources/DOCS/files/%2E%2E/%2E%2E/escaped.txt"
    response = http.put(url, data=b"evil")
    assert_rejected(response, 400, "..", http, xnat_server, baseline)
    assert not list(xnat_server.directory.rglob("escaped.txt"))


def test_non_dicom_zip_to_the_import_service(http, xnat_server, baseline):
    body = _zip_with([("notes.txt", b"not dicom"), ("image.png", b"\x89PNG....")])
    params = {"project": "BAD", "dest": "/archive", "subject": "x", "session": "x"}
    # XNAT leaves the non-DICOM members of a zip: one of nothing else holds no DICOM at all
    response = http.post(xnat_server.url + IMPORT, params=params, data=body)
    assert_rejected(response, 400, "no DICOM", http, xnat_server, baseline)
    response = http.post(xnat_server.url + IMPORT, params={**params, "Ignore-Unparsable": "true"}, data=body)
    assert_rejected(response, 400, "no DICOM", http, xnat_server, baseline)


def test_a_single_non_dicom_body_is_refused_unless_ignored(http, xnat_server, baseline):
    params = {"project": "BAD", "dest": "/archive", "subject": "x", "session": "x"}
    response = http.post(xnat_server.url + IMPORT, params=params, data=b"plain text, no archive, no DICOM" * 8)
    assert_rejected(response, 400, "not a DICOM file", http, xnat_server, baseline)


def test_the_dicom_members_beside_others_are_imported(http, xnat_server, baseline):
    files = mr_session("mixed", series=1, per_series=2)
    body = _zip_with([*files, ("notes.txt", b"not dicom"), ("snapshot.gif", b"GIF89a....")])
    params = {"project": "BAD", "dest": "/archive", "subject": "mixed", "session": "mixed"}
    response = http.post(xnat_server.url + IMPORT, params=params, data=body)
    assert response.status_code == 200, response.text
    listing = http.get(xnat_server.url + response.text.strip() + "/scans/1/resources/DICOM/files",
                       params={"format": "json"}).json()
    assert listing["ResultSet"]["totalRecords"] == "2"
    http.delete(xnat_server.url + response.text.strip(), params={"removeFiles": "true"})
    assert snapshot(http, xnat_server) == baseline


def test_unknown_project(http, xnat_server, baseline):
    url = xnat_server.url
    body = zip_of(mr_session("orphan", series=1, per_series=1))
    for params in ({"project": "NOPE", "dest": "/archive", "subject": "x", "session": "x"},
                   {"dest": "/archive/projects/NOPE/subjects/x/experiments/x"},
                   {"project": "NOPE", "dest": "/prearchive"}):
        assert_rejected(http.post(url + IMPORT, params=params, data=body), 404, "Unknown project: NOPE", http,
                        xnat_server, baseline)
    assert_rejected(http.put(url + "/data/projects/NOPE/subjects/s1"), 404, "Unknown project", http, xnat_server,
                    baseline)
    pending = baseline.prearchive[0]["url"]
    assert_rejected(http.post(url + "/data/services/prearchive/move", params={"src": pending, "newProject": "NOPE"}),
                    404, "Unknown project", http, xnat_server, baseline)
    assert_rejected(http.post(url + "/data/services/archive", params={"src": pending, "project": "NOPE"}),
                    404, "Unknown project", http, xnat_server, baseline)


def test_other_client_mistakes(http, xnat_server, baseline):
    url = xnat_server.url
    cases = [
        (http.put(url + "/data/projects/BAD/subjects/s/experiments/typeless"), 400, "xsiType"),
        (http.get(url + "/data/projects/BAD/subjects/nobody"), 404, "Unknown subject"),
        (http.get(url + "/data/experiments/XNAT_E99999"), 404, "Unknown experiment"),
        (http.get(url + "/data/projects/BAD/resources/DOCS/files/missing.txt"), 404, "Unknown file"),
        (http.get(url + "/data/no/such/route"), 404, "No XNAT resource"),
        (http.post(url + "/data/projects/BAD"), 405, "not allowed"),
        (http.post(url + IMPORT, data=b""), 400, "needs a zip"),
        (http.post(url + IMPORT, params={"dest": "/elsewhere"}, data=b"x"), 400, "dest"),
        (http.post(url + "/data/services/archive", params={"src": "/data/prearchive/projects/BAD/1/none"}), 404,
         "Unknown prearchive session"),
        (http.post(url + "/data/services/archive", params={"src": "/data/archive/projects/BAD"}), 400, "src"),
        (http.put(url + "/data/projects/BAD/resources/DOCS/files/readme.txt", data=b"changed"), 409,
         "already exists"),
        (http.get(url + "/data/projects", params={"format": "yaml"}), 400, "format"),
        (requests.get(url + "/data/projects"), 401, "Login"),
    ]
    for response, status, words in cases:
        assert_rejected(response, status, words, http, xnat_server, baseline)


def test_upload_over_the_size_limit():
    with RunningPacsbox({"MaximumUploadSize": 4096}) as server:
        http = server.session()
        http.put(server.url + "/data/projects/SMALL")
        response = http.put(server.url + "/data/projects/SMALL/resources/R/files/big.bin", data=b"x" * 10000)
        assert response.status_code == 413
        assert not response.text.startswith(("<!DOCTYPE", "<html>"))
        response = http.post(server.url + IMPORT, params={"project": "SMALL"}, data=b"x" * 10000)
        assert response.status_code == 413
        assert tree(server.data_dir / "archive") == {}
        assert http.get(server.url + "/statistics").json()["CountInstances"] == 0


def test_labels_that_cannot_be_folders_or_sessions(http, xnat_server, baseline):
    url = xnat_server.url
    one = mr_session("label_a", series=1, per_series=1)
    two = mr_session("label_b", series=1, per_series=1)
    # two studies cannot both become the one session the query names
    response = http.post(url + IMPORT, params={"project": "BAD", "subject": "s", "session": "same", "dest": "/archive"},
                         data=zip_of(one + two))
    assert_rejected(response, 400, "2 studies", http, xnat_server, baseline)
    for session in ("..", "a/b"):
        response = http.post(url + IMPORT, params={"project": "BAD", "session": session, "dest": "/prearchive"},
                             data=zip_of(one))
        assert_rejected(response, 400, "session label", http, xnat_server, baseline)
