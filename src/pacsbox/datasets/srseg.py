"""A structured report and a segmentation of a small CT series: liver and a liver mass, and the mass measured.

The Segmentation IOD (PS3.3 A.51) is BINARY, one frame per slice and segment, indexed by segment then position,
each frame deriving from its CT slice. The report is a Comprehensive SR following TID 1500 (Measurement Report):
language, observer, procedure, and one measurement group (TID 1411) naming the mass, referencing its segment and
giving its volume and long axis computed from the segmentation itself.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence

from . import builder as b
from . import ct
from . import phantoms as ph
from .model import DataFile, Options, Session

PROJECT = "SRSEG"
SEGMENTER = b.Equipment("pacsbox", "pacsbox datasets", "1.0", "PACSBOX", "0001", department="Research")
#: (label, category, type, CIELab colour, labels of the phantom it covers)
SEGMENTS = (
    ("Liver", ("123037004", "SCT", "Anatomical Structure"), ("10200004", "SCT", "Liver"), [38086, 46661, 53006],
     (ph.LIVER, ph.LESION)),
    ("Mass", ("49755003", "SCT", "Morphologically Altered Structure"), ("4147007", "SCT", "Mass"),
     [29011, 58862, 51643], (ph.LESION,)),
)
_SOURCE = b.code("121322", "DCM", "Source image for image processing operation")


def _item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _references(series_uid: str, sources: list[Dataset]) -> Sequence:
    """ReferencedSeriesSequence items of the Common Instance Reference module."""
    return Sequence([_item(SeriesInstanceUID=series_uid, ReferencedInstanceSequence=[
        _item(ReferencedSOPClassUID=s.SOPClassUID, ReferencedSOPInstanceUID=s.SOPInstanceUID) for s in sources])])


def segmentation(study: b.Study, series: b.Series, stack: ph.Stack, sources: list[Dataset]) -> tuple[Dataset, dict]:
    """The SEG instance, and the mass's measurements (voxel count, largest in-plane area) taken from it."""
    ds = b.base(series, b.SEGMENTATION_STORAGE, b.uid(0, series.uid, "seg"), 1, 60.0)
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ContentLabel = "LIVER_SEG"
    ds.ContentDescription = "Liver and liver mass"
    ds.ContentCreatorName = "Reader^Rad"
    ds.FrameOfReferenceUID = series.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.SegmentationType = "BINARY"
    ds.LossyImageCompression = "00"
    ds.SegmentSequence = [
        _item(SegmentNumber=number, SegmentLabel=label, SegmentAlgorithmType="SEMIAUTOMATIC",
              SegmentAlgorithmName="pacsbox threshold", SegmentedPropertyCategoryCodeSequence=[b.code(*category)],
              SegmentedPropertyTypeCodeSequence=[b.code(*kind)], RecommendedDisplayCIELabValue=colour)
        for number, (label, category, kind, colour, _) in enumerate(SEGMENTS, start=1)]
    organization = b.uid(0, series.uid, "dimensions")
    ds.DimensionOrganizationSequence = [_item(DimensionOrganizationUID=organization)]
    ds.DimensionIndexSequence = [
        _item(DimensionOrganizationUID=organization, DimensionIndexPointer=0x0062000B,
              FunctionalGroupPointer=0x0062000A, DimensionDescriptionLabel="ReferencedSegmentNumber"),
        _item(DimensionOrganizationUID=organization, DimensionIndexPointer=0x00200032,
              FunctionalGroupPointer=0x00209113, DimensionDescriptionLabel="ImagePositionPatient"),
    ]
    ds.SharedFunctionalGroupsSequence = [_item(
        PixelMeasuresSequence=[_item(PixelSpacing=[b.ds_value(v) for v in stack.spacing],
                                     SliceThickness=b.ds_value(stack.slice_spacing),
                                     SpacingBetweenSlices=b.ds_value(stack.slice_spacing))],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=[b.ds_value(v) for v in stack.orientation])])]
    frames, per_frame, mass = [], [], {"voxels": 0, "area": 0}
    for number, (*_, covered) in enumerate(SEGMENTS, start=1):
        for k, source in enumerate(sources):
            tissue = ph.labels(stack.points(k), ph.ABDOMEN)
            frame = np.isin(tissue, covered).astype(np.uint8)
            if number == 2:
                mass["voxels"] += int(frame.sum())
                mass["area"] = max(mass["area"], int(frame.sum()))
            frames.append(frame)
            derivation = _item(
                DerivationCodeSequence=[b.code("113076", "DCM", "Segmentation")],
                SourceImageSequence=[_item(ReferencedSOPClassUID=source.SOPClassUID,
                                           ReferencedSOPInstanceUID=source.SOPInstanceUID,
                                           PurposeOfReferenceCodeSequence=[_SOURCE])])
            per_frame.append(_item(
                DerivationImageSequence=[derivation],
                FrameContentSequence=[_item(DimensionIndexValues=[number, k + 1])],
                PlanePositionSequence=[_item(ImagePositionPatient=[b.ds_value(v) for v in stack.position(k)])],
                SegmentIdentificationSequence=[_item(ReferencedSegmentNumber=number)]))
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.NumberOfFrames = len(frames)
    ds.ReferencedSeriesSequence = _references(sources[0].SeriesInstanceUID, sources)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = stack.rows, stack.columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(np.stack(frames))  # frames' bits run on without padding (PS3.5 8.1.1)
    ds["PixelData"].VR = "OB"
    return ds, mass


