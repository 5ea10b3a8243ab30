"""Attachments and metadata revisions, side by side with the real Orthanc 1.10.1: status, headers, JSON, bytes, MD5.

Two pairs of servers: the defaults (files stored as they come), and ``StorageCompression`` with ``CheckRevisions``
(files stored zlib-compressed, as Orthanc stores them: the compressed MD5s must be equal too).
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from tests.support.compare import assert_equivalent
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

SETTINGS = {"UserMetadata": {"Sample": 1024},
            "UserContentType": {"sample": 1025, "typed": [1026, "text/plain"]}}
IGNORE = frozenset({"Uuid", "Date", "LastUpdate"})  # sizes and MD5s are compared: the files are the same bytes


class Pair:
    """pacsbox and the real Orthanc, asked the same thing."""

    def __init__(self, ours: RunningPacsbox, reference: ReferenceOrthanc) -> None:
        self.ours, self.reference = ours, reference
        self.ours_session, self.reference_session = ours.session(), reference.session

    def call(self, method: str, path: str, **kwargs):
        ours = self.ours_session.request(method, self.ours.url + path, **kwargs)
        reference = self.reference_session.request(method, self.reference.url + path, **kwargs)
        return ours, reference

    def same(self, method: str, path: str, *, compare: tuple[str, ...] = ("ETag",), **kwargs):
        """Equal status, the named headers, and body (JSON compared as JSON, anything else byte for byte)."""
        ours, reference = self.call(method, path, **kwargs)
        context = f"{method} {path}"
        assert ours.status_code == reference.status_code, (context, ours.text, reference.text)
        for name in compare:
            assert ours.headers.get(name) == reference.headers.get(name), (context, name)
        if reference.status_code >= 400 and reference.content:  # (Orthanc sends its error bodies untyped)
            _same_error(ours.json(), reference.json(), context)
        elif reference.headers.get("content-type", "").startswith("application/json") and reference.content:
            assert_equivalent(ours.json(), reference.json(), context=context, ignore_keys=IGNORE)
        else:
            assert ours.content == reference.content, context
        return ours


def _same_error(ours: dict, reference: dict, context: str) -> None:
    """Orthanc's error body; pacsbox may say more in Details where Orthanc says nothing."""
    if "Details" not in reference:
        ours = {key: value for key, value in ours.items() if key != "Details"}
    assert ours == reference, context


def _pair(corpus, settings: dict):
    with ReferenceOrthanc(extra_config=settings, graceful_stop=False) as reference, \
            RunningPacsbox(settings) as ours:
        both = Pair(ours, reference)
        for _, data in corpus[:6]:  # the CT series of patient PBX-001, and the first MR file
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200
        yield both


@pytest.fixture(scope="module")
def pair(corpus):
    yield from _pair(corpus, SETTINGS)


@pytest.fixture(scope="module")
def compressed_pair(corpus):
    yield from _pair(corpus, {**SETTINGS, "StorageCompression": True, "CheckRevisions": True})


def _resources(pair: Pair) -> dict[str, str]:
    """One resource path per level (the first instance and its ancestors)."""
    session, url = pair.reference_session, pair.reference.url
    instance = session.get(f"{url}/instances").json()[0]
    found = session.get(f"{url}/instances/{instance}").json()
    series = session.get(f"{url}/series/{found['ParentSeries']}").json()
    study = session.get(f"{url}/studies/{series['ParentStudy']}").json()
    return {"patients": f"/patients/{study['ParentPatient']}", "studies": f"/studies/{series['ParentStudy']}",
            "series": f"/series/{found['ParentSeries']}", "instances": f"/instances/{instance}"}


