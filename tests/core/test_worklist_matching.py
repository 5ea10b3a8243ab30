"""Worklist matching in process (core.worklist_matching), one matching kind at a time; the same kinds are compared
with the real Orthanc's worklist plugin in tests/faces/dimse/test_worklist_reference.py."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsbox.core.errors import BadFormat
from pacsbox.core.worklist_matching import InvalidWorklistQuery, WorklistMatcher
from pacsbox.core.worklists import WorklistFolder, WorklistSettings, item_from_json, read_item, write_item


def _item(**steps) -> Dataset:
    return item_from_json({"PatientName": "Müller^Jörg", "PatientID": "P1", "PatientBirthDate": "19700101",
                           "ScheduledProcedureStepSequence": [
                               {"Modality": "CT", "ScheduledStationAETitle": "CTSCAN",
                                "ScheduledProcedureStepStartDate": "20240301", **steps},
                               {"Modality": "MR", "ScheduledStationAETitle": "MRSCAN",
                                "ScheduledProcedureStepStartDate": "20240302"}]}, "ISO_IR 100")


def _query(**keys) -> Dataset:
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


@pytest.mark.parametrize("keys,matches", [
    ({"PatientID": ""}, True),  # universal
    ({"PatientID": "*"}, True),
    ({"PatientID": "P1"}, True),  # single value
    ({"PatientID": "P2"}, False),
    ({"PatientID": "p1"}, False),  # LO is case-sensitive
    ({"PatientName": "müller^jörg"}, True),  # PN is not
    ({"PatientName": "M?ller*"}, True),  # wildcards
    ({"PatientName": "X*"}, False),
    ({"PatientID": "P0\\P1"}, True),  # list
    ({"PatientID": "P0\\P2"}, False),
    ({"PatientBirthDate": "19690101-19710101"}, True),  # ranges
    ({"PatientBirthDate": "-19691231"}, False),
    ({"PatientBirthDate": "19700101-"}, True),
    ({"PatientBirthDate": "1970*"}, False),  # no wildcard for DA: a single value
    ({"PatientWeight": "70"}, False),  # a constraint on a tag the item lacks
    ({"PatientWeight": ""}, True),  # universal on a tag it lacks
])
def test_flat_matching(keys, matches):
    assert WorklistMatcher(_query(**keys)).matches(_item()) is matches


def test_case_sensitive_person_names():
    assert not WorklistMatcher(_query(PatientName="müller^jörg"), case_sensitive_pn=True).matches(_item())


def _steps(**keys) -> Dataset:
    step = Dataset()
    for keyword, value in keys.items():
        setattr(step, keyword, value)
    return _query(PatientID="", ScheduledProcedureStepSequence=Sequence([step]))


@pytest.mark.parametrize("query,matches,kept", [
    (_steps(Modality="MR"), True, [{"Modality": "MR"}]),
    (_steps(Modality="US"), False, None),
    (_steps(Modality="CT", ScheduledStationAETitle="MRSCAN"), False, None),  # both keys in one item
    (_steps(ScheduledProcedureStepStartDate="20240301-20240302", Modality=""), True,
     [{"Modality": "CT", "ScheduledProcedureStepStartDate": "20240301"},
      {"Modality": "MR", "ScheduledProcedureStepStartDate": "20240302"}]),
])
def test_sequence_matching_keeps_the_matching_items_and_keys(query, matches, kept):
    matcher = WorklistMatcher(query)
    assert matcher.matches(_item()) is matches
    if kept is not None:
        answer = matcher.extract(_item())
        assert [{e.keyword: e.value for e in step} for step in answer.ScheduledProcedureStepSequence] == kept
        assert "PatientName" not in answer and answer.PatientID == "P1"


def test_universal_sequence_is_answered_whole_and_items_without_it_match():
    query = _query(PatientID="", ScheduledProcedureStepSequence=Sequence([]))
    answer = WorklistMatcher(query).extract(_item())
    assert len(answer.ScheduledProcedureStepSequence) == 2
    assert len(answer.ScheduledProcedureStepSequence[0]) == 3
    bare = item_from_json({"PatientID": "P9"})
    assert WorklistMatcher(_steps(Modality="CT")).matches(bare)


def test_a_sequence_key_with_two_items_is_invalid():
    query = _query(ScheduledProcedureStepSequence=Sequence([Dataset(), Dataset()]))
    query.ScheduledProcedureStepSequence[0].Modality = "CT"
    with pytest.raises(InvalidWorklistQuery):
        WorklistMatcher(query)


def test_values_compare_across_character_sets():
    greek = item_from_json({"PatientName": "Ωμέγα^Άλφα", "PatientID": "P4"}, "ISO_IR 192")
    reread = read_item(write_item(greek))
    query = _query(SpecificCharacterSet="ISO_IR 192", PatientName="ωμέγα*")
    assert WorklistMatcher(query).matches(reread)


def test_folder_reads_anew_and_skips_broken_files(tmp_path):
    folder = WorklistFolder(WorklistSettings.from_config({"Database": str(tmp_path)}, tmp_path))
    first = folder.add(_item())
    (tmp_path / "broken.wl").write_bytes(b"not DICOM at all")
    (tmp_path / "ignored.txt").write_bytes(write_item(_item()))
    assert [name for name, _ in folder.scan()] == [f"{first}.wl"]
    folder.add(_item(), "second")
    assert sorted(name for name, _ in folder.scan()) == sorted([f"{first}.wl", "second.wl"])
    folder.remove("second")
    assert folder.ids() == sorted(["broken", first])
    with pytest.raises(BadFormat):
        folder.read("broken")


@pytest.mark.parametrize("section,message", [
    ({"Enable": "yes"}, "Enable"), ({"LimitAnswers": -1}, "LimitAnswers"), ({"Database": ""}, "Database"),
    ([], "object"),
])
def test_settings_name_a_wrong_key(tmp_path, section, message):
    with pytest.raises(ValueError, match=message):
        WorklistSettings.from_config(section, tmp_path)
