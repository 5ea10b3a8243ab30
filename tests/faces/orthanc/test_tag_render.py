"""The direct /tags writer (``faces.orthanc.tag_render``) against the walk it replaces on the common path.

``render_tags_json(data, form, encoding)`` must be ``dumps(render_tags(read_elements(data), form, encoding))`` byte
for byte: checked over the ingest fuzzers' inputs (random-but-typed data sets with private blocks, unknown tags,
nested sequences, odd lengths and many character sets, in three transfer syntaxes, and mutations of valid files),
in every form and under several DefaultEncodings. The old walk is the reference because it is itself checked
against the real Orthanc (``tests/core/test_dicom_json.py``, ``test_differential.py``).
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsbox.core.dicom import read_elements, scan_part10
from pacsbox.core.dicom_json import render_tags
from pacsbox.faces.orthanc.json import dumps
from pacsbox.faces.orthanc.tag_render import render_tags_json
from tests.fuzz.ingest_cases import DrawChooser, RandomChooser, any_case, dataset_case

LONG = os.environ.get("PACSBOX_LONG_TESTS") == "1"
FORMS = ("full", "simplify", "short")
ENCODINGS = ("Latin1", "Utf8", "Japanese")

# pydicom warns about, and logs, every invalid value it reads
pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.usefixtures("quiet_pydicom")]


def _outcome(render, data: bytes, form: str, encoding: str) -> bytes | str:
    try:
        return render(data, form, encoding)
    except Exception as error:  # the same failure is as good as the same answer
        return type(error).__name__


def _old(data: bytes, form: str, encoding: str) -> bytes:
    return dumps(render_tags(read_elements(data), form, encoding))


def _check_alike(data: bytes, how: str) -> None:
    for form in FORMS:
        for encoding in ENCODINGS:
            old = _outcome(_old, data, form, encoding)
            new = _outcome(render_tags_json, data, form, encoding)
            assert new == old, f"{form}, {encoding}: {how}"


@settings(deadline=None, derandomize=not LONG, max_examples=80 * (10 if LONG else 1),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_data_sets_render_alike(data):
    case = dataset_case(DrawChooser(data.draw))
    _check_alike(case.data, case.how)


def test_hostile_files_render_alike():
    for number in range(80):
        case = any_case(RandomChooser(random.Random(f"tag-render-{number}")))
        _check_alike(case.data, case.how)


def test_the_fast_path_is_what_these_inputs_take():
    """The comparisons above are worth something only if many inputs take the direct path, sequences included."""
    direct = with_sequences = 0
    for number in range(120):
        scanned = scan_part10(any_case(RandomChooser(random.Random(f"tag-render-{number}"))).data, plain=True)
        if scanned is not None:
            direct += 1
            with_sequences += any(vr == "SQ" or length == 0xFFFFFFFF for vr, length, _ in scanned[1].values())
    assert direct >= 30 and with_sequences >= 3, (direct, with_sequences)
