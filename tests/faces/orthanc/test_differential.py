"""Differential suite: the same files and requests to the real Orthanc 1.10.1 and to pacsbox, answers compared.

Dates, storage UUIDs, sizes and versions are ignored (tests.support.compare); everything else must be equal:
IDs, MainDicomTags, lists, tags JSON, statistics counts, find results, change types and order, error codes.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.support.compare import DEFAULT_IGNORE_KEYS, assert_equivalent
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

LEVELS = ("patients", "studies", "series", "instances")
IGNORE = DEFAULT_IGNORE_KEYS | {"HttpUsername", "RemoteIP", "PixelDataOffset"}


class Pair:
    """The two servers, asked the same thing."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.ours_session, self.reference_session = ours.session(), reference.session

    def call(self, method: str, path: str, **kwargs):
        ours = self.ours_session.request(method, self.ours.url + path, **kwargs)
        reference = self.reference_session.request(method, self.reference.url + path, **kwargs)
        return ours, reference

    def compare_json(self, method: str, path: str, *, ignore=IGNORE, unordered_keys=(), **kwargs):
        ours, reference = self.call(method, path, **kwargs)
        assert ours.status_code == reference.status_code, (path, ours.text, reference.text)
        assert_equivalent(ours.json(), reference.json(), context=f"{method} {path}", ignore_keys=ignore,
                          unordered_keys=unordered_keys)
        return ours.json()


# No Stable* change during the module on either side (Orthanc's default StableAge is 60 s, which a loaded machine
# can reach in the middle of the module): both change logs hold only what the tests did
QUIET = {"UserMetadata": {"Sample": 1024}, "StableAge": 100_000}


@pytest.fixture(scope="module")
def pair(corpus):
    with ReferenceOrthanc(extra_config=QUIET, graceful_stop=False) as reference, RunningPacsbox(QUIET) as ours:
        both = Pair(ours, reference)
        for name, data in corpus:
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200, name
            assert_equivalent(mine.json(), theirs.json(), context=f"upload {name}")
        yield both


def _ids(pair: Pair, level: str) -> list[str]:
    return pair.reference_session.get(f"{pair.reference.url}/{level}").json()


def test_upload_again_is_already_stored(pair, corpus):
    for name, data in corpus[:3]:
        mine, theirs = pair.call("POST", "/instances", data=data)
        assert_equivalent(mine.json(), theirs.json(), context=name)
        assert mine.json()["Status"] == "AlreadyStored"


@pytest.mark.parametrize("level", LEVELS)
def test_lists_and_expanded_lists(pair, level):
    pair.compare_json("GET", f"/{level}")
    pair.compare_json("GET", f"/{level}?expand")


@pytest.mark.parametrize("level", LEVELS)
def test_every_resource(pair, level):
    for public_id in _ids(pair, level):
        pair.compare_json("GET", f"/{level}/{public_id}")
        pair.compare_json("GET", f"/{level}/{public_id}/statistics")
        pair.compare_json("GET", f"/{level}/{public_id}/metadata")


@pytest.mark.parametrize("level,children", [
    ("patients", ("studies", "series", "instances")),
    ("studies", ("series", "instances", "patient")),
    ("series", ("instances", "study", "patient")),
    ("instances", ("series", "study", "patient")),
])
def test_relatives(pair, level, children):
    for public_id in _ids(pair, level)[:4]:
        for child in children:
            pair.compare_json("GET", f"/{level}/{public_id}/{child}")


def test_statistics(pair):
    pair.compare_json("GET", "/statistics")


@pytest.mark.parametrize("form", ["", "?simplify", "?short"])
def test_tags_of_every_instance(pair, form):
    for public_id in _ids(pair, "instances"):
        pair.compare_json("GET", f"/instances/{public_id}/tags{form}")
        pair.compare_json("GET", f"/instances/{public_id}/header{form}")


