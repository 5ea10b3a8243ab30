"""Hostile DICOM inputs for the ingest fuzzers, and the properties every answer to them must have.

Generators draw through a :class:`Chooser`, so that one piece of code feeds hypothesis in the suite (bounded,
shrinking) and a seeded ``random.Random`` in the long harness (``tests/fuzz/long_harness.py``, fast, no limit).
Two kinds of input:

* **datasets**: small images built with pydicom whose values are random but typed (patient names with
  non-ASCII letters, backslashes and wildcards; valid, pooled and invalid UIDs; dates, times, integer and
  decimal strings that may be nonsense; extra public elements, unknown public tags, private blocks with random
  VRs, nested sequences), written in implicit, explicit or deflated little endian, with or without file meta;
* **mutations** of valid files: bit flips, truncation, inserted and deleted bytes, corrupted length fields of
  top-level elements, a transfer syntax swapped for another of the same length, spliced ranges.

:class:`IngestChecker` then posts one input to ``POST /instances`` and checks the answer (see its docstring).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pydicom
import requests
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacsbox.core.archive import Archive
from pacsbox.core.dicom import parse_instance
from pacsbox.core.errors import ArchiveError
from pacsbox.core.ids import resource_ids
from pacsbox.core.storage import FRESH_FOLDER
from tests.support.dicomgen import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE, make_dataset, uid

T = TypeVar("T")


# -- choosing -----------------------------------------------------------------------------------------------------
class Chooser(Protocol):
    """Where a generator gets its choices: hypothesis's ``draw`` or a seeded ``random.Random``."""

    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def boolean(self) -> bool: ...

    def text(self, alphabet: str, low: int, high: int) -> str: ...

    def raw(self, low: int, high: int) -> bytes: ...


class DrawChooser:
    """Choices drawn by hypothesis (``st.data().draw`` or a composite's ``draw``): shrinkable."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self._draw, self._st = draw, st

    def integer(self, low: int, high: int) -> int:
        return self._draw(self._st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(self._st.sampled_from(list(options)))

    def boolean(self) -> bool:
        return self._draw(self._st.booleans())

    def text(self, alphabet: str, low: int, high: int) -> str:
        return self._draw(self._st.text(alphabet, min_size=low, max_size=high))

    def raw(self, low: int, high: int) -> bytes:
        return self._draw(self._st.binary(min_size=low, max_size=high))


class RandomChooser:
    """Choices from a seeded ``random.Random``: the long harness replays a case from its seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def boolean(self) -> bool:
        return self.rng.random() < 0.5

    def text(self, alphabet: str, low: int, high: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(low, high)))

    def raw(self, low: int, high: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))


# -- values -------------------------------------------------------------------------------------------------------
NAMES = ["Doe^John", "Müller^Jürgen", "Yamada^Tarou=山田^太郎=やまだ^たろう", "O'Brien^Dan", "a\\b", "*", "?", "%_[]",
         "", " padded ", "One^Two^Three^Four^Five^Six", "Ωμέγα^Άλφα", "Иванов^Иван", "x" * 70]
NAME_ALPHABET = "abzAZ09 ^=\\*?%_[]'\"-.,éüßİΩя山\x00\t"
PATIENT_IDS = ["P1", "P2", "p1", " P1", "P1 ", "", "*", "a?c", "x\\y", "ÄÖÜ", "A" * 70, "id with spaces", "тест", "[a]"]
ID_ALPHABET = "aZ09 -_.*?\\[]éΩ"
INVALID_UIDS = ["", " ", "1.2.3.", ".1.2", "1..2", "01.2.3", "1.2.abc", "1.2.3 ", "1" * 65, "1.2\\3.4", "*", "1.2.3*",
                "1.2.840.10008." + "9" * 60, "é.1", "1.2.\x00.3"]
UID_ALPHABET = "0123456789.abc -\\*"
DATES = ["20240229", "20230230", "19000101", "", "2024", "2024-01-01", "abcdefgh", "20241301", "99991231", "2024010",
         "20240101-20240102", "00000000"]