def _all_of_one(pair: Pair, path: str, name: str) -> None:
    """Every read route of one attachment, compared."""
    pair.same("GET", f"{path}/attachments/{name}")
    pair.same("GET", f"{path}/attachments/{name}/info")
    for field in ("md5", "size", "is-compressed", "compressed-md5", "compressed-size"):
        pair.same("GET", f"{path}/attachments/{name}/{field}", compare=("ETag", "Content-Type"))
    pair.same("GET", f"{path}/attachments/{name}/data", compare=("ETag", "Content-Type"))
    pair.same("GET", f"{path}/attachments/{name}/compressed-data", compare=("ETag", "Content-Type"))
    pair.same("POST", f"{path}/attachments/{name}/verify-md5")


def test_the_dicom_attachment(pair):
    instance = _resources(pair)["instances"]
    pair.same("GET", f"{instance}/attachments")
    pair.same("GET", f"{instance}/attachments?full")
    _all_of_one(pair, instance, "dicom")
    _all_of_one(pair, instance, "1")
    ours = pair.same("GET", f"{instance}/attachments/dicom/data", compare=("ETag", "Content-Type"))
    assert ours.content == pair.same("GET", f"{instance}/file").content


@pytest.mark.parametrize("level", ["patients", "studies", "series", "instances"])
def test_user_attachments_at_every_level(pair, level):
    path = _resources(pair)[level]
    pair.same("GET", f"{path}/attachments")
    body = b"\x00\x01 binary \xff" * 100
    pair.same("PUT", f"{path}/attachments/sample", data=body)
    pair.same("PUT", f"{path}/attachments/1030", data=b"by number")
    pair.same("PUT", f"{path}/attachments/typed", data=b"typed text")
    pair.same("GET", f"{path}/attachments")
    pair.same("GET", f"{path}/attachments?full")
    for name in ("sample", "1030", "1025", "typed"):
        _all_of_one(pair, path, name)
    assert pair.same("GET", f"{path}/attachments/sample/data").content == body
    replaced = pair.same("PUT", f"{path}/attachments/sample", data=b"again")  # revision 1 answered, 0 kept
    assert replaced.headers["ETag"] == f'"1-{hashlib.md5(b"again").hexdigest()}"'
    _all_of_one(pair, path, "sample")
    pair.same("DELETE", f"{path}/attachments/1030", compare=())
    pair.same("GET", f"{path}/attachments/1030/data")
    pair.same("GET", f"{path}/attachments")


def test_large_attachment(pair):
    """An attachment is a file: bodies past MaximumRequestBodySize (1 MiB) are taken, up to MaximumUploadSize."""
    series = _resources(pair)["series"]
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB
    pair.same("PUT", f"{series}/attachments/1100", data=body)
    assert pair.same("GET", f"{series}/attachments/1100/data").content == body
    pair.same("POST", f"{series}/attachments/1100/compress")
    _all_of_one(pair, series, "1100")


def test_compress_and_uncompress(pair):
    instance = _resources(pair)["instances"]
    pair.same("PUT", f"{instance}/attachments/1040", data=b"compress me " * 50)
    for name in ("1040", "dicom"):
        pair.same("POST", f"{instance}/attachments/{name}/compress")
        _all_of_one(pair, instance, name)  # the same zlib bytes: CompressedMD5 equal
        pair.same("GET", f"{instance}/file")
        pair.same("POST", f"{instance}/attachments/{name}/uncompress")
        _all_of_one(pair, instance, name)
    pair.same("GET", f"{instance}/tags")


