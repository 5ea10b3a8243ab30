"""Differential tests of POST /tools/create-dicom: the same requests to the real Orthanc 1.10.1 and to pacsbox, the
created files parsed back with pydicom and compared element by element (VR and value), and /tags, /header and the
answers compared as JSON. Generated UIDs and PatientIDs, dates and times, and the writer's identity (implementation
class and version) differ by nature and are checked for shape instead.
"""

from __future__ import annotations

import base64
import datetime
import io
import re
import struct
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support.compare import assert_equivalent
from tests.support.orthanc_ref import SKIP_REASON, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

GENERATED_UIDS = {"0020,000d", "0020,000e", "0008,0018"}
STAMPS = {"0008,0012", "0008,0013", "0008,0020", "0008,0021", "0008,0022", "0008,0023", "0008,0030", "0008,0031",
          "0008,0032", "0008,0033"}
WRITER = {"0002,0000", "0002,0003", "0002,0012", "0002,0013"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class Pair:
    """pacsbox and the real Orthanc, asked the same thing."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.sessions = (ours.session(), reference.session)

    def post(self, path: str, body=None, data=None):
        urls = (self.ours.url, self.reference.url)
        return tuple(session.post(url + path, json=body, data=data, timeout=30)
                     for session, url in zip(self.sessions, urls, strict=True))

    def get(self, path: str, which: int):
        return self.sessions[which].get((self.ours.url, self.reference.url)[which] + path, timeout=30)

    def create(self, body):
        return self.post("/tools/create-dicom", body)


@pytest.fixture(scope="module")
def pair(reference_orthanc):
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as ours:
        yield Pair(ours, reference_orthanc)


# -- content generators ---------------------------------------------------------------------------------------------
def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(payload).decode()


def image_uri(image: Image.Image, kind: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return data_uri(buffer.getvalue(), "image/png" if kind == "PNG" else "image/jpeg")


def gray8() -> Image.Image:
    return Image.fromarray((np.arange(13 * 9).reshape(9, 13) * 7 % 256).astype(np.uint8), "L")


def gray16() -> Image.Image:
    return Image.fromarray((np.arange(12 * 10).reshape(10, 12) * 517).astype(np.uint16))


def rgb() -> Image.Image:
    pixels = np.zeros((6, 8, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = np.arange(8) * 30, 50, np.arange(6)[:, None] * 40
    return Image.fromarray(pixels, "RGB")


def rgba() -> Image.Image:
    pixels = np.zeros((5, 7, 4), np.uint8)
    pixels[..., 0], pixels[..., 2], pixels[..., 3] = np.arange(7) * 33, 90, 128
    return Image.fromarray(pixels, "RGBA")


def png_16bit_colour(colour_type: int = 2) -> bytes:
    """A PNG Orthanc does not embed (16-bit RGB or RGBA), written by hand: Pillow would save 8 bits."""
    samples = 3 if colour_type == 2 else 4
    rows = b"".join(b"\x00" + struct.pack(">" + "H" * samples, *(1000 * x + c for c in range(samples)))
                    for x in range(3))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 3, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def minimal_pdf(extra: bytes = b"") -> bytes:
    return (b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n" + extra)


# -- comparison -----------------------------------------------------------------------------------------------------
def _elements(dataset: pydicom.Dataset, prefix: str = "") -> dict[str, tuple[str, object]]:
    """Every element as ``path: (VR, value)``, sequences walked."""
    found: dict[str, tuple[str, object]] = {}
    for element in dataset:
        key = prefix + f"{element.tag.group:04x},{element.tag.element:04x}"
        if element.VR == "SQ":
            found[key] = ("SQ", len(element.value))
            for index, item in enumerate(element.value):
                found.update(_elements(item, f"{key}[{index}]."))
        else:
            found[key] = (element.VR, element.value)
    return found


def _file(pair: Pair, which: int, instance_id: str) -> pydicom.Dataset:
    response = pair.get(f"/instances/{instance_id}/file", which)
    assert response.status_code == 200
    return pydicom.dcmread(io.BytesIO(response.content))


def _check_generated(values: dict[str, object], generated: set[str]) -> None:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    for key in generated & GENERATED_UIDS:
        assert re.fullmatch(r"[0-9.]{1,64}", str(values[key])), (key, values[key])
    for key in generated & STAMPS:
        text = str(values[key])
        assert text == today if key in ("0008,0012", "0008,0020", "0008,0021", "0008,0022", "0008,0023") else \
            re.fullmatch(r"\d{6}\.000000", text), (key, text)
    if "0010,0020" in generated:
        assert UUID.fullmatch(str(values["0010,0020"])), values["0010,0020"]


def compare_instances(pair: Pair, ours_id: str, reference_id: str, *, volatile: set[str] | None = None) -> dict:
    """The two stored files element by element, then /tags and /header; returns pacsbox's /tags?short."""
    volatile = (GENERATED_UIDS | STAMPS | {"0010,0020"}) if volatile is None else volatile
    mine, theirs = _file(pair, 0, ours_id), _file(pair, 1, reference_id)
    ours_elements, reference_elements = _elements(mine), _elements(theirs)
    assert sorted(ours_elements) == sorted(reference_elements)
    for key, (vr, value) in reference_elements.items():
        assert ours_elements[key][0] == vr, (key, ours_elements[key], vr)
        if key not in volatile:
            assert ours_elements[key][1] == value, (key, ours_elements[key][1], value)
    present = {key for key in volatile if key in reference_elements}
    _check_generated({k: v for k, (_, v) in ours_elements.items()}, present)
    tags = [pair.get(f"/instances/{i}/tags?short", w).json() for w, i in ((0, ours_id), (1, reference_id))]
    for key in volatile:
        for one in tags:
            one.pop(key, None)
    assert_equivalent(tags[0], tags[1], context="tags")
    headers = [pair.get(f"/instances/{i}/header?short", w).json() for w, i in ((0, ours_id), (1, reference_id))]
    for one in headers:
        for key in WRITER:
            one.pop(key, None)
    assert_equivalent(headers[0], headers[1], context="header")
    return pair.get(f"/instances/{ours_id}/tags?short", 0).json()


def created(pair: Pair, body) -> tuple[dict, dict]:
    """Create with both; both succeed with answers of the same shape; returns both answers."""
    ours, reference = pair.create(body)
    assert reference.status_code == 200, reference.text
    assert ours.status_code == 200, ours.text
    mine, theirs = ours.json(), reference.json()
    assert sorted(mine) == sorted(theirs)
    assert mine["Status"] == theirs["Status"]
    assert mine["Path"] == ("/series/" if "/series/" in theirs["Path"] else "/instances/") + mine["ID"]
    return mine, theirs


def create_and_compare(pair: Pair, body, **options) -> dict:
    mine, theirs = created(pair, body)
    return compare_instances(pair, mine["ID"], theirs["ID"], **options)


# -- plain tags, sequences, character sets --------------------------------------------------------------------------
def test_plain_tags(pair):
    tags = create_and_compare(pair, {"Tags": {
        "PatientName": "Hello^World", "StudyDescription": "Plain", "Modality": "OT", "Rows": "12",
        "PixelSpacing": "1\\2.5", "SliceThickness": "2", "FrameIncrementPointer": "0018,1063", "0008,0050": "ACC",
        "00200011": "7", "0020-0013": "3", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "ImageComments": None,
        "InstitutionName": ""}})
    assert tags["0010,0010"] == "Hello^World" and tags["0028,0010"] == "12" and tags["0028,0009"] == "0018,1063"


def test_sequences(pair):
    create_and_compare(pair, {"Tags": {
        "ReferencedStudySequence": [{"ReferencedSOPClassUID": "1.2.3", "ReferencedSOPInstanceUID": "1.2.4"},
                                    {"ReferencedSOPClassUID": "1.2.5"}],
        "RequestAttributesSequence": [{"ScheduledProcedureStepID": "X", "ScheduledProtocolCodeSequence": [
            {"CodeValue": "1", "CodingSchemeDesignator": "DCM", "CodeMeaning": "m"}]}],
        "ReferencedImageSequence": []}})


@pytest.mark.parametrize("tags", [
    {"PatientName": "Jérôme^Öst"},
    {"PatientName": "Jérôme", "SpecificCharacterSet": "ISO_IR 192"},
    {"PatientName": "Αθήνα", "SpecificCharacterSet": "ISO_IR 126"},
    {"PatientName": "AθB Ünï"},  # what Latin-1 cannot hold is dropped
    {"PatientName": "Ünï", "SpecificCharacterSet": "ISO 2022 IR 100"},
], ids=["latin1", "utf8", "greek", "dropped", "iso2022-spelling"])
def test_character_sets(pair, tags):
    create_and_compare(pair, {"Tags": tags})


def test_private_tags_and_binary_values(pair):
    create_and_compare(pair, {"Tags": {"0011,0010": "MYCREATOR", "0011,1001": "private",
                                       "0013,1001": "data:application/octet-stream;base64,AAECAw=="},
                              "PrivateCreator": "Me"})
    create_and_compare(pair, {"Tags": {"ImageComments": "data:application/octet-stream;base64,QUJD"},
                              "InterpretBinaryTags": False})


def test_legacy_request_without_tags(pair):
    create_and_compare(pair, {"PatientName": "Legacy Zoë", "StudyDescription": "V1", "0008,0050": "A1"})
    create_and_compare(pair, {"PatientName": "Legacy^Pixels", "PixelData": image_uri(gray8(), "PNG")})


# -- content ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [
    lambda: image_uri(gray8(), "PNG"),
    lambda: image_uri(gray16(), "PNG"),
    lambda: image_uri(rgb(), "PNG"),
    lambda: image_uri(rgba(), "PNG"),
    lambda: image_uri(gray8(), "JPEG"),
    lambda: image_uri(rgb(), "JPEG"),
    lambda: "data:IMAGE/PNG;base64," + image_uri(gray8(), "PNG").split(",", 1)[1],
    lambda: data_uri(b"\x01\x02\x03", "application/octet-stream"),
], ids=["png-gray8", "png-gray16", "png-rgb", "png-rgba", "jpeg-gray", "jpeg-rgb", "mime-case", "raw-bytes"])
def test_images(pair, content):
    tags = create_and_compare(pair, {"Tags": {"PatientName": "Pixels"}, "Content": content()})
    assert "7fe0,0010" in tags


