"""Hostile DICOM content through every ingest door: Orthanc's ``POST /instances``, XNAT's import service and C-STORE.

Each case is a file a careless or malicious sender might produce: wrong VRs, huge or lying lengths, sequences
nested thousands deep, invalid or missing UIDs, odd lengths, items without delimiters, pixel data of the wrong
size, character sets that lie, meta headers that lie. Through each door the answer is either a rejection in that
door's own terms (Orthanc's JSON error, XNAT's plain text, a C-STORE failure status) with the archive unchanged,
or an acceptance, as the real Orthanc is lenient with many of these: then every read route on what was stored
answers without a 5xx. No answer is ever a 5xx, and the server still serves REST and C-ECHO afterwards.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from pydicom.dataset import Dataset

from pacsbox.core.storage import FRESH_FOLDER
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    SUCCESS,
    RawAssociation,
    archive_state,
    assert_alive,
    assert_orthanc_error,
    assert_xnat_error,
    explicit,
    implicit,
    part10,
)

IMPORT = "/data/services/import"
PROJECT = "HOSTILE"
_ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
_ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
CONTENT_SEQUENCE = 0x0040A730


@dataclass(frozen=True)
class Case:
    """One hostile input: the Part 10 file the HTTP doors get, and the data set C-STORE sends (with the transfer
    syntax of its presentation context); ``must_reject``: no door may store it."""

    name: str
    category: str
    file: bytes
    dataset: bytes
    sop_uid: str
    transfer_syntax: str = EXPLICIT_LE
    must_reject: bool = False


def _dataset(name: str, extra: dict | None = None) -> Dataset:
    return make_dataset(patient_id=f"HX-{name}", patient_name="Hostile^Input", study_uid=uid("hx-study", name),
                        series_uid=uid("hx-series", name), sop_uid=uid("hx-instance", name), rows=4, cols=4,
                        extra=extra)


def _body(ds: Dataset, splice: bytes = b"") -> bytes:
    """The data set in explicit VR little endian, ``splice`` (raw elements) inserted before the pixel data."""
    pixels = ds.get(0x7FE00010)
    head = Dataset()
    head.update({element.tag: element for element in ds if element.tag != 0x7FE00010})
    body = to_bytes(head, with_meta=False, implicit_vr=False) + splice
    if pixels is not None:
        tail = Dataset()
        tail.add(pixels)
        body += to_bytes(tail, with_meta=False, implicit_vr=False)
    return body


def case(name: str, category: str, *, extra: dict | None = None, splice: bytes = b"", must_reject: bool = False,
         sop_uid: str | None = None) -> Case:
    """A case whose data set is the usual image with ``extra`` applied and ``splice`` inserted."""
    ds = _dataset(name, extra)
    body = _body(ds, splice)
    sop = sop_uid if sop_uid is not None else str(ds.get("SOPInstanceUID", "") or uid("hx-instance", name))
    return Case(name, category, part10(body, CT_IMAGE_STORAGE, sop), body, sop, must_reject=must_reject)


def raw_case(name: str, category: str, file: bytes, dataset: bytes, *, must_reject: bool = True,
             transfer_syntax: str = EXPLICIT_LE) -> Case:
    return Case(name, category, file, dataset, uid("hx-instance", name), transfer_syntax, must_reject)


def nested(depth: int, *, undefined: bool) -> bytes:
    """A ContentSequence nested ``depth`` deep, one item per level, a CodeMeaning at the bottom."""
    inner = explicit(0x00080104, b"LO", b"deep")
    if undefined:
        header = explicit(CONTENT_SEQUENCE, b"SQ", b"", 0xFFFFFFFF) + _ITEM
        return header * depth + inner + (_ITEM_END + _SEQUENCE_END) * depth
    sizes = [len(inner)]
    for _ in range(depth - 1):
        sizes.append(sizes[-1] + 20)  # 12: the SQ header, 8: the item header
    headers = [explicit(CONTENT_SEQUENCE, b"SQ", b"", size + 8) + struct.pack("<HHI", 0xFFFE, 0xE000, size)
               for size in reversed(sizes)]
    return b"".join(headers) + inner


def _without_delimiters() -> bytes:
    item = explicit(0x00080100, b"SH", b"CODE") + explicit(0x00080104, b"LO", b"no delimiter")
    return explicit(CONTENT_SEQUENCE, b"SQ", b"", 0xFFFFFFFF) + _ITEM + item


def _sequence_without_end() -> bytes:
    item = explicit(0x00080100, b"SH", b"CODE")
    return explicit(CONTENT_SEQUENCE, b"SQ", b"", 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item


def _meta_lies(name: str, transfer_syntax: str, *, group_length: int | None = None) -> bytes:
    body = _body(_dataset(name))
    file = part10(body, CT_IMAGE_STORAGE, uid("hx-instance", name), transfer_syntax)
    if group_length is not None:
        file = file[:140] + struct.pack("<I", group_length) + file[144:]
    return file


def _cases() -> list[Case]:
    cases = [
        # wrong VRs: Orthanc reads these leniently
        case("da-letters", "wrong VR", extra={"StudyDate": None}, splice=explicit(0x00080020, b"DA", b"2023ABCD")),
        case("us-3-bytes", "wrong VR", extra={"Rows": None}, splice=explicit(0x00280010, b"US", b"\x04\x00\x00")),
        case("bogus-vr-bytes", "wrong VR", extra={"StudyDescription": None},
             splice=explicit(0x00081030, b"ZZ", b"made up VR")),
        case("vr-not-letters", "wrong VR", extra={"SeriesDescription": None},
             splice=explicit(0x0008103E, b"\x00\xff", b"\x01\x02\x03\x04")),
        case("name-as-binary", "wrong VR", extra={"PatientName": None},
             splice=explicit(0x00100010, b"OB", b"\x00\xff\x10\x80")),
        case("is-letters", "wrong VR", extra={"InstanceNumber": None, "NumberOfFrames": None},
             splice=explicit(0x00200013, b"IS", b"one ") + explicit(0x00280008, b"IS", b"many")),
        case("ds-garbage", "wrong VR", extra={"SliceThickness": None, "ImagePositionPatient": None},
             splice=explicit(0x00180050, b"DS", b"NaN\\inf ") + explicit(0x00200032, b"DS", b"1e999\\-\\x")),
        case("study-uid-as-binary", "wrong VR", extra={"StudyInstanceUID": None},
             splice=explicit(0x0020000D, b"OB", b"1.2.3.4\x00"), must_reject=True),
        # huge element lengths, lengths past the end of the file
        case("length-fffffff0", "huge length", splice=explicit(0x00991010, b"OB", b"tiny", 0xFFFFFFF0),
             must_reject=True),
        case("length-past-end", "huge length", splice=explicit(0x00991010, b"OB", b"x" * 64, 100_000),
             must_reject=True),
        case("short-length-past-end", "huge length", splice=explicit(0x00991010, b"LO", b"abc", 0xFFFE),
             must_reject=True),
        raw_case("implicit-length-fffffff0", "huge length", implicit(0x00080016, b"1.2", 0xFFFFFFF0),
                 implicit(0x00080016, b"1.2", 0xFFFFFFF0), transfer_syntax=IMPLICIT_LE),
        case("pixel-length-huge", "huge length", extra={"PixelData": None},
             splice=explicit(0x7FE00010, b"OW", b"\x00" * 32, 0x7FFFFFF0), must_reject=True),
        # sequences nested deep
        *[case(f"nested-{depth}-{kind}", "deep nesting", splice=nested(depth, undefined=kind == "undefined"))
          for depth in (50, 300, 1000, 20000) for kind in ("defined", "undefined")],
        # invalid UIDs, missing identifiers
        case("sop-uid-empty", "invalid UID", extra={"SOPInstanceUID": ""}, sop_uid="", must_reject=True),
        case("sop-uid-missing", "invalid UID", extra={"SOPInstanceUID": None}, sop_uid="1.2.3", must_reject=True),
        case("sop-uid-letters", "invalid UID", extra={"SOPInstanceUID": "1.2.abc.4"}),
        case("sop-uid-1000-chars", "invalid UID", extra={"SOPInstanceUID": "1." + "2" * 998}),
        case("sop-uid-dots", "invalid UID", extra={"SOPInstanceUID": "...."}),
        case("sop-uid-path", "invalid UID", extra={"SOPInstanceUID": "../" * 30 + "tmp/pacsbox-escape"}),
        case("sop-uid-backslash-nul", "invalid UID", extra={"SOPInstanceUID": "..\\..\\x\x00y"}),
        case("sop-uid-crlf", "invalid UID", extra={"SOPInstanceUID": "1.2.3\r\nX-Injected: yes"}),
        case("study-uid-missing", "invalid UID", extra={"StudyInstanceUID": None}, must_reject=True),
        case("series-uid-10000-chars", "invalid UID", extra={"SeriesInstanceUID": "9" * 10000}),
        case("patient-id-missing", "missing PatientID", extra={"PatientID": None}),
        case("patient-id-path", "missing PatientID", extra={"PatientID": "../../etc"}),
        # odd lengths
        case("odd-text-lengths", "odd length", extra={"PatientName": None, "StudyID": None},
             splice=explicit(0x00100010, b"PN", b"Odd^Len") + explicit(0x00200010, b"SH", b"123")),
        case("odd-uid-length", "odd length", extra={"SeriesInstanceUID": None},
             splice=explicit(0x0020000E, b"UI", b"1.2.345")),
        case("odd-pixel-length", "odd length", extra={"PixelData": None},
             splice=explicit(0x7FE00010, b"OW", b"\x01" * 31)),
        # undefined lengths without their delimiters
        case("item-without-delimiters", "undefined length", splice=_without_delimiters()),
        case("sequence-without-end", "undefined length", splice=_sequence_without_end()),
        case("pixels-undefined-no-end", "undefined length", extra={"PixelData": None},
             splice=explicit(0x7FE00010, b"OB", b"", 0xFFFFFFFF) + _ITEM[:4] + struct.pack("<I", 4) + b"abcd"),
        # pixel data of the wrong size
        case("pixels-too-short", "pixel data", extra={"PixelData": None},
             splice=explicit(0x7FE00010, b"OW", b"\x00\x01" * 3)),
        case("pixels-too-long", "pixel data", extra={"PixelData": None},
             splice=explicit(0x7FE00010, b"OW", b"\x00\x01" * 4000)),
        case("frames-2147483647", "pixel data", splice=explicit(0x00280008, b"IS", b"2147483647")),
        case("frames-negative", "pixel data", splice=explicit(0x00280008, b"IS", b"-5")),
        case("rows-65535", "pixel data", extra={"Rows": None, "Columns": None},
             splice=explicit(0x00280010, b"US", b"\xff\xff") + explicit(0x00280011, b"US", b"\xff\xff")),
        # character sets that lie
        case("charset-unknown", "character set", extra={"SpecificCharacterSet": "ISO_IR 999"}),
        case("charset-utf8-invalid-bytes", "character set", extra={"SpecificCharacterSet": "ISO_IR 192",
                                                                   "PatientName": None, "StudyDescription": None},
             splice=explicit(0x00081030, b"LO", b"\xff\xfe\xc3(") + explicit(0x00100010, b"PN", b"\xc3\x28^\xe2\x82")),
        case("charset-iso2022-garbage", "character set", extra={"SpecificCharacterSet": None, "PatientName": None},
             splice=explicit(0x00080005, b"CS", b"\\ISO 2022 IR 87") + explicit(0x00100010, b"PN", b"\x1b$B\xff\x1b(")),
        case("charset-bytes-not-ascii", "character set", extra={"SpecificCharacterSet": None},
             splice=explicit(0x00080005, b"CS", b"\xff\xfe")),
        case("charset-2000-terms", "character set", extra={"SpecificCharacterSet": None},
             splice=explicit(0x00080005, b"CS", b"\\".join([b"ISO_IR 100"] * 2000))),
    ]
    # files that are hardly DICOM, or whose meta header lies
    only_preamble = b"\x00" * 128 + b"DICM"
    cases += [
        raw_case("only-preamble-dicm", "not DICOM", only_preamble, only_preamble),
        raw_case("preamble-dicm-garbage", "not DICOM", only_preamble + bytes(range(256)) * 4, bytes(range(256)) * 4),
        raw_case("meta-syntax-bogus", "meta lies", _meta_lies("meta-syntax-bogus", "1.2.3.4.5.6"),
                 _body(_dataset("meta-syntax-bogus")), must_reject=False),
        raw_case("meta-says-deflated", "meta lies", _meta_lies("meta-says-deflated", "1.2.840.10008.1.2.1.99"),
                 _body(_dataset("meta-says-deflated")), must_reject=False),
        raw_case("meta-says-big-endian", "meta lies", _meta_lies("meta-says-big-endian", "1.2.840.10008.1.2.2"),
                 _body(_dataset("meta-says-big-endian")), must_reject=False),
        raw_case("meta-says-implicit", "meta lies", _meta_lies("meta-says-implicit", IMPLICIT_LE),
                 _body(_dataset("meta-says-implicit")), must_reject=False, transfer_syntax=IMPLICIT_LE),
        raw_case("meta-group-length-huge", "meta lies",
                 _meta_lies("meta-group-length-huge", EXPLICIT_LE, group_length=0xFFFFFFF0),
                 _body(_dataset("meta-group-length-huge")), must_reject=False),
    ]
    assert len({c.name for c in cases}) == len(cases)
    return cases


with warnings.catch_warnings():  # pydicom warns about the invalid values these cases are made of
    warnings.simplefilter("ignore", UserWarning)
    CASES = _cases()


# -- the server and the doors -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"DicomScpTimeout": 5, "StableAge": 100_000}) as running:
        session = running.session()
        assert session.put(running.url + f"/data/projects/{PROJECT}").status_code in (200, 201)
        yield running


def _files_on_disk(server: RunningPacsbox) -> set[str]:
    """Every file of the storage area except the index database's own and the empty ones made ahead of writes."""
    return {str(p.relative_to(server.data_dir)) for p in server.data_dir.rglob("*")
            if p.is_file() and not p.name.startswith("index.sqlite") and p.parent.name != FRESH_FOLDER}