def test_simplified_tags_and_frames(pair):
    for public_id in _ids(pair, "instances"):
        pair.compare_json("GET", f"/instances/{public_id}/simplified-tags")
        pair.compare_json("GET", f"/instances/{public_id}/frames")


def test_content_walk(pair):
    for public_id in _ids(pair, "instances"):
        top = pair.compare_json("GET", f"/instances/{public_id}/content")
        for tag in top:
            mine, theirs = pair.call("GET", f"/instances/{public_id}/content/{tag}")
            assert mine.status_code == theirs.status_code, (public_id, tag)
            if "json" in theirs.headers.get("content-type", ""):
                assert_equivalent(mine.json(), theirs.json(), context=f"content/{tag}")
            elif tag != "7fe0-0010":
                assert mine.content == theirs.content, (public_id, tag)


@pytest.mark.parametrize("level", ["patients", "studies", "series"])
def test_shared_tags(pair, level):
    for public_id in _ids(pair, level):
        pair.compare_json("GET", f"/{level}/{public_id}/shared-tags")
        pair.compare_json("GET", f"/{level}/{public_id}/shared-tags?simplify")


FIND_QUERIES = [
    {"Level": "Patient", "Query": {}},
    {"Level": "Patient", "Query": {"PatientName": "doe*"}},
    {"Level": "Patient", "Query": {"PatientName": "DOE^JOHN"}, "CaseSensitive": True},
    {"Level": "Patient", "Query": {"PatientID": "PBX-00?"}},
    {"Level": "Study", "Query": {"StudyDate": "20200101-20241231"}},
    {"Level": "Study", "Query": {"StudyDate": "-20191231"}},
    {"Level": "Study", "Query": {"StudyDate": "20210101-"}},
    {"Level": "Study", "Query": {"ModalitiesInStudy": "MR"}},
    {"Level": "Study", "Query": {"ModalitiesInStudy": "CT\\MR"}},
    {"Level": "Study", "Query": {"PatientName": "*", "StudyDescription": "*"}},
    {"Level": "Series", "Query": {"Modality": "MR"}},
    {"Level": "Series", "Query": {"Modality": "mr"}},
    {"Level": "Series", "Query": {"Modality": "mr"}, "CaseSensitive": True},
    {"Level": "Series", "Query": {"SeriesDescription": "*T1*"}},
    {"Level": "Series", "Query": {"Modality": "CT"}, "Expand": True},
    {"Level": "Instance", "Query": {"InstanceNumber": "2"}},
    {"Level": "Instance", "Query": {"SliceThickness": "*"}},
    {"Level": "Instance", "Query": {"PatientID": "PBX-001", "Modality": "CT"}, "Expand": True},
]


@pytest.mark.parametrize("query", FIND_QUERIES, ids=[str(q) for q in FIND_QUERIES])
def test_find(pair, query):
    pair.compare_json("POST", "/tools/find", json=query)


def test_find_limit_and_since_page_the_same_set(pair):
    everything = set(pair.compare_json("POST", "/tools/find", json={"Level": "Instance", "Query": {}}))
    for since in range(0, len(everything), 7):
        query = {"Level": "Instance", "Query": {}, "Since": since, "Limit": 7}
        mine, theirs = pair.call("POST", "/tools/find", json=query)
        assert len(mine.json()) == len(theirs.json())
        assert set(mine.json()) <= everything


def test_lookup(pair):
    for level in ("patients", "studies", "series", "instances"):
        for public_id in _ids(pair, level)[:3]:
            tags = pair.reference_session.get(f"{pair.reference.url}/{level}/{public_id}").json()["MainDicomTags"]
            for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber"):
                if key in tags:
                    pair.compare_json("POST", "/tools/lookup", data=tags[key])


def test_archive_layout(pair):
    for level in ("patients", "studies", "series"):
        for public_id in _ids(pair, level):
            mine, theirs = pair.call("GET", f"/{level}/{public_id}/archive")
            assert mine.status_code == theirs.status_code == 200
            names = lambda r: sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())  # noqa: E731
            assert names(mine) == names(theirs), (level, public_id)


