"""Values from DICOM files and from requests never become paths outside the data folder (issue 15), on a real
``pacsbox serve`` with real clients (pynetdicom C-STORE, requests):

* every place that builds a path from such a value gets absolute paths, ``..`` at every depth, both separators,
  NUL, 300-character values, unicode, and values that are equal once cleaned: SeriesNumber (scan IDs),
  PatientID / PatientName / Patient Comments (prearchive and session labels) over C-STORE and through the import
  service; project, subject, session, scan and resource labels and file names over REST;
* a canary folder beside the data folder (files and a ``DICOM`` folder, as the attack aimed at) keeps every
  entry, size, modification time and link count, and nothing new appears beside the data folder;
* nothing answers 5xx, listings keep working, the data lands and reads back, values that clean to the same label
  stay distinct objects, deletes through the Orthanc face remove only files inside the data folder, and every
  member of every zip download is a safe relative name.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests
from pydicom import dcmread
from pynetdicom import AE

from tests.support.dicomgen import MR_IMAGE_STORAGE, make_dataset, to_bytes, uid, zip_of
from tests.support.pacsbox_proc import RunningPacsbox

XNAT_LABEL = re.compile(r"[A-Za-z0-9_-]+")
PROJECT = "PATHS"


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"XnatSiteId": "PathSafe", "StableAge": 1}) as running:
        yield running


@pytest.fixture(scope="module")
def canary(server):
    """A folder beside the data folder, shaped like the attack's target (``<dir>/DICOM/<files>``)."""
    folder = server.directory / "canary"
    (folder / "DICOM").mkdir(parents=True)
    (folder / "DICOM" / "keep.dcm").write_bytes(b"canary dicom")
    (folder / "keep.txt").write_text("canary")
    return folder


@pytest.fixture(scope="module")
def outside(server, canary):
    """The tree beside the data folder before any hostile input; checked unchanged by ``assert_outside``."""
    http = server.session()
    assert http.put(server.url + f"/data/projects/{PROJECT}").status_code in (200, 201)
    return tree_beside(server)


def tree_beside(server: RunningPacsbox) -> dict[str, tuple]:
    """Every entry under the server's folder but its data folder: kind, size, mtime, link count, inode."""
    found = {}
    for folder, dirs, names in os.walk(server.directory):
        if Path(folder) == server.directory:
            dirs.remove("data")
        for name in dirs + names:
            path = Path(folder) / name
            info = path.lstat()
            found[str(path.relative_to(server.directory))] = (info.st_mode, info.st_size, info.st_mtime_ns,
                                                               info.st_nlink, info.st_ino)
    return found


def assert_outside(server: RunningPacsbox, before: dict[str, tuple]) -> None:
    assert tree_beside(server) == before
    for folder, _, names in os.walk(server.data_dir):
        for name in names:
            path = Path(folder) / name
            assert not path.is_symlink(), path
            assert Path(os.path.realpath(path)).is_relative_to(server.data_dir.resolve()), path


def hostile_values(canary: Path) -> list[str]:
    """Values a DICOM tag or a label may hold that a careless join turns into a path elsewhere."""
    return [
        str(canary), str(canary) + "/", str(canary / "DICOM"), "/", "..", ".", "../..",
        *("../" * depth + "canary" for depth in range(1, 9)), *("..\\" * depth + "canary" for depth in (5, 6, 7)),
        "\\\\server\\share", "C:\\canary", "a\x00b", "x" * 300, "é" * 150, "名前",
        "a/b", "a_b", "a b", "a.b",  # one label once cleaned: four scans still
    ]


def c_store(server: RunningPacsbox, files: list[bytes]) -> None:
    ae = AE(ae_title="PATHSCU")
    ae.add_requested_context(MR_IMAGE_STORAGE, "1.2.840.10008.1.2.1")
    association = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert association.is_established
    try:
        for data in files:
            status = association.send_c_store(dcmread(io.BytesIO(data)))
            assert status.Status == 0x0000, status
    finally:
        association.release()