def test_image_keeps_requested_photometric(pair):
    create_and_compare(pair, {"Tags": {"PhotometricInterpretation": "MONOCHROME1"},
                              "Content": image_uri(gray8(), "PNG")})


@pytest.mark.parametrize("pdf", [minimal_pdf(), minimal_pdf(b"x")], ids=["odd-length", "even-length"])
def test_pdf(pair, pdf):
    document = data_uri(pdf, "application/pdf")
    tags = create_and_compare(pair, {"Tags": {"PatientName": "Document"}, "Content": document})
    assert tags["0008,0016"] == "1.2.840.10008.5.1.4.1.1.104.1"
    create_and_compare(pair, {"Tags": {"Modality": "DOC", "SOPClassUID": "1.2.3", "ConversionType": "DV"},
                              "Content": data_uri(pdf, "application/pdf")})
    create_and_compare(pair, {"Tags": {"EncapsulatedDocument": data_uri(pdf, "application/pdf")}})


def test_series_of_contents(pair):
    body = {"Tags": {"PatientName": "Series", "Modality": "OT"},
            "Content": [image_uri(gray8(), "PNG"),
                        {"Content": image_uri(rgb(), "PNG"), "Tags": {"ImageComments": "2"}}]}
    mine, theirs = created(pair, body)
    assert mine["Path"] == f"/series/{mine['ID']}" and set(mine) == {"ID", "Path", "Status"}
    instances = []
    for which, answer in ((0, mine), (1, theirs)):
        rows = pair.get(f"/series/{answer['ID']}/instances", which).json()
        rows.sort(key=lambda row: int(row["MainDicomTags"]["InstanceNumber"]))
        instances.append([row["ID"] for row in rows])
    assert len(instances[0]) == len(instances[1]) == 2
    for ours_id, reference_id in zip(*instances, strict=True):
        compare_instances(pair, ours_id, reference_id)