TIMES = ["120000", "25", "1200.123456", "abc", "", "235960", "000000.0000001", "12:00:00"]
INTEGER_STRINGS = ["1", "-3", "0", "abc", "99999999999999999999", " 7 ", "", "1.5", "+2", "1\\2"]
DECIMAL_STRINGS = ["1.5", "nan", "inf", "-inf", "1e400", "abc", "", "-0", "1.0\\2.0\\3.0", "0.000000000000000001"]
TEXT_ALPHABET = "abzAZ09 ^=\\*?%_[]'\"-.,:;/éüßΩя山\x00\t\n\r\x1b"
MODALITIES = ["CT", "MR", "OT", "", "ct", "SEG", "XXXXXXXXXXXXXXXXXXXX", "C\\T", "SR"]
SOP_CLASSES = [CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE, "1.2.3.4", "", "not-a-uid"]
CHARSETS = [None, "ISO_IR 100", "ISO_IR 192", "ISO_IR 6", "BOGUS_CHARSET", "ISO_IR 100\\ISO_IR 192", ""]
SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]
PRIVATE_GROUPS = [0x0009, 0x0011, 0x0019, 0x0029, 0x0043, 0x7FD1]
PRIVATE_VRS = ["LO", "SH", "US", "UL", "SS", "SL", "FL", "FD", "OB", "UN", "UT", "DS", "IS", "CS", "DA", "SQ"]


def _text(c: Chooser, pool: Sequence[str], alphabet: str, high: int) -> str:
    return c.choice(pool) if c.boolean() else c.text(alphabet, 0, high)


def _uid(c: Chooser, role: str) -> str:
    kind = c.integer(0, 9)
    if kind <= 5:
        return uid("fuzz", role, c.integer(0, 2**40))
    if kind <= 7:  # a small pool: the same study or series again, sometimes the same instance (AlreadyStored)
        return uid("fuzz-pool", role, c.integer(0, 3))
    return c.choice(INVALID_UIDS) if c.boolean() else c.text(UID_ALPHABET, 0, 70)


def _number(c: Chooser, vr: str) -> Any:
    if vr in ("FL", "FD"):
        return c.choice([0.0, -1.5, 3.0e38 if vr == "FL" else 1e300, float("nan"), float("inf"), 3.25])
    bits = {"US": (0, 65535), "SS": (-32768, 32767), "UL": (0, 2**32 - 1), "SL": (-(2**31), 2**31 - 1)}[vr]
    return c.integer(*bits)


def _private_value(c: Chooser, vr: str) -> Any:
    if vr in ("US", "SS", "UL", "SL", "FL", "FD"):
        return [_number(c, vr) for _ in range(c.integer(1, 3))] if c.boolean() else _number(c, vr)
    if vr in ("OB", "UN"):
        return c.raw(0, 40)
    if vr == "DS":
        return c.choice(DECIMAL_STRINGS)
    if vr == "IS":
        return c.choice(INTEGER_STRINGS)
    if vr == "DA":
        return c.choice(DATES)
    if vr == "SQ":
        items = []
        for _ in range(c.integer(0, 2)):
            item = Dataset()
            item.CodeValue = c.text(TEXT_ALPHABET, 0, 10)
            item.CodeMeaning = c.text(TEXT_ALPHABET, 0, 20)
            items.append(item)
        return DicomSequence(items)
    return c.text(TEXT_ALPHABET, 0, 30)


