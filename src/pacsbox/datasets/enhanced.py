"""An enhanced multi-frame object: one Enhanced MR Image (a T2 TSE axial stack) as syngo MR XA writes them.

Modules of the Enhanced MR Image IOD (PS3.3 A.36.2): Enhanced General Equipment C.7.5.2, Multi-frame Functional
Groups C.7.6.16 (shared: pixel measures, plane orientation, MR timing, FOV, echo, modifiers, coils, averages,
anatomy, value transformation; per frame: frame content, plane position, frame type), Multi-frame Dimension
C.7.6.17 (stack ID, in-stack position), Enhanced MR Image C.8.13.1, MR Image and Spectroscopy Instance C.8.13.2,
MR Pulse Sequence C.8.13.4 and Acquisition Context C.7.6.14.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from . import builder as b
from . import phantoms as ph
from .model import DataFile, Options, Session

VIDA = b.Equipment("SIEMENS", "MAGNETOM Vida", "syngo MR XA31", "MRC45678", "175678")
PROJECT = "MULTIFRAME"
T2 = {ph.FAT: 700, ph.BONE: 40, ph.CSF: 1800, ph.GREY: 900, ph.WHITE: 650, ph.LESION: 1500}
_FRAME_TYPE = ["ORIGINAL", "PRIMARY", "M", "NONE"]


def _item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _shared(stack: ph.Stack) -> Dataset:
    """The functional groups every frame shares."""
    return _item(
        PixelMeasuresSequence=[_item(PixelSpacing=[b.ds_value(v) for v in stack.spacing],
                                     SliceThickness=b.ds_value(stack.slice_spacing * 0.8),
                                     SpacingBetweenSlices=b.ds_value(stack.slice_spacing))],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=[b.ds_value(v) for v in stack.orientation])],
        MRTimingAndRelatedParametersSequence=[_item(
            RepetitionTime=6000.0, FlipAngle=150.0, EchoTrainLength=18, RFEchoTrainLength=18,
            GradientEchoTrainLength=0, GradientOutputType="DB_DT", GradientOutput=52.1,
            OperatingModeSequence=[_item(OperatingModeType=kind, OperatingMode="IEC_NORMAL")
                                   for kind in ("STATIC FIELD", "RF", "GRADIENT")],
            SpecificAbsorptionRateSequence=[_item(SpecificAbsorptionRateDefinition="IEC_WHOLE_BODY",
                                                  SpecificAbsorptionRateValue=0.71)])],
        MRFOVGeometrySequence=[_item(InPlanePhaseEncodingDirection="ROW",
                                     MRAcquisitionFrequencyEncodingSteps=stack.columns,
                                     MRAcquisitionPhaseEncodingStepsInPlane=stack.rows,
                                     PercentSampling=100.0, PercentPhaseFieldOfView=100.0)],
        MREchoSequence=[_item(EffectiveEchoTime=98.0)],
        MRModifierSequence=[_item(InversionRecovery="NO", FlowCompensation="NONE", T2Preparation="NO",
                                  SpectrallySelectedExcitation="NONE", SpatialPresaturation="NONE",
                                  PartialFourier="NO", ParallelAcquisition="NO")],
        MRImagingModifierSequence=[_item(MagnetizationTransfer="NONE", BloodSignalNulling="NO", Tagging="NONE",
                                         TransmitterFrequency=123.2, PixelBandwidth=220.0)],
        MRReceiveCoilSequence=[_item(ReceiveCoilName="Head_Neck_20", ReceiveCoilManufacturerName="SIEMENS",
                                     ReceiveCoilType="VOLUME", QuadratureReceiveCoil="NO")],
        MRTransmitCoilSequence=[_item(TransmitCoilName="Body", TransmitCoilManufacturerName="SIEMENS",
                                      TransmitCoilType="BODY")],
        MRAveragesSequence=[_item(NumberOfAverages=1.0)],
        FrameAnatomySequence=[_item(AnatomicRegionSequence=[b.code("69536005", "SCT", "Head")],
                                    FrameLaterality="U")],
        PixelValueTransformationSequence=[_item(RescaleIntercept="0", RescaleSlope="1", RescaleType="US")],
        FrameVOILUTSequence=[_item(WindowCenter="900", WindowWidth="1800")],
    )


def _dimensions(ds: Dataset, organization: str) -> None:
    """Multi-frame Dimension module: frames indexed by stack, then position in the stack."""
    ds.DimensionOrganizationSequence = [_item(DimensionOrganizationUID=organization)]
    ds.DimensionOrganizationType = "3D"
    ds.DimensionIndexSequence = [
        _item(DimensionOrganizationUID=organization, DimensionIndexPointer=0x00209056,
              FunctionalGroupPointer=0x00209111, DimensionDescriptionLabel="Stack ID"),
        _item(DimensionOrganizationUID=organization, DimensionIndexPointer=0x00209057,
              FunctionalGroupPointer=0x00209111, DimensionDescriptionLabel="In-Stack Position Number"),
    ]


def _pulse_sequence(ds: Dataset) -> None:
    """MR Pulse Sequence module, and the image-level values of Enhanced MR Image."""
    ds.PulseSequenceName = "tse2d1_18"
    ds.MRAcquisitionType = "2D"
    ds.EchoPulseSequence = "SPIN"
    ds.MultipleSpinEcho = "YES"
    ds.MultiPlanarExcitation = "NO"
    ds.PhaseContrast = "NO"
    ds.TimeOfFlightContrast = "NO"
    ds.SteadyStatePulseSequence = "NONE"
    ds.EchoPlanarPulseSequence = "NO"
    ds.SaturationRecovery = "NO"
    ds.SpectrallySelectedSuppression = "NONE"
    ds.OversamplingPhase = "NONE"
    ds.GeometryOfKSpaceTraversal = "RECTILINEAR"
    ds.RectilinearPhaseEncodeReordering = "LINEAR"
    ds.SegmentedKSpaceTraversal = "PARTIAL"
    ds.NumberOfKSpaceTrajectories = 1
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.AcquisitionContrast = "T2"
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = 2.89362
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"


def multiframe(options: Options) -> Iterator[Session]:
    """The ``multiframe`` data set: one Enhanced MR Image holding a whole axial T2 stack."""
    seed, namespace = options.seed, ("multiframe",)
    subject, label = "MF0001", "MF0001_MR01"
    patient = b.Patient(subject, "Phantom^Multiframe", "19900217", "F", weight=61.0, size=1.68,
                        comments=b.labels_comment(PROJECT, subject, label))
    study = b.Study(patient, b.uid(seed, *namespace, "study"), "20240510", "141000", "MR BRAIN",
                    "A" + b.uid(seed, *namespace, "accession")[-7:])
    series = b.Series(study, VIDA, b.uid(seed, *namespace, "series"), 3, "t2_tse_tra", "MR", "141843",
                      b.uid(seed, *namespace, "frame"), protocol="t2_tse_tra", body_part="HEAD")
    stack = ph.Stack(*options.pick((64, 64, (3.6, 3.6), 8, 16.0), (320, 320, (0.72, 0.72), 30, 5.0)),
                     orientation=b.AXIAL, centre=(0.0, 0.0, 10.0))
    rng = ph.rng_for(seed, *namespace)
    ds = b.base(series, b.ENHANCED_MR_IMAGE_STORAGE, b.uid(seed, *namespace, "instance"), 1, 130.0)
    ds.ImageType = list(_FRAME_TYPE)
    ds.AcquisitionNumber = 1
    acquisition = b.at(study.date, series.time, 0.0)
    ds.AcquisitionDateTime = acquisition[0] + acquisition[1]
    ds.AcquisitionDuration = 126.0
    ds.FrameOfReferenceUID = series.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.AcquisitionContextSequence = Sequence()
    _pulse_sequence(ds)
    _dimensions(ds, b.uid(seed, *namespace, "dimensions"))
    ds.SharedFunctionalGroupsSequence = [_shared(stack)]
    frames, per_frame = [], []
    for k in range(stack.slices):
        moment = b.at(study.date, series.time, k * 126.0 / stack.slices)
        per_frame.append(_item(
            FrameContentSequence=[_item(
                FrameAcquisitionNumber=k + 1, FrameReferenceDateTime=moment[0] + moment[1],
                FrameAcquisitionDateTime=moment[0] + moment[1], FrameAcquisitionDuration=6000.0,
                StackID="1", InStackPositionNumber=k + 1, DimensionIndexValues=[1, k + 1])],
            PlanePositionSequence=[_item(ImagePositionPatient=[b.ds_value(v) for v in stack.position(k)])],
            MRImageFrameTypeSequence=[_item(
                FrameType=list(_FRAME_TYPE), PixelPresentation="MONOCHROME", VolumetricProperties="VOLUME",
                VolumeBasedCalculationTechnique="NONE", ComplexImageComponent="MAGNITUDE",
                AcquisitionContrast="T2")],
        ))
        frames.append(ph.image(stack.points(k), ph.HEAD, T2, rng, 20.0, 0, 4095))
    ds.NumberOfFrames = stack.slices
    ds.PerFrameFunctionalGroupsSequence = per_frame
    b.pixels(ds, np.stack(frames), bits_stored=12)
    folder = f"{label}/3-t2_tse_tra"
    yield Session((DataFile(f"{folder}/0001.dcm", b.encode(ds)),), PROJECT, subject, label)
