"""Differential tests of pacsbox.core.dicom_json against the real Orthanc.

The module starts /usr/sbin/Orthanc (Debian package, 1.10.1) on free loopback
ports, uploads DICOM files generated here with pydicom (plus a few byte-level
splices pydicom refuses to write), and checks that /tags, ?simplify, ?short,
/header and /content/... equal what dicom_json computes from the same bytes.

The fast tests at the end need no Orthanc; ``orthanc_tags_reference.json``
holds real Orthanc answers for some of the generated files.  Regenerate it
with ``PYTHONPATH=src python tests/core/test_dicom_json.py``.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from pacsbox.core import dicom_json as dj

# The test data is deliberately invalid here and there: pydicom says so.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ORTHANC = "/usr/sbin/Orthanc"
SKIP_REASON = "needs the real Orthanc: run `bash scripts/install-test-deps.sh` (apt-get install orthanc)"
REFERENCE = Path(__file__).with_name("orthanc_tags_reference.json")
UID_ROOT = "2.25.314159265358979323846264338327950288"

# --------------------------------------------------------------- test data --


def _base(n: int, charset: str | None = None, ts: str = "1.2.840.10008.1.2.1") -> Dataset:
    uid = f"{UID_ROOT}.{n}"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.ImplementationClassUID = UID_ROOT + ".0"
    ds.file_meta.ImplementationVersionName = "PACSBOX_TEST"
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = uid + ".1"
    ds.SeriesInstanceUID = uid + ".2"
    ds.PatientID = f"P{n}"
    return ds


def _bytes(ds: Dataset, **kw) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deliberately invalid values
        ds.save_as(out, enforce_file_format=True, **kw)
    return out.getvalue()


def _el(tag: int, vr: str, value: bytes) -> bytes:
    """One explicit VR little endian element (for values pydicom would fix)."""
    head = _tag_bytes(tag) + vr.encode()
    if vr in ("OB", "OW", "UN", "UC", "UR", "UT", "SQ"):
        return head + b"\0\0" + len(value).to_bytes(4, "little") + value
    return head + len(value).to_bytes(2, "little") + value


def _tag_bytes(tag: int) -> bytes:
    return (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")


def _splice(data: bytes, before: int, *elements: bytes) -> bytes:
    """Insert raw elements just before the (explicit VR LE) element `before`."""
    pos = data.index(_tag_bytes(before), 132)
    return data[:pos] + b"".join(elements) + data[pos:]


def _code(meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "113100", "DCM", meaning
    return item


def case_ct() -> bytes:
    """CT-like: multi-values, numbers of every VR, dates, empty values,
    nested sequences, private blocks, binary VRs, pixel data, overlays."""
    ds = _base(1)
    ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "Doe^John", "19700101", ""
    ds.StudyDate, ds.StudyTime, ds.Modality = "20240102", "101112.123", "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = ["-125.0", "-130.5", "10"]
    ds.PixelSpacing, ds.SliceThickness, ds.InstanceNumber = [0.5, 0.5], "1.25", 7
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    for tag, vr, value in [
        (0x00080010, "SH", "RETIRED"), (0x0008002A, "DT", "20240102101112.5+0100"),
        (0x00080054, "AE", "ORTHANC"), (0x00080070, "LO", " Leading space"),
        (0x00080090, "PN", ""), (0x00081090, "LO", None), (0x00081190, "UR", "http://x/y"),
        (0x00101010, "AS", "054Y"), (0x00180010, "LO", "Contrast\\Agent"),
        (0x00181030, "LO", "Protocol  "), (0x00181150, "IS", None), (0x00181152, "IS", "120"),
        (0x00186020, "SL", [-5, 7]), (0x00186026, "SS", [-2]), (0x0018603C, "FL", [0.1, -1.5]),
        (0x00189219, "SV", [-3, 4]), (0x00189220, "UV", [3]), (0x00189305, "FD", None),
        (0x00189306, "FD", [0.1, 2.5]), (0x00189313, "FD", [1 / 3, 2, -0.0001, 1e20]),
        (0x00189318, "FL", None), (0x00189323, "CS", ""), (0x00189327, "FD", 1234.5678),
        (0x00204000, "LT", "line1\r\nline2  "), (0x00209161, "UI", "1.2.3.4"),
        (0x00280009, "AT", [0x00200013, 0x00181063]), (0x00280106, "US", 0),
        (0x00400280, "ST", "short text"), (0x00400441, "SQ", []), (0x0040A160, "UT", "text"),
        (0x0040A30A, "DS", ["1", "2.5", "-3e2"]), (0x00420011, "OB", b"\1\2\3\4"),
        (0x00540081, "US", [1, 2, 65535]), (0x00660016, "OF", b"\0\0\x80\x3f"),
        (0x00660023, "OW", b"\0\1\2\3"), (0x00660040, "OL", b"\1\0\0\0"),
        (0x50000005, "US", 2), (0x60000010, "US", 4), (0x60003000, "OW", b"\0\0"),
        (0x7FE00010, "OW", b"\0\1" * 16), (0xFFFCFFFC, "OB", b"\0\0"),
    ]:
        ds.add_new(tag, vr, value)
    first = Dataset()
    first.ReferencedSOPClassUID, first.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5"
    first.PurposeOfReferenceCodeSequence = Sequence([_code("Basic Application Confidentiality Profile")])
    second = Dataset()
    second.ReferencedSOPInstanceUID, second.ReferencedFrameNumber = "1.2.3.4.6", ["1", "2"]
    ds.ReferencedImageSequence = Sequence([first, second, Dataset()])
    ds.ProcedureCodeSequence = Sequence()
    block = ds.private_block(0x0009, "PACSBOX TEST", create=True)
    block.add_new(0x01, "LO", "private string")
    block.add_new(0x02, "US", 42)
    block.add_new(0x03, "OB", b"\0\1")
    block.add_new(0x04, "UN", b"hello!")
    block.add_new(0x05, "SQ", Sequence([_code("in private sequence")]))
    ds.add_new(0x00110010, "LO", "ONLYCREATOR")
    ds.add_new(0x00190010, "LO", "")                      # empty creator ...
    ds.add_new(0x00191001, "LO", "owned by empty creator")  # ... gives no "PrivateCreator"
    ds.add_new(0x00211000, "LO", "no creator element")
    return _bytes(ds)


def case_latin1() -> bytes:
    ds = _base(2, "ISO_IR 100")
    ds.PatientName, ds.StudyDescription, ds.InstitutionName = "Müller^Jürgen", "Étude crâne", "Hôpital"
    item = Dataset()
    item.CodeMeaning = "Ça va"
    ds.ProcedureCodeSequence = Sequence([item])
    return _bytes(ds)


def case_utf8() -> bytes:
    ds = _base(3, "ISO_IR 192")
    ds.PatientName, ds.StudyDescription = "Ηλίας^Ελένη", "日本語テキスト"
    ds.InstitutionName = "Zürich €"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"  # ignored by Orthanc: top-level charset wins
    item.CodeMeaning = "Ωmega"
    ds.ConceptNameCodeSequence = Sequence([item])
    return _bytes(ds)


def case_no_charset() -> bytes:
    ds = _base(4)
    ds.PatientName = "Müller^Jürgen"  # Latin-1 bytes, decoded with DefaultEncoding
    return _bytes(ds)


def case_long() -> bytes:
    ds = _base(5, "ISO_IR 100")
    ds.PatientName = "Long^Value"
    for tag, vr, value in [
        (0x00081030, "LO", "a" * 255 + "  "),        # 255 after trimming: fits
        (0x00100021, "LO", "É" * 128),                # 256 UTF-8 bytes: fits
        (0x00102160, "SH", "É" * 129),                # 258 UTF-8 bytes: TooLong
        (0x00204000, "LT", "T" * 256), (0x00400280, "ST", "V" * 257),
        (0x0040A160, "UT", "W" * 1000), (0x00321060, "LO", "\\".join(["abc"] * 100)),
        (0x00189313, "FD", [1.5] * 40), (0x00540081, "US", list(range(100))),
        (0x00420011, "OB", b"\1" * 300), (0x00090010, "LO", "LONGPRIV"), (0x00091001, "LO", "y" * 300),
    ]:
        ds.add_new(tag, vr, value)
    item = Dataset()
    item.CodeMeaning = "Z" * 300
    ds.ProcedureCodeSequence = Sequence([item])
    return _bytes(ds)


def case_padding() -> bytes:
    """Raw padding/whitespace/NUL handling for every string VR."""
    ds = _base(6, "ISO_IR 100")
    ds.PatientName = "Pad^Test"
    ds.add_new(0x00090010, "LO", "VRTEST")
    values = [b"  a b  \\  c  ", b"ab\0 ", b"\0ab", b" \t x\t ", b"x\0\0\0", b"\\\\ ", b"12\\ 34 "]
    raw = []
    for i, vr in enumerate(sorted(dj.TEXT_VRS)):
        for j, value in enumerate(values):
            raw.append(_el(0x00091000 + 16 * i + j, vr, value + b" " * (len(value) % 2)))
    data = _splice(_bytes(ds), 0x00100010, *raw)
    # public tags too, plus an explicit UN for a known tag (kept untrimmed)
    return _splice(data, 0x0020000D, _el(0x00101000, "UN", b"OTHER "), _el(0x00104000, "LT", b"x  y   "),
                   _el(0x00110000, "UL", (20).to_bytes(4, "little")), _el(0x00110010, "LO", b"CR  "),
                   _el(0x00111001, "LO", b"x "), _el(0x00180015, "CS", b"odd  "),  # odd: NUL-padded
                   _el(0x00181030, "UI", b"1.2 \0"), _el(0x00181032, "LO", b"ab \0 "),
                   _el(0x00181033, "US", b"\1\2\3"), _el(0x00181034, "OB", b"\1\2\3"),
                   _el(0x00181035, "UN", b"\1\2\3"), _el(0x00181036, "FD", b"\0" * 9))


def case_encapsulated() -> bytes:
    ds = _base(7, ts="1.2.840.10008.1.2.4.50")
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.NumberOfFrames = 1, "MONOCHROME2", 2
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9", b"\xff\xd8\0\xff\xd9\0"])
    ds["PixelData"].VR = "OB"
    ds.add_new(0x7FE10010, "LO", "AFTERPIX")   # after PixelData: not in /tags
    ds.add_new(0x7FE11001, "LO", "after pixel")
    return _bytes(ds)


def case_implicit() -> bytes:
    ds = _base(8, ts="1.2.840.10008.1.2")
    ds.PatientName, ds.Rows, ds.PixelRepresentation = "Implicit^VR  ", 3, 1
    ds.add_new(0x00280106, "SS", -1)     # "US or SS": signed because PixelRepresentation=1
    block = ds.private_block(0x0009, "PACSBOX TEST", create=True)
    block.add_new(0x01, "LO", "private text")  # implicit private: UN, shown as null
    ds.add_new(0x00189306, "FD", [0.5])
    ds.add_new(0x00280009, "AT", [0x7FE00010])
    icon = Dataset()
    icon.Rows = 1
    icon.add_new(0x7FE00010, "OW", b"\0\0")
    icon.add_new(0x00291010, "LO", "x")
    ds.IconImageSequence = Sequence([icon])
    return _bytes(ds)


def case_big_endian() -> bytes:
    ds = _base(9, ts="1.2.840.10008.1.2.2")
    ds.Rows = 258
    ds.add_new(0x00189306, "FD", [0.5, 2.0])
    ds.add_new(0x00280009, "AT", [0x00200013])
    return _bytes(ds, little_endian=False, implicit_vr=False)


def case_header() -> bytes:
    ds = _base(10, "ISO_IR 100")
    ds.file_meta.SourceApplicationEntityTitle = "SRC AE"
    ds.file_meta.PrivateInformationCreatorUID = "1." + "2" * 300   # no limit in /header
    ds.file_meta.add_new(0x00020102, "OB", b"\1\2")                 # binary: omitted
    data = _bytes(ds)
    return data.replace(b"PACSBOX_TEST", b"PACSB\xd8X_TEST")          # header is ASCII


def _charset_case(n: int, charset: str, name: bytes | None = None) -> bytes:
    """Invalid bytes for the character set, unless a realistic `name` is given."""
    ds = _base(n, charset)
    data = _bytes(ds)
    value = bytes(range(0x20, 0x7F)).replace(b"\\", b"") + b"\n\r\t\x01\x7f"
    if name is None:
        name, value = b"A\xe9\xc3\xa9B ", value + b"\x80\x9f\xa0\xc3\xa9\xe9"
    data = _splice(data, 0x00100020, _el(0x00100010, "PN", name + b" " * (len(name) % 2)))
    return _splice(data, 0x0020000D, _el(0x00104000, "LT", value + b" " * (len(value) % 2)))


# PS3.5 H.3.1 example, and a Korean one in the same ISO 2022 style.
YAMADA = (b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B="
          b"\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B")
HONG = b"Hong^Gildong=\x1b$)C" + "홍^길동".encode("euc_kr")
CHARSETS = [("ISO_IR 6",), ("ISO_IR 101",), ("ISO_IR 126",), ("ISO_IR 144",), ("ISO_IR 166",),
            ("ISO_IR 13",), ("GB18030",), ("ISO 2022 IR 100",), ("iso_ir 100",), ("BOGUS",), ("",),
            ("\\ISO_IR 100",), ("ISO 2022 IR 6\\ISO 2022 IR 87",), ("\\ISO 2022 IR 87", YAMADA),
            ("ISO 2022 IR 13\\ISO 2022 IR 87", YAMADA), ("\\ISO 2022 IR 149", HONG)]

CASES = {
    "ct": case_ct, "latin1": case_latin1, "utf8": case_utf8, "no_charset": case_no_charset,
    "long": case_long, "padding": case_padding, "encapsulated": case_encapsulated,
    "implicit": case_implicit, "big_endian": case_big_endian, "header": case_header,
    **{f"charset{i}": (lambda i=i, c=c: _charset_case(20 + i, *c)) for i, c in enumerate(CHARSETS)},
}


def _parse(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


# ----------------------------------------------------------- real Orthanc --


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_orthanc(workdir: Path):
    """Start Orthanc in `workdir`; returns (process, base URL)."""
    import requests

    http_port, dicom_port = _free_port(), _free_port()
    config = {"Name": "pacsbox-ref", "StorageDirectory": str(workdir / "db"),
              "IndexDirectory": str(workdir / "db"), "HttpPort": http_port, "DicomPort": dicom_port,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": []}
    (workdir / "orthanc.json").write_text(json.dumps(config))
    with open(workdir / "orthanc.log", "wb") as log:
        proc = subprocess.Popen([ORTHANC, str(workdir / "orthanc.json")], cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(base + "/system", timeout=1).ok:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop_orthanc(proc)
    log = (workdir / "orthanc.log").read_text(errors="replace")
    raise RuntimeError("Orthanc did not start: " + log[-2000:])


def stop_orthanc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """Base URL of a running Orthanc holding every case, and the case ids."""
    if not Path(ORTHANC).exists():
        pytest.skip(SKIP_REASON)
    import requests

    try:
        proc, base = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    except RuntimeError:  # e.g. a port taken between probing and binding
        proc, base = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        with requests.Session() as session:
            ids = {}
            for name, make in CASES.items():
                answer = session.post(base + "/instances", data=make(), timeout=10)
                answer.raise_for_status()
                ids[name] = answer.json()["ID"]
            yield session, base, ids
    finally:
        stop_orthanc(proc)


RENDERERS = {
    "tags": lambda ds: dj.render_tags(ds, "full"),
    "tags?simplify": lambda ds: dj.render_tags(ds, "simplify"),
    "tags?short": lambda ds: dj.render_tags(ds, "short"),
    "simplified-tags": lambda ds: dj.render_tags(ds, "simplify"),
    "header": lambda ds: dj.render_header(ds.file_meta, "full"),
    "header?simplify": lambda ds: dj.render_header(ds.file_meta, "simplify"),
    "header?short": lambda ds: dj.render_header(ds.file_meta, "short"),
}


@pytest.mark.parametrize("case", CASES)
def test_tags_and_header_match_orthanc(orthanc, case):
    session, base, ids = orthanc
    data = CASES[case]()
    for route, render in RENDERERS.items():
        expected = session.get(f"{base}/instances/{ids[case]}/{route}").json()
        assert render(_parse(data)) == expected, route


@pytest.mark.parametrize("case", ["ct", "latin1", "utf8", "long", "implicit"])
def test_converted_elements_render_the_same(orthanc, case):
    """Elements pydicom has already converted go through its writer first."""
    session, base, ids = orthanc
    ds = _parse(CASES[case]())
    for _ in ds.iterall():
        pass
    assert dj.render_tags(ds) == session.get(f"{base}/instances/{ids[case]}/tags").json()


def _content_paths(ds: Dataset, path: list[str]):
    """Every path reachable from `path`, following dicom_json's own listings."""
    yield path
    try:
        listing = dj.content_lookup(ds, path).listing
    except dj.ContentNotFound:
        return
    for entry in listing or ():
        if len(path) < 8:
            yield from _content_paths(ds, path + [entry])