def _content(relationship: str, value_type: str, concept: tuple[str, str, str], **values) -> Dataset:
    item = _item(RelationshipType=relationship, ValueType=value_type, ConceptNameCodeSequence=[b.code(*concept)])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _number(concept: tuple[str, str, str], value: float, unit: tuple[str, str, str]) -> Dataset:
    measured = _item(NumericValue=b.ds_value(value), MeasurementUnitsCodeSequence=[b.code(*unit)])
    return _content("CONTAINS", "NUM", concept, MeasuredValueSequence=[measured])


def report(series: b.Series, seg: Dataset, mass: dict, stack: ph.Stack, ct_series_uid: str) -> Dataset:
    """The Comprehensive SR measurement report (TID 1500) of the mass."""
    ds = b.base(series, b.COMPREHENSIVE_SR_STORAGE, b.uid(0, series.uid, "sr"), 1, 120.0)
    del ds.ImageType, ds.PatientPosition  # not an image: the SR Document Series replaces the General Series
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = [b.code("77477000", "SCT", "Computed Tomography")]
    ds.CurrentRequestedProcedureEvidenceSequence = [_item(
        StudyInstanceUID=seg.StudyInstanceUID,
        ReferencedSeriesSequence=[_item(SeriesInstanceUID=seg.SeriesInstanceUID, ReferencedSOPSequence=[
            _item(ReferencedSOPClassUID=seg.SOPClassUID, ReferencedSOPInstanceUID=seg.SOPInstanceUID)])])]
    voxel = stack.spacing[0] * stack.spacing[1] * stack.slice_spacing
    long_axis = 2 * math.sqrt(mass["area"] * stack.spacing[0] * stack.spacing[1] / math.pi)
    segment = _content("CONTAINS", "IMAGE", ("121191", "DCM", "Referenced Segment"), ReferencedSOPSequence=[_item(
        ReferencedSOPClassUID=seg.SOPClassUID, ReferencedSOPInstanceUID=seg.SOPInstanceUID,
        ReferencedSegmentNumber=2)])
    group = _content("CONTAINS", "CONTAINER", ("125007", "DCM", "Measurement Group"), ContinuityOfContent="SEPARATE",
                     ContentSequence=[
                         _content("HAS OBS CONTEXT", "TEXT", ("112039", "DCM", "Tracking Identifier"),
                                  TextValue="Mass 1"),
                         _content("HAS OBS CONTEXT", "UIDREF", ("112040", "DCM", "Tracking Unique Identifier"),
                                  UID=b.uid(0, series.uid, "tracking")),
                         _content("CONTAINS", "CODE", ("121071", "DCM", "Finding"),
                                  ConceptCodeSequence=[b.code("4147007", "SCT", "Mass")]),
                         segment,
                         _content("CONTAINS", "UIDREF", ("121232", "DCM", "Source series for segmentation"),
                                  UID=ct_series_uid),
                         _number(("118565006", "SCT", "Volume"), mass["voxels"] * voxel, ("mm3", "UCUM", "mm3")),
                         _number(("103339001", "SCT", "Long Axis"), long_axis, ("mm", "UCUM", "mm")),
                     ])
    observer = [
        _content("HAS OBS CONTEXT", "CODE", ("121005", "DCM", "Observer Type"),
                 ConceptCodeSequence=[b.code("121006", "DCM", "Person")]),
        _content("HAS OBS CONTEXT", "PNAME", ("121008", "DCM", "Person Observer Name"), PersonName="Reader^Rad"),
    ]
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [b.code("126000", "DCM", "Imaging Measurement Report")]
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentTemplateSequence = [_item(MappingResource="DCMR", TemplateIdentifier="1500")]
    ds.ContentSequence = [
        _content("HAS CONCEPT MOD", "CODE", ("121049", "DCM", "Language of Content Item and Descendants"),
                 ConceptCodeSequence=[b.code("eng", "RFC5646", "English")]),
        *observer,
        _content("HAS CONCEPT MOD", "CODE", ("121058", "DCM", "Procedure reported"),
                 ConceptCodeSequence=[b.code("77477000", "SCT", "Computed Tomography")]),
        _content("CONTAINS", "CONTAINER", ("126010", "DCM", "Imaging Measurements"), ContinuityOfContent="SEPARATE",
                 ContentSequence=[group]),
    ]
    return ds


