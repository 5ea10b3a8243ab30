"""Differential tests of the run-time settings under /tools against the real Orthanc 1.10.1: default-encoding,
accepted-transfer-syntaxes, unknown-sop-class-accepted and the log levels — the answers (status, content type,
body, error body) and the effects (an encoding shows in /tags at once; a narrowed transfer syntax list makes
storescu's proposal fail; a log level changes what the log shows)."""

from __future__ import annotations

import time

import pytest

from tests.support import dcmtk
from tests.support.compare import DEFAULT_IGNORE_KEYS, assert_equivalent
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

from .tools_support import (
    PATIENT_NAME_UTF8,
    STUDY_DESCRIPTION_UTF8,
    Pair,
    pynetdicom_store,
    storescu,
    text_without_charset_file,
)

pytestmark = pytest.mark.skipif(not (have_orthanc() and dcmtk.have_dcmtk()), reason=SKIP_REASON)

IGNORE = DEFAULT_IGNORE_KEYS | {"HttpUsername", "RemoteIP", "PixelDataOffset", "RemoteAET", "CalledAET"}
CATEGORIES = ("dicom", "generic", "http", "jobs", "lua", "plugins", "sqlite")
JPEG_FAMILY = '["1.2.840.10008.1.2.4.*"]'
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


@pytest.fixture(scope="module")
def pair():
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox() as ours:
        yield Pair(ours, reference)


@pytest.fixture
def defaults(pair):
    """Every test leaves the settings as Orthanc starts with them."""
    yield pair
    pair.both("PUT", "/tools/default-encoding", data="Latin1")
    pair.both("PUT", "/tools/accepted-transfer-syntaxes", data="*")
    pair.both("PUT", "/tools/unknown-sop-class-accepted", data="0")
    pair.both("PUT", "/tools/log-level", data="default")


# -- default-encoding -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["Utf8", "utf8", "UTF8", "Latin2", "SimplifiedChinese", "Windows1251", "Ascii",
                                  "Bogus", "utf-8", "ISO_IR 100", " Utf8", "Utf8\n", "", "Latin1"])
def test_default_encoding_answers(defaults, body):
    defaults.compare("PUT", "/tools/default-encoding", data=body.encode())
    defaults.compare("GET", "/tools/default-encoding")


def test_default_encoding_shows_in_tags_at_once_and_main_tags_keep_ingest_time(defaults):
    pair = defaults
    uploaded = pair.compare("POST", "/instances", data=text_without_charset_file("latin1-ingest"),
                            content_type=False)[1].json()
    instance, study = uploaded["ID"], uploaded["ParentStudy"]
    views = (f"/instances/{instance}/simplified-tags", f"/instances/{instance}/tags",
             f"/instances/{instance}/tags?short", f"/studies/{study}", f"/studies/{study}/shared-tags?simplify")
    latin1 = {}
    for view in views:
        ours, theirs = pair.call("GET", view)
        assert_equivalent(ours.json(), theirs.json(), context=view, ignore_keys=IGNORE)
        latin1[view] = ours.json()
    assert latin1[views[0]]["PatientName"] == PATIENT_NAME_UTF8.encode().decode("latin-1")

    pair.compare("PUT", "/tools/default-encoding", data="Utf8")
    for view in views:
        ours, theirs = pair.call("GET", view)
        assert_equivalent(ours.json(), theirs.json(), context=view, ignore_keys=IGNORE)
    tags = pair.ours_session.get(pair.ours.url + views[0]).json()
    assert (tags["PatientName"], tags["StudyDescription"]) == (PATIENT_NAME_UTF8, STUDY_DESCRIPTION_UTF8)
    main = pair.ours_session.get(pair.ours.url + f"/studies/{study}").json()["MainDicomTags"]
    assert main["StudyDescription"] == STUDY_DESCRIPTION_UTF8.encode().decode("latin-1")  # decoded at ingest

    # ingested now, under Utf8: its main tags are decoded with Utf8
    uploaded = pair.compare("POST", "/instances", data=text_without_charset_file("utf8-ingest"),
                            content_type=False)[1].json()
    ours, theirs = pair.call("GET", f"/studies/{uploaded['ParentStudy']}")
    assert_equivalent(ours.json(), theirs.json(), ignore_keys=IGNORE)
    assert ours.json()["MainDicomTags"]["StudyDescription"] == STUDY_DESCRIPTION_UTF8