def study(key: str, series_numbers: list[str], *, patient_id: str = "", patient_name: str = "",
          tags: dict | None = None) -> list[bytes]:
    """One MR instance per series, each series numbered by a (hostile) text: LO on the wire, UTF-8."""
    files = []
    for index, number in enumerate(series_numbers):
        extra = {0x00200011: ("LO", number), "SpecificCharacterSet": "ISO_IR 192", **(tags or {})}
        dataset = make_dataset(patient_id=patient_id or f"PID-{key}", patient_name=patient_name or f"Path^{key}",
                               study_uid=uid("study", key), series_uid=uid("series", key, index),
                               sop_uid=uid("sop", key, index), modality="MR", extra=extra)
        files.append(to_bytes(dataset))
    return files


def segment(value: str) -> str:
    """``value`` as one URL path segment: every reserved character escaped, dots too (no client may fold
    ``..`` away before the server sees it)."""
    return quote(value, safe="", errors="surrogatepass").replace(".", "%2E")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def listed_paths(listing: list[dict]) -> set[str]:
    """The resource paths of a file listing (its ``Name`` is the last part only)."""
    return {unquote(row["URI"].split("/files/", 1)[1]) for row in listing}


def get(http: requests.Session, tally, url: str, what: str, **params) -> requests.Response:
    answer = http.get(url, params=params)
    tally.read(what, answer.status_code)
    assert answer.status_code == 200, (what, answer.status_code, answer.text[:300])
    return answer


def rows(http, tally, url: str, what: str) -> list[dict]:
    return get(http, tally, url, what, format="json").json()["ResultSet"]["Result"]


def assert_safe_zip(body: bytes, expected_files: int) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
    assert len(names) == expected_files, names
    for name in names:
        assert not name.startswith("/") and "\\" not in name and ":" not in name, name
        assert all(part.strip(".") for part in name.split("/")), name
        assert all(len(part.encode()) <= 255 for part in name.split("/")), name
    return names


def lookup(http, server, uid_value: str) -> str:
    return http.post(server.url + "/tools/lookup", data=uid_value).json()[0]["ID"]


