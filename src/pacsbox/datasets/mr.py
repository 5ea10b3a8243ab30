"""MR sessions shaped like xnat4tests' (a Siemens Skyra, syngo MR D13C): T1w MPRAGE, field map, diffusion.

Full size matches the series xnat4tests uploads (T1w: 192 sagittal 256x240 slices; field map: 60 slices of 64x64 at
two echoes; diffusion: 67 volumes of 60 slices of 96x96, seven b=0 interleaved with 60 directions). Small keeps the
protocol, the geometry's extent and the hierarchy, with fewer and coarser images. Series numbers and descriptions
are xnat4tests', so XNAT scan IDs and types match (scan ID = SeriesNumber, type = SeriesDescription).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from . import builder as b
from . import phantoms as ph
from .model import DataFile, Options, Session

SKYRA = b.Equipment("SIEMENS", "Skyra", "syngo MR D13C", "AWP45193", "45193")
_FREQUENCY = "123.251994"  # 1H at 2.89 T, what a 3 T Skyra reports


@dataclass(frozen=True)
class Protocol:
    """One sequence's acquisition parameters (MR Image module, PS3.3 C.8.3.1) and its phantom contrast."""

    number: int
    description: str
    stack: ph.Stack
    contrast: dict[int, float]
    noise: float
    start: float  # seconds after the study time
    duration: float
    tags: dict[str, Any] = field(default_factory=dict)
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "M", "ND", "NORM")


def _t1w(options: Options) -> Protocol:
    stack = ph.Stack(*options.pick((64, 60, (4.0, 4.0), 8, 24.0), (256, 240, (1.0, 1.0), 192, 1.0)),
                     orientation=b.SAGITTAL, centre=(0.0, 8.0, 12.0))
    return Protocol(2, "t1_mprage_sag_p2_iso_1", stack,
                    {ph.FAT: 1150, ph.BONE: 90, ph.CSF: 210, ph.GREY: 620, ph.WHITE: 910, ph.LESION: 430},
                    noise=18.0, start=120.0, duration=321.0, tags={
                        "ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP", "MP"],
                        "ScanOptions": "IR", "MRAcquisitionType": "3D", "SequenceName": "*tfl3d1_16ns",
                        "RepetitionTime": "2300", "EchoTime": "2.07", "InversionTime": "900", "FlipAngle": "9",
                        "EchoTrainLength": 1, "PixelBandwidth": "230", "PercentSampling": "100",
                        "PercentPhaseFieldOfView": "93.75", "AcquisitionMatrix": [0, 256, 240, 0],
                        "InPlanePhaseEncodingDirection": "ROW", "NumberOfPhaseEncodingSteps": 239})


def _fmap(options: Options) -> Protocol:
    stack = ph.Stack(*options.pick((32, 32, (6.0, 6.0), 4, 36.0), (64, 64, (3.0, 3.0), 60, 3.0)),
                     orientation=b.AXIAL, centre=(0.0, 0.0, 10.0))
    return Protocol(6, "gre_field_mapping 3mm", stack,
                    {ph.FAT: 820, ph.BONE: 60, ph.CSF: 930, ph.GREY: 760, ph.WHITE: 700, ph.LESION: 800},
                    noise=14.0, start=470.0, duration=86.0, tags={
                        "ScanningSequence": "GR", "SequenceVariant": "SP", "MRAcquisitionType": "2D",
                        "SequenceName": "*fm2d2r", "RepetitionTime": "638", "FlipAngle": "60",
                        "EchoTrainLength": 1, "PixelBandwidth": "280", "PercentSampling": "100",
                        "PercentPhaseFieldOfView": "100", "AcquisitionMatrix": [64, 0, 0, 64],
                        "InPlanePhaseEncodingDirection": "COL", "NumberOfPhaseEncodingSteps": 64})


def _dwi(options: Options) -> Protocol:
    tilt = math.radians(12.4)  # an oblique axial, along the AC-PC line as planned on a real head
    stack = ph.Stack(*options.pick((32, 32, (7.5, 7.5), 4, 37.5), (96, 96, (2.5, 2.5), 60, 2.5)),
                     orientation=(1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt)), centre=(0.0, 0.0, 8.0))
    return Protocol(13, "R-L MRtrix 60 directions interleaved B0 ep2d_diff_p2", stack,
                    {ph.FAT: 40, ph.BONE: 20, ph.CSF: 1400, ph.GREY: 620, ph.WHITE: 520, ph.LESION: 980},
                    noise=12.0, start=570.0, duration=600.0, tags={
                        "ScanningSequence": "EP", "SequenceVariant": ["SK", "SP"], "ScanOptions": ["PFP", "FS"],
                        "MRAcquisitionType": "2D", "RepetitionTime": "8800", "EchoTime": "110", "FlipAngle": "90",
                        "EchoTrainLength": 72, "PixelBandwidth": "2365", "PercentSampling": "100",
                        "PercentPhaseFieldOfView": "100", "AcquisitionMatrix": [96, 0, 0, 96],
                        "InPlanePhaseEncodingDirection": "COL", "NumberOfPhaseEncodingSteps": 72},
                    image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "NORM"))