# -- accepted-transfer-syntaxes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    JPEG_FAMILY, '"1.2.840.10008.1.2.1"', "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.?", '["1.2.3"]', "[]", "[1]",
    '{"a": 1}', "*", "abc", "", '["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]', "true", '["1.2.840.10008.1.2.?"]',
])
def test_accepted_transfer_syntaxes_answers(defaults, body):
    defaults.compare("PUT", "/tools/accepted-transfer-syntaxes", data=body.encode())
    defaults.compare("GET", "/tools/accepted-transfer-syntaxes")


def test_a_narrowed_list_decides_storescu_as_on_orthanc(defaults):
    pair = defaults
    data = text_without_charset_file("storescu")  # Explicit VR Little Endian; storescu proposes every uncompressed
    servers = ((pair.ours.aet, pair.ours.dicom_port), (pair.reference.aet, pair.reference.dicom_port))

    pair.compare("PUT", "/tools/accepted-transfer-syntaxes", data=JPEG_FAMILY)
    runs = [storescu(aet, port, data) for aet, port in servers]
    assert [run.returncode for run in runs] == [1, 1], [run.stderr for run in runs]
    assert all("No Acceptable Presentation Contexts" in run.stderr for run in runs), [run.stderr for run in runs]
    pair.same_counts()  # nothing stored on either

    # REST ingest does not look at the list, on either server
    pair.compare("POST", "/instances", data=to_bytes(_other_instance("rest"), implicit_vr=True),
                 content_type=False)

    # Implicit VR only: storescu converts and both store the file in that syntax
    pair.compare("PUT", "/tools/accepted-transfer-syntaxes", data=f'["{IMPLICIT_VR_LITTLE_ENDIAN}"]')
    runs = [storescu(aet, port, data) for aet, port in servers]
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    instance = pair.reference_session.post(pair.reference.url + "/tools/lookup",
                                           data=uid("instance", "nocharset", "storescu")).json()[0]["ID"]
    ours, _ = pair.compare("GET", f"/instances/{instance}/metadata/TransferSyntax", content_type=False)
    assert ours.text == IMPLICIT_VR_LITTLE_ENDIAN

    # C-ECHO is not a storage class: a JPEG-only list keeps it
    pair.compare("PUT", "/tools/accepted-transfer-syntaxes", data=JPEG_FAMILY)
    echoes = [dcmtk.run("echoscu", "-aec", aet, "127.0.0.1", str(port)) for aet, port in servers]
    assert [run.returncode for run in echoes] == [0, 0], [run.stderr for run in echoes]


def _other_instance(tag: str):
    return make_dataset(patient_id=f"PBX-TS-{tag}", patient_name="TS^Test", study_uid=uid("study", "ts", tag),
                        series_uid=uid("series", "ts", tag), sop_uid=uid("instance", "ts", tag), modality="CT")


# -- unknown-sop-class-accepted ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["1", "true", "0", "false", "bogus", "", "2", "True"])
def test_unknown_sop_class_accepted_answers(defaults, body):
    defaults.compare("PUT", "/tools/unknown-sop-class-accepted", data=body.encode())
    defaults.compare("GET", "/tools/unknown-sop-class-accepted")


def test_unknown_sop_class_accepted_decides_storescu_as_on_orthanc(defaults):
    pair = defaults
    private = make_dataset(patient_id="PBX-PRIVATE-SOP", patient_name="Private^Class",
                           study_uid=uid("study", "private"), series_uid=uid("series", "private"),
                           sop_uid=uid("instance", "private"), modality="OT", sop_class_uid="1.2.826.0.1.3680043.9.7.1")
    data = to_bytes(private)
    servers = ((pair.ours.aet, pair.ours.dicom_port), (pair.reference.aet, pair.reference.dicom_port))
    assert [pynetdicom_store(aet, port, data) for aet, port in servers] == [None, None]
    pair.compare("PUT", "/tools/unknown-sop-class-accepted", data="1")
    assert [pynetdicom_store(aet, port, data) for aet, port in servers] == [0, 0]
    pair.same_counts()


