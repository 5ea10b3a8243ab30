"""The Orthanc face's fast JSON writer answers byte for byte what ``json.dumps(indent=3, sort_keys=True)`` does."""

from __future__ import annotations

import json
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsbox.faces.orthanc.json import dumps


def _reference(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=3).encode("utf-8")


class _Level(IntEnum):
    STUDY = 2


class _Text(str):
    pass


@pytest.mark.parametrize("value", [
    {}, [], (), "", 0, -1, 2**70, 1.5, -0.0, 1e300, True, False, None,
    {"b": {}, "a": [1, 2.5, None, True, False, "quote \" backslash \\ newline \n é \u2028 \x00"]},
    {"nested": [[[]], [{}], [{"x": ()}]]}, (1, (2, 3)), [_Level.STUDY, _Text("text")], {_Text("key"): 1},
    {1: "int key"}, {"nan": float("nan")}, [float("inf")], {"a": 1, "B": 2, "_": 3, "é": 4, "": 5},
])
def test_values_of_every_kind(value):
    assert dumps(value) == _reference(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_random_documents(value):
    assert dumps(value) == _reference(value)