def _extras(c: Chooser) -> dict[str, Any]:
    """Public elements set to random values of their VR, or removed (value None)."""
    makers: dict[str, Callable[[], Any]] = {
        "StudyDescription": lambda: c.text(TEXT_ALPHABET, 0, 70),
        "SeriesDescription": lambda: c.text(TEXT_ALPHABET, 0, 70),
        "AccessionNumber": lambda: c.text(ID_ALPHABET, 0, 20),
        "Modality": lambda: c.choice(MODALITIES),
        "SeriesNumber": lambda: c.choice(INTEGER_STRINGS),
        "InstanceNumber": lambda: c.choice(INTEGER_STRINGS),
        "NumberOfFrames": lambda: c.choice([*INTEGER_STRINGS, "3"]),
        "StudyDate": lambda: c.choice(DATES),
        "SeriesDate": lambda: c.choice(DATES),
        "PatientBirthDate": lambda: c.choice(DATES),
        "StudyTime": lambda: c.choice(TIMES),
        "ImagePositionPatient": lambda: c.choice(DECIMAL_STRINGS),
        "SliceThickness": lambda: c.choice(DECIMAL_STRINGS),
        "PatientAge": lambda: c.choice(["045Y", "45", "", "XXXX"]),
        "OtherPatientIDs": lambda: c.choice(["A\\B", "", "x", "*"]),
        "ImageComments": lambda: c.text(TEXT_ALPHABET, 0, 200),
        "RequestingPhysician": lambda: _text(c, NAMES, NAME_ALPHABET, 30),
        "SOPClassUID": lambda: c.choice(SOP_CLASSES),
        "PixelData": lambda: c.choice([b"", b"\x01", c.raw(0, 64)]),
        "ReferencedImageSequence": lambda: _private_value(c, "SQ"),
    }
    names = list(makers)
    chosen: dict[str, Any] = {}
    for _ in range(c.integer(0, 6)):
        name = c.choice(names)
        chosen[name] = None if c.integer(0, 5) == 0 else makers[name]()
    return chosen


@dataclass(frozen=True)
class Case:
    """One input: its bytes and how it was made (printed when a property fails)."""

    data: bytes
    how: str


def dataset_case(c: Chooser, *, valid_only: bool = False) -> Case:
    """A small image with random values, encoded in a random little endian syntax."""
    name = _text(c, NAMES, NAME_ALPHABET, 70)
    patient_id = _text(c, PATIENT_IDS, ID_ALPHABET, 20)
    uids = {role: (uid("fuzz", role, c.integer(0, 2**40)) if valid_only else _uid(c, role))
            for role in ("study", "series", "sop")}
    extras = {} if valid_only else _extras(c)
    syntax = c.choice(SYNTAXES)
    with_meta = syntax == DeflatedExplicitVRLittleEndian or valid_only or c.integer(0, 7) != 0
    charset = c.choice(CHARSETS)
    privates = [] if valid_only else [
        (c.choice(PRIVATE_GROUPS), c.choice(["PACSBOX FUZZ", "", "ÜNÎCODE", "x" * 70, None]), c.integer(0x10, 0xFF),
         c.choice(PRIVATE_VRS)) for _ in range(c.integer(0, 3))]
    private_values = [_private_value(c, vr) for *_, vr in privates]
    unknown_public = None if valid_only or c.integer(0, 4) else (c.choice([0x00089999, 0x00180FFE, 0x60020FFE]),
                                                               c.raw(0, 16))
    dropped = [] if valid_only else [role for role in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                                                       "SOPInstanceUID") if c.integer(0, 24) == 0]
    how = (f"dataset syntax={syntax.name} meta={with_meta} charset={charset!r} name={name!r} id={patient_id!r} "
           f"uids={uids} extras={extras!r} privates={privates!r} unknown={unknown_public!r} dropped={dropped}")
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        dataset = make_dataset(patient_id=patient_id, patient_name=name, study_uid=uids["study"],
                               series_uid=uids["series"], sop_uid=uids["sop"], rows=2, cols=2)
        for keyword, value in extras.items():
            if value is None:
                if keyword in dataset:
                    delattr(dataset, keyword)
            else:
                _put(dataset, Tag(keyword), dictionary_VR(keyword), value)
        for keyword in dropped:
            if keyword in dataset:
                delattr(dataset, keyword)
        for (group, creator, element, vr), value in zip(privates, private_values, strict=True):
            if creator is not None:
                _put(dataset, Tag((group << 16) | 0x0010), "LO", creator)
                _put(dataset, Tag((group << 16) | 0x1000 | element), vr, value)
            else:  # an orphan private element: no creator reserves its block
                _put(dataset, Tag((group << 16) | 0x2000 | element), vr, value)
        if unknown_public is not None:
            _put(dataset, Tag(unknown_public[0]), "UN", unknown_public[1])
        data = _encode(dataset, charset, syntax, with_meta)
    return Case(data, how)