# -- C-STORE into the prearchive --------------------------------------------------------------------------------
def test_cstore_values_land_in_the_prearchive_and_never_leave_the_data_folder(server, canary, outside, http,
                                                                              tally):
    values = hostile_values(canary)
    hostile = study("hostile", values, patient_name="../../canary")
    dotted = study("dotted", [str(canary)], patient_id="..", patient_name="..", tags={
        "PatientComments": f"Project:.. Subject:/etc Session:{canary}", "StudyDescription": "..",
        "AccessionNumber": "..", "SeriesDescription": ".."})
    c_store(server, hostile + dotted)
    for _ in values:
        tally.count("C-STORE SeriesNumber", "c-store")
    # the attack's trigger: any prearchive listing links the received files into the session's folders
    get(http, tally, server.url + "/data/prearchive", "/data/prearchive")
    assert_outside(server, outside)
    # a 300-character PatientID made every prearchive listing answer 500 for everyone until it was deleted
    c_store(server, study("long", ["1"], patient_id="P" * 300))
    tally.count("C-STORE PatientID", "c-store")
    for url in ("/data/prearchive", "/data/prearchive/projects", "/data/prearchive/projects/Unassigned"):
        get(http, tally, server.url + url, url)
    sessions = {row["tag"]: row for row in rows(http, tally, server.url + "/data/prearchive/projects", "sessions")}
    long_row, dotted_row = sessions[uid("study", "long")], sessions[uid("study", "dotted")]
    hostile_row = sessions[uid("study", "hostile")]
    for row in (long_row, dotted_row, hostile_row):
        assert XNAT_LABEL.fullmatch(row["name"]) and len(row["name"]) <= 64, row
        assert XNAT_LABEL.fullmatch(row["subject"]), row
    assert (hostile_row["subject"], dotted_row["subject"]) == ("canary", "etc")
    assert len(rows(http, tally, server.url + "/data" + long_row["url"] + "/scans", "scans")) == 1
    # PatientIDs equal once cleaned, or alike over their first 300 characters: still one session per study
    alike = {"a/b": "alike1", "a b": "alike2", "P" * 300 + "1": "alike3", "P" * 300 + "2": "alike4"}
    for patient_id, key in alike.items():
        c_store(server, study(key, ["7"], patient_id=patient_id))
        tally.count("C-STORE PatientID", "c-store")
    sessions = {row["tag"]: row for row in rows(http, tally, server.url + "/data/prearchive/projects", "sessions")}
    urls = {sessions[uid("study", key)]["url"] for key in alike.values()}
    assert len(urls) == len(alike)
    assert sessions[uid("study", "alike3")]["name"] != sessions[uid("study", "alike4")]["name"]
    for url in urls:
        scans = rows(http, tally, server.url + "/data" + url + "/scans", "scans")
        assert [scan["ID"] for scan in scans] == ["7"]
        assert len(rows(http, tally, f"{server.url}/data{url}/scans/7/resources/DICOM/files", "files")) == 1
    session_url = server.url + "/data" + hostile_row["url"]
    scans = rows(http, tally, session_url + "/scans", "scans")
    assert len(scans) == len(values) and len({scan["ID"] for scan in scans}) == len(values)
    assert all(XNAT_LABEL.fullmatch(scan["ID"]) and len(scan["ID"]) <= 70 for scan in scans), scans
    sent = {uid("sop", "hostile", index) for index in range(len(values))}  # C-STORE re-encodes: compare instances
    for scan in scans:
        files = rows(http, tally, f"{session_url}/scans/{scan['ID']}/resources/DICOM/files", "files")
        assert len(files) == 1
        body = get(http, tally, server.url + files[0]["URI"], "file").content
        sent.remove(dcmread(io.BytesIO(body)).SOPInstanceUID)
    zipped = get(http, tally, session_url, "zip", format="zip").content
    assert_safe_zip(zipped, len(values))
    # the Orthanc face's own zip: a PatientID, StudyDescription and SeriesDescription of ".." make no ".." folder
    study_id = lookup(http, server, uid("study", "dotted"))
    assert_safe_zip(get(http, tally, server.url + f"/studies/{study_id}/archive", "orthanc zip").content, 1)
    assert_outside(server, outside)

    # archived into a project, the scans keep their safe IDs; deleting through the Orthanc face stays inside
    answer = http.post(server.url + "/data/services/archive", params={"src": hostile_row["url"], "project": PROJECT})
    tally.count("archive", "archive", answer.status_code)
    assert answer.status_code == 200, answer.text
    experiment = answer.text.strip().rsplit("/", 1)[-1]
    archived = rows(http, tally, server.url + f"/data/experiments/{experiment}/scans", "archived scans")
    assert sorted(scan["ID"] for scan in archived) == sorted(scan["ID"] for scan in scans)
    zipped = get(http, tally, server.url + f"/data/experiments/{experiment}/scans/ALL/files", "zip", format="zip")
    assert_safe_zip(zipped.content, len(values))
    for number in range(len(values)):
        series = lookup(http, server, uid("series", "hostile", number))
        answer = http.delete(server.url + f"/series/{series}")
        tally.count("Orthanc DELETE", "delete", answer.status_code)
        assert answer.status_code == 200
    assert all(not rows(http, tally, server.url + f"/data/experiments/{experiment}/scans/{scan['ID']}/resources/"
                                                  "DICOM/files", "files after delete") for scan in archived)
    get(http, tally, server.url + "/data/prearchive/projects", "listing after delete")
    assert_outside(server, outside)


