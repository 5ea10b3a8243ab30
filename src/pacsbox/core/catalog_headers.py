"""DICOM headers of catalog files: XNAT's ``pullDataFromHeaders`` (scan and session fields read from the files of
their DICOM resources) and the headers the DICOM dump service shows.

XNAT rebuilds a session's fields from its DICOM files when asked (``PUT <experiment>?pullDataFromHeaders=true``,
its "Image Session Import" pages); the mapping below follows the fields XNAT's DICOM-to-XNAT conversion fills
(the scan's UID, frames, modality, scanner, operator, start time and date, the MR and CT parameters; the
session's UID, date, time, modality, scanner and patient identifiers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Experiment, Scan, _free
from .catalog_fields import apply_updates
from .errors import UnknownResource

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

if TYPE_CHECKING:
    from .catalog import Catalog

DICOM_LABELS = ("DICOM", "secondary")  # the resources xnatpy's read_dicom and XNAT's header reading look in first
_HEADER_LIMIT = 64 * 1024  # values above this size are not read into memory (only headers matter here)

Declares = Callable[[str, str], bool]
"""Whether an xsi type declares a field path (the face answers from its schema documents)."""


def read_header(path: Path) -> Dataset | None:
    """The header of a DICOM file (no pixel data), or None when the file is not DICOM: a resource may hold
    snapshots and text beside its DICOM files, and a hostile file must never stop the reading of the others."""
    import pydicom

    try:
        with path.open("rb") as stream:
            dataset = pydicom.dcmread(stream, force=True, stop_before_pixels=True, defer_size=_HEADER_LIMIT)
            # force=True reads any bytes as a data set: a DICOM file names its SOP class or its series
            if "SOPClassUID" not in dataset and "SeriesInstanceUID" not in dataset:
                return None
            dataset.remove_private_tags()
            for element in dataset.iterall():  # read every value now, while the file is open (deferred values)
                _ = element.value
            return dataset
    except Exception:  # pydicom raises many types for corrupt input; such a file is simply not DICOM here
        return None


def _text(dataset: Dataset, keyword: str) -> str:
    import pydicom

    try:
        value = dataset.get(keyword)
    except Exception:  # a value that does not parse (hostile or broken) counts as absent
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(part) for part in value)
    return str(value).strip(" \x00")


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) >= 8 and text[:8].isdigit() else ""


def _time(text: str) -> str:
    return f"{text[:2]}:{text[2:4]}:{text[4:6]}" if len(text) >= 6 and text[:6].isdigit() else ""


def _frames(dataset: Dataset) -> int:
    try:
        return max(int(dataset.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _orientation(dataset: Dataset) -> str:
    """Tra, Sag or Cor from Image Orientation (Patient): the axis the slice normal is closest to."""
    try:
        row = [float(v) for v in dataset.ImageOrientationPatient[:3]]
        column = [float(v) for v in dataset.ImageOrientationPatient[3:6]]
    except Exception:
        return ""
    normal = [abs(row[1] * column[2] - row[2] * column[1]), abs(row[2] * column[0] - row[0] * column[2]),
              abs(row[0] * column[1] - row[1] * column[0])]
    return ("Sag", "Cor", "Tra")[normal.index(max(normal))]


def scan_fields(first: Dataset, frames: int) -> dict[str, str]:
    """XNAT scan fields (paths relative to the scan) from the first header of a scan and its frame count."""
    fields = {
        "UID": _text(first, "SeriesInstanceUID"),
        "frames": str(frames),
        "modality": _text(first, "Modality"),
        "series_description": _text(first, "SeriesDescription"),
        "scanner": _text(first, "StationName"),
        "scanner/manufacturer": _text(first, "Manufacturer"),
        "scanner/model": _text(first, "ManufacturerModelName"),
        "operator": _text(first, "OperatorsName"),
        "startTime": _time(_text(first, "AcquisitionTime") or _text(first, "SeriesTime")),
        "startDate": _date(_text(first, "SeriesDate") or _text(first, "AcquisitionDate")),
        "fieldStrength": _text(first, "MagneticFieldStrength"),
        "coil": _text(first, "ReceiveCoilName"),
        "parameters/tr": _text(first, "RepetitionTime"),
        "parameters/te": _text(first, "EchoTime"),
        "parameters/ti": _text(first, "InversionTime"),
        "parameters/flip": _text(first, "FlipAngle"),
        "parameters/sequence": _text(first, "SequenceName"),
        "parameters/imageType": _text(first, "ImageType"),
        "parameters/scanSequence": _text(first, "ScanningSequence"),
        "parameters/seqVariant": _text(first, "SequenceVariant"),
        "parameters/scanOptions": _text(first, "ScanOptions"),
        "parameters/acqType": _text(first, "MRAcquisitionType"),
        "parameters/pixelBandwidth": _text(first, "PixelBandwidth"),
        "parameters/kvp": _text(first, "KVP"),
        "parameters/exposure": _text(first, "Exposure"),
        "parameters/orientation": _orientation(first),
        "parameters/matrix/x": _text(first, "Columns"),
        "parameters/matrix/y": _text(first, "Rows"),
        "parameters/partitions": _text(first, "NumberOfFrames") if frames > 1 else "",
    }
    spacing = _text(first, "PixelSpacing").split("\\")
    if len(spacing) == 2:
        fields["parameters/voxelRes/x"], fields["parameters/voxelRes/y"] = spacing[1], spacing[0]
        fields["parameters/voxelRes/z"] = _text(first, "SliceThickness")
    return {path: value for path, value in fields.items() if value}


def session_fields(first: Dataset) -> dict[str, str]:
    """XNAT image session fields from the first header of a session."""
    fields = {
        "UID": _text(first, "StudyInstanceUID"),
        "date": _date(_text(first, "StudyDate")),
        "time": _time(_text(first, "StudyTime")),
        "modality": _text(first, "Modality"),
        "scanner": _text(first, "StationName"),
        "scanner/manufacturer": _text(first, "Manufacturer"),
        "scanner/model": _text(first, "ManufacturerModelName"),
        "operator": _text(first, "OperatorsName"),
        "study_id": _text(first, "StudyID"),
        "dcmAccessionNumber": _text(first, "AccessionNumber"),
        "dcmPatientId": _text(first, "PatientID"),
        "dcmPatientName": _text(first, "PatientName"),
        "dcmPatientBirthDate": _date(_text(first, "PatientBirthDate")),
        "fieldStrength": _text(first, "MagneticFieldStrength"),
    }
    return {path: value for path, value in fields.items() if value}


class Headers:
    """DICOM headers of a session's scans (``catalog.headers``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def scan_files(self, experiment: Experiment, scan_id: str) -> list[Path]:
        """The files of a scan's resources, those of its DICOM resource first (XNAT reads DICOM from there)."""
        resources = self.catalog.resources
        owner = resources.owner(project=experiment.project, experiment=experiment, scan=scan_id)
        listed = resources.list(owner)
        listed.sort(key=lambda r: (r.label not in DICOM_LABELS and r.fields.get("format", "").upper() != "DICOM",
                                   r.rid))
        return [entry.disk for resource in listed for entry in resources.files(resource)]

    def scan_headers(self, experiment: Experiment, scan_id: str) -> Iterator[Dataset]:
        for path in self.scan_files(experiment, scan_id):
            header = read_header(path)
            if header is not None:
                yield header

    def first_header(self, experiment: Experiment, scan_id: str | None = None) -> Dataset:
        """The first DICOM header of a scan, or of a session (its scans in order); UnknownResource if none."""
        scans = [scan_id] if scan_id is not None else [scan.id for scan in self.catalog.list_scans(experiment)]
        for scan in scans:
            for header in self.scan_headers(experiment, scan):
                return header
        where = f"scan {scan_id} of {experiment.id}" if scan_id is not None else f"session {experiment.id}"
        raise UnknownResource(f"No DICOM file in {where}")

    def pull_data_from_headers(self, experiment: Experiment, declares: Declares) -> Experiment:
        """Fill the fields of each scan and of the session from their DICOM files (fields the type does not
        declare are left out, as XNAT's conversion only writes its own schema's fields)."""
        first_of_session: Dataset | None = None
        updates: list[tuple[Scan, dict[str, str]]] = []
        for scan in self.catalog.list_scans(experiment):
            first, frames = None, 0
            for header in self.scan_headers(experiment, scan.id):
                first = first or header
                frames += _frames(header)
            if first is None:
                continue
            first_of_session = first_of_session or first
            found = scan_fields(first, frames)
            if not scan.fields["data"].get("type") and found.get("series_description"):
                found["type"] = found["series_description"]
            updates.append((scan, {path: value for path, value in found.items() if declares(scan.xsi_type, path)}))
        session = {}
        if first_of_session is not None:
            session = {path: value for path, value in session_fields(first_of_session).items()
                       if declares(experiment.xsi_type, path)}
        self._write(experiment, session, updates)
        return self.catalog.experiment(None, experiment.id)

    def _write(self, experiment: Experiment, session: dict[str, str],
               scans: list[tuple[Scan, dict[str, str]]]) -> None:
        from .catalog import _gated  # the catalog's gate: beside resets and restores

        @_gated
        def write(catalog: Catalog) -> None:
            with catalog.index.writing() as db:
                row = db.execute("SELECT fields FROM xnat_experiments WHERE id = ?", (experiment.id,)).fetchone()
                if row is None:
                    raise UnknownResource(f"Unknown experiment: {experiment.id}")
                fields = apply_updates(json.loads(row[0]), _free(session), experiment.xsi_type)
                db.execute("UPDATE xnat_experiments SET fields = ? WHERE id = ?", (json.dumps(fields), experiment.id))
                for scan, found in scans:
                    row = db.execute("SELECT fields FROM xnat_scans WHERE experiment = ? AND id = ?",
                                     (experiment.id, scan.id)).fetchone()
                    if row is None:
                        continue  # deleted meanwhile
                    fields = apply_updates(json.loads(row[0]), _free(found), scan.xsi_type)
                    db.execute("UPDATE xnat_scans SET fields = ? WHERE experiment = ? AND id = ?",
                               (json.dumps(fields), experiment.id, scan.id))

        write(self.catalog)


def dump_value(value: Any) -> str:
    """A header value as the DICOM dump shows it."""
    import pydicom

    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(part) for part in value)
    return str(value)
