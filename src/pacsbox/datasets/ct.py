"""CT: a contrast-enhanced abdomen study (topogram, a 5 mm soft-tissue and a 2 mm sharp-kernel series).

The CT Image module follows PS3.3 C.8.2.1 (stored values = HU + 1024, Rescale Type HU), with the acquisition
and dose attributes a Siemens SOMATOM writes (kVp, mAs, CTDIvol, kernel, pitch, collimation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

from . import builder as b
from . import phantoms as ph
from .model import DataFile, Options, Session

SOMATOM = b.Equipment("SIEMENS", "SOMATOM Definition AS+", "syngo CT VA48A", "CT99123", "99123")
HOUNSFIELD = {ph.AIR: -1000, ph.FAT: -100, ph.MUSCLE: 50, ph.SOFT: 35, ph.LIVER: 105, ph.SPLEEN: 115,
              ph.KIDNEY: 170, ph.BONE: 750, ph.BLOOD: 190, ph.LESION: 25, ph.LUNG: -860}
PROJECT = "CTSTUDY"


@dataclass(frozen=True)
class CtSeries:
    """One reconstruction: its number, description, kernel, geometry and noise."""

    number: int
    description: str
    kernel: str
    stack: ph.Stack
    noise: float
    start: float
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")


def _acquisition(ds: Dataset, kernel: str, localizer: bool) -> None:
    """CT Image and CT Acquisition attributes (PS3.3 C.8.2.1, C.8.15.3)."""
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = "360"
    ds.DistanceSourceToDetector = "1085.6"
    ds.DistanceSourceToPatient = "595"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "152"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500" if not localizer else "4400"
    ds.XRayTubeCurrent = 180 if not localizer else 35
    ds.Exposure = 90 if not localizer else 154
    ds.FilterType = "FLAT"
    ds.GeneratorPower = 22
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = kernel
    if not localizer:
        ds.ScanOptions = "HELICAL_CT"
        ds.RevolutionTime = 0.5
        ds.SingleCollimationWidth = 0.6
        ds.TotalCollimationWidth = 38.4
        ds.TableSpeed = 46.0
        ds.TableFeedPerRotation = 23.0
        ds.SpiralPitchFactor = 0.6
        ds.CTDIvol = 9.87
        ds.CTDIPhantomTypeCodeSequence = [b.code("113691", "DCM", "IEC Body Dosimetry Phantom")]
        ds.ContrastBolusAgent = "Ultravist 370"
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = "90"
    ds.AcquisitionNumber = 1 if localizer else 2
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    if not localizer:  # a projection's values are not Hounsfield units (PS3.3 C.8.2.1.1.5)
        ds.RescaleType = "HU"


def series_files(study: b.Study, spec: CtSeries, options: Options, folder: str, namespace: tuple[object, ...], *,
                 equipment: b.Equipment = SOMATOM, protocol: str = "Abdomen^AbdomenRoutine", position: str = "FFS",
                 phantom: tuple[ph.Ellipsoid, ...] = ph.ABDOMEN) -> list[DataFile]:
    """Every slice of one CT series, as Part 10 files."""
    seed, stack = options.seed, spec.stack
    localizer = "LOCALIZER" in spec.image_type
    series = b.Series(study, equipment, b.uid(seed, *namespace, "series", spec.number), spec.number,
                      spec.description, "CT", b.at(study.date, study.time, spec.start)[1],
                      b.uid(seed, *namespace, "frame"), protocol=protocol, body_part="ABDOMEN", position=position)
    common = b.shared(series, b.CT_IMAGE_STORAGE)
    common.ImageType = list(spec.image_type)
    _acquisition(common, spec.kernel, localizer)
    b.plane(common, series, stack.orientation, stack.spacing, stack.slice_spacing)
    b.pixel_module(common, stack.rows, stack.columns, bits_stored=12)
    common.WindowCenter, common.WindowWidth = ("40", "400") if not localizer else ("50", "500")
    encoder = b.SeriesEncoder(common)
    rng = ph.rng_for(seed, *namespace, spec.number)
    files = []
    for k in range(stack.slices):
        number = k + 1
        ds = b.own(series, b.uid(seed, *namespace, spec.number, number), number, 30 + number * 0.05)
        ds.AcquisitionDate, ds.AcquisitionTime = b.at(study.date, series.time, number * 0.25)
        b.position(ds, stack.position(k), stack.location(k))
        values = ph.image(stack.points(k), phantom, HOUNSFIELD, rng, spec.noise, -1024, 3071) + 1024
        b.pixel_data(ds, values)
        files.append(encoder.file(series, ds, folder))
    return files


def _study(seed: int, namespace: tuple[object, ...], patient: b.Patient) -> b.Study:
    return b.Study(patient, b.uid(seed, *namespace, "study"), "20240315", "093000", "CT ABDOMEN WITH CONTRAST",
                   "A" + b.uid(seed, *namespace, "accession")[-7:])


def ct_series_specs(options: Options) -> list[CtSeries]:
    """The three reconstructions of the abdomen study, small or full size."""
    topogram = ph.Stack(*options.pick((64, 48, (8.0, 8.0), 1, 1.0), (512, 512, (1.0, 0.75), 1, 1.0)),
                        orientation=b.CORONAL, centre=(0.0, 0.0, 40.0))
    soft = ph.Stack(*options.pick((64, 64, (5.625, 5.625), 8, 25.0), (512, 512, (0.703125, 0.703125), 80, 5.0)),
                    orientation=b.AXIAL, centre=(0.0, 10.0, 40.0))
    sharp = ph.Stack(*options.pick((64, 64, (5.625, 5.625), 12, 16.0), (512, 512, (0.703125, 0.703125), 200, 2.0)),
                     orientation=b.AXIAL, centre=(0.0, 10.0, 40.0))
    return [
        CtSeries(1, "Topogram  0.6  T20s", "T20s", topogram, 8.0, 0.0, ("ORIGINAL", "PRIMARY", "LOCALIZER")),
        CtSeries(2, "Abdomen  5.0  B30f", "B30f", soft, 10.0, 95.0),
        CtSeries(3, "Abdomen  2.0  B70f", "B70f", sharp, 45.0, 95.0),
    ]


def ct_study_dataset(options: Options) -> Iterator[Session]:
    """The ``ct-study`` data set: one patient, one study, three series."""
    subject, label = "CT0001", "CT0001_CT01"
    patient = b.Patient(subject, "Phantom^Abdomen", "19650412", "F", weight=64.0, size=1.66,
                        comments=b.labels_comment(PROJECT, subject, label))
    study = _study(options.seed, ("ct-study",), patient)
    files: list[DataFile] = []
    for spec in ct_series_specs(options):
        files += series_files(study, spec, options, label, ("ct-study",))
    yield Session(tuple(files), PROJECT, subject, label)


def ct_study(*, seed: int = 0, slices: int = 8, size: int = 64, patient_id: str = "PACSBOX-CT-001",
             patient_name: str = "Phantom^Water") -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, DICOM Part 10 bytes)`` for one small axial CT series; same seed, same bytes.

    Kept for ``pacsbox serve --sample-data`` (one patient, one series of ``slices`` images)."""
    options = Options(seed=seed)
    patient = b.Patient(patient_id, patient_name, "19700101", "O")
    study = _study(seed, ("sample", patient_id), patient)
    stack = ph.Stack(size, size, (360 / size, 360 / size), slices, 5.0, b.AXIAL, centre=(0.0, 10.0, 40.0))
    spec = CtSeries(2, "Axial 5mm", "B30f", stack, 10.0, 95.0)
    for item in series_files(study, spec, options, "ct-study", ("sample", patient_id)):
        yield item.path, item.data
