"""C-FIND whatever is stored and whatever is asked (issue 15).

A stored value pydicom cannot read (a US of 3 bytes, a DS of ``abc``, ...) is answered as the real Orthanc answers
it: text as stored, a binary value of the wrong length empty (Orthanc leaves some out, or salvages a part of
some: then pacsbox's is empty). Each file is stored in pacsbox and in the real Orthanc and asked for in both
explicit and implicit VR, on both of pacsbox's paths. A query the archive cannot run (50,000-character wildcards,
thousands of UIDs) ends with a final status, the association still working.
"""

from __future__ import annotations

import io
import struct

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pynetdicom import AE

from pacsbox.faces.dimse.network import held_reactor
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.dimse import SCU_AET, query

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the values sent are invalid on purpose
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
PENDING, SUCCESS, UNABLE_TO_PROCESS = 0xFF00, 0x0000, 0xC000

# (name, tag, VR, value bytes as stored, stored in implicit VR, pacsbox's answer, the real Orthanc's answer)
#   "stored": the stored bytes; "empty": the key with no value.
#   Orthanc: "same" as pacsbox, "absent" (no key), "salvaged" (DCMTK reads a part of a binary value).
BAD_VALUES = [
    ("us-3-bytes", 0x00280010, "US", b"\x01\x02\x03", False, "empty", "absent"),
    ("fd-5-bytes", 0x00189087, "FD", b"\x01\x02\x03\x04\x05", False, "empty", "same"),
    ("ds-abc", 0x00180050, "DS", b"abc ", False, "stored", "same"),
    ("is-x-main-tag", 0x00200012, "IS", b"x ", False, "stored", "same"),
    ("ul-2-bytes", 0x00289001, "UL", b"\x01\x02", False, "empty", "same"),
    ("ss-1-byte", 0x00189219, "SS", b"\x01", False, "empty", "salvaged"),
    ("sl-5-bytes", 0x00186020, "SL", b"\x01\x02\x03\x04\x05", False, "empty", "salvaged"),
    ("fd-3-bytes", 0x00189195, "FD", b"\x01\x02\x03", False, "empty", "same"),
    ("at-3-bytes", 0x00209165, "AT", b"\x01\x02\x03", False, "empty", "salvaged"),
    ("ds-second-value-abc", 0x00280030, "DS", b"1.5\\abc ", False, "stored", "same"),
    ("us-3-bytes-implicit", 0x00280011, "US", b"\x01\x02\x03", True, "empty", "absent"),
    ("is-1x-implicit", 0x00200013, "IS", b"1x", True, "stored", "same"),
    ("da-not-a-date", 0x00080023, "DA", b"notadate", False, "stored", "same"),
    ("fd-1-byte-implicit", 0x00189087, "FD", b"\x01", True, "empty", "same"),
]


def with_raw_element(tag: int, vr: str, value: bytes, implicit: bool, key: str) -> bytes:
    """A Part 10 file holding ``value`` under ``tag`` byte for byte, in tag order, however wrong it is."""
    dataset = make_dataset(patient_id="PBX-BADV", patient_name="Bad^Values", study_uid=uid("badv-st"),
                           series_uid=uid("badv-se"), sop_uid=uid("badv-in", key))
    if tag in dataset:
        del dataset[tag]
    parsed = dcmread(io.BytesIO(to_bytes(dataset, implicit_vr=implicit)))
    if implicit:
        element = struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    else:
        element = struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, implicit
    written = False
    for existing in parsed:
        if not written and int(existing.tag) > tag:
            body.write(element)
            written = True
        write_data_element(body, existing)
    if not written:
        body.write(element)
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, parsed.file_meta)
    return b"\x00" * 128 + b"DICM" + meta.getvalue() + body.getvalue()


def associate(port: int, aet: str, syntax: str, through_pynetdicom: bool):
    """An association with a find context (served directly by pacsbox), and a move context too (then
    pynetdicom serves it)."""
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(STUDY_FIND, syntax)
    if through_pynetdicom:
        ae.add_requested_context(STUDY_MOVE, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title=aet)
    assert assoc.is_established
    return assoc


def find_raw(port: int, aet: str, identifier: Dataset, tag: int, syntax: str,
             through_pynetdicom: bool = False) -> list[tuple[int, bytes | None]]:
    """(status, the key's bytes as sent: None when absent, trailing padding stripped) of every response."""
    assoc = associate(port, aet, syntax, through_pynetdicom)
    try:
        answers = []
        for status, answer in assoc.send_c_find(identifier, STUDY_FIND):
            assert "Status" in status, "the association ended without a final response"
            value = None
            if answer is not None and tag in answer:
                value = _bytes_of(answer.get_item(tag).value)
            answers.append((int(status.Status), value))
        return answers
    finally:
        assoc.release()