def _through_orthanc(server, http, item: Case, tally) -> bool:
    response = http.post(server.url + "/instances", data=item.file, timeout=60)
    tally.count(f"dicom: {item.category}", f"POST /instances {item.name}", response.status_code)
    if response.status_code == 200:
        return True
    assert_orthanc_error(response, 400)
    assert response.json()["OrthancStatus"] == 15, response.text
    return False


def _through_xnat(server, http, item: Case, tally) -> bool:
    response = http.post(server.url + IMPORT, params={"project": PROJECT, "dest": "/archive"}, data=item.file,
                         timeout=60)
    tally.count(f"dicom: {item.category}", f"XNAT import {item.name}", response.status_code)
    if response.status_code == 200:
        return True
    assert_xnat_error(response)
    return False


def _through_c_store(server, http, item: Case, tally) -> bool:
    with RawAssociation(server.dicom_port) as association:
        association.associate()
        context = next(cx for cx, ts in association.accepted.items() if cx != 1 and ts == item.transfer_syntax)
        status = association.c_store(item.dataset, item.sop_uid, context)
        tally.count(f"dicom: {item.category}", f"C-STORE {item.name}", None)
        assert status is not None, f"the association ended instead of answering a status to {item.name}"
        assert association.release()
    return status == SUCCESS