ERROR_REQUESTS = [
    ("GET", "/patients/0000", {}),
    ("GET", "/studies/not-an-id/series", {}),
    ("DELETE", "/series/unknown", {}),
    ("GET", "/instances/unknown/tags", {}),
    ("GET", "/no-such-route", {}),
    ("POST", "/instances", {"data": b"not dicom at all"}),
    ("POST", "/tools/find", {"data": b"{not json"}),
    ("POST", "/tools/find", {"json": {"Level": "Study"}}),
    ("POST", "/tools/find", {"json": {"Level": "Nope", "Query": {}}}),
    ("POST", "/tools/find", {"json": {"Level": "Study", "Query": {"StudyDescription": 5}}}),
    ("POST", "/tools/find", {"json": {"Level": "Study", "Query": {}, "Limit": "x"}}),
    ("GET", "/instances?limit=3", {}),
]


@pytest.mark.parametrize("method,path,kwargs", ERROR_REQUESTS, ids=[f"{m} {p}" for m, p, _ in ERROR_REQUESTS])
def test_error_status_codes(pair, method, path, kwargs):
    mine, theirs = pair.call(method, path, **kwargs)
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    if theirs.content:
        body = theirs.json()
        assert mine.json()["OrthancStatus"] == body["OrthancStatus"]
        assert mine.json()["Message"] == body["Message"]


@pytest.mark.parametrize("query", ["", "?limit=0", "?since=2&limit=0", "?limit=2", "?since=3&limit=4", "?since=1000",
                                   "?limit=20000", "?last"])
def test_changes_paging(pair, query):
    """Both servers received the same requests in the same order, so their change logs match."""
    pair.compare_json("GET", "/changes" + query)


def test_metadata_roundtrip(pair):
    instance = _ids(pair, "instances")[0]
    for method, body in (("PUT", "hello"), ("GET", None), ("DELETE", None), ("GET", None)):
        mine, theirs = pair.call(method, f"/instances/{instance}/metadata/Sample", data=body)
        assert mine.status_code == theirs.status_code, (method, mine.text, theirs.text)
        assert mine.text.strip() == theirs.text.strip() or theirs.status_code != 200
    for name in ("RemoteAET", "Unknown"):
        mine, theirs = pair.call("PUT", f"/instances/{instance}/metadata/{name}", data="x")
        assert mine.status_code == theirs.status_code, name


def test_changes_and_deletion(corpus):
    """Change types and order, then cascading deletes and what they leave behind, on fresh servers (the module's
    pair keeps the whole corpus for the other tests, in any order)."""
    with ReferenceOrthanc(extra_config=QUIET, graceful_stop=False) as reference, RunningPacsbox(QUIET) as ours:
        both = Pair(ours, reference)
        before = {side: s.get(url + "/changes?last").json()["Last"]
                  for side, s, url in (("ours", both.ours_session, ours.url),
                                       ("ref", both.reference_session, reference.url))}
        for _, data in corpus[:8]:
            both.call("POST", "/instances", data=data)

        def kinds(session, url, since):
            changes = session.get(f"{url}/changes?since={since}&limit=1000").json()["Changes"]
            return [(c["ChangeType"], c["ID"], c["ResourceType"], c["Path"]) for c in changes]

        assert kinds(both.ours_session, ours.url, before["ours"]) == kinds(
            both.reference_session, reference.url, before["ref"])
        series = both.reference_session.get(reference.url + "/series").json()
        for level in ("instances", "series", "studies", "patients"):
            ids = both.reference_session.get(f"{reference.url}/{level}").json()
            if ids:
                both.compare_json("DELETE", f"/{level}/{sorted(ids)[0]}")
                both.compare_json("GET", "/statistics", ignore=IGNORE)
                both.compare_json("GET", "/series")
        assert series
