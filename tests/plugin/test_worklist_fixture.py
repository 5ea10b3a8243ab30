"""The ``pacsbox_worklist`` fixture through an inner pytest run: items it makes are served by the worklist SCP
during the test and gone after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.helpers import run

WORKLIST_TESTS = """
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE

WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


def patient_ids(address):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(WORKLIST_FIND)
    assoc = ae.associate(address.host, address.port, ae_title=address.aet)
    query = Dataset()
    query.PatientID = ""
    step = Dataset()
    step.Modality = "CT"
    query.ScheduledProcedureStepSequence = Sequence([step])
    found = [answer.PatientID for status, answer in assoc.send_c_find(query, WORKLIST_FIND) if answer]
    assoc.release()
    return sorted(found)


def test_1_items_are_served(pacsbox_worklist, dicom_address):
    first = pacsbox_worklist({"PatientID": "FIX1", "ScheduledProcedureStepSequence": [{"Modality": "CT"}]})
    pacsbox_worklist({"PatientID": "FIX2", "ScheduledProcedureStepSequence": [{"Modality": "MR"}]},
                     item_id="named")
    assert first and patient_ids(dicom_address) == ["FIX1"]


def test_2_and_removed_after_the_test(dicom_address):
    assert patient_ids(dicom_address) == []
"""


def test_worklist_fixture(pytester: pytest.Pytester, pacsbox_home: Path) -> None:
    (pytester.path / "config.json").write_text(json.dumps({"DicomAlwaysAllowFindWorklist": True}))
    pytester.makepyfile(test_inner=WORKLIST_TESTS)
    run(pytester, "--pacsbox-config", "config.json", "--pacsbox-stop").assert_outcomes(passed=2)