# -- parents and Force ----------------------------------------------------------------------------------------------
PARENT_TAGS = {
    "PatientID": "CD-PARENT", "PatientName": "Par^Ent", "PatientBirthDate": "19800101", "PatientSex": "F",
    "PatientComments": "pc", "PatientAge": "040Y", "StudyInstanceUID": "1.2.826.0.1.3680043.10.1137.77.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1137.77.1.1", "SOPInstanceUID": "1.2.826.0.1.3680043.10.1137.77.1.1.1",
    "StudyDescription": "SD", "AccessionNumber": "ACC", "StudyID": "S1", "ReferringPhysicianName": "Ref",
    "StudyDate": "20200102", "StudyTime": "101010", "SeriesDate": "20200102", "SeriesTime": "101011",
    "SeriesDescription": "SerD", "Modality": "MR", "SeriesNumber": "7", "BodyPartExamined": "HEAD",
    "ProtocolName": "P", "OperatorsName": "Op", "InstanceNumber": "3", "InstitutionName": "Inst",
    "FrameOfReferenceUID": "1.2.3", "SpecificCharacterSet": "ISO_IR 192",
    "ProcedureCodeSequence": [{"CodeValue": "X"}]}


@pytest.fixture(scope="module")
def parent(pair):
    """The same parent instance in both servers (fixed identifiers through Force): equal IDs at every level."""
    mine, theirs = created(pair, {"Tags": PARENT_TAGS, "Force": True})
    assert mine == theirs
    instance = pair.get(mine["Path"], 0).json()
    return {"Patient": mine["ParentPatient"], "Study": mine["ParentStudy"], "Series": instance["ParentSeries"],
            "Instance": mine["ID"]}


