"""Modality worklist items: a folder of ``.wl`` files, as Orthanc's sample worklist plugin keeps them.

The ``Worklists`` configuration section follows the plugin's (Orthanc Book, "Sample Modality Worklists plugin"):
``Enable``, ``Database`` (the folder, re-read on every query, so that a test may drop or change files between two
queries), ``FilterIssuerAet`` and ``LimitAnswers``. Without ``Database``, items live in the archive's data folder
(``<StorageDirectory>/worklists``), where the REST routes, the CLI and the pytest fixture put them; a reset empties
that folder (never a folder the configuration names).
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadFormat, BadRequest, UnknownResource
from .worklist_matching import vr_of

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

LOG = logging.getLogger("pacsbox.worklists")

WORKLIST_FIND_SOP_CLASS = "1.2.840.10008.5.1.4.31"  # Modality Worklist Information Model - FIND (PS3.4 K.6)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAXIMUM_ITEM_SIZE = 4 * 1024 * 1024  # bytes of one worklist item: a few KiB is usual


@dataclass(frozen=True)
class WorklistSettings:
    """The ``Worklists`` section, resolved."""

    enabled: bool
    folder: Path
    own_folder: bool  # the archive's data folder (emptied by a reset), not one the configuration names
    filter_issuer_aet: bool
    limit_answers: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any], storage: Path) -> WorklistSettings:
        """Read the section (an empty one: enabled, in the data folder); ValueError names a wrong key."""
        if not isinstance(section, Mapping):
            raise ValueError("Worklists must be an object (Enable, Database, FilterIssuerAet, LimitAnswers)")
        enabled = section.get("Enable", True)
        filter_issuer = section.get("FilterIssuerAet", False)
        limit = section.get("LimitAnswers", 0)
        database = section.get("Database")
        if not isinstance(enabled, bool) or not isinstance(filter_issuer, bool):
            raise ValueError("Worklists.Enable and Worklists.FilterIssuerAet must be true or false")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"Worklists.LimitAnswers must be a non-negative integer, not {limit!r}")
        if database is not None and (not isinstance(database, str) or not database):
            raise ValueError('The configuration option "Worklists.Database" must contain a path')
        folder = Path(database) if database else storage / "worklists"
        return cls(enabled, folder, database is None, filter_issuer, limit)


class WorklistFolder:
    """The ``.wl`` files of one folder: scanned in directory order on every query (as the plugin does), and
    written, read and removed by ID (the file name without ``.wl``)."""

    def __init__(self, settings: WorklistSettings) -> None:
        self.settings = settings
        self.path = settings.folder
        self._parsed: dict[str, tuple[tuple, Dataset]] = {}  # by file name: parsed once per version
        if settings.own_folder:
            self.path.mkdir(parents=True, exist_ok=True)

    # -- what the SCP reads -------------------------------------------------------------------------------
    def scan(self, default_charset: str = "ISO_IR 100") -> Iterator[tuple[str, Dataset]]:
        """Each readable item, in the folder's directory order; a file that is no DICOM is skipped with an error
        in the log, as Orthanc does (the query goes on). NotADirectoryError/FileNotFoundError when the folder is
        missing (Orthanc: "Inexistent folder while scanning for worklists"). A file without SpecificCharacterSet
        is decoded in ``default_charset`` (Orthanc's DefaultEncoding)."""
        if self.settings.own_folder:
            self.path.mkdir(parents=True, exist_ok=True)  # a reset may have removed the data folder's
        seen: dict[str, tuple[tuple, Dataset]] = {}
        with os.scandir(self.path) as entries:
            for entry in entries:
                if not entry.name.lower().endswith(".wl") or not entry.is_file():
                    continue
                try:
                    item = self._read(entry, seen, default_charset)
                except (OSError, BadFormat) as error:
                    LOG.error("worklist %s skipped: %s", entry.path, error)
                    continue
                yield entry.name, item
        self._parsed = seen  # files gone since are forgotten

    def _read(self, entry: os.DirEntry, seen: dict, default_charset: str) -> Dataset:
        """An item, parsed again only when its file changed (same inode, size and modification time: the same
        bytes, as every write here replaces the file) or the default character set did."""
        status = entry.stat()
        key = (status.st_ino, status.st_size, status.st_mtime_ns, default_charset)
        cached = self._parsed.get(entry.name)
        if cached is not None and cached[0] == key:
            seen[entry.name] = cached
            return cached[1]
        item = read_item(Path(entry.path).read_bytes(), default_charset)
        seen[entry.name] = (key, item)
        return item

    # -- what REST, the CLI and fixtures do ----------------------------------------------------------------
    def ids(self) -> list[str]:
        """The IDs of the items, sorted."""
        try:
            return sorted(entry.name[:-3] for entry in os.scandir(self.path)
                          if entry.name.lower().endswith(".wl") and entry.is_file())
        except FileNotFoundError:
            return []

    def file_of(self, item_id: str) -> Path:
        if not _ID.match(item_id):
            raise UnknownResource(f"Unknown worklist: {item_id}")
        path = self.path / f"{item_id}.wl"
        if not path.is_file():
            raise UnknownResource(f"Unknown worklist: {item_id}")
        return path

    def read(self, item_id: str) -> Dataset:
        return read_item(self.file_of(item_id).read_bytes())

    def add(self, item: Dataset | bytes, item_id: str | None = None) -> str:
        """Write an item, a data set or a DICOM file kept as it is once read (a new ID unless one is given: the
        same ID replaces it); its ID."""
        import uuid  # (it imports platform: loaded on first use, not at start)

        if item_id is None:
            item_id = str(uuid.uuid4())
        elif not _ID.match(item_id):
            raise BadRequest(f"Invalid worklist ID (letters, digits, '.', '_' and '-'): {item_id!r}")
        if isinstance(item, (bytes, bytearray)):
            read_item(bytes(item))  # BadFormat unless it is DICOM
            data = bytes(item)
        else:
            data = write_item(item)
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f".{item_id}.{uuid.uuid4().hex}.tmp"  # no half-written .wl is ever scanned
        temporary.write_bytes(data)
        os.replace(temporary, self.path / f"{item_id}.wl")
        return item_id

    def remove(self, item_id: str) -> None:
        self.file_of(item_id).unlink(missing_ok=True)

    def clear(self) -> int:
        """Remove every item; how many."""
        removed = 0
        for item_id in self.ids():
            (self.path / f"{item_id}.wl").unlink(missing_ok=True)
            removed += 1
        return removed


def read_item(data: bytes, default_charset: str | None = None) -> Dataset:
    """A worklist file (Part 10, or a bare data set) as a data set; BadFormat when it is no DICOM. With
    ``default_charset``, a file without SpecificCharacterSet is decoded in it (and says so)."""
    import pydicom
    from pydicom.charset import python_encoding

    if len(data) > MAXIMUM_ITEM_SIZE:
        raise BadFormat(f"A worklist item over {MAXIMUM_ITEM_SIZE} bytes")
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        if len(dataset) == 0:
            raise ValueError("no element")
        if default_charset and "SpecificCharacterSet" not in dataset:
            _decode_text(dataset, python_encoding.get(default_charset, "latin_1"))
            dataset.SpecificCharacterSet = "ISO_IR 192"  # what _decode_text made of it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undecodable text becomes U+FFFD, as Orthanc converts it
            for _ in dataset.iterall():  # reads every element now: a damaged file fails here, not while matching
                pass
    except Exception as error:  # pydicom raises many kinds on a damaged file
        raise BadFormat(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes): {error}") from None
    return dataset


_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def _decode_text(dataset: Dataset, codec: str) -> None:
    """Decode every text value of a data set without SpecificCharacterSet in ``codec``, as Orthanc converts such
    a file from its DefaultEncoding: bytes that cannot be decoded become U+FFFD (pydicom would fall back to
    Latin-1 silently)."""
    for tag in list(dataset.keys()):
        raw = dataset.get_item(tag)
        vr = str(raw.VR) if raw.VR else vr_of(int(tag))
        if vr == "SQ":
            for item in dataset[tag].value or []:
                _decode_text(item, codec)
        elif vr in _TEXT_VRS and isinstance(raw.value, (bytes, bytearray)):
            text = bytes(raw.value).decode(codec, "replace").rstrip(" \x00")
            dataset.add_new(tag, vr, text.split("\\") if "\\" in text and vr != "LT" else text)


def write_item(dataset: Dataset, instance_uid: str | None = None) -> bytes:
    """An item as a ``.wl`` file: Part 10, explicit VR little endian (``instance_uid`` for its file meta; by
    default a new one)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset = Dataset(dataset)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = WORKLIST_FIND_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = instance_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    except Exception as error:  # a value pydicom cannot write is the request's fault
        raise BadRequest(f"Cannot write the worklist item: {error}") from None
    return buffer.getvalue()


def item_from_json(body: Any, default_charset: str = "ISO_IR 192") -> Dataset:
    """A worklist item from DICOM JSON (PS3.18 F: ``{"00100010": {"vr": "PN", "Value": [...]}}``) or Orthanc's
    simplified JSON (``{"PatientName": "Doe^John", "ScheduledProcedureStepSequence": [{...}]}``, keywords or
    ``gggg,eeee``, optionally inside ``"Tags"``); UTF-8 unless it names its SpecificCharacterSet."""
    from pydicom.dataset import Dataset

    from .create_dicom import Draft, canonical_charset, tag_of  # create_dicom imports the archive: not at load

    if isinstance(body, Mapping) and isinstance(body.get("Tags"), Mapping):
        body = body["Tags"]
    if not isinstance(body, Mapping) or not body:
        raise BadFormat("A worklist item is a JSON object of tags")
    if all(isinstance(v, Mapping) and "vr" in v for v in body.values()):
        try:
            return Dataset.from_json(dict(body))
        except Exception as error:  # pydicom raises many kinds on malformed DICOM JSON
            raise BadFormat(f"Invalid DICOM JSON: {error}") from None
    charset = default_charset
    for name in ("SpecificCharacterSet", "0008,0005"):
        if isinstance(body.get(name), str):
            charset = canonical_charset(body[name]) or body[name]
    body = _empty_items_as_objects(body)
    draft = Draft(charset)
    for name in sorted(body):
        tag = tag_of(str(name))
        if tag in (0x00080005,) or tag >> 16 == 0x0002:
            continue
        draft.put_json(tag, body[name], False)
    return draft.dataset()


def _empty_items_as_objects(value: Any) -> Any:
    """Empty sequence items as objects: a Lua table or a hand-written query may give ``[[]]`` for ``[{}]``."""
    if isinstance(value, Mapping):
        return {key: _empty_items_as_objects(item) for key, item in value.items()}
    if isinstance(value, list):
        return [{} if item == [] else _empty_items_as_objects(item) for item in value]
    return value