DOORS: dict[str, Callable[..., bool]] = {"orthanc": _through_orthanc, "xnat": _through_xnat,
                                         "c-store": _through_c_store}


# -- what an accepted instance must still answer ----------------------------------------------------------------

def _get(http: requests.Session, url: str, tally, what: str, **kwargs) -> requests.Response:
    response = http.get(url, timeout=60, **kwargs)
    tally.read(what, response.status_code)
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    return response


def _check_reads(server, http, instance_id: str, tally, name: str) -> None:
    """Orthanc's read routes on an accepted instance and its series."""
    url = server.url
    instance = _get(http, f"{url}/instances/{instance_id}", tally, name).json()
    for suffix in ("/file", "/tags", "/tags?short", "/simplified-tags", "/header", "/frames", "/metadata?expand",
                   "/content/0040-a730/0/0008-0104", "/content/7fe0-0010", "/content/0010-0010"):
        _get(http, f"{url}/instances/{instance_id}{suffix}", tally, name + suffix)
    listing = _get(http, f"{url}/instances/{instance_id}/content", tally, name)
    if listing.status_code == 200:
        for tag in listing.json()[::16]:  # a sample of the elements, read one by one
            _get(http, f"{url}/instances/{instance_id}/content/{tag}", tally, f"{name} content/{tag}")
    series = f"{url}/series/{instance['ParentSeries']}"
    for suffix in ("", "/shared-tags", "/archive"):
        _get(http, series + suffix, tally, f"{name} series{suffix}")
    response = http.post(url + "/tools/find", json={"Level": "Series", "Query": {}, "Expand": True}, timeout=60)
    tally.read(name + " find", response.status_code)
    assert response.status_code == 200, response.text