EXTRA_PATHS = {
    "ct": ["0008-1140/-1", "0008-1140/+1", "0008-1140/00", "0008-1140/3", "0008-1140/x",
           "0008-1140/18446744073709551615", "0008-1140/-2", "0008-1140/0/0008-1155/0",
           "0008-1032/-1", "0010,0010", "00100010", "PatientName", "RETIRED_RecognitionCode",
           "0010-0010/0", "0010-9999", "7FE0-0010", "7fe0-0010/0", "7fe0-0010/00", "7fe0-0010/1",
           "7fe0-0010/x", "PixelData", "Bogus", "Bogus/x", "Bogus/x/0010-0010", "0002-0010",
           "OtherPatientIDs", "0008-1140//0"],
    "encapsulated": ["7fe0-0010/0", "7fe0-0010/+1", "7fe0-0010/02", "7fe0-0010/3", "7fe0-0010/-1",
                     "7fe0-0010/x", "7fe0-0010/0/0"],
    "implicit": ["0088-0200/0/7fe0-0010", "0088-0200/0/7fe0-0010/0"],
}


@pytest.mark.parametrize("case", ["ct", "padding", "encapsulated", "implicit", "big_endian", "utf8"])
def test_content_matches_orthanc(orthanc, case):
    session, base, ids = orthanc
    ds = _parse(CASES[case]())
    paths = list(_content_paths(ds, []))
    paths += [p.split("/") for p in EXTRA_PATHS.get(case, [])]
    for path in paths:
        answer = session.get(f"{base}/instances/{ids[case]}/content/" + "/".join(path))
        try:
            result = dj.content_lookup(ds, path)
        except dj.ContentNotFound as error:
            if error.http_status == 500:
                assert answer.status_code == 500 and answer.json()["Message"] == "Unknown DICOM tag", path
            else:
                assert answer.status_code == 404 and answer.content == b"", path
            continue
        assert answer.status_code == 200, path
        assert answer.headers["Content-Type"] == result.media_type, path
        if result.listing is not None:
            assert answer.json() == list(result.listing), path
        else:
            assert answer.content == result.body, path


