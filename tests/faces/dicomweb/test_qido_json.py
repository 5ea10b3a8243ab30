"""QIDO-RS answers write their string attributes themselves (``answers.plain_attribute``) instead of making a pydicom
DataElement for each (most of an answer's time): the JSON must be the one pydicom's ``to_json_dict`` writes, and the
answers the same as before whatever the values (the plugin's answers are compared in ``test_qido.py``)."""

from __future__ import annotations

import warnings

from hypothesis import example, given
from hypothesis import strategies as st
from pydicom.dataelem import DataElement

from pacsbox.faces.dicomweb.answers import _PLAIN_STRING_VRS, plain_attribute

# values as the index gives them once split on backslashes: any text without one, empty values included
_VALUES = st.lists(st.text(st.characters(exclude_characters="\\", exclude_categories=("Cs",)), max_size=12),
                   max_size=4)


@given(vr=st.sampled_from(sorted(_PLAIN_STRING_VRS)), values=_VALUES)
@example(vr="LO", values=[""])  # one empty value (every character dropped by the encoding): no Value
@example(vr="CS", values=["", ""])  # two empty values: a Value of two empty strings
@example(vr="UI", values=["\x85"])  # a UID of whitespace alone (NEL, as Latin-1 decodes 0x85): pydicom strips it
@example(vr="UI", values=[" 1.2 ", "\t"])
def test_a_plain_attribute_is_pydicoms_json_of_the_same_values(vr, values):
    # what the answers passed to pydicom before: None for no value, the value alone, or the list of them
    value = None if not values else values[0] if len(values) == 1 else values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about values its VR does not allow, and keeps them
        expected = DataElement(0x00100020, vr, value).to_json_dict(None, 1024)
    assert plain_attribute(vr, values) == expected


def test_the_vrs_written_directly_are_pydicoms_strings():
    # no person name (split into components), no number (JSON numbers), no bytes or tags (base64, hexadecimal)
    assert not _PLAIN_STRING_VRS & {"PN", "IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "AT", "OB", "OW", "UN", "SQ"}
