"""The configuration checker (issue 22): derived from ``Config``'s annotations, so every key — also those added
later — is checked by its type; every mistake listed at once, with its path and what is expected."""

from __future__ import annotations

import typing
from dataclasses import fields

import pytest

from pacsbox.core.config import Config, config_from_mapping, load_config
from pacsbox.core.config_check import (
    ConfigError,
    _describe,
    _matches,
    check_values,
    field_types,
    read_file,
    unknown_keys,
)


def test_the_defaults_pass_their_own_checks() -> None:
    # a key added with a default outside its range (or of another type than its annotation) fails here at once
    defaults = Config()
    assert check_values({item.name: getattr(defaults, item.name) for item in fields(Config)}) == []


def _wrong_value(hint: typing.Any) -> typing.Any:
    """A JSON value that the annotation ``hint`` does not allow."""
    if hint is str:
        return 5
    if hint is bool:
        return "false"
    if hint in (int, float):
        return "1"
    origin = typing.get_origin(hint)
    if origin is not None and isinstance(origin, type) and issubclass(origin, typing.Mapping):
        return ["not", "an", "object"]
    return {"not": "a list or string"}


@pytest.mark.parametrize("key", sorted(field_types()))
def test_every_key_refuses_a_value_of_another_type(key: str) -> None:
    hint = field_types()[key]
    problems = check_values({key: _wrong_value(hint)})
    assert [problem.path for problem in problems] == [key], problems
    with pytest.raises(ConfigError, match=rf"(?m)^  {key}: expected "):
        config_from_mapping({key: _wrong_value(hint)})


def test_booleans_are_json_booleans_and_integers_are_not_booleans() -> None:
    assert [str(p) for p in check_values({"AuthenticationEnabled": "false", "StableAge": True})] == [
        'AuthenticationEnabled: expected true or false (a JSON boolean), got "false" (a string)',
        "StableAge: expected a whole number of seconds, at least 0, got true (a boolean)"]
    assert config_from_mapping({"AuthenticationEnabled": False}).AuthenticationEnabled is False


@pytest.mark.parametrize(("value", "valid"), [("A", True), ("ABCDEFGHIJKLMNOP", True), ("MY PACS", True),
                                              ("ABCDEFGHIJKLMNOPQ", False), ("", False), ("    ", False),
                                              ("BACK\\SLASH", False), ("TAB\tAET", False), ("ÄET", False)])
def test_ae_titles(value: str, valid: bool) -> None:
    assert (check_values({"DicomAet": value}) == []) is valid


def test_every_mistake_listed_with_its_path_and_the_file_named(tmp_path) -> None:
    path = tmp_path / "orthanc.json"
    path.write_text('// comments allowed\n{"HttpPort": 70000, "DicomPort": -1, "LuaScripts": "a.lua",\n'
                    ' "DicomModalities": {"pacs": ["PACS", "127.0.0.1", "104x"]}, "UserMetadata": {"Tag": 12},\n'
                    ' "DicomWeb": {"Enable": "yes"}, "RegisteredUsers": {"admin": 1}}')
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    assert str(failure.value).splitlines() == [
        f"the configuration file {path} has 7 errors:",
        "  HttpPort: expected a port number from 0 to 65535 (0 picks a free one), got 70000 (an integer)",
        "  DicomPort: expected a port number from 0 to 65535 (0 picks a free one), got -1 (an integer)",
        '  LuaScripts: expected a list of strings, got "a.lua" (a string)',
        f"  DicomModalities.pacs: expected {failure.value.problems[3].expected}, got "
        '["PACS", "127.0.0.1", "104x"] (a list)',
        "  UserMetadata.Tag: expected an integer from 1024 to 65535, got 12 (an integer)",
        '  DicomWeb.Enable: expected true or false (a JSON boolean), got "yes" (a string)',
        '  RegisteredUsers: expected an object whose values are strings, got {"admin": 1} (an object)']
    assert [problem.path for problem in failure.value.problems][3] == "DicomModalities.pacs"


def test_unknown_keys_suggest_the_nearest_one() -> None:
    assert unknown_keys({"DicomAett": 1, "httpport": 2, "Nothing": 3, "StorageCompression": True}) == [
        "unknown configuration key 'DicomAett' ignored (did you mean 'DicomAet'?)",
        "unknown configuration key 'httpport' ignored (did you mean 'HttpPort'?)",
        "unknown configuration key 'Nothing' ignored"]


def test_unusual_annotations_a_new_key_may_use() -> None:
    choice = typing.Literal["fast", "safe"]
    assert _matches(choice, "fast") and not _matches(choice, "slow") and _describe(choice) == 'one of "fast", "safe"'
    optional = typing.Optional[int]  # noqa: UP045 - the spelling a contributor may use
    assert _matches(optional, None) and _matches(optional, 3) and not _matches(optional, "3")


def test_files_that_are_not_json_objects(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"HttpPort": 8042,}')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON at line 1, column 19"):
        read_file(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    with pytest.raises(ValueError, match=r"must be a JSON object \(\{\.\.\.\}\), not \[1\] \(a list\)"):
        read_file(listed)