# -------------------------------------------------- fast, no Orthanc needed --


def test_reference_answers_captured_from_orthanc():
    reference = json.loads(REFERENCE.read_text())
    for key, expected in reference.items():
        case, route = key.split(" ")
        assert RENDERERS[route](_parse(CASES[case]())) == expected, key


def test_examples_of_orthanc_rendering():
    ds = _parse(case_ct())
    full = dj.render_tags(ds)
    assert list(full) == sorted(full) and "fffc,fffc" not in full
    assert full["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "Doe^John"}
    assert full["0008,0010"]["Name"] == "RETIRED_RecognitionCode"
    assert full["0018,1030"]["Value"] == "Protocol"             # trailing spaces trimmed
    assert full["0018,9306"]["Value"] == "0.10000000000000001\\2.5"
    assert full["0028,0009"]["Value"] == "0020,0013"            # first AT only
    assert full["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}
    assert full["0009,1001"]["PrivateCreator"] == "PACSBOX TEST"
    assert full["0009,1001"]["Name"] == dj.UNKNOWN_TAG_NAME
    assert "PrivateCreator" not in full["0009,1005"]            # not on sequences
    assert dj.render_tags(ds, "simplify")["ReferencedImageSequence"][1]["ReferencedFrameNumber"] == "1\\2"
    assert dj.render_tags(_parse(case_long()), "short")["0054,0081"] is None  # TooLong
    assert dj.content_lookup(ds, []).listing[-1] == "fffc-fffc"
    assert dj.content_lookup(ds, ["0008-1140"]).listing == ("0", "1", "2")
    assert dj.content_lookup(ds, ["0008-1140", "0", "0008-1155"]).body == b"1.2.3.4.5\0"
    with pytest.raises(dj.ContentNotFound):
        dj.content_lookup(ds, ["0008-1140", "7"])
    with pytest.raises(dj.UnknownDicomTag):
        dj.content_lookup(ds, ["NoSuchTag"])


def test_text_conversion_rules():
    assert dj._utf8_skip(b"A\xe9\xc3\xa9B") == "AB"  # boost drops the byte that broke a sequence
    assert dj._utf8_skip("Ωmega".encode()) == "Ωmega"
    assert dj._ascii(b"a\r\nb\tc\x01d\x7fe\xe9~") == "a\nbcde~"
    assert dj.tag_name(0x00080000) == "GenericGroupLength"
    assert dj.tag_name(0x00110000) == "PrivateGroupLength"
    assert dj.tag_name(0x00110010) == "PrivateCreator"
    assert dj.tag_name(0x60020010) == "OverlayRows"
    assert dj.tag_name(0x00101000) == "OtherPatientIDs"  # an Orthanc main tag, retired in DICOM
    assert dj.parse_tag("7FE0,0010") == dj.parse_tag("7fe00010") == dj.parse_tag("PixelData")


# ----------------------------------------------- reference file generation --

REFERENCE_ROUTES = {"ct": ["tags"], "latin1": ["tags?simplify"], "utf8": ["tags?short"],
                    "long": ["tags?short"], "padding": ["tags?short"], "header": ["header"]}

if __name__ == "__main__":  # regenerate orthanc_tags_reference.json
    import tempfile

    import requests

    warnings.simplefilter("ignore", UserWarning)

    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_orthanc(Path(tmp))
        try:
            captured = {}
            for name, routes in REFERENCE_ROUTES.items():
                iid = requests.post(url + "/instances", data=CASES[name]()).json()["ID"]
                for route in routes:
                    captured[f"{name} {route}"] = requests.get(f"{url}/instances/{iid}/{route}").json()
        finally:
            stop_orthanc(process)
    REFERENCE.write_text(json.dumps(captured, ensure_ascii=False, sort_keys=True) + "\n")
    sys.exit(0)