def directions(count: int) -> list[tuple[float, float, float]]:
    """``count`` gradient directions spread over a hemisphere (a golden-angle spiral)."""
    result = []
    for index in range(count):
        z = 1.0 - (index + 0.5) / count
        radius, angle = math.sqrt(1.0 - z * z), index * math.pi * (3.0 - math.sqrt(5.0))
        result.append((round(radius * math.cos(angle), 6), round(radius * math.sin(angle), 6), round(z, 6)))
    return result


def _mr_tags(ds: Dataset, protocol: Protocol) -> None:
    ds.ImageType = list(protocol.image_type)
    ds.ScanOptions = ""  # Type 2: present even when no option is in use
    for keyword, value in protocol.tags.items():
        setattr(ds, keyword, value)
    ds.AngioFlag = "N"
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = _FREQUENCY
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = "3"
    ds.SpacingBetweenSlices = b.ds_value(protocol.stack.slice_spacing)
    ds.ReceiveCoilName = "HeadNeck_20"
    ds.TransmitCoilName = "Body"
    ds.VariableFlipAngleFlag = "N"
    ds.SAR = "0.08872682"
    ds.dBdt = "0"
    ds.PatientPosition = "HFS"
    ds.AcquisitionNumber = 1


@dataclass
class _Image:
    slice: int
    number: int
    seconds: float  # acquisition time after the series start
    contrast: dict[int, float]
    extra: dict[str, Any] = field(default_factory=dict)
    diffusion: tuple[float, tuple[float, float, float] | None] | None = None


def _images(protocol: Protocol, kind: str, full: bool) -> list[_Image]:
    stack, images = protocol.stack, []
    if kind == "t1w":  # 3D: every slice shares the acquisition time
        return [_Image(k, k + 1, 0.0, protocol.contrast) for k in range(stack.slices)]
    if kind == "fmap":
        for k in range(stack.slices):
            for echo, (te, scale) in enumerate(((4.92, 1.0), (7.38, 0.86))):
                contrast = {label: value * scale for label, value in protocol.contrast.items()}
                images.append(_Image(k, 2 * k + echo + 1, k * 0.638 / stack.slices, contrast,
                                     {"EchoTime": str(te), "EchoNumbers": echo + 1}))
        return images
    gradients = directions(60 if full else 2)
    # a b=0 volume before every ten directions and one at the end: 7 + 60 = 67 volumes at full size
    volumes: list[tuple[float, float, float] | None] = [None, *gradients]
    if full:
        volumes = [v for start in range(0, 60, 10) for v in (None, *gradients[start:start + 10])] + [None]
    order = list(range(0, stack.slices, 2)) + list(range(1, stack.slices, 2))  # interleaved slice order
    for v, direction in enumerate(volumes):
        if direction is None:
            contrast, bvalue = protocol.contrast, 0.0
        else:
            # restricted diffusion keeps the lesion bright; white matter along the gradient loses signal
            anisotropy = 0.5 + 0.5 * abs(direction[0])
            contrast = {ph.FAT: 12, ph.BONE: 8, ph.CSF: 25, ph.GREY: 150, ph.WHITE: 90 + 110 * anisotropy,
                        ph.LESION: 420}
            bvalue = 3000.0
        for k in range(stack.slices):
            seconds = v * 8.8 + order.index(k) * 8.8 / stack.slices
            index = sum(d is not None for d in volumes[:v])
            name = "*ep_b0" if direction is None else f"*ep_b3000#{index}"
            images.append(_Image(k, v * stack.slices + k + 1, seconds, contrast, {"SequenceName": name},
                                 (bvalue, direction)))
    return images


def _diffusion(ds: Dataset, bvalue: float, direction: tuple[float, float, float] | None) -> None:
    """Siemens' private diffusion elements (dcm2niix and MRtrix read these) and the standard b-value."""
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x08, "CS", "IMAGE NUM 4")
    block.add_new(0x09, "LO", "1.0")
    block.add_new(0x0C, "IS", str(int(bvalue)))
    block.add_new(0x0D, "CS", "DIRECTIONAL" if direction else "NONE")
    if direction:
        block.add_new(0x0E, "FD", list(direction))
    ds.DiffusionBValue = bvalue


