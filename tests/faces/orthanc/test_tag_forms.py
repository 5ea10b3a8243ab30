"""Forms of /tags derived from a kept full answer (``tag_answers.derived_form``) equal the forms rendered from the
file: the hand-made cases of ``test_dicom_json`` (sequences, private blocks, duplicate names, long values, implicit
VR...) and random files of the ingest fuzzers, in every default encoding, through the JSON bytes the cache keeps."""

from __future__ import annotations

import json
import random

import pytest

from pacsbox.core.dicom import read_dataset, read_elements
from pacsbox.core.dicom_json import render_tags
from pacsbox.faces.orthanc.json import dumps
from pacsbox.faces.orthanc.tag_answers import derived_form
from tests.core.test_dicom_json import CASES
from tests.fuzz.ingest_cases import RandomChooser, any_case


def _check(data: bytes, encodings: tuple[str, ...] = ("Latin1", "Utf8")) -> None:
    try:
        read_dataset(data)
        dataset = read_elements(data)
        fulls = {encoding: render_tags(dataset, "full", encoding) for encoding in encodings}
    except Exception:  # not storable, or not renderable: never kept either
        return
    for encoding, full in fulls.items():
        kept = json.loads(dumps(full))  # what the cache keeps, read back
        for form in ("simplify", "short"):
            assert dumps(derived_form(kept, form)) == dumps(render_tags(dataset, form, encoding)), (form, encoding)


@pytest.mark.parametrize("case", CASES)
def test_hand_made_cases(case):
    _check(CASES[case]())


def test_random_files():
    chooser = RandomChooser(random.Random(7))
    for _ in range(40):
        _check(any_case(chooser).data)
