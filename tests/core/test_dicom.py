"""Reading instances: the fast reader of Part 10 files gives what pydicom gives, and leaves the rest to it."""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence

from pacsbox.core import dicom
from pacsbox.core.errors import InvalidDicom
from tests.support.dicomgen import make_dataset, standard_corpus, to_bytes, uid

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _dataset(key: str, **options) -> Dataset:
    return make_dataset(patient_id=f"PBX-{key}", patient_name="Scan^Test", study_uid=uid("scan-study", key),
                        series_uid=uid("scan-series", key), sop_uid=uid("scan-instance", key), **options)


def _undefined_length_sequences(implicit: bool) -> bytes:
    """Nested sequences and items of undefined length (PS3.5 7.5), as many modalities write them."""
    dataset = _dataset(f"undefined-{implicit}", extra={"PatientComments": "project: Demo"})
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator = "T-D4000", "SRT"
    item = Dataset()
    item.ReferencedSOPInstanceUID = uid("referenced")
    item.AnatomicRegionSequence = Sequence([inner])
    item.AnatomicRegionSequence.is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    inner.is_undefined_length_sequence_item = True
    dataset.ReferencedImageSequence = Sequence([item, Dataset()])
    dataset["ReferencedImageSequence"].is_undefined_length = True
    return to_bytes(dataset, implicit_vr=implicit)


def _encapsulated() -> bytes:
    dataset = _dataset("encapsulated", modality="OT")
    dataset.PixelData = encapsulate([b"\xff\xd8\xff\xe0" + bytes(61) + b"\xff\xd9", b"\xff\xd8" + bytes(30)])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = JPEG_BASELINE
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _un_of_undefined_length() -> bytes:
    """A private sequence sent as UN with an undefined length: its content is implicit VR (PS3.5 6.2.2)."""
    data = to_bytes(_dataset("un-sequence"))
    meta_end = 132 + 12 + struct.unpack_from("<I", data, 140)[0]
    creator = struct.pack("<HH2sH", 0x0011, 0x0010, b"LO", 4) + b"TEST"
    nested = struct.pack("<HHI", 0x0011, 0x1011, 4) + b"abcd"
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + nested + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    element = (struct.pack("<HH2sHI", 0x0011, 0x1010, b"UN", 0, 0xFFFFFFFF) + item
               + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return data[:meta_end] + creator + element + data[meta_end:]


def files() -> dict[str, bytes]:
    found = {name: data for name, data in standard_corpus()}
    found["undefined-explicit"] = _undefined_length_sequences(implicit=False)
    found["undefined-implicit"] = _undefined_length_sequences(implicit=True)
    found["encapsulated"] = _encapsulated()
    found["un-undefined"] = _un_of_undefined_length()
    found["ct-256"] = to_bytes(_dataset("ct-256", rows=256, cols=256))
    return found


def _by_pydicom(data: bytes, monkeypatch) -> dicom.ParsedInstance:
    with monkeypatch.context() as patch:
        patch.setattr(dicom, "scan_part10", lambda _: None)
        return dicom.parse_instance(data)


def _same(fast: dicom.ParsedInstance, slow: dicom.ParsedInstance) -> None:
    for name in ("patient_id", "study_uid", "series_uid", "sop_uid", "sop_class_uid", "transfer_syntax_uid",
                 "main_tags", "pixel_data_offset", "ids", "index_in_series"):
        assert getattr(fast, name) == getattr(slow, name), name
    tags = sorted(fast.dataset.keys())
    assert tags == sorted(slow.dataset.keys())
    for tag in tags:
        if tag != 0x7FE00010:  # values as pydicom converts them, sequences included
            assert fast.dataset[tag].value == slow.dataset[tag].value, tag


@pytest.mark.parametrize("name", sorted(files()))
def test_the_fast_reader_gives_what_pydicom_gives(name, monkeypatch):
    data = files()[name]
    if name.startswith("nometa"):
        assert dicom.scan_part10(data) is None
        return
    assert dicom.scan_part10(data) is not None
    _same(dicom.parse_instance(data), _by_pydicom(data, monkeypatch))


def test_other_files_are_left_to_pydicom():
    data = to_bytes(_dataset("left"))
    deflated = to_bytes(_dataset("deflated"), transfer_syntax="1.2.840.10008.1.2.1.99")
    assert dicom.scan_part10(deflated) is None
    assert dicom.scan_part10(data[:-3]) is None  # truncated: pydicom says what is wrong
    assert dicom.scan_part10(data[:128] + b"DICN" + data[132:]) is None
    assert dicom.scan_part10(to_bytes(_dataset("bare"), with_meta=False)) is None


@pytest.mark.parametrize("cut", [3, 800])
def test_truncated_files_are_refused_as_before(cut):
    data = to_bytes(_dataset("truncated", rows=16, cols=16))
    with pytest.raises(InvalidDicom, match="Cannot parse an invalid DICOM file"):
        dicom.parse_instance(data[:-cut])


def test_the_file_meta_header_is_what_pydicom_writes():
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.45"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    meta.ImplementationClassUID = "2.25.1234"
    meta.ImplementationVersionName = "PACSBOX_0.1.0"
    meta.SourceApplicationEntityTitle = "MODALITY1"
    expected = DicomBytesIO()
    write_file_meta_info(expected, meta, enforce_standard=True)
    ours = dicom.file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2",
                           implementation_class_uid="2.25.1234", implementation_version_name="PACSBOX_0.1.0",
                           source_aet="MODALITY1")
    assert ours == dicom.PREAMBLE + expected.getvalue()
    assert pydicom.dcmread(io.BytesIO(ours + bytes(8)), force=True).file_meta == meta
