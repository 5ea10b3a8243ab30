"""The STOW-RS answer (Store Instances Response Module) is written as DICOM JSON directly
(``stow.StoreOutcome.answer``): it must be what pydicom writes for the same module, built as a pydicom data set the
way the answer was built before (the plugin's answers themselves are compared in ``test_stow.py``)."""

from __future__ import annotations

import warnings

from hypothesis import example, given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from pacsbox.faces.dicomweb.answers import json_of
from pacsbox.faces.dicomweb.stow import StoreOutcome

_UIDS = st.text("0123456789. \x85", max_size=20)  # empty too (a file without the attribute), and whitespace
_STORED = st.lists(st.tuples(_UIDS, _UIDS, _UIDS, _UIDS), max_size=4)
_FAILED = st.lists(st.tuples(_UIDS, _UIDS, st.integers(0, 0xFFFF)), max_size=3)


def pydicom_answer(outcome: StoreOutcome, base: str, character_set: str) -> dict:
    """The module as a pydicom data set, attribute by attribute in the same order, then pydicom's JSON."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about UIDs its rules do not allow, and keeps them
        return _pydicom_answer(outcome, base, character_set)


def _pydicom_answer(outcome: StoreOutcome, base: str, character_set: str) -> dict:
    module = Dataset()
    module.SpecificCharacterSet = character_set
    if outcome.stored:
        module.RetrieveURL = f"{base}/studies/{outcome.expected_study or outcome.stored[0][1]}"
    failed = []
    for sop_class, sop_instance, reason in outcome.failed:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        item.FailureReason = reason
        failed.append(item)
    module.FailedSOPSequence = failed
    referenced = []
    for sop_class, study_uid, series_uid, sop_instance in outcome.stored:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        item.RetrieveURL = f"{base}/studies/{study_uid}/series/{series_uid}/instances/{sop_instance}"
        referenced.append(item)
    module.ReferencedSOPSequence = referenced
    return json_of(module)


@given(stored=_STORED, failed=_FAILED, expected_study=st.none() | _UIDS,
       character_set=st.sampled_from(["ISO_IR 100", "ISO_IR 192", ""]))
@example(stored=[], failed=[], expected_study=None, character_set="ISO_IR 100")  # nothing at all: empty sequences
@example(stored=[("", "1.2", "1.3", "")], failed=[("", "", 0x0110)], expected_study="", character_set="ISO_IR 100")
def test_the_answer_is_pydicoms_json_of_the_same_module(stored, failed, expected_study, character_set):
    outcome = StoreOutcome(expected_study)
    outcome.stored, outcome.failed = list(stored), list(failed)
    base = "http://127.0.0.1:8042/dicom-web"
    answer = outcome.answer(base, character_set)
    expected = pydicom_answer(outcome, base, character_set)
    assert answer == expected
    assert list(answer) == list(expected)  # the same order of attributes, so the same bytes once dumped
