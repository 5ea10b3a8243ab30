"""What the differential tests of the /tools routes share: the two servers asked the same thing, answers compared
(status, content type, body or Orthanc's error body), storescu against either, and a file without
SpecificCharacterSet whose text is UTF-8."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import requests
from pydicom.dataelem import DataElement

from tests.support import dcmtk
from tests.support.compare import assert_equivalent, assert_same
from tests.support.dicomgen import make_dataset, to_bytes, uid

PATIENT_NAME_UTF8 = "Müller^Zoë"
STUDY_DESCRIPTION_UTF8 = "Café"


class Pair:
    """pacsbox (``ours``, a RunningPacsbox) and the real Orthanc (``reference``, a ReferenceOrthanc)."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.ours_session, self.reference_session = ours.session(), reference.session

    def call(self, method: str, path: str, **kwargs) -> tuple[requests.Response, requests.Response]:
        kwargs.setdefault("timeout", 30)
        ours = self.ours_session.request(method, self.ours.url + path, **kwargs)
        reference = self.reference_session.request(method, self.reference.url + path, **kwargs)
        return ours, reference

    def compare(self, method: str, path: str, *, content_type: bool = True,
                **kwargs) -> tuple[requests.Response, requests.Response]:
        """Same status; on success the same content type (unless ``content_type`` is false: a route of another
        module) and body; on failure the same body (Orthanc's JSON error, compared whole, or the same empty
        body)."""
        ours, reference = self.call(method, path, **kwargs)
        context = f"{method} {path} {kwargs.get('data')!r}"
        assert ours.status_code == reference.status_code, (context, ours.text, reference.text)
        if reference.status_code < 400 and content_type:
            assert ours.headers.get("Content-Type") == reference.headers.get("Content-Type"), context
        assert_same(body_of(ours), body_of(reference), context=context)
        return ours, reference

    def same_counts(self) -> dict:
        """/statistics of both, equal but for the sizes (pacsbox's file meta differs); pacsbox's."""
        ours, reference = (r.json() for r in self.call("GET", "/statistics"))
        assert_equivalent(ours, reference, context="/statistics")
        return ours

    def both(self, method: str, path: str, **kwargs) -> None:
        """Send to both, each must succeed (setting up a state)."""
        for response in self.call(method, path, **kwargs):
            assert response.status_code == 200, (path, response.text)


def body_of(response: requests.Response) -> Any:
    """JSON when the body is JSON (Orthanc's errors come without a content type), else the text."""
    text = response.text
    if text[:1] in ("{", "["):
        return json.loads(text)
    return text


def text_without_charset_file(tag: str) -> bytes:
    """A DICOM file without SpecificCharacterSet whose PatientName and StudyDescription are UTF-8 bytes: Latin1
    (Orthanc's default) reads them as mojibake, Utf8 reads them right."""
    ds = make_dataset(patient_id=f"PBX-NOCHARSET-{tag}", patient_name="x", study_uid=uid("study", "nocharset", tag),
                      series_uid=uid("series", "nocharset", tag), sop_uid=uid("instance", "nocharset", tag),
                      modality="OT",
                      extra={"PatientName": DataElement(0x00100010, "PN", PATIENT_NAME_UTF8.encode()),
                             "StudyDescription": DataElement(0x00081030, "LO", STUDY_DESCRIPTION_UTF8.encode())})
    return to_bytes(ds)


def storescu(aet: str, port: int, data: bytes, *options: str):
    """dcmtk's storescu sending one file to 127.0.0.1:port; the completed process (returncode, output)."""
    with tempfile.TemporaryDirectory(prefix="pacsbox-storescu-") as folder:
        path = Path(folder) / "file.dcm"
        path.write_bytes(data)
        return dcmtk.run("storescu", *options, "-aec", aet, "127.0.0.1", str(port), path, timeout=60)


def pynetdicom_store(aet: str, port: int, data: bytes) -> int | None:
    """C-STORE one file with pynetdicom, proposing its own SOP class and transfer syntax whatever they are
    (dcmtk's storescu refuses an unknown SOP class before connecting); the status, None if the context was
    refused."""
    from io import BytesIO

    from pydicom import dcmread
    from pynetdicom import AE

    dataset = dcmread(BytesIO(data))
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", port, ae_title=aet)
    try:
        if not association.is_established or not association.accepted_contexts:
            return None
        return int(association.send_c_store(dataset).Status)
    finally:
        if association.is_established:
            association.release()
