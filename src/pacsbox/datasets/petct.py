"""PET-CT: an FDG whole-body study from one gantry (a low-dose CT for attenuation, PET with and without it).

The PET Image IOD's modules follow PS3.3: PET Series C.8.22.1 (Units BQML, decay correction to the series start),
PET Isotope C.8.22.2 (F-18 FDG, half-life 6586.2 s), NM/PET Patient Orientation C.8.4.6 and PET Image C.8.22.3
(16-bit signed values with a Rescale Slope per slice). CT and PET share the Frame of Reference, as on a real
PET-CT, and activity follows standardized uptake values for the patient's weight and the decayed dose.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from . import builder as b
from . import ct
from . import phantoms as ph
from .model import DataFile, Options, Session

BIOGRAPH = b.Equipment("SIEMENS", "Biograph Vision 600", "VR20B", "PETCT31007", "31007")
HALF_LIFE = 6586.2  # seconds, F-18
DOSE = 3.1e8  # Bq injected
UPTAKE = 3600.0  # seconds from injection to the PET series start
SUV = {ph.AIR: 0.0, ph.FAT: 0.35, ph.MUSCLE: 0.8, ph.SOFT: 1.0, ph.LIVER: 2.3, ph.SPLEEN: 1.9, ph.KIDNEY: 6.5,
       ph.BONE: 1.3, ph.BLOOD: 1.7, ph.LESION: 9.5, ph.LUNG: 0.45}
PROJECT = "PETCT"


def _isotope(study: b.Study, injection: str) -> Sequence:
    item = Dataset()
    item.Radiopharmaceutical = "Fludeoxyglucose"
    item.RadiopharmaceuticalRoute = "Intravenous route"
    item.RadiopharmaceuticalStartTime = injection
    item.RadiopharmaceuticalStartDateTime = study.date + injection
    item.RadionuclideTotalDose = b.ds_value(DOSE)
    item.RadionuclideHalfLife = b.ds_value(HALF_LIFE)
    item.RadionuclidePositronFraction = "0.9673"
    item.RadionuclideCodeSequence = [b.code("77004003", "SCT", "^18^Fluorine")]
    item.RadiopharmaceuticalCodeSequence = [b.code("35321007", "SCT", "Fluorodeoxyglucose F^18^")]
    return Sequence([item])


def _orientation(ds: Dataset) -> None:
    """NM/PET Patient Orientation: recumbent, supine, head first (it replaces Patient Position)."""
    del ds.PatientPosition
    orientation = b.code("102538003", "SCT", "recumbent")
    orientation.PatientOrientationModifierCodeSequence = [b.code("40199007", "SCT", "supine")]
    ds.PatientOrientationCodeSequence = [orientation]
    ds.PatientGantryRelationshipCodeSequence = [b.code("102540008", "SCT", "headfirst")]


def pet_files(study: b.Study, options: Options, folder: str, namespace: tuple[object, ...], frame: str,
              number: int, attenuation: bool) -> list[DataFile]:
    """One PET reconstruction, slice by slice."""
    seed = options.seed
    stack = ph.Stack(*options.pick((32, 32, (12.5, 12.5), 8, 25.0), (200, 200, (4.0728, 4.0728), 100, 3.0)),
                     orientation=b.AXIAL, centre=(0.0, 10.0, 40.0))
    description = "PET WB 3D AC" if attenuation else "PET WB 3D NAC"
    start = 600.0
    series = b.Series(study, BIOGRAPH, b.uid(seed, *namespace, "series", number), number, description, "PT",
                      b.at(study.date, study.time, start)[1], frame, protocol="PET^WholeBody_FDG",
                      body_part="WHOLEBODY", position="HFS")
    injection = b.at(study.date, series.time, -UPTAKE)[1][:13]
    decayed = DOSE * 2 ** (-UPTAKE / HALF_LIFE)
    suv_to_bqml = decayed / (study.patient.weight * 1000.0)
    contrast = {label: value * suv_to_bqml for label, value in SUV.items()}
    if not attenuation:  # without correction the body's centre looks colder than its surface
        contrast = {label: value * 0.45 for label, value in contrast.items()}
    rng = ph.rng_for(seed, *namespace, number)
    frame_seconds = 120.0
    common = b.shared(series, b.PET_IMAGE_STORAGE)
    common.Units, common.CountsSource, common.SeriesType = "BQML", "EMISSION", ["WHOLE BODY", "IMAGE"]
    common.NumberOfSlices = stack.slices
    common.CorrectedImage = ["NORM", "DTIM", "RAN", "DECY", *(["ATTN", "SCAT"] if attenuation else [])]
    common.RandomsCorrectionMethod = "DLYD"
    if attenuation:
        common.AttenuationCorrectionMethod = "measured,AC_CT"
        common.ScatterCorrectionMethod = "Model-based"
    common.DecayCorrection = "START"
    common.ReconstructionMethod = "PSF+TOF 4i5s"
    common.CollimatorType = "NONE"
    common.AxialAcceptance = "322"
    common.RadiopharmaceuticalInformationSequence = _isotope(study, injection)
    _orientation(common)
    common.ActualFrameDuration = int(frame_seconds * 1000)
    common.DoseCalibrationFactor = "1"
    common.DeadTimeFactor = "1.0245"
    common.SliceSensitivityFactor = "1"
    common.RescaleIntercept = "0"
    common.WindowCenter, common.WindowWidth = b.ds_value(3 * suv_to_bqml), b.ds_value(6 * suv_to_bqml)
    b.plane(common, series, stack.orientation, stack.spacing, stack.slice_spacing)
    b.pixel_module(common, stack.rows, stack.columns, bits_stored=16, signed=True)
    encoder = b.SeriesEncoder(common)
    files = []
    for k in range(stack.slices):
        index = k + 1
        bed = k * 4 // stack.slices  # four bed positions, several slices each
        ds = b.own(series, b.uid(seed, *namespace, number, index), index, 900 + index * 0.1)
        ds.AcquisitionDate, ds.AcquisitionTime = b.at(study.date, series.time, bed * frame_seconds)
        ds.FrameReferenceTime = b.ds_value(bed * frame_seconds * 1000 + frame_seconds * 500)
        ds.ImageIndex = index
        ds.DecayFactor = b.ds_value(2 ** ((bed * frame_seconds) / HALF_LIFE))
        b.position(ds, stack.position(k), stack.location(k))
        activity = ph.image(stack.points(k), ph.ABDOMEN, contrast, rng, 0.06 * suv_to_bqml, 0, math.inf)
        slope = max(float(activity.max()), 1.0) / 32767.0  # each slice uses the whole 16-bit range
        ds.RescaleSlope = b.ds_value(slope)
        b.pixel_data(ds, np.rint(activity / slope), signed=True)
        files.append(encoder.file(series, ds, folder))
    return files


def pet_ct(options: Options) -> Iterator[Session]:
    """The ``pet-ct`` data set: a CT for attenuation correction, then PET with and without it."""
    subject, label, namespace = "PET0001", "PET0001_PETCT01", ("pet-ct",)
    patient = b.Patient(subject, "Phantom^Torso", "19580930", "M", weight=78.0, size=1.81,
                        comments=b.labels_comment(PROJECT, subject, label))
    study = b.Study(patient, b.uid(options.seed, *namespace, "study"), "20240402", "081500", "PET-CT FDG WHOLE BODY",
                    "A" + b.uid(options.seed, *namespace, "accession")[-7:])
    frame = b.uid(options.seed, *namespace, "frame")
    stack = ph.Stack(*options.pick((48, 48, (10.4, 10.4), 8, 25.0), (512, 512, (0.9765625, 0.9765625), 100, 3.0)),
                     orientation=b.AXIAL, centre=(0.0, 10.0, 40.0))
    spec = ct.CtSeries(2, "CT WB 3.0 B19f", "B19f", stack, 18.0, 300.0)
    files: list[DataFile] = ct.series_files(study, spec, options, label, namespace, equipment=BIOGRAPH,
                                            protocol="PET^WholeBody_FDG", position="HFS")
    files += pet_files(study, options, label, namespace, frame, 4, attenuation=True)
    files += pet_files(study, options, label, namespace, frame, 5, attenuation=False)
    yield Session(tuple(files), PROJECT, subject, label)