def test_reserved_and_unknown_attachments(pair):
    instance = _resources(pair)["instances"]
    before = pair.same("GET", f"{instance}/attachments/dicom/data").content
    for name in ("dicom", "1", "2", "1023", "65536", "dicom-until-pixel-data"):
        ours = pair.same("PUT", f"{instance}/attachments/{name}", data=b"x", compare=())
        assert ours.status_code == 403 and ours.content == b""
    ours = pair.same("DELETE", f"{instance}/attachments/dicom", compare=())
    assert ours.status_code == 403
    for name in ("-1", "-5", "70000", "123456"):  # numbers out of the users' range: reserved to write
        assert pair.same("PUT", f"{instance}/attachments/{name}", data=b"x", compare=()).status_code == 403
        assert pair.same("GET", f"{instance}/attachments/{name}").status_code == 404
    for name in ("99999999999999999999", "4294967297"):  # no 32-bit number: "Bad type for a parameter"
        for method in ("PUT", "GET", "DELETE"):
            assert pair.same(method, f"{instance}/attachments/{name}", data=b"x").status_code == 400
    for method in ("PUT", "DELETE", "GET"):
        assert pair.same(method, f"{instance}/attachments/nosuchname", data=b"x").status_code == 404
        assert pair.same(method, f"{instance}/attachments/1e3", data=b"x").status_code == 404
    assert pair.same("GET", f"{instance}/attachments/nosuchname/data").status_code == 404
    assert pair.same("GET", f"{instance}/attachments/1050").status_code == 404
    assert pair.same("GET", f"{instance}/attachments/1050/info").status_code == 404
    assert pair.same("DELETE", f"{instance}/attachments/1050").status_code == 404
    assert pair.same("POST", f"{instance}/attachments/1050/compress").status_code == 404
    assert pair.same("POST", f"{instance}/attachments/1050/verify-md5").status_code == 400
    assert pair.same("GET", f"{instance}/attachments/dicom/uuid").status_code == 404
    assert pair.same("GET", "/instances/nosuchinstance/attachments").status_code == 404
    assert pair.same("GET", "/instances/nosuchinstance/attachments/dicom/data").status_code == 404
    assert pair.same("GET", f"{instance}/attachments/dicom/data").content == before


def test_if_match_revisions(pair):
    series = _resources(pair)["series"]
    pair.same("PUT", f"{series}/attachments/1060", data=b"first")
    current = f'"0-{hashlib.md5(b"first").hexdigest()}"'
    for header in ("5", "0", "x-aa", "abc"):
        ours = pair.same("PUT", f"{series}/attachments/1060", data=b"no", headers={"If-Match": header})
        assert ours.status_code == 400
        assert pair.same("DELETE", f"{series}/attachments/1060", headers={"If-Match": header}).status_code == 400
    for stale in (f'"1-{hashlib.md5(b"first").hexdigest()}"', '"0-0000"', "0-aa"):
        ours = pair.same("PUT", f"{series}/attachments/1060", data=b"no", headers={"If-Match": stale})
        assert ours.status_code == 409
        assert ours.json()["OrthancStatus"] == 43
        assert pair.same("DELETE", f"{series}/attachments/1060", headers={"If-Match": stale}).status_code == 409
    assert pair.same("GET", f"{series}/attachments/1060/data").content == b"first"  # nothing lost
    pair.same("PUT", f"{series}/attachments/1060", data=b"second", headers={"If-Match": current})
    assert pair.same("GET", f"{series}/attachments/1060/data").content == b"second"
    pair.same("PUT", f"{series}/attachments/1061", data=b"new", headers={"If-Match": '"0-aa"'})
    now = f'"0-{hashlib.md5(b"second").hexdigest()}"'
    pair.same("DELETE", f"{series}/attachments/1060", headers={"If-Match": now})
    pair.same("GET", f"{series}/attachments")


def test_metadata_revisions(pair):
    instance = _resources(pair)["instances"]
    pair.same("PUT", f"{instance}/metadata/Sample", data=b"one")
    pair.same("GET", f"{instance}/metadata/Sample", compare=("ETag", "Content-Type"))
    pair.same("PUT", f"{instance}/metadata/Sample", data=b"two")  # answers revision 1
    pair.same("GET", f"{instance}/metadata/Sample")
    pair.same("PUT", f"{instance}/metadata/Sample", data=b"three", headers={"If-Match": '"1-x"'})
    pair.same("PUT", f"{instance}/metadata/Sample", data=b"three", headers={"If-Match": "7"})
    now = f'"0-{hashlib.md5(b"two").hexdigest()}"'
    pair.same("PUT", f"{instance}/metadata/Sample", data=b"three", headers={"If-Match": now})
    pair.same("DELETE", f"{instance}/metadata/Sample", headers={"If-Match": '"0-aa"'})
    pair.same("GET", f"{instance}/metadata/Sample")
    pair.same("DELETE", f"{instance}/metadata/Sample", compare=())
    pair.same("PUT", f"{instance}/metadata/1", data=b"x", compare=())


