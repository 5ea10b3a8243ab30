"""Property tests of ingest: hostile DICOM through ``POST /instances``, XNAT's import service and the core.

Inputs come from ``ingest_cases`` (random-but-typed datasets in three transfer syntaxes, and mutated valid files);
each answer must be a 200 or an Orthanc/XNAT 4xx, never a 5xx, leave the archive untouched when refused, agree
with the core ``Archive`` used in-process, and make a stored instance fully readable and findable (see
``IngestChecker``); identifiers and main tags are cleaned as the real Orthanc cleans them (compared with it when
installed). Bounded and derandomized for the suite: about 200 examples in all, the same ones on every run
(``PACSBOX_LONG_TESTS=1``: ten times more, new ones each run); ``python -m tests.fuzz.long_harness`` runs the same
generators for as long as asked.
"""

from __future__ import annotations

import os
import random
import uuid
import warnings

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsbox.core.archive import Archive
from pacsbox.core.config import Config
from pacsbox.server import Server
from tests.fuzz.ingest_cases import (
    DrawChooser,
    IngestChecker,
    RandomChooser,
    any_case,
    classify,
    dataset_case,
    mutated_case,
    xnat_import_check,
)
from tests.support.pacsbox_proc import RunningPacsbox

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
SCALE = 10 if LONG else 1
# The suite's runs are derandomized: the same inputs every time, so a red CI means a change broke something; the
# long variant and the harness explore new inputs on every run.
FUZZ = settings(deadline=None, derandomize=not LONG, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# pydicom warns about, and logs, every invalid value it reads
pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.usefixtures("quiet_pydicom")]


def _reference(tmp_path_factory, name: str) -> Archive:
    """The core alone, in its own folder: every input is stored there too, and must be classified alike."""
    return Archive(Config(StorageDirectory=str(tmp_path_factory.mktemp(name)), SyncStorageArea=False))


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    """An in-process server (fast) and the checker that compares its answers with a reference archive."""
    folder = tmp_path_factory.mktemp("served")
    with Server({"SyncStorageArea": False}, data_dir=folder) as server:
        checker = IngestChecker(server.url, server.auth, folder, _reference(tmp_path_factory, "reference"))
        yield checker
        checker.close()
        checker.reference.close()


@settings(FUZZ, max_examples=70 * SCALE)
@given(data=st.data())
def test_random_datasets(checker, data):
    checker.check(dataset_case(DrawChooser(data.draw)))


@settings(FUZZ, max_examples=70 * SCALE)
@given(data=st.data())
def test_mutated_files(checker, data):
    checker.check(mutated_case(DrawChooser(data.draw)))


@pytest.fixture(scope="module")
def xnat_server(tmp_path_factory):
    with Server({"SyncStorageArea": False}, data_dir=tmp_path_factory.mktemp("xnat")) as server:
        reference = _reference(tmp_path_factory, "xnat-reference")
        session = requests.Session()
        session.auth = server.auth
        yield server, session, reference, {"number": 0, "first": {}}
        session.close()
        reference.close()


@settings(FUZZ, max_examples=25 * SCALE)
@given(data=st.data())
def test_xnat_import_of_hostile_files(xnat_server, data):
    """The same inputs, zipped, through XNAT's import service into a new session each time."""
    server, session, reference, state = xnat_server
    case = any_case(DrawChooser(data.draw))
    state["number"] += 1
    outcome, result = classify(reference, case.data)
    expected = None
    if outcome == "stored":
        state["first"].setdefault(result.instance_id, case.data)
        expected = state["first"][result.instance_id]
    answer = xnat_import_check(session, server.url, case, state["number"], expected)
    if outcome == "refused":
        assert answer == "refused", f"XNAT imported what the core refuses ({result!r}): {case.how}"


