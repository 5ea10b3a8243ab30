"""Property tests of the C-FIND SCP's matching: random study-level identifiers through ``find_responses`` (the DIMSE
face's own code: identifier → query → index SQL) return exactly the studies the DICOM rules accept, written out in
Python with ``Pattern.matches`` (PS3.4 C.2.2.2: person names case-insensitive unless CaseSensitivePN, every other
VR case-sensitive, UIDs never wildcards).

The population mixes values that mean something to SQL (``%``, ``_``, ``[``, quotes) and to case folding, over
several keys at once (PatientName, PatientID, AccessionNumber, StudyDescription, StudyDate, StudyInstanceUID).
``PACSBOX_LONG_TESTS=1`` asks ten times more queries; ``long_harness`` asks them for as long as it is told.
"""

from __future__ import annotations

import os
import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from pacsbox.core.archive import Archive, FindQuery
from pacsbox.core.config import Config
from pacsbox.core.ids import Level
from pacsbox.core.matching import parse_pattern
from pacsbox.faces.dimse.find import find_responses
from tests.fuzz.ingest_cases import Chooser, DrawChooser
from tests.support.dicomgen import make_dataset, to_bytes, uid

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
SCALE = 10 if LONG else 1
KEYS = {"PatientName": "PN", "PatientID": "LO", "AccessionNumber": "SH", "StudyDescription": "LO",
        "StudyDate": "DA", "StudyInstanceUID": "UI"}
ALPHABET = "abAB%_[]'^éÉßİi-.019"
_NAMES = ["Doe^John", "DOE^JOHN", "doe^jöhn", "100%_sure", "a_b", "a%b", "O'Brien", "Müller^Jürgen", "[x]^y", "İi^ß"]
_IDS = ["P1", "p1", "P%", "P_1", "P[1]", "ÄÖ", "x'y"]
_DESCRIPTIONS = ["CT Chest", "ct chest", "CT_Head", "MR 50%", "Brain [T1]", "Ünïcode"]
_DATES = ["20010101", "20100615", "20191231", "20200101", "20230704", "20240229"]

pytestmark = pytest.mark.filterwarnings("ignore")  # pydicom warns about every query value that is no valid date


def populate(archive: Archive, count: int = 60, seed: int = 7) -> None:
    """``count`` studies whose keys are drawn (seeded) from the value pools, one instance each."""
    rng = random.Random(seed)
    for number in range(count):
        dataset = make_dataset(
            patient_id=rng.choice(_IDS) + str(number % 5), patient_name=rng.choice(_NAMES),
            study_uid=uid("cfind-st", seed, number), series_uid=uid("cfind-se", seed, number),
            sop_uid=uid("cfind-in", seed, number), charset="ISO_IR 192",
            extra={"StudyDate": rng.choice(_DATES), "AccessionNumber": rng.choice(["A1", "a1", "A_2", "B%", ""]),
                   "StudyDescription": rng.choice(_DESCRIPTIONS)})
        archive.store(to_bytes(dataset))


def stored_studies(archive: Archive) -> list[dict[str, str]]:
    """Every study's own main tags plus its patient's, as the index holds them."""
    studies = []
    for row in archive.find(FindQuery(Level.STUDY, {})):
        patient = archive.related(Level.STUDY, row.public_id, Level.PATIENT)[0]
        studies.append({**patient.main_tags, **row.main_tags})
    return studies


def _pattern_text(c: Chooser, value: str, vr: str) -> str:
    kind = c.choice(["exact", "exact", "wildcard", "list", "case", "random", "range"])
    if kind == "wildcard" and vr not in ("UI", "DA"):
        chars = list(value) or ["*"]
        for _ in range(c.integer(1, 3)):
            chars[c.integer(0, len(chars) - 1)] = c.choice(["*", "?"])
        return "".join(chars) + c.choice(["", "*"])
    if kind == "list":
        return "\\".join([value, *(c.choice(_NAMES + _IDS + _DESCRIPTIONS) for _ in range(c.integer(1, 2)))])
    if kind == "case":
        return value.swapcase()
    if kind == "random" and vr != "UI":
        return c.text(ALPHABET, 1, 6)
    if kind == "range" and vr == "DA":
        low, high = c.choice(["", *_DATES]), c.choice(["", *_DATES])
        return f"{low}-{high}" if low or high else value
    return value


def random_query(c: Chooser, studies: list[dict[str, str]]) -> dict[str, str]:
    """One to three keys, each derived from a stored study's value (exact, wildcard, list, case-swapped, range)
    or random text; never universal (that is every study, and nothing to check)."""
    query: dict[str, str] = {}
    for _ in range(c.integer(1, 3)):
        keyword = c.choice(list(KEYS))
        text = _pattern_text(c, c.choice(studies).get(keyword, ""), KEYS[keyword])
        if text.strip(" ") not in ("", "*") and text == text.strip(" "):
            query[keyword] = text
    return query


def expected_uids(studies: list[dict[str, str]], query: dict[str, str], case_sensitive_pn: bool) -> set[str]:
    """The rules in Python: a study matches when every key matches (PN folds case unless CaseSensitivePN)."""
    patterns = {keyword: parse_pattern(text, KEYS[keyword]) for keyword, text in query.items()}
    return {study["StudyInstanceUID"] for study in studies
            if all(pattern.matches(study.get(keyword), KEYS[keyword] != "PN" or case_sensitive_pn)
                   for keyword, pattern in patterns.items())}


def cfind_uids(archive: Archive, config: Config, query: dict[str, str]) -> set[str]:
    """What the C-FIND SCP answers for a study-level identifier with these keys (plus StudyInstanceUID asked)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.SpecificCharacterSet = "ISO_IR 192"
    identifier.StudyInstanceUID = ""
    for keyword, text in query.items():
        setattr(identifier, keyword, text)
    # what the SCP's event carries: the identifier, the cancel flag and the negotiated context (explicit VR LE)
    event: Any = SimpleNamespace(identifier=identifier, is_cancelled=False,
                                 context=SimpleNamespace(transfer_syntax="1.2.840.10008.1.2.1"))
    answers = list(find_responses(archive, config, event))
    assert answers == [] or all(status == 0xFF00 for status, _ in answers), answers[:1]
    return {str(answer.StudyInstanceUID) for _, answer in answers}


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    archive = Archive(Config(StorageDirectory=str(tmp_path_factory.mktemp("cfind")), SyncStorageArea=False))
    populate(archive)
    yield archive, stored_studies(archive)
    archive.close()


@settings(max_examples=120 * SCALE, deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), case_sensitive_pn=st.booleans())
def test_cfind_answers_exactly_what_the_rules_match(population, data, case_sensitive_pn):
    archive, studies = population
    query = random_query(DrawChooser(data.draw), studies)
    if not query:
        return
    config = Config(CaseSensitivePN=case_sensitive_pn)
    assert cfind_uids(archive, config, query) == expected_uids(studies, query, case_sensitive_pn), query
