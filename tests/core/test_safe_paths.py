"""The names pacsbox gives to untrusted text on disk (``core.safe_paths``): injective, bounded, never a path of
their own; joins confined to their root; labels made from DICOM values; zip member names safe to extract.

Property tests (hypothesis) cover any text, including lone surrogates a URL can carry, and long texts that share
their first few hundred characters (where a cut name must still tell them apart)."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsbox.core.errors import BadRequest, InvalidName
from pacsbox.core.safe_paths import (
    LABEL_MAX,
    NAME_MAX,
    archive_member,
    confined_join,
    decode_name,
    dicom_label,
    encode_name,
    encoded_join,
    is_plain_name,
    single_name,
    xnat_label,
)

# any text: every code point but lone surrogates, plus some of those (surrogatepass must keep them apart too)
_texts = st.text(min_size=1, max_size=300) | st.lists(
    st.sampled_from(["a", ".", "/", "\\", "%", "\x00", "é", "\ud800", "\udfff", "名", "..", " "]), min_size=1,
    max_size=40).map("".join)
_long_prefix = st.text(alphabet="abc%./é", min_size=200, max_size=400)


def assert_safe_name(name: str) -> None:
    assert 0 < len(name.encode()) <= NAME_MAX
    assert name not in (".", "..") and not name.startswith(".")
    assert not set(name) & set("/\\\x00:*?\"<>|`")
    assert name.isascii() and name.isprintable()


@settings(max_examples=150, deadline=None)
@given(_texts)
def test_every_text_gets_a_safe_bounded_name(text):
    name = encode_name(text)
    assert_safe_name(name)
    if "%%" not in name:  # uncut names hold the whole text
        assert decode_name(name) == text


@settings(max_examples=150, deadline=None)
@given(_texts, _texts)
def test_two_texts_never_share_a_name(one, other):
    if one != other:
        assert encode_name(one) != encode_name(other)


@settings(max_examples=100, deadline=None)
@given(_long_prefix, _texts, _texts)
def test_long_texts_with_a_common_start_keep_apart(prefix, one, other):
    if one != other:
        assert encode_name(prefix + one) != encode_name(prefix + other)
        assert_safe_name(encode_name(prefix + one))


@settings(max_examples=100, deadline=None)
@given(_texts)
def test_encoding_a_name_again_stays_safe_and_plain_names_are_their_own(text):
    once = encode_name(text)
    twice = encode_name(once)
    assert_safe_name(twice)
    if "%" not in once:  # nothing was escaped: the name is its own name
        assert twice == once
    # the usual labels and file names keep their look on disk
    assert is_plain_name("SUBJ_01") and is_plain_name("sess-2") and is_plain_name("scan 1.nii.gz")
    assert encode_name("1.2.840.10008.1.dcm") == "1.2.840.10008.1.dcm"


def test_the_escapes_of_the_dangerous_characters():
    assert encode_name("..") == "%2E."
    assert encode_name(".") == "%2E"
    assert encode_name("/etc/passwd") == "%2Fetc%2Fpasswd"
    assert encode_name("..\\..\\x") == "%2E.%5C..%5Cx"
    assert encode_name("a\x00b") == "a%00b"
    assert encode_name("50%") == "50%25"
    assert encode_name("é") == "%C3%A9"
    with pytest.raises(InvalidName):
        encode_name("")


def test_a_cut_name_fills_the_name_max_and_never_ends_inside_an_escape():
    for length in (NAME_MAX - 1, NAME_MAX, NAME_MAX + 1, 300, 10_000):
        name = encode_name("x" * length)
        assert len(name) <= NAME_MAX
        assert (name == "x" * length) == (length <= NAME_MAX)
    name = encode_name("é" * 300)
    assert re.fullmatch(r"(%C3%A9)+%%[0-9a-f]{32}", name), name
    with pytest.raises(ValueError):
        decode_name(name)


def test_confined_join_refuses_every_way_out(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    for parts in (("..",), ("a", ".."), ("../outside",), ("/etc",), (str(outside),), ("a\\..\\..",), ("a\x00",),
                  ("",), (".",), ("a//b",), ("escape",), ("escape/x",), ("x" * 256,)):
        with pytest.raises(InvalidName):
            confined_join(root, *parts)
    assert confined_join(root, "a", "b/c") == root / "a" / "b" / "c"
    # too long as a whole, each part fine
    with pytest.raises(InvalidName, match="too long"):
        confined_join(root, *(["y" * 250] * 20))
    assert issubclass(InvalidName, BadRequest)  # every face answers it as a client error


def test_encoded_join_makes_any_text_a_name_inside_the_root(tmp_path):
    for text in ("..", "/etc/passwd", "../../x", "a/b", "\\\\server\\share", "x" * 400):
        path = encoded_join(tmp_path, "project", text)
        assert path.parent == tmp_path / "project"
        path.mkdir(parents=True)  # the name is creatable
        assert path.is_dir()
    assert len(os.listdir(tmp_path / "project")) == 6


@settings(max_examples=150, deadline=None)
@given(_texts)
def test_dicom_labels_are_xnat_labels_and_bounded(text):
    label = dicom_label(text)
    assert len(label) <= LABEL_MAX
    assert label == "" or xnat_label(label, "label") == label


def test_long_dicom_values_that_differ_at_their_end_stay_apart():
    assert dicom_label("P" * 300 + "1") != dicom_label("P" * 300 + "2")
    assert dicom_label("../../etc") == "etc"
    assert dicom_label("/some/dir") == "some_dir"
    assert dicom_label("12") == "12"


def test_rest_labels_follow_xnat():
    for bad in ("..", "a/b", "a b", "a.b", "é", "a\x00", "a\\b", "x" * 256, ""):
        with pytest.raises(InvalidName):
            xnat_label(bad, "subject label")
    assert xnat_label("Sub-01_x", "subject label") == "Sub-01_x"
    for bad in ("..", ".", "a/b", "a\\b", "a\x00", "a\nb", "é" * 128, ""):
        with pytest.raises(InvalidName):
            single_name(bad, "resource label")
    assert single_name("NIFTI 1.0 é", "resource label") == "NIFTI 1.0 é"


@settings(max_examples=150, deadline=None)
@given(st.lists(_texts, min_size=1, max_size=5))
def test_archive_members_extract_inside_the_folder(parts):
    try:
        member = archive_member(*parts)
    except InvalidName:  # nothing but separators
        assert not "".join(parts).strip("/")
        return
    assert not member.startswith("/") and "\\" not in member and ":" not in member
    for segment in member.split("/"):
        assert segment.strip(".") and len(segment.encode("utf-8", "surrogatepass")) <= NAME_MAX


def test_a_zip_of_archive_members_extracts_inside(tmp_path):
    names = [archive_member("..", "x"), archive_member("/etc/passwd"), archive_member("C:\\evil", "y"),
             archive_member("session", "scans", "1", "files", "a/b.dcm")]
    assert names[-1] == "session/scans/1/files/a/b.dcm"
    path = tmp_path / "test.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index, name in enumerate(names):
            archive.writestr(name, str(index))
    target = tmp_path / "out"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(target)
    extracted = [p for p in target.rglob("*") if p.is_file()]
    assert len(extracted) == len(names)
    assert all(Path(os.path.realpath(p)).is_relative_to(target.resolve()) for p in extracted)