@pytest.mark.parametrize("level", ["Patient", "Study", "Series"])
def test_parent_at_each_level(pair, parent, level):
    body = {"Tags": {"ImageComments": f"child of {level} é"}, "Parent": parent[level]}
    mine, theirs = created(pair, body)
    volatile = {"0008,0018", "0008,0012", "0008,0013", "0008,0022", "0008,0023", "0008,0032", "0008,0033"}
    if level != "Series":
        volatile |= {"0020,000e", "0008,0021", "0008,0031"}
    if level == "Patient":
        volatile |= {"0020,000d", "0008,0020", "0008,0030"}
    tags = compare_instances(pair, mine["ID"], theirs["ID"], volatile=volatile)
    assert tags["0010,0020"] == "CD-PARENT" and tags["0008,0005"] == "ISO_IR 192"
    assert mine["ParentPatient"] == theirs["ParentPatient"] == parent["Patient"]


def test_parent_character_set_and_long_values(pair):
    """A Latin-1 parent: its character set wins over the request's; values over 256 bytes are not inherited."""
    tags = {"PatientID": "CD-LATIN", "PatientName": "Zoë^Åsa", "StudyDescription": "é" * 300,
            "StudyInstanceUID": "1.2.826.0.1.3680043.10.1137.80",
            "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1137.80.1",
            "SOPInstanceUID": "1.2.826.0.1.3680043.10.1137.80.1.1"}
    mine, theirs = created(pair, {"Tags": tags, "Force": True})
    assert mine == theirs
    body = {"Tags": {"SpecificCharacterSet": "ISO_IR 192", "ImageComments": "ü"}, "Parent": mine["ParentStudy"]}
    child, reference_child = created(pair, body)
    # the study's date and time are each server's own parent's, made a moment apart (maybe a second boundary)
    volatile = {"0008,0018", "0020,000e", "0008,0012", "0008,0013", "0008,0020", "0008,0021", "0008,0022",
                "0008,0023", "0008,0030", "0008,0031", "0008,0032", "0008,0033"}
    short = compare_instances(pair, child["ID"], reference_child["ID"], volatile=volatile)
    assert short["0008,0005"] == "ISO_IR 100" and "0008,1030" not in short
    for which, (made, parent) in enumerate(((child, mine), (reference_child, theirs))):
        study = pair.get(f"/studies/{parent['ParentStudy']}", which).json()["MainDicomTags"]
        inherited = pair.get(f"/instances/{made['ID']}/tags?short", which).json()
        assert (inherited["0008,0020"], inherited["0008,0030"]) == (study["StudyDate"], study["StudyTime"]), which