def _check_xnat_reads(server, http, tally, name: str) -> None:
    """XNAT's read routes on the session an import filed, every file downloaded; then the session is deleted."""
    experiments = _get(http, f"{server.url}/data/projects/{PROJECT}/experiments", tally, name,
                       params={"format": "json"}).json()["ResultSet"]["Result"]
    for experiment in experiments:
        base = f"{server.url}/data/experiments/{experiment['ID']}"
        _get(http, base, tally, name + " xnat session", params={"format": "json"})
        _get(http, base + "/scans", tally, name + " xnat scans", params={"format": "json"})
        _get(http, base + "/files", tally, name + " xnat zip", params={"format": "zip"})
        files = _get(http, base + "/scans/ALL/files", tally, name + " xnat files", params={"format": "json"})
        for entry in files.json()["ResultSet"]["Result"]:
            download = _get(http, server.url + entry["URI"], tally, name + " xnat file")
            assert download.status_code == 200, (entry["URI"], download.text[:300])
            assert "\n" not in download.headers.get("Content-Disposition", "")
        response = http.delete(base, params={"removeFiles": "true"}, timeout=60)
        assert response.status_code == 200, response.text


@pytest.fixture
def emptied(server, http):
    """Empties the archive and the project after the test, whatever happened in it."""
    yield
    experiments = http.get(f"{server.url}/data/projects/{PROJECT}/experiments", params={"format": "json"}).json()
    for experiment in experiments["ResultSet"]["Result"]:
        http.delete(f"{server.url}/data/experiments/{experiment['ID']}", params={"removeFiles": "true"})
    for patient in http.get(server.url + "/patients").json():
        http.delete(f"{server.url}/patients/{patient}")