# -- log levels ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("category", ["", *(f"-{name}" for name in CATEGORIES)])
def test_log_level_answers(defaults, category):
    path = f"/tools/log-level{category}"
    for body in ("verbose", "trace", "Verbose", "bogus", "", "default"):
        defaults.compare("PUT", path, data=body.encode())
        defaults.compare("GET", path)


def test_the_main_level_sets_every_category(defaults):
    pair = defaults
    pair.compare("PUT", "/tools/log-level", data="trace")
    pair.compare("PUT", "/tools/log-level-http", data="verbose")
    for path in ("/tools/log-level", "/tools/log-level-http", "/tools/log-level-dicom"):
        pair.compare("GET", path)
    pair.compare("PUT", "/tools/log-level", data="default")
    pair.compare("GET", "/tools/log-level-http")
    pair.compare("GET", "/tools/log-level-bogus")


def test_verbose_http_shows_requests_in_the_log(defaults):
    pair = defaults
    marker = "/statistics?probe=hidden"
    pair.call("GET", marker)
    pair.compare("PUT", "/tools/log-level-http", data="verbose")
    pair.call("GET", "/statistics?probe=shown")
    pair.compare("PUT", "/tools/log-level-http", data="default")
    pair.call("GET", "/changes?probe=hidden-again")
    time.sleep(0.3)  # the logs are written by other processes
    ours, theirs = pair.ours.output(), pair.reference.log_tail(400)
    assert "/statistics" in theirs and "/changes" not in theirs, theirs[-2000:]
    assert "pacsbox.http] GET '/statistics' answered 200" in ours, ours[-2000:]
    assert "/changes" not in ours and "probe=" not in ours  # queries are not logged: they may hold secrets
    pair.compare("PUT", "/tools/log-level-http", data="verbose")
    pair.ours_session.get(pair.ours.url + "/forged%0AE1207 00:00:00.000000 pacsbox] injected")
    time.sleep(0.3)
    assert "\nE1207 00:00:00.000000 pacsbox] injected" not in pair.ours.output()  # a path cannot forge a line


def test_verbose_dicom_shows_associations_in_the_log(defaults):
    pair = defaults
    pair.compare("PUT", "/tools/log-level-dicom", data="verbose")
    assert dcmtk.run("echoscu", "-aet", "VERBOSEPROBE", "-aec", pair.ours.aet, "127.0.0.1",
                     str(pair.ours.dicom_port)).returncode == 0
    time.sleep(0.3)
    assert "C-ECHO from 'VERBOSEPROBE' served" in pair.ours.output()


# -- methods ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/tools/default-encoding", "/tools/accepted-transfer-syntaxes",
                                  "/tools/unknown-sop-class-accepted", "/tools/log-level", "/tools/log-level-lua",
                                  "/tools/metrics"])
def test_wrong_methods_are_405_with_the_same_allow(pair, path):
    for method in ("POST", "DELETE"):
        ours, theirs = pair.call(method, path)
        assert ours.status_code == theirs.status_code == 405
        allowed = [{m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD"} for r in (ours, theirs)]
        assert allowed[0] == allowed[1], allowed


# -- hostile bodies (pacsbox only: limits Orthanc does not have) ------------------------------------------------

def test_hostile_settings_bodies_get_a_clear_4xx(defaults):
    session, url = defaults.ours_session, defaults.ours.url
    response = session.put(url + "/tools/accepted-transfer-syntaxes", data=b"*" * 20_000, timeout=30)
    assert (response.status_code, response.json()["HttpStatus"], response.json()["OrthancStatus"]) == (413, 413, 8)
    started = time.monotonic()
    response = session.put(url + "/tools/accepted-transfer-syntaxes", data='["' + "*1" * 40 + 'X"]', timeout=30)
    assert (response.status_code, response.json()) == (200, [])
    assert time.monotonic() - started < 2  # many stars: no exponential backtracking
    response = session.put(url + "/tools/default-encoding", data=b"\xff\xfe\x00", timeout=30)
    assert (response.status_code, response.json()["OrthancStatus"]) == (400, 3)
    response = session.put(url + "/tools/log-level-dicom", data=b"\x00verbose", timeout=30)
    assert response.status_code == 400
    assert session.get(url + "/tools/default-encoding", timeout=30).text == "Latin1"
