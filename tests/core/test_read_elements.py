"""The fast reader behind /tags (``core.dicom.read_elements``) renders exactly what a pydicom parse renders.

/instances/{id}/tags and its forms render the data set that ``read_elements`` gives (the top-level elements read
by ``scan_part10``, pydicom for what it leaves); ``test_dicom_json`` checks the renderings of pydicom's parse against
the real Orthanc. Here both parses are rendered in every form and default encoding and must be equal: the hand-made
cases of ``test_dicom_json`` (character sets, padding, long values, sequences, encapsulated pixels, implicit VR,
big endian) and two hundred random files of the ingest fuzzers (private blocks, unknown tags, nested sequences,
several syntaxes, with and without file meta, and mutations of valid files).
"""

from __future__ import annotations

import random

import pytest

from pacsbox.core.dicom import read_dataset, read_elements, scan_part10
from pacsbox.core.dicom_json import render_tags
from tests.core.test_dicom_json import CASES
from tests.fuzz.ingest_cases import RandomChooser, any_case

FORMS = ("full", "simplify", "short")
ENCODINGS = ("Latin1", "Utf8", "Ascii", "Japanese")


def _render_both(data: bytes, encodings: tuple[str, ...] = ENCODINGS) -> None:
    try:
        expected_dataset = read_dataset(data)
    except Exception:  # not storable, so never read back
        return
    for encoding in encodings:
        for form in FORMS:
            try:
                expected = render_tags(expected_dataset, form, encoding)
            except Exception as error:  # the same failure is expected of both readers
                with pytest.raises(type(error)):
                    render_tags(read_elements(data), form, encoding)
                continue
            assert render_tags(read_elements(data), form, encoding) == expected, (form, encoding)


@pytest.mark.parametrize("case", CASES)
def test_hand_made_cases_render_as_pydicom_parses_them(case):
    _render_both(CASES[case]())


def test_the_fast_reader_reads_the_hand_made_cases():
    """The comparison above compares the fast reader, not pydicom with itself: most cases take the fast path."""
    fast = [case for case, make in CASES.items() if scan_part10(make()) is not None]
    assert len(fast) >= len(CASES) // 2, fast


@pytest.mark.parametrize("seed", range(4))
def test_random_files_render_as_pydicom_parses_them(seed):
    """Random images and mutations of valid files (bit flips, truncations, corrupted lengths...)."""
    chooser = RandomChooser(random.Random(seed))
    for _ in range(50):
        _render_both(any_case(chooser).data, ("Latin1", "Utf8"))