def _put(dataset: Dataset, tag: BaseTag, vr: str, value: Any) -> None:
    """Set an element; text and bytes go in raw (UTF-8 whatever the character set), so that pydicom neither
    validates nor converts them on the way out."""
    if isinstance(value, (str, bytes)):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if len(raw) % 2:
            raw += b" " if isinstance(value, str) else b"\x00"
        if vr == "OW" and isinstance(value, bytes):
            vr = "OB"
        dataset._dict[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
    else:
        dataset.add_new(tag, vr, value)


def _encode(dataset: Dataset, charset: str | None, syntax: str, with_meta: bool) -> bytes:
    """Part 10 or bare bytes; a charset that cannot encode the values falls back to UTF-8, then to Latin-1 with
    replacement (the value is still random, just representable)."""
    for attempt in (charset, "ISO_IR 192"):
        if attempt is None:
            dataset.pop(0x00080005, None)
        else:
            dataset.SpecificCharacterSet = attempt.split("\\") if "\\" in attempt else attempt
        try:
            return _write(dataset, syntax, with_meta)
        except (UnicodeError, ValueError, LookupError, TypeError, OverflowError):
            continue
    raise RuntimeError("the generator made a dataset pydicom cannot write")  # a bug of this module


def _write(dataset: Dataset, syntax: str, with_meta: bool) -> bytes:
    from pydicom.dataset import FileMetaDataset

    out = Dataset()
    out.update(dataset)
    buffer = io.BytesIO()
    if with_meta:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = str(dataset.get("SOPClassUID", "") or "1.2.3")
        meta.MediaStorageSOPInstanceUID = str(dataset.get("SOPInstanceUID", "") or "1.2.3")
        meta.TransferSyntaxUID = syntax
        meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1137.1"
        out.file_meta = meta
        out.preamble = b"\x00" * 128
        pydicom.dcmwrite(buffer, out, enforce_file_format=True)
    else:
        pydicom.dcmwrite(buffer, out, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    return buffer.getvalue()


# -- mutations ----------------------------------------------------------------------------------------------------
_SAME_LENGTH_SYNTAXES = [b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.2\x00", b"1.2.840.10008.1.2.5\x00",
                         b"1.2.840.10008.1.2\x00\x00\x00", b"9.9.999.99999.9.9.9\x00"]
_LENGTHS = [0, 1, 2, 3, 0xFF, 0xFFFF, 0xFFFE, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF]


def length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of the length field of every top-level element of a Part 10 file, as pydicom reads it."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            return []  # offsets count inflated bytes there
        fields = []
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag, keep_deferred=True)
            if not isinstance(raw, RawDataElement) or raw.value_tell is None:
                continue
            long_form = raw.is_implicit_VR or raw.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UT", "UN",
                                                          "UC", "UR", "SV", "UV")
            fields.append((raw.value_tell - 4, 4) if long_form else (raw.value_tell - 2, 2))
        return fields
    except Exception:  # an input already mutated may not read back: it simply has no known length fields
        return []


def mutate(c: Chooser, data: bytes) -> tuple[bytes, str]:
    """One structural or byte-level mutation of ``data``."""
    size = len(data)
    kind = c.choice(["flip", "flip", "truncate", "insert", "delete", "length", "length", "syntax", "splice", "zero"])
    if kind == "flip" and size:
        positions = [c.integer(0, size - 1) for _ in range(c.integer(1, 8))]
        mutated = bytearray(data)
        for position in positions:
            mutated[position] ^= 1 << c.integer(0, 7)
        return bytes(mutated), f"flip bits at {positions}"
    if kind == "truncate":
        cut = c.integer(0, max(0, size - 1))
        return data[:cut], f"truncate to {cut} bytes"
    if kind == "insert":
        position, extra = c.integer(0, size), c.raw(1, 16)
        return data[:position] + extra + data[position:], f"insert {extra!r} at {position}"
    if kind == "delete" and size:
        start = c.integer(0, size - 1)
        end = min(size, start + c.integer(1, 32))
        return data[:start] + data[end:], f"delete bytes {start}:{end}"
    if kind == "length":
        fields = length_fields(data)
        if fields:
            offset, width = c.choice(fields)
            value = c.choice(_LENGTHS) if c.boolean() else c.integer(0, 2 ** (8 * width) - 1)
            value &= 2 ** (8 * width) - 1
            patched = data[:offset] + value.to_bytes(width, "little") + data[offset + width:]
            return patched, f"length field at {offset} ({width} bytes) set to {value:#x}"
    if kind == "syntax":
        for old in _SAME_LENGTH_SYNTAXES:
            if old in data[:400]:
                new = c.choice([s for s in _SAME_LENGTH_SYNTAXES if s != old])
                return data.replace(old, new, 1), f"transfer syntax {old!r} -> {new!r}"
    if kind == "splice" and size > 8:
        start, length, target = c.integer(0, size - 1), c.integer(1, 64), c.integer(0, size - 1)
        piece = data[start:start + length]
        return data[:target] + piece + data[target + len(piece):], f"copy {start}+{length} over {target}"
    if kind == "zero" and size:
        start = c.integer(0, size - 1)
        end = min(size, start + c.integer(1, 16))
        return data[:start] + b"\x00" * (end - start) + data[end:], f"zero bytes {start}:{end}"
    cut = c.integer(0, size)
    return data[:cut], f"truncate to {cut} bytes (fallback)"