def test_force_with_identifiers(pair):
    body = {"Tags": {"PatientID": "CD-FORCE", "StudyInstanceUID": "1.2.826.0.1.3680043.10.1137.78",
                     "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1137.78.1",
                     "SOPInstanceUID": "1.2.826.0.1.3680043.10.1137.78.1.1"}, "Force": True}
    mine, theirs = created(pair, body)
    assert mine == theirs  # the same IDs, since the identifiers are the request's
    compare_instances(pair, mine["ID"], theirs["ID"], volatile=STAMPS)
    again = pair.create(body)
    assert [r.status_code for r in again] == [200, 200]
    assert again[0].json() == again[1].json() and again[0].json()["Status"] == "AlreadyStored"
    metadata = [pair.get(f"/instances/{mine['ID']}/metadata?expand", w).json() for w in (0, 1)]
    # Known deviation: without a SOPClassUID in the data set, Orthanc records no SopClassUid; pacsbox records the
    # file meta's class (its DICOM retrieve needs one to propose a presentation context)
    assert "SopClassUid" not in metadata[1] and metadata[0].pop("SopClassUid") == "1.2.276.0.7230010.3.1.0.1"
    assert_equivalent(*metadata, context="metadata", ignore_keys={"ReceptionDate", "LastUpdate"})


# -- bad input --------------------------------------------------------------------------------------------------------
# pacsbox answers a client's mistake with a 4xx where the real Orthanc answers 500 (Orthanc's code and message kept)
DEVIATIONS = {"Unknown DICOM tag": 400, "Not implemented yet": 501, "Internal error": 400}

BAD_REQUESTS = {
    "unknown-tag": {"Tags": {"Nope": "1"}},
    "unknown-tag-in-sequence": {"Tags": {"ReferencedStudySequence": [{"Nope": "1"}]}},
    "bad-at-value": {"Tags": {"FrameIncrementPointer": "zz"}},
    "number-value": {"Tags": {"Rows": 12}},
    "list-for-text": {"Tags": {"PatientName": ["a", "b"]}},
    "string-for-sequence": {"Tags": {"ReferencedStudySequence": "abc"}},
    "string-item": {"Tags": {"ReferencedStudySequence": ["x"]}},
    "us-out-of-range": {"Tags": {"Rows": "70000"}},
    "us-not-a-number": {"Tags": {"Rows": "abc"}},
    "override-uid": {"Tags": {"StudyInstanceUID": "1.2.3"}},
    "override-sop": {"Tags": {"SOPInstanceUID": "1.2.3"}},
    "pixel-data-tag": {"Tags": {"PixelData": "abc"}},
    "bad-charset": {"Tags": {"SpecificCharacterSet": "NOPE"}},
    "empty-charset": {"Tags": {"SpecificCharacterSet": ""}},
    "bad-interpret": {"Tags": {}, "InterpretBinaryTags": "yes"},
    "bad-force": {"Tags": {}, "Force": "yes"},
    "bad-private-creator": {"Tags": {}, "PrivateCreator": 3},
    "tags-string": {"Tags": "x"},
    "tags-list": {"Tags": []},
    "body-list": [1],
    "legacy-number": {"PatientName": 1},
    "unknown-parent": {"Tags": {}, "Parent": "nope"},
    "parent-number": {"Tags": {}, "Parent": 3},
    "content-not-uri": {"Tags": {}, "Content": "nope"},
    "content-bad-png": {"Tags": {}, "Content": "data:image/png;base64,AAAA"},
    "content-bad-base64": {"Tags": {}, "Content": "data:image/png;base64,!!!"},
    "content-no-base64": {"Tags": {}, "Content": "data:image/png,abc"},
    "content-bad-pdf": {"Tags": {}, "Content": "data:application/pdf;base64,AAAA"},
    "content-text": {"Tags": {}, "Content": "data:text/plain;base64,AAAA"},
    "content-unknown-mime": {"Tags": {}, "Content": "data:foo/bar;base64,AAAA"},
    "content-number": {"Tags": {}, "Content": 3},
    "content-object": {"Tags": {}, "Content": {}},
    "series-no-payload": {"Tags": {}, "Content": [{"Tags": {}}]},
    "series-number": {"Tags": {}, "Content": [3]},
    # fails at its second instance: the first one, already stored, is deleted with its series
    "series-second-bad": {"Tags": {}, "Content": [image_uri(gray8(), "PNG"), "data:image/png;base64,AAAA"]},
    "series-item-override": {"Tags": {}, "Content": [image_uri(gray8(), "PNG"),
                                                     {"Content": image_uri(gray8(), "PNG"),
                                                      "Tags": {"SeriesInstanceUID": "1.2.3"}}]},
    "png-palette": {"Tags": {}, "Content": "palette"},
    "png-16bit-rgb": {"Tags": {}, "Content": "rgb16"},
    "png-16bit-rgba": {"Tags": {}, "Content": "rgba16"},
    "jpeg-cmyk": {"Tags": {}, "Content": "cmyk"},
}


