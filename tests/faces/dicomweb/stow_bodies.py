"""Instances and multipart/related bodies the STOW-RS tests send."""

from __future__ import annotations

from tests.support.dicomgen import make_dataset, to_bytes, uid

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=XyZzY'


def instance(study: str, number: int, patient: str = "STOW-1") -> bytes:
    """A small CT instance of study ``study`` (a name), series 1."""
    return to_bytes(make_dataset(patient_id=patient, patient_name="Stow^Sue", study_uid=uid("stow-study", study),
                                 series_uid=uid("stow-series", study), sop_uid=uid("stow-instance", study, number),
                                 instance_number=number))


def study_uid(study: str) -> str:
    return uid("stow-study", study)


def sop_uid(study: str, number: int) -> str:
    return uid("stow-instance", study, number)


def body(parts: list[bytes], boundary: str = "XyZzY", content_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()