def mutated_case(c: Chooser) -> Case:
    """A valid image with one to three mutations."""
    base = dataset_case(c, valid_only=True)
    data, steps = base.data, []
    for _ in range(c.integer(1, 3)):
        data, step = mutate(c, data)
        steps.append(step)
    return Case(data, f"mutated [{'; '.join(steps)}] of {base.how}")


def any_case(c: Chooser) -> Case:
    return dataset_case(c) if c.boolean() else mutated_case(c)


# -- what an answer must be ---------------------------------------------------------------------------------------
def classify(archive: Archive, data: bytes) -> tuple[str, Any]:
    """How the core alone answers: ``("stored", StoreResult)`` or ``("refused", ArchiveError)``. Any other
    exception propagates: it is a bug (a face would answer 500)."""
    try:
        return "stored", archive.store(data)
    except ArchiveError as error:
        return "refused", error


def parse_both_ways(data: bytes) -> tuple[Any, Any]:
    """``parse_instance`` of the bytes (the fast Part 10 scanner, then pydicom) and of a file object (pydicom
    only, as for uploads over 32 MiB): ``(ids, main tags, syntax)`` or the error class name, for each."""
    def outcome(source: Any) -> Any:
        try:
            parsed = parse_instance(source)
        except ArchiveError as error:
            return type(error).__name__
        return parsed.ids, {level.name: tags for level, tags in parsed.main_tags.items()}, parsed.transfer_syntax_uid

    return outcome(data), outcome(io.BytesIO(data))


def _orthanc_text(dataset: Dataset, keyword: str) -> str | None:
    """An identifier as Orthanc keeps it, from the raw bytes pydicom read: a UID cut at its first NUL and trimmed
    at both ends, a PatientID (LO) trimmed at the end of each value and then cut at its first NUL."""
    if keyword not in dataset:
        return "" if keyword == "PatientID" else None
    element = dataset.get_item(keyword, keep_deferred=True)
    if not isinstance(element, RawDataElement) or element.value is None:
        return None
    text = decode_bytes(element.value, convert_encodings(dataset._character_set), set("\\^="))
    if keyword.endswith("UID"):
        return "\\".join(v.strip(" ") for v in text.partition("\x00")[0].split("\\"))
    return "\\".join(v.rstrip(" ") for v in text.split("\\")).partition("\x00")[0]