# -- the import service -------------------------------------------------------------------------------------------
def test_imported_values_stay_inside_and_orthanc_deletes_stay_inside(server, canary, outside, http, tally):
    values = hostile_values(canary)
    to_archive = study("imported", values)
    answer = http.post(server.url + "/data/services/import", data=zip_of([(f"{n}.dcm", d) for n, d in
                                                                          enumerate(to_archive)]),
                       params={"project": PROJECT, "subject": "imp", "session": "imported", "dest": "/archive"})
    tally.count("import SeriesNumber", "import", answer.status_code)
    assert answer.status_code == 200, answer.text
    experiment = answer.text.strip().rsplit("/", 1)[-1]
    scans = rows(http, tally, server.url + f"/data/experiments/{experiment}/scans", "scans")
    assert len({scan["ID"] for scan in scans}) == len(values)
    assert all(XNAT_LABEL.fullmatch(scan["ID"]) for scan in scans)
    names = assert_safe_zip(get(http, tally, server.url + f"/data/experiments/{experiment}/files", "zip",
                                format="zip").content, len(values))
    assert all(name.startswith("imported/scans/") for name in names)
    # labels from the DICOM itself, into the prearchive
    labelled = study("labelled", ["../../canary", str(canary)], patient_id="x" * 300, tags={
        "PatientComments": "Subject:../../canary Session:..\\..\\canary"})
    answer = http.post(server.url + "/data/services/import", data=zip_of([(f"{n}.dcm", d) for n, d in
                                                                          enumerate(labelled)]))
    tally.count("import labels", "import", answer.status_code)
    assert answer.status_code == 200, answer.text
    pending = answer.text.strip()
    assert XNAT_LABEL.fullmatch(pending.rsplit("/", 1)[-1]), pending
    assert len(rows(http, tally, server.url + pending + "/scans", "scans")) == 2
    # the attack: Orthanc DELETE of every instance the XNAT folders link
    for number in range(len(values)):
        answer = http.delete(server.url + f"/instances/{lookup(http, server, uid('sop', 'imported', number))}")
        tally.count("Orthanc DELETE", "delete", answer.status_code)
        assert answer.status_code == 200
    assert rows(http, tally, server.url + f"/data/experiments/{experiment}/scans/ALL/files", "files") == []
    assert (canary / "DICOM" / "keep.dcm").read_bytes() == b"canary dicom"
    assert_outside(server, outside)


# -- labels over REST ---------------------------------------------------------------------------------------------
def test_rest_labels_outside_xnat_characters_are_refused_in_plain_text(server, canary, outside, http, tally):
    base = server.url + f"/data/projects/{PROJECT}"
    bad = [v for v in hostile_values(canary) if v not in ("a_b",)] + ["a%b", "x" * 256, "\udcff"]
    targets = [("/data/projects/{}", {}), (f"/data/projects/{PROJECT}/subjects/{{}}", {}),
               (f"/data/projects/{PROJECT}/subjects/restsubj/experiments/{{}}", {"xsiType": "xnat:mrSessionData"})]
    for template, params in targets:
        for value in bad:
            url = server.url + template.format(segment(value))
            answer = http.put(url, params=params)
            tally.count("REST label", f"PUT {template} {value[:40]!r}", answer.status_code)
            assert 400 <= answer.status_code < 500, (template, value, answer.status_code, answer.text[:200])
            assert answer.headers["content-type"].startswith("text/plain")
    # relabelling is checked too
    assert http.put(base + "/subjects/restsubj").status_code in (200, 201)
    for value in ("../../canary", str(canary), "a.b"):
        answer = http.put(base + "/subjects/restsubj", params={"label": value})
        tally.count("REST relabel", "relabel", answer.status_code)
        assert answer.status_code == 400, answer.text
    assert "Invalid character in" in answer.text
    get(http, tally, base + "/subjects", "subjects")
    assert_outside(server, outside)