def sr_seg(options: Options) -> Iterator[Session]:
    """The ``sr-seg`` data set: a CT series through the liver, its segmentation, and a measurement report."""
    seed, namespace = options.seed, ("sr-seg",)
    subject, label = "SEG0001", "SEG0001_CT01"
    patient = b.Patient(subject, "Phantom^Liver", "19720605", "M", weight=81.0, size=1.79,
                        comments=b.labels_comment(PROJECT, subject, label))
    study = b.Study(patient, b.uid(seed, *namespace, "study"), "20240621", "113000", "CT LIVER",
                    "A" + b.uid(seed, *namespace, "accession")[-7:])
    stack = ph.Stack(*options.pick((64, 64, (5.625, 5.625), 4, 8.0), (512, 512, (0.703125, 0.703125), 32, 1.5)),
                     orientation=b.AXIAL, centre=(0.0, 10.0, 80.0))
    spec = ct.CtSeries(2, "Liver  1.5  B30f", "B30f", stack, 10.0, 95.0)
    files: list[DataFile] = ct.series_files(study, spec, options, label, namespace)
    sources = [dcmread(io.BytesIO(item.data), stop_before_pixels=True) for item in files]
    frame = sources[0].FrameOfReferenceUID
    seg_series = b.Series(study, SEGMENTER, b.uid(seed, *namespace, "series", 100), 100, "Liver segmentation", "SEG",
                          "115000", frame)
    seg, mass = segmentation(study, seg_series, stack, sources)
    files.append(b.data_file(seg_series, 1, seg, label))
    sr_series = b.Series(study, SEGMENTER, b.uid(seed, *namespace, "series", 101), 101, "Liver mass report", "SR",
                         "115500", frame)
    sr = report(sr_series, seg, mass, stack, sources[0].SeriesInstanceUID)
    files.append(b.data_file(sr_series, 1, sr, label))
    yield Session(tuple(files), PROJECT, subject, label)