def test_attachments_are_in_the_change_log(pair):
    session, url = pair.ours_session, pair.ours.url
    series = _resources(pair)["series"]
    last = session.get(f"{url}/changes?last").json()["Last"]
    session.put(f"{url}{series}/attachments/1070", data=b"q")
    session.post(f"{url}{series}/attachments/1070/compress")
    session.delete(f"{url}{series}/attachments/1070")
    changes = session.get(f"{url}/changes?since={last}&limit=10").json()["Changes"]
    assert [change["ChangeType"] for change in changes] == ["UpdatedAttachment"] * 3


def test_storage_compression(compressed_pair):
    pair = compressed_pair
    instance = _resources(pair)["instances"]
    pair.same("GET", f"{instance}/attachments?full")
    for name in ("dicom", "dicom-until-pixel-data"):
        _all_of_one(pair, instance, name)
    pair.same("GET", f"{instance}/file")
    pair.same("GET", f"{instance}/tags")
    pair.same("GET", f"{instance}/simplified-tags")
    ours = pair.ours_session.get(f"{pair.ours.url}{instance}/attachments/dicom/compressed-data")
    assert ours.content[8:10] == b"\x78\x9c"  # the zlib stream after the size, as Orthanc writes it
    path = _resources(pair)["studies"]
    pair.same("PUT", f"{path}/attachments/sample", data=b"compressed attachment")
    _all_of_one(pair, path, "sample")
    for route in ("archive", "media"):  # files sent by path (zips) are the inflated ones
        ours, reference = pair.call("GET", f"{path}/{route}")
        assert ours.status_code == reference.status_code == 200
        assert _zipped_dicom(ours.content) == _zipped_dicom(reference.content)


def _zipped_dicom(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return sorted(hashlib.md5(archive.read(name)).hexdigest() for name in archive.namelist()
                      if name != "DICOMDIR")


def test_statistics_count_attachments_as_stored(compressed_pair):
    """Disk sizes are those of the compressed files (the DICOM file, its part before the pixels, attachments),
    uncompressed sizes those of the content: the same figures as Orthanc's, to the byte."""
    pair = compressed_pair
    resources = _resources(pair)
    pair.same("PUT", f"{resources['series']}/attachments/1090", data=b"sizes " * 1000)
    exact = frozenset({"Uuid"})
    for path in ("/statistics", *(f"{path}/statistics" for path in resources.values())):
        ours, reference = pair.call("GET", path)
        assert ours.status_code == reference.status_code == 200
        assert_equivalent(ours.json(), reference.json(), context=path, ignore_keys=exact)


def test_check_revisions(compressed_pair):
    pair = compressed_pair
    study = _resources(pair)["studies"]
    pair.same("PUT", f"{study}/attachments/1080", data=b"v1")
    assert pair.same("PUT", f"{study}/attachments/1080", data=b"v2").status_code == 409
    assert pair.same("DELETE", f"{study}/attachments/1080").status_code == 409
    assert pair.same("DELETE", f"{study}/attachments/1099").status_code == 409  # header checked first
    current = f'"0-{hashlib.md5(b"v1").hexdigest()}"'
    pair.same("PUT", f"{study}/attachments/1080", data=b"v2", headers={"If-Match": current})
    pair.same("PUT", f"{study}/metadata/Sample", data=b"m")
    assert pair.same("PUT", f"{study}/metadata/Sample", data=b"n").status_code == 409
    assert pair.same("DELETE", f"{study}/metadata/Sample").status_code == 409
    pair.same("DELETE", f"{study}/metadata/Sample", headers={"If-Match": f'"0-{hashlib.md5(b"m").hexdigest()}"'})
    ours, reference = pair.call("GET", "/system")
    assert ours.json()["CheckRevisions"] is reference.json()["CheckRevisions"] is True