@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize("item", CASES, ids=[c.name for c in CASES])
def test_hostile_dicom(server, http, tally, emptied, item: Case, door: str):
    before = archive_state(http, server.url)
    on_disk = _files_on_disk(server)
    accepted = DOORS[door](server, http, item, tally)
    if not accepted:
        assert archive_state(http, server.url) == before
        assert _files_on_disk(server) == on_disk
        return
    assert not item.must_reject, f"{item.name} was stored through {door}"
    added = sorted(set(http.get(server.url + "/instances").json()) - set(before.instances))
    assert added, f"{door} accepted {item.name} but no instance appeared"
    patients = {http.get(f"{server.url}/instances/{instance_id}/patient").json()["ID"] for instance_id in added}
    if door == "xnat":
        _check_xnat_reads(server, http, tally, item.name)  # deleting the session deletes its instances
    else:
        for instance_id in added:
            _check_reads(server, http, instance_id, tally, f"{door} {item.name}")
    for patient in patients:
        assert http.delete(f"{server.url}/patients/{patient}").status_code in (200, 404)
    after = archive_state(http, server.url)
    assert (after.statistics, after.instances) == (before.statistics, before.instances)
    assert not list(Path("/tmp").glob("pacsbox-escape*"))


def test_server_still_serves(server, http, tally):
    assert_alive(server)
    assert archive_state(http, server.url).statistics["CountInstances"] == 0
