"""The one rule for snapshot names (they become folder names under the storage directory)."""

from __future__ import annotations

import pytest

from pacsbox.core.errors import BadRequest
from pacsbox.core.snapshots import _NAME, MAX_NAME, check_snapshot_name, is_snapshot_name


@pytest.mark.parametrize("name", ["base", "a", "v1.2", "with_under-score", "-leading-dash", "_x", "9" * MAX_NAME])
def test_accepted(name):
    assert is_snapshot_name(name) and check_snapshot_name(name) == name and _NAME.fullmatch(name)


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", ".data-0123", "a/b", "../x", "a\\b", "x" * (MAX_NAME + 1),
                                  "caf\u00e9", "\u0661\u0662", "a b", "a\x00b", "a\nb", None, 12])
def test_refused(name):
    assert not is_snapshot_name(name)
    with pytest.raises(BadRequest, match="snapshot name"):
        check_snapshot_name(name)