def test_a_real_server_process_survives_hostile_uploads(tmp_path_factory):
    """The same checks against ``pacsbox serve`` in its own process (the face's real stack, fsync on)."""
    seed = random.randrange(2**32) if LONG else 20240601
    with RunningPacsbox() as server:
        checker = IngestChecker(server.url, server.auth, server.data_dir, _reference(tmp_path_factory, "process"))
        try:
            for number in range(15 * SCALE):
                case = any_case(RandomChooser(random.Random(f"{seed}-{number}")))
                try:
                    checker.check(case)
                except Exception as failure:  # any failure, with what replays it
                    raise AssertionError(f"seed {seed}, case {number}: {failure!r}\n{case.how}") from failure
                assert server.process is not None and server.process.poll() is None, "the server died"
        finally:
            checker.close()
            checker.reference.close()
    assert sum(checker.counts.values()) == 15 * SCALE


# -- padding and multiple values, against the real Orthanc ---------------------------------------------------------
PADDED_TAGS = ["PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "AccessionNumber",
               "StudyDescription", "Modality", "StudyDate", "StudyTime", "SeriesNumber", "InstanceNumber",
               "ImagePositionPatient", "OperatorsName", "OtherPatientIDs", "SeriesType", "ImageComments",
               "ContrastBolusAgent", "NumberOfTemporalPositions"]


@pytest.fixture(scope="module")
def real_orthanc():
    from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc

    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    with ReferenceOrthanc() as server:
        yield server


@settings(FUZZ, max_examples=30 * SCALE)
@given(values=st.dictionaries(st.sampled_from(PADDED_TAGS), st.tuples(
    st.text(" ", max_size=2), st.text("AB12.", min_size=1, max_size=4), st.text(" ", max_size=2),
    st.sampled_from(["", "\\", " \\ ", "\\ 7 "]), st.sampled_from(["", "\x00", " \x00", "\x00x"])), max_size=5),
    implicit=st.booleans())
def test_padding_is_cleaned_as_the_real_orthanc_does(real_orthanc, values, implicit):
    """Leading and trailing spaces, NULs and backslashes in main tags: pacsbox keeps what Orthanc keeps (DCMTK
    trims UI/IS/DS both ends, LO/SH each value's end, others the whole value's end), so the IDs agree too."""
    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from pacsbox.core.dicom import parse_instance
    from pacsbox.core.ids import Level
    from tests.support.dicomgen import make_dataset, to_bytes, uid

    number = uuid.uuid4().hex  # new resources every time: a patient's or study's tags come from its first file
    dataset = make_dataset(patient_id=f"PAD{number[:8]}", patient_name="Pad^Ding", study_uid=uid("pad", number, 1),
                           series_uid=uid("pad", number, 2), sop_uid=uid("pad", number, 3))
    texts = {}
    for keyword, (lead, core, trail, more, end) in values.items():
        if keyword.endswith("UID"):
            core = uid("pad", number, keyword)  # a UID must stay one, or both servers refuse the file
        elif keyword == "PatientID":
            core += number[:8]
        text = lead + core + trail + more + end
        raw = text.encode("ascii")
        raw += b" " if len(raw) % 2 else b""
        tag = Tag(keyword)
        dataset._dict[tag] = RawDataElement(tag, dictionary_VR(keyword), len(raw), raw, 0, False, True)
        texts[keyword] = text
    data = to_bytes(dataset, implicit_vr=implicit)
    answer = real_orthanc.session.post(real_orthanc.url + "/instances", data=data)
    parsed = parse_instance(data)
    if answer.status_code != 200:
        pytest.fail(f"the real Orthanc refused {texts}: {answer.text[:200]}")
    body = answer.json()
    theirs: dict[str, str] = {}
    for path in (f"patients/{body['ParentPatient']}", f"studies/{body['ParentStudy']}",
                 f"series/{body['ParentSeries']}", f"instances/{body['ID']}"):
        theirs.update(real_orthanc.session.get(f"{real_orthanc.url}/{path}").json()["MainDicomTags"])
    ours = {keyword: value for level in Level for keyword, value in parsed.main_tags[level].items()}
    assert {k: ours.get(k) for k in texts} == {k: theirs.get(k) for k in texts}, texts
    assert parsed.ids == (body["ParentPatient"], body["ParentStudy"], body["ParentSeries"], body["ID"]), texts