def expected_ids(data: bytes) -> tuple[str, str, str, str] | None:
    """Orthanc's four IDs (SHA-1 of PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) computed from
    pydicom's own reading of the file; None when pydicom cannot tell (unreadable, or identifiers that are not
    ASCII, which each reader decodes its own way)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            values = [_orthanc_text(dataset, k) for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                                                           "SOPInstanceUID")]
    except Exception:  # pydicom cannot read it: nothing independent to compare with
        return None
    if any(v is None for v in values) or not all(v.isascii() for v in values[1:]):
        return None
    return resource_ids(*values)  # type: ignore[arg-type]


class IngestChecker:
    """Posts inputs to a running pacsbox and checks every property of the answer; raises AssertionError.

    * ``POST /instances`` answers 200, or 4xx with Orthanc's JSON error body; never 5xx, never a dropped
      connection, and the server still answers afterwards;
    * after a 4xx the archive is unchanged (statistics, last change, files in the storage directory);
    * the core ``Archive`` in-process (``reference``) classifies the input the same way, and ``parse_instance``
      reads it the same from bytes (fast scanner) as from a file object (pydicom);
    * after a 200: the IDs are Orthanc's SHA-1s, ``/file`` gives back the stored bytes, ``/tags``,
      ``/simplified-tags`` and ``/header`` answer 200, and ``/tools/find`` finds the instance by PatientID and
      by StudyInstanceUID.
    """

    def __init__(self, url: str, auth: tuple[str, str], data_dir: Path, reference: Archive) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.auth = auth
        self.data_dir = data_dir
        self.reference = reference
        self.stored: dict[str, str] = {}  # instance ID -> MD5 of the bytes first stored under it
        self.counts = {"stored": 0, "refused": 0}

    def close(self) -> None:
        self.http.close()

    def _state(self) -> tuple[Any, ...]:
        statistics = self.http.get(self.url + "/statistics", timeout=30).json()
        last = self.http.get(self.url + "/changes", params={"limit": 0}, timeout=30).json()["Last"]
        # os.walk: a few times faster than Path.rglob here; files made ahead of writes come and go on their own
        files = {os.path.join(folder, name) for folder, _, names in os.walk(self.data_dir) for name in names
                 if not name.startswith("index.sqlite") and os.path.basename(folder) != FRESH_FOLDER}
        return statistics, last, files

    def check(self, case: Case) -> str:
        """Check one input; returns ``"stored"`` or ``"refused"``."""
        data = case.data
        fast, slow = parse_both_ways(data)
        assert fast == slow, f"parse_instance differs between bytes and a file object: {fast!r} != {slow!r}"
        before = self._state()
        try:
            answer = self.http.post(self.url + "/instances", data=data, timeout=60)
        except requests.RequestException as error:
            raise AssertionError(f"POST /instances failed without an answer: {error!r}") from None
        assert answer.status_code < 500, f"POST /instances answered {answer.status_code}: {answer.text[:500]}"
        expected, outcome = classify(self.reference, data)
        health = self.http.get(self.url + "/system", timeout=30)
        assert health.status_code == 200, f"the server stopped answering after the upload: {health.status_code}"
        if answer.status_code != 200:
            self._check_refusal(answer, before)
            assert expected == "refused", f"HTTP refused ({answer.text[:300]}) what the core stores: {outcome}"
            self.counts["refused"] += 1
            return "refused"
        assert expected == "stored", f"HTTP stored what the core refuses ({outcome!r}): {answer.text[:300]}"
        self._check_stored(answer.json(), data)
        self.counts["stored"] += 1
        return "stored"

    def _check_refusal(self, answer: requests.Response, before: tuple[Any, ...]) -> None:
        assert 400 <= answer.status_code < 500, answer.status_code
        body = answer.json()
        assert body["HttpStatus"] == answer.status_code and isinstance(body["OrthancStatus"], int), body
        assert body["Message"] and body["Uri"] == "/instances" and body["Method"] == "POST", body
        statistics, last, files = self._state()
        assert statistics == before[0], f"a refused upload changed /statistics: {before[0]} -> {statistics}"
        assert files == before[2], f"a refused upload changed the storage: +{sorted(files - before[2])[:5]} " \
                                   f"-{sorted(before[2] - files)[:5]}"
        if last != before[1]:  # the stability watcher logs StableStudy & co. whenever their time comes: not ours
            changes = self.http.get(self.url + "/changes", params={"since": before[1], "limit": 1000},
                                    timeout=30).json()["Changes"]
            ours = [c["ChangeType"] for c in changes if not c["ChangeType"].startswith("Stable")]
            assert ours == [], f"a refused upload logged changes: {ours}"

    def _check_stored(self, body: dict[str, Any], data: bytes) -> None:
        assert body["Status"] in ("Success", "AlreadyStored"), body
        ids = (body["ParentPatient"], body["ParentStudy"], body["ParentSeries"], body["ID"])
        independent = expected_ids(data)
        if independent is not None:
            assert ids == independent, f"IDs {ids} are not Orthanc's SHA-1s {independent}"
        instance = body["ID"]
        digest = hashlib.md5(data).hexdigest()
        if body["Status"] == "Success":
            self.stored[instance] = digest
        stored = self.http.get(f"{self.url}/instances/{instance}/file", timeout=30)
        assert stored.status_code == 200, stored.status_code
        if instance in self.stored:
            assert hashlib.md5(stored.content).hexdigest() == self.stored[instance], "/file differs from the upload"
        for route in ("tags", "simplified-tags", "header", "tags?short"):
            shown = self.http.get(f"{self.url}/instances/{instance}/{route}", timeout=30)
            assert shown.status_code == 200, f"/instances/{instance}/{route} answered {shown.status_code}: " \
                                             f"{shown.text[:300]}"
            shown.json()
        main = self.http.get(f"{self.url}/instances/{instance}", timeout=30).json()
        patient = self.http.get(f"{self.url}/patients/{body['ParentPatient']}", timeout=30).json()
        study = self.http.get(f"{self.url}/studies/{body['ParentStudy']}", timeout=30).json()
        assert main["ParentSeries"] == body["ParentSeries"], main
        self._check_found("Patient", "PatientID", patient["MainDicomTags"].get("PatientID", ""), body["ParentPatient"])
        self._check_found("Study", "StudyInstanceUID", study["MainDicomTags"].get("StudyInstanceUID", ""),
                          body["ParentStudy"])

    def _check_found(self, level: str, keyword: str, value: str, wanted: str) -> None:
        if "\\" in value:
            return  # a backslash makes the query a list of values (PS3.4 C.2.2.2.2): it cannot name itself
        if keyword.endswith("UID") and ("*" in value or "?" in value):
            return  # Orthanc refuses wildcards on UIDs (400 "Wildcards are not allowed on tag ...")
        if value.endswith(" "):
            return  # kept before a NUL (as Orthanc keeps it), but a query's trailing spaces are padding
        query = {"Level": level, "Query": {keyword: value}, "CaseSensitive": True}
        found = self.http.post(self.url + "/tools/find", data=json.dumps(query), timeout=30)
        assert found.status_code == 200, f"/tools/find {query} answered {found.status_code}: {found.text[:300]}"
        assert wanted in found.json(), f"/tools/find {query} does not find {wanted}"


def xnat_import_check(http: requests.Session, url: str, case: Case, number: int, expected: bytes | None) -> str:
    """The input zipped and sent to XNAT's import service: 200 or 4xx (never 5xx); after a 200 the new
    session's scan files hold the bytes of the instance (``expected``, or the upload itself)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("upload/1.dcm", case.data)
    subject, session = f"S{number}", f"E{number}"
    assert http.put(url + "/data/projects/FUZZ", timeout=30).status_code in (200, 201)  # imports need the project
    params = {"project": "FUZZ", "subject": subject, "session": session, "dest": "/archive", "overwrite": "append"}
    answer = http.post(url + "/data/services/import", params=params, data=buffer.getvalue(), timeout=60)
    assert answer.status_code < 500, f"XNAT import answered {answer.status_code}: {answer.text[:500]}"
    if answer.status_code != 200:
        assert answer.text.strip(), "an XNAT refusal says why"
        return "refused"
    experiment = f"{url}/data/projects/FUZZ/subjects/{subject}/experiments/{session}"
    listing = http.get(experiment + "/scans/ALL/files", params={"format": "json"}, timeout=30)
    assert listing.status_code == 200, listing.text[:300]
    rows = listing.json()["ResultSet"]["Result"]
    want = hashlib.md5(expected if expected is not None else case.data).hexdigest()
    digests = []
    for row in rows:
        content = http.get(url + row["URI"], timeout=30)
        assert content.status_code == 200, f"{row['URI']} answered {content.status_code}"
        digests.append(hashlib.md5(content.content).hexdigest())
    assert want in digests, f"the imported file is not among the session's files ({len(rows)} listed)"
    return "stored"