def series_files(study: b.Study, protocol: Protocol, kind: str, options: Options, folder: str,
                 namespace: tuple[object, ...]) -> list[DataFile]:
    """Every instance of one MR series, as Part 10 files."""
    seed, stack = options.seed, protocol.stack
    series = b.Series(study, SKYRA, b.uid(seed, *namespace, "series", protocol.number), protocol.number,
                      protocol.description, "MR", at_seconds(study.time, protocol.start),
                      b.uid(seed, *namespace, "frame"), protocol=protocol.description, body_part="HEAD")
    common = b.shared(series, b.MR_IMAGE_STORAGE)
    _mr_tags(common, protocol)
    # small stacks keep the extent with fewer slices: each is as thick as the spacing, so nothing is skipped
    b.plane(common, series, stack.orientation, stack.spacing, stack.slice_spacing)
    common.ImagesInAcquisition = stack.slices
    b.pixel_module(common, stack.rows, stack.columns, bits_stored=12)
    common.WindowCenter, common.WindowWidth = "600", "1200"
    encoder = b.SeriesEncoder(common)
    rng = ph.rng_for(seed, *namespace, protocol.number)
    files = []
    for item in _images(protocol, kind, options.full):
        sop_uid = b.uid(seed, *namespace, protocol.number, item.number)
        ds = b.own(series, sop_uid, item.number, protocol.duration + 2 + item.number * 0.01)
        ds.AcquisitionDate, ds.AcquisitionTime = b.at(study.date, series.time, item.seconds)
        for keyword, value in item.extra.items():
            setattr(ds, keyword, value)
        if item.diffusion is not None:
            _diffusion(ds, *item.diffusion)
        b.position(ds, stack.position(item.slice), stack.location(item.slice))
        b.pixel_data(ds, ph.image(stack.points(item.slice), ph.HEAD, item.contrast, rng, protocol.noise, 0, 4095))
        files.append(encoder.file(series, ds, folder))
    return files


def at_seconds(time: str, seconds: float) -> str:
    """A TM ``seconds`` after ``time`` (same day)."""
    return b.at("20000101", time, seconds)[1]


KINDS = {"t1w": _t1w, "fmap": _fmap, "dwi": _dwi}


def mr_session(options: Options, *, project: str, subject: str, label: str, patient: b.Patient, date: str,
               time: str, kinds: tuple[str, ...], namespace: tuple[object, ...]) -> Session:
    """One MR session: a study with a series of each kind, its labels in Patient Comments."""
    seed = options.seed
    study = b.Study(patient, b.uid(seed, *namespace, "study"), date, time, "PACSBOX^Neuro research",
                    "A" + b.uid(seed, *namespace, "accession")[-7:])
    files: list[DataFile] = []
    for kind in kinds:
        files += series_files(study, KINDS[kind](options), kind, options, label, namespace)
    return Session(tuple(files), project, subject, label)


def _patient(options: Options, subject: str, project: str, session: str, sex: str, birth: str,
             name: str) -> b.Patient:
    return b.Patient(subject, name, birth, sex, weight=72.0, size=1.78,
                     comments=b.labels_comment(project, subject, session))


def dummydicom(options: Options) -> Iterator[Session]:
    """xnat4tests' dummydicom: project dummydicomproject, subject dummydicomsubject, session dummydicomsession."""
    project, subject, label = "dummydicomproject", "dummydicomsubject", "dummydicomsession"
    patient = _patient(options, subject, project, label, "M", "19800824", "Dicom^Dummy")
    yield mr_session(options, project=project, subject=subject, label=label, patient=patient, date="20180525",
                     time="100512", kinds=("t1w", "dwi", "fmap"), namespace=("dummydicom",))


#: xnat4tests' user-training sessions, in its upload order.
TRAINING_SESSIONS = ("CONT01_MR01", "CONT02_MR01", "CONT01_MR02", "CONT02_MR02",
                     "TEST01_MR01", "TEST01_MR02", "TEST02_MR01", "TEST02_MR02")


def user_training(options: Options) -> Iterator[Session]:
    """xnat4tests' user-training: project TRAINING, four subjects, two MR sessions each (T1w and field map)."""
    for label in TRAINING_SESSIONS:
        subject, visit = label.split("_")
        number = int(subject[-2:]) + (10 if subject.startswith("TEST") else 0)
        birth = f"19{70 + number}0{1 + number % 9}1{number % 9}"
        patient = _patient(options, subject, "TRAINING", label, "F" if number % 2 else "M", birth,
                           f"Training^{subject}")
        date = "20230310" if visit == "MR01" else "20230915"
        yield mr_session(options, project="TRAINING", subject=subject, label=label, patient=patient, date=date,
                         time=f"{9 + number % 8:02d}1500", kinds=("t1w", "fmap"),
                         namespace=("user-training", label))