def _bytes_of(value) -> bytes:
    """A received value as bytes, trailing padding stripped (pynetdicom may have read it already)."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        raw = "\\".join(str(v) for v in value).encode("latin-1")
    else:
        raw = str(value).encode("latin-1")
    return raw.rstrip(b" \x00")


@pytest.fixture(scope="module")
def stored(dimse_pacsbox, dimse_orthanc):
    """Every bad file stored in pacsbox and in the real Orthanc (both accept them all)."""
    for name, tag, vr, value, implicit, *_ in BAD_VALUES:
        data = with_raw_element(tag, vr, value, implicit, name)
        assert dimse_orthanc.session.post(dimse_orthanc.url + "/instances", data=data).status_code == 200, name
        assert dimse_pacsbox.session().post(dimse_pacsbox.url + "/instances", data=data).status_code == 200, name


@pytest.mark.parametrize("syntax", [EXPLICIT, IMPLICIT])
@pytest.mark.parametrize(("name", "tag", "vr", "value", "implicit", "expected", "orthanc"), BAD_VALUES,
                         ids=[case[0] for case in BAD_VALUES])
def test_a_bad_stored_value_is_answered_as_orthanc_answers_it(dimse_pacsbox, dimse_orthanc, stored, syntax, name,
                                                              tag, vr, value, implicit, expected, orthanc):
    identifier = query("IMAGE", SOPInstanceUID=uid("badv-in", name), PatientName="", StudyInstanceUID="")
    identifier.add_new(tag, vr, None)
    direct = find_raw(dimse_pacsbox.dicom_port, dimse_pacsbox.aet, identifier, tag, syntax)
    through_pynetdicom = find_raw(dimse_pacsbox.dicom_port, dimse_pacsbox.aet, identifier, tag, syntax, True)
    reference = find_raw(dimse_orthanc.dicom_port, dimse_orthanc.aet, identifier, tag, syntax)
    assert [code for code, _ in direct] == [code for code, _ in reference] == [PENDING, SUCCESS]
    assert direct == through_pynetdicom
    sent = direct[0][1]
    assert sent == (value.rstrip(b" ") if expected == "stored" else b"")
    if orthanc == "same":
        assert reference[0][1] == sent
    elif orthanc == "absent":
        assert reference[0][1] is None
    else:
        assert reference[0][1] not in (None, b"", value)


@pytest.mark.parametrize("through_pynetdicom", [False, True], ids=["direct", "pynetdicom"])
def test_one_bad_file_does_not_spoil_a_find_over_many(dimse_pacsbox, stored, through_pynetdicom):
    """Every bad value asked for at once, over every bad file: one answer each, then success."""
    identifier = query("IMAGE", PatientID="PBX-BADV", StudyInstanceUID=uid("badv-st"),
                       SeriesInstanceUID=uid("badv-se"), SOPInstanceUID="")
    for _, tag, vr, *_ in BAD_VALUES:
        if tag not in identifier:
            identifier.add_new(tag, vr, None)
    for syntax in (EXPLICIT, IMPLICIT):
        answers = find_raw(dimse_pacsbox.dicom_port, dimse_pacsbox.aet, identifier, 0x00080018, syntax,
                           through_pynetdicom)
        assert [code for code, _ in answers] == [PENDING] * len(BAD_VALUES) + [SUCCESS]


# -- queries the archive may refuse: a final status, always ---------------------------------------------------

HOSTILE_QUERIES = {
    "wildcard-50000-stars": dict(PatientName="*" * 50_000),
    "wildcard-stars-and-marks": dict(PatientID="A" + "*?" * 25_000),
    "wildcard-50000-marks": dict(PatientName="?" * 50_000),
    "uid-list-5000": dict(StudyInstanceUID="\\".join(uid("many", n) for n in range(5_000))),
    "uid-list-40000": dict(StudyInstanceUID="\\".join(uid("many", n) for n in range(40_000))),
    "date-range-garbage": dict(StudyDate="-".join(["20200101"] * 5_000)),
    "value-list-10000": dict(PatientID="\\".join(f"P{n}*" for n in range(10_000))),
    "level-50000": dict(QueryRetrieveLevel="STUDY" * 10_000),
}


@pytest.mark.parametrize("through_pynetdicom", [False, True], ids=["direct", "pynetdicom"])
@pytest.mark.parametrize("name", HOSTILE_QUERIES)
def test_a_query_the_archive_cannot_run_ends_with_a_final_status(dimse_pacsbox, name, through_pynetdicom):
    keys = {"StudyInstanceUID": "", "PatientName": "", **HOSTILE_QUERIES[name]}
    identifier = query(keys.pop("QueryRetrieveLevel", "STUDY"), **keys)
    assoc = associate(dimse_pacsbox.dicom_port, dimse_pacsbox.aet, EXPLICIT, through_pynetdicom)
    try:
        with held_reactor(assoc):  # two finds on one association: pynetdicom's race (see held_reactor)
            statuses = [int(status.Status) for status, _ in assoc.send_c_find(identifier, STUDY_FIND)
                        if "Status" in status]
            assert statuses, "no response at all"
            assert statuses[-1] in (SUCCESS, UNABLE_TO_PROCESS), hex(statuses[-1])
            assert all(code == PENDING for code in statuses[:-1])
            # the same association answers the next find
            after = [int(status.Status) for status, _ in assoc.send_c_find(query("STUDY", PatientID="NONE"),
                                                                             STUDY_FIND)]
        assert after == [SUCCESS]
    finally:
        assoc.release()