def _hostile(body):
    if isinstance(body, dict) and body.get("Content") in ("palette", "rgb16", "rgba16", "cmyk"):
        kind = body["Content"]
        if kind == "palette":
            body = {**body, "Content": image_uri(gray8().convert("P"), "PNG")}
        elif kind in ("rgb16", "rgba16"):
            body = {**body, "Content": data_uri(png_16bit_colour(2 if kind == "rgb16" else 6), "image/png")}
        else:
            body = {**body, "Content": image_uri(Image.new("CMYK", (4, 4), (10, 20, 30, 40)), "JPEG")}
    return body


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_input(pair, name):
    before = [len(pair.get("/instances", w).json()) for w in (0, 1)]
    ours, reference = pair.create(_hostile(BAD_REQUESTS[name]))
    assert ours.status_code < 500 or ours.status_code == 501, ours.text
    mine, theirs = ours.json(), reference.json()
    if reference.status_code == 500:
        assert ours.status_code == DEVIATIONS[theirs["Message"]], (ours.text, reference.text)
        for body in (mine, theirs):
            for key in ("HttpError", "HttpStatus", "Details"):
                body.pop(key, None)
    else:
        assert ours.status_code == reference.status_code, (ours.text, reference.text)
        if "Details" not in theirs:
            mine.pop("Details", None)  # pacsbox says more than Orthanc, never less
    assert_equivalent(mine, theirs, context=name)
    assert [len(pair.get("/instances", w).json()) for w in (0, 1)] == before  # nothing stored, nothing lost


def test_body_not_json(pair):
    ours, reference = pair.post("/tools/create-dicom", data=b"{not json")
    assert ours.status_code == reference.status_code == 400
    assert_equivalent(ours.json(), reference.json())


def test_parent_instance_refused(pair, parent):
    ours, reference = pair.create({"Tags": {}, "Parent": parent["Instance"]})
    assert ours.status_code == reference.status_code == 400
    assert_equivalent(ours.json(), reference.json())
    ours, reference = pair.create({"Tags": {"PatientName": "x", "StudyDate": "20000101"}, "Parent": parent["Series"]})
    assert ours.status_code == reference.status_code == 400
    assert_equivalent(ours.json(), reference.json())


# -- hostile input (pacsbox alone: every answer a clear 4xx, the server still serving) ----------------------------
def _png_header_only(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return b"\x89PNG\r\n\x1a\n" + chunk


def _nested(depth: int) -> list:
    value: list = [{"CodeValue": "leaf"}]
    for _ in range(depth):
        value = [{"ConceptNameCodeSequence": value}]
    return value


@pytest.mark.parametrize("body", [
    {"Tags": {}, "Content": data_uri(_png_header_only(70000, 70000), "image/png")},  # a decompression bomb's header
    {"Tags": {}, "Content": data_uri(_png_header_only(4, 4), "image/png")},  # no image data
    {"Tags": {}, "Content": image_uri(gray8(), "JPEG")[:-40]},  # truncated JPEG
    {"Tags": {}, "Content": "data:image/jpeg;base64,/9j/"},
    {"Tags": {"ContentSequence": _nested(300)}},
    {"Tags": {"0002,0010": "1.2.3", "0008,0000": "4"}},  # file meta and group length: ignored, as Orthanc does
    {"Tags": {"Rows": "-1", "FrameIncrementPointer": "0018,1063"}},
    {"Tags": {f"0009,10{i:02x}": "x" * 1000 for i in range(64)}},
], ids=["bomb-header", "png-no-data", "jpeg-truncated", "jpeg-empty", "deep-nesting", "meta-tags", "wrapping",
        "many-private"])
def test_hostile_input_never_500(pair, body):
    response = pair.sessions[0].post(pair.ours.url + "/tools/create-dicom", json=body, timeout=30)
    assert response.status_code < 500 or response.status_code == 501, response.text
    if response.status_code >= 400:
        assert response.json()["HttpStatus"] == response.status_code and response.json()["Message"]
    assert pair.get("/system", 0).status_code == 200