def test_resource_labels_and_scan_ids_that_clean_alike_stay_apart(server, canary, outside, http, tally):
    base = server.url + f"/data/projects/{PROJECT}"
    assert http.put(base + "/subjects/res/experiments/resexp", params={"xsiType": "xnat:mrSessionData"}) \
        .status_code in (200, 201)
    labels = ["a b", "a_b", "a%20b", "a%b", ".hidden", "é", "e\u0301", "名前", "x:y", "y" * 255, "-rf"]
    for label in labels:
        answer = http.put(f"{base}/resources/{segment(label)}/files/f.txt", data=label.encode())
        tally.count("resource label", label, answer.status_code)
        assert answer.status_code == 200, (label, answer.text)
        answer = http.put(f"{base}/subjects/res/experiments/resexp/scans/{segment(label)}",
                          params={"xsiType": "xnat:mrScanData"})
        tally.count("scan ID", label, answer.status_code)
        assert answer.status_code in (200, 201), (label, answer.text)
    for refused in ("..", "a\\b", "a\x01b", "é" * 128):
        answer = http.put(f"{base}/resources/{segment(refused)}")
        tally.count("resource label", refused, answer.status_code)
        assert answer.status_code in (400, 404), (refused, answer.status_code)
    listed = {row["label"] for row in rows(http, tally, base + "/resources", "resources")}
    assert listed >= set(labels)
    for label in labels:
        body = get(http, tally, f"{base}/resources/{segment(label)}/files/f.txt", "file").content
        assert body == label.encode()
    scans = {row["ID"] for row in rows(http, tally, base + "/subjects/res/experiments/resexp/scans", "scans")}
    assert scans == set(labels)
    names = assert_safe_zip(get(http, tally, f"{base}/resources/{quote('a b', safe='')}/files", "zip",
                                format="zip").content, 1)
    assert names == [f"{PROJECT}/resources/a b/files/f.txt"]
    assert_outside(server, outside)


# -- resource file names ------------------------------------------------------------------------------------------
def test_file_names_long_unicode_and_clashing_answer_4xx_never_500(server, canary, outside, http, tally):
    base = server.url + f"/data/projects/{PROJECT}/resources/FILES/files/"
    kept = {"n" * 200: b"200", "n" * 255: b"255", "é" * 127 + "x": b"255 utf-8", "a b.txt": b"1", "a_b.txt": b"2",
            "a%20b.txt": b"3", ".hidden": b"4", "ab:c": b"5", "名前.txt": b"6", "e\u0301.txt": b"7", "é.txt": b"8",
            "50%.txt": b"9", "deep/er/name.txt": b"10"}
    for name, data in kept.items():
        answer = http.put(base + quote(name, safe="/"), data=data)
        tally.count("file name", name[:40], answer.status_code)
        assert answer.status_code == 200, (name, answer.text)
    for name, status in (("n" * 256, 400), ("é" * 128, 400), ("..", 400), ("a/../../x", 400), ("\x00", 400),
                         ("C:x", 400), ("/".join(["d" * 250] * 17), 400),  # parts fine, past PATH_MAX as a whole
                         ("deep/er", 409), ("deep/er/name.txt/more", 409)):
        answer = http.put(base + "/".join(segment(part) for part in name.split("/")), data=b"refused")
        tally.count("file name", name[:40], answer.status_code)
        assert answer.status_code == status, (name[:60], answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("text/plain")
    http.put(base + "a.txt", data=b"a")
    answer = http.put(base + "a.txt/inside", data=b"refused")  # x then x/y
    assert answer.status_code == 409, answer.text
    answer = http.put(base + "deep", data=b"refused")  # x/y then x
    assert answer.status_code == 409, answer.text
    clash = io.BytesIO()
    with zipfile.ZipFile(clash, "w") as archive:
        archive.writestr("z", b"file")
        archive.writestr("z/y", b"under the file")
    answer = http.put(base + "upload.zip", params={"extract": "true"}, data=clash.getvalue())
    tally.count("file name", "extract x and x/y", answer.status_code)
    assert answer.status_code == 409, answer.text
    assert listed_paths(rows(http, tally, base.rstrip("/"), "files")) == set(kept) | {"a.txt"}
    for name, data in kept.items():
        assert get(http, tally, base + quote(name, safe="/"), "file").content == data
    names = assert_safe_zip(get(http, tally, base.rstrip("/"), "zip", format="zip").content, len(kept) + 1)
    # a ':' (a drive letter or a stream to Windows' unzip) is escaped in member names; other names are kept
    assert {name.split("/files/", 1)[1] for name in names} == set(kept) - {"ab:c"} | {"ab%3Ac", "a.txt"}
    for name in kept:
        answer = http.delete(base + quote(name, safe="/"))
        tally.count("file delete", name[:40], answer.status_code)
        assert answer.status_code == 200
    assert listed_paths(rows(http, tally, base.rstrip("/"), "files")) == {"a.txt"}
    assert_outside(server, outside)