# -- what the fuzzers found, kept as plain regression tests --------------------------------------------------------
def _image(number: int, implicit: bool = True, **raw_values: bytes) -> bytes:
    """A valid image with some elements replaced by raw bytes (written as they are: no validation)."""
    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from tests.support.dicomgen import make_dataset, to_bytes, uid

    dataset = make_dataset(patient_id=f"FOUND{number}", patient_name="Found^It", study_uid=uid("found", number, 1),
                           series_uid=uid("found", number, 2), sop_uid=uid("found", number, 3))
    for keyword, raw in raw_values.items():
        tag = Tag(keyword)
        dataset._dict[tag] = RawDataElement(tag, dictionary_VR(keyword), len(raw), raw, 0, False, True)
    with warnings.catch_warnings():  # built while collecting, outside the module's warning filter
        warnings.simplefilter("ignore")
        return to_bytes(dataset, implicit_vr=implicit)


def _last_length_set_to(data: bytes, length: int) -> bytes:
    from tests.fuzz.ingest_cases import length_fields

    offset, width = length_fields(data)[-1]
    return data[:offset] + length.to_bytes(width, "little") + data[offset + width:]


@pytest.mark.parametrize(("name", "data", "outcome"), [
    # an IS of 20 digits made the index's 64-bit IndexInSeries overflow: a 500
    ("instance-number-overflow", _image(1, InstanceNumber=b"99999999999999999999"), "stored"),
    # a NUL inside SpecificCharacterSet: stored by the fast reader, then unreadable by pydicom (/tags answered 400)
    ("nul-in-character-set",
     _image(2, SpecificCharacterSet=b"ISO_IR 100").replace(b"ISO_IR 100", b"ISO_IR\x00\x00\x000"), "refused"),
    # the last element longer than the file: refused from bytes, but stored when read from a file object (uploads
    # over 32 MiB), where pydicom deferred the value and the truncation check read it back instead of looking
    ("deferred-truncated-element", _last_length_set_to(_image(3), 0x10000000), "refused"),
    # an empty PatientID whose VR a bit flip made unknown ("Lo"): pydicom reads an empty value as None, the reader
    # took it for a deferred one and had pydicom convert it, which raised NotImplementedError: a 500
    ("empty-value-unknown-vr",
     _image(5, implicit=False, PatientID=b"").replace(b"\x10\x00\x20\x00LO\x00\x00", b"\x10\x00\x20\x00Lo\x00\x00"),
     "stored"),
    # a PatientID with a leading space keeps it (as Orthanc does), and /tools/find finds it with it
    ("leading-space-patient-id", _image(4, PatientID=b" P1 "), "stored"),
], ids=["instance-number-overflow", "nul-in-character-set", "deferred-truncated-element", "empty-value-unknown-vr",
        "leading-space-patient-id"])
def test_inputs_the_fuzzers_found(checker, name, data, outcome):
    from tests.fuzz.ingest_cases import Case

    assert checker.check(Case(data, name)) == outcome


def _sequence_holding(value: bytes) -> bytes:
    """An implicit VR image whose ReferencedStudySequence (0008,1110) holds ``value`` as its items."""
    import struct

    data = _image(6)
    start = data.index(b"\x20\x00\x00\x40")  # ImageComments, replaced in place
    length = struct.unpack_from("<I", data, start + 4)[0]
    return data[:start] + b"\x08\x00\x10\x11" + struct.pack("<I", len(value)) + value + data[start + 8 + length:]


def test_a_sequence_with_a_truncated_item_header_is_refused(checker):
    """Found by the long harness: such a file was stored, then /tags answered 500 (the real Orthanc refuses it)."""
    from tests.fuzz.ingest_cases import Case

    assert checker.check(Case(_sequence_holding(b"\xfe\xff\x00\xe0"), "truncated item header")) == "refused"
