"""The basic profile of PS3.15 Annex E (Table E.1-1) in the three editions Orthanc 1.10.1 anonymizes by:
``DicomVersion`` "2008", "2017c" (Orthanc's default from 1.3.0) and "2021b" (its default in 1.10).

Each edition is three lists of DICOM keywords, by what anonymization does to the attribute wherever it occurs (at
the top level and inside sequence items):

* removed: the standard's action X, and the compound actions that allow X (X/Z, X/D, X/Z/D, X/Z/U*);
* emptied: Z, and D and Z/D (a dummy value the anonymizer cannot invent consistently: the value is emptied, the
  attribute kept, as Orthanc does);
* new UIDs: U (each UID replaced by a new one, the same new one for the same old one across a whole job, so
  references between instances survive).

Attributes listed nowhere are kept (K, and C, which Orthanc keeps as they are). The repeating groups (curves 50xx,
overlay data and comments 60xx) are not handled, as in Orthanc. PatientID, PatientName, StudyInstanceUID,
SeriesInstanceUID and SOPInstanceUID are replaced by ``core.modification`` itself. The lists were written from the
standard's tables and checked, attribute by attribute, against what the real Orthanc 1.10.1 does to an instance
holding every attribute of the data dictionary (``tests/faces/orthanc/test_modification_differential.py`` keeps
that check), except DigitalSignaturesSequence (FFFA,FFFA), which Orthanc does not show and is removed here as the
standard says.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .errors import OutOfRange

#: What ``DeidentificationMethod`` says after an anonymization that used a profile as it stands (Orthanc's wording).
ORTHANC_VERSION = "1.10.1"
METHODS = {
    "2008": f"Orthanc {ORTHANC_VERSION} - PS 3.15-2008 Table E.1-1",
    "2017c": f"Orthanc {ORTHANC_VERSION} - PS 3.15-2017c Table E.1-1 Basic Profile",
    "2021b": f"Orthanc {ORTHANC_VERSION} - PS 3.15-2021b Table E.1-1 Basic Profile",
}
DEFAULT_VERSION = "2021b"


@dataclass(frozen=True)
class Profile:
    """One edition's basic profile: the tags removed, emptied, and given new UIDs."""

    version: str
    removed: frozenset[int]
    emptied: frozenset[int]
    new_uids: frozenset[int]

    @property
    def method(self) -> str:
        return METHODS[self.version]


@cache
def profile(version: str) -> Profile:
    """The basic profile of one edition; OutOfRange (Orthanc's message) for an edition Orthanc does not know."""
    if version not in METHODS:
        raise OutOfRange(f"Unknown specific version of the DICOM standard: {version}")
    key = version.upper()
    return Profile(version, _tags(_TABLES[f"_REMOVED_{key}"]), _tags(_TABLES.get(f"_EMPTIED_{key}", "")),
                   _tags(_TABLES[f"_NEW_UIDS_{key}"]))


def _tags(keywords: str) -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    tags = set()
    for keyword in keywords.split():
        tag = tag_for_keyword(keyword)
        if tag is None:  # a keyword of the tables that pydicom's dictionary does not know: a typo to fix here
            raise LookupError(f"Unknown DICOM keyword in the anonymization tables: {keyword}")
        tags.add(int(tag))
    return frozenset(tags)


# -- PS3.15 Table E.1-1, basic profile column, per edition --------------------------------------------------------

_REMOVED_2008 = """
    AccessionNumber AdditionalPatientHistory AdmittingDiagnosesDescription ContentSequence DerivationDescription
    DeviceSerialNumber EthnicGroup ImageComments InstitutionAddress InstitutionName InstitutionalDepartmentName
    MedicalAlerts MedicalRecordLocator NameOfPhysiciansReadingStudy Occupation OperatorsName OtherPatientIDs
    OtherPatientNames PatientAddress PatientAge PatientBirthDate PatientBirthTime PatientComments PatientSex
    PatientSize PatientTelephoneNumbers PatientWeight PerformingPhysicianName PhysiciansOfRecord ProtocolName
    ReferringPhysicianAddress ReferringPhysicianName ReferringPhysicianTelephoneNumbers RequestAttributesSequence
    RequestingPhysician SeriesDescription StationName StudyDescription StudyID
"""

_NEW_UIDS_2008 = """
    FrameOfReferenceUID InstanceCreatorUID ReferencedFrameOfReferenceUID ReferencedSOPInstanceUID
    RelatedFrameOfReferenceUID StorageMediaFileSetUID SynchronizationFrameOfReferenceUID UID
"""

_REMOVED_2017C = """
    AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
    AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime
    ActualHumanPerformersSequence AdditionalPatientHistory AddressTrial AdmissionID AdmittingDate
    AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime Allergies Arbitrary
    AuthorObserverSequence BranchOfService CassetteID CommentsOnThePerformedProcedureStep
    ConfidentialityConstraintOnPatientDataDescription ConsultingPhysicianIdentificationSequence
    ContentCreatorIdentificationCodeSequence ContentSequence ContributionDescription CountryOfResidence
    CurrentObserverTrial CurrentPatientLocation CurveDate CurveTime CustodialOrganizationSequence
    DerivationDescription DetectorID DeviceSerialNumber DigitalSignatureUID DigitalSignaturesSequence
    DischargeDiagnosisDescription DistributionAddress DistributionName EndAcquisitionDateTime EthnicGroup
    ExpectedCompletionDateTime FrameComments GantryID GeneratorID HumanPerformerName HumanPerformerOrganization
    IconImageSequence IdentifyingComments ImageComments ImagePresentationComments ImagingServiceRequestComments
    Impressions InstanceCoercionDateTime InstitutionAddress InstitutionCodeSequence InstitutionName
    InstitutionalDepartmentName InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
    InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer
    InterpretationRecorder InterpretationText InterpretationTranscriber IssuerOfAdmissionID IssuerOfPatientID
    IssuerOfServiceEpisodeID LastMenstrualDate MAC MedicalAlerts MedicalRecordLocator MilitaryRank
    ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID ModifyingDeviceManufacturer
    NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults ObservationDateTrial ObservationTimeTrial
    Occupation OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderCallbackTelecomInformation
    OrderEnteredBy OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence
    OtherPatientNames OverlayDate OverlayTime ParticipantSequence PatientAddress PatientAge PatientBirthName
    PatientBirthTime PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence
    PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientPrimaryLanguageModifierCodeSequence
    PatientReligiousPreference PatientSexNeutered PatientSize PatientState PatientTelecomInformation
    PatientTelephoneNumbers PatientTransportArrangements PatientWeight PerformedLocation
    PerformedProcedureStepDescription PerformedProcedureStepEndDate PerformedProcedureStepEndDateTime
    PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
    PerformedProcedureStepStartDateTime PerformedProcedureStepStartTime PerformedStationAETitle
    PerformedStationGeographicLocationCodeSequence PerformedStationName PerformedStationNameCodeSequence
    PerformingPhysicianIdentificationSequence PerformingPhysicianName PersonAddress PersonTelecomInformation
    PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
    PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence PlateID PreMedication
    PregnancyStatus ProcedureStepCancellationDateTime ProtocolName ReasonForOmissionDescription ReasonForStudy
    ReasonForTheImagingServiceRequest ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence
    ReferencedPatientPhotoSequence ReferencedPatientSequence ReferencedPerformedProcedureStepSequence
    ReferencedSOPInstanceMACSequence ReferencedStudySequence ReferringPhysicianAddress
    ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers RegionOfResidence
    RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
    RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService ResponsibleOrganization
    ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer ReviewerName
    ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
    ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
    ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
    ScheduledProcedureStepLocation ScheduledProcedureStepModificationDateTime ScheduledProcedureStepStartDate
    ScheduledProcedureStepStartDateTime ScheduledProcedureStepStartTime ScheduledStationAETitle
    ScheduledStationGeographicLocationCodeSequence ScheduledStationName ScheduledStationNameCodeSequence
    ScheduledStudyLocation ScheduledStudyLocationAETitle SeriesDate SeriesDescription SeriesTime
    ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SourceSerialNumber SpecialNeeds
    StartAcquisitionDateTime StationName StudyComments StudyDescription StudyIDIssuer TelephoneNumberTrial
    TextComments TextString TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle
    VerbalSourceIdentifierCodeSequenceTrial VerbalSourceTrial VerifyingOrganization VisitComments
"""

_EMPTIED_2017C = """
    AccessionNumber ConsultingPhysicianName ContentCreatorName ContentDate ContentTime ContrastBolusAgent
    FillerOrderNumberImagingServiceRequest GraphicAnnotationSequence PatientBirthDate PatientSex
    PersonIdentificationCodeSequence PersonName PlacerOrderNumberImagingServiceRequest ReferringPhysicianName
    StudyDate StudyID StudyTime VerifyingObserverIdentificationCodeSequence VerifyingObserverName
    VerifyingObserverSequence
"""

_NEW_UIDS_2017C = """
    ConcatenationUID DeviceUID DimensionOrganizationUID DoseReferenceUID FailedSOPInstanceUIDList FiducialUID
    FrameOfReferenceUID InstanceCreatorUID IrradiationEventUID LargePaletteColorLookupTableUID
    ObservationSubjectUIDTrial ObservationUID PaletteColorLookupTableUID PresentationDisplayCollectionUID
    PresentationSequenceCollectionUID ReferencedFrameOfReferenceUID
    ReferencedGeneralPurposeScheduledProcedureStepTransactionUID ReferencedObservationUIDTrial
    ReferencedSOPInstanceUID ReferencedSOPInstanceUIDInFile RelatedFrameOfReferenceUID StorageMediaFileSetUID
    SynchronizationFrameOfReferenceUID TargetUID TemplateExtensionCreatorUID TemplateExtensionOrganizationUID
    TrackingUID TransactionUID UID
"""

_REMOVED_2021B = """
    AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
    AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime
    ActualHumanPerformersSequence AdditionalPatientHistory AddressTrial AdmissionID AdmittingDate
    AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime Allergies Arbitrary
    AuthorObserverSequence BarcodeValue BeamDescription BolusDescription BranchOfService CameraOwnerName CassetteID
    ClinicalTrialProtocolEthicsCommitteeApprovalNumber ClinicalTrialSeriesDescription ClinicalTrialSeriesID
    ClinicalTrialTimePointDescription CommentsOnRadiationDose CommentsOnThePerformedProcedureStep
    CompensatorDescription ConfidentialityConstraintOnPatientDataDescription
    ConsultingPhysicianIdentificationSequence ContainerComponentID ContainerDescription
    ContentCreatorIdentificationCodeSequence ContributionDescription CountryOfResidence CurrentObserverTrial
    CurrentPatientLocation CurveDate CurveTime CustodialOrganizationSequence DecompositionDescription
    DerivationDescription DetectorID DeviceDescription DeviceSerialNumber DeviceSettingDescription
    DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress DistributionName
    DoseReferenceDescription EndAcquisitionDateTime EntityDescription EntityName
    EquipmentFrameOfReferenceDescription EthnicGroup ExpectedCompletionDateTime FirstTreatmentDate
    FixationDeviceDescription FractionGroupDescription FrameComments GPSAltitude GPSAltitudeRef GPSAreaInformation
    GPSDOP GPSDateStamp GPSDestBearing GPSDestBearingRef GPSDestDistance GPSDestDistanceRef GPSDestLatitude
    GPSDestLatitudeRef GPSDestLongitude GPSDestLongitudeRef GPSDifferential GPSImgDirection GPSImgDirectionRef
    GPSLatitude GPSLatitudeRef GPSLongitude GPSLongitudeRef GPSMapDatum GPSMeasureMode GPSProcessingMethod
    GPSSatellites GPSSpeed GPSSpeedRef GPSStatus GPSTimeStamp GPSTrack GPSTrackRef GPSVersionID GantryID GeneratorID
    HumanPerformerName HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments
    ImagePresentationComments ImagingServiceRequestComments Impressions InstanceCoercionDateTime
    InstanceOriginStatus InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName
    InstitutionalDepartmentTypeCodeSequence InsurancePlanIdentification IntendedPhaseEndDate IntendedPhaseStartDate
    IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence InterpretationAuthor
    InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder InterpretationText
    InterpretationTranscriber IssuerOfAdmissionID IssuerOfAdmissionIDSequence IssuerOfPatientID
    IssuerOfServiceEpisodeID IssuerOfServiceEpisodeIDSequence LabelText LastMenstrualDate LensMake LensModel
    LensSerialNumber LensSpecification LongDeviceDescription MAC MakerNote MedicalAlerts MedicalRecordLocator
    MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID MostRecentTreatmentDate
    MultienergyAcquisitionDescription NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults
    NonconformingDataElementValue NonconformingModifiedAttributesSequence ObservationDateTrial ObservationTimeTrial
    Occupation OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderCallbackTelecomInformation
    OrderEnteredBy OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence
    OtherPatientNames OverlayDate OverlayTime ParticipantSequence PatientAddress PatientAge PatientBirthName
    PatientBirthTime PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence
    PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientPrimaryLanguageModifierCodeSequence
    PatientReligiousPreference PatientSexNeutered PatientSize PatientState PatientTelecomInformation
    PatientTelephoneNumbers PatientTransportArrangements PatientWeight PerformedLocation
    PerformedProcedureStepDescription PerformedProcedureStepEndDate PerformedProcedureStepEndDateTime
    PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
    PerformedProcedureStepStartDateTime PerformedProcedureStepStartTime PerformedStationAETitle
    PerformedStationGeographicLocationCodeSequence PerformedStationName PerformedStationNameCodeSequence
    PerformingPhysicianIdentificationSequence PerformingPhysicianName PersonAddress PersonTelecomInformation
    PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
    PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence PlateID PreMedication
    PregnancyStatus PrescriptionDescription PriorTreatmentDoseDescription ProcedureStepCancellationDateTime
    ProtocolName ROIDescription ROIGenerationDescription ROIObservationDescription ROIObservationLabel RTPlanDate
    RTPlanDescription RTPlanName RTPlanTime RTTreatmentApproachLabel ReasonForOmissionDescription
    ReasonForRequestedProcedureCodeSequence ReasonForStudy ReasonForTheImagingServiceRequest
    ReasonForTheRequestedProcedure ReasonForVisit ReasonForVisitCodeSequence ReferencedDigitalSignatureSequence
    ReferencedPatientAliasSequence ReferencedPatientPhotoSequence ReferencedPatientSequence
    ReferencedPerformedProcedureStepSequence ReferencedSOPInstanceMACSequence ReferencedStudySequence
    ReferringPhysicianAddress ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers
    RegionOfResidence RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments
    RequestedProcedureDescription RequestedProcedureID RequestedProcedureLocation RequestedSeriesDescription
    RequestingPhysician RequestingService RespiratoryMotionCompensationTechniqueDescription ResponsibleOrganization
    ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer ReviewerName
    ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
    ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
    ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
    ScheduledProcedureStepExpirationDateTime ScheduledProcedureStepID ScheduledProcedureStepLocation
    ScheduledProcedureStepModificationDateTime ScheduledProcedureStepStartDate ScheduledProcedureStepStartDateTime
    ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence
    ScheduledStationName ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle
    SeriesDate SeriesDescription SeriesTime ServiceEpisodeDescription ServiceEpisodeID SetupTechniqueDescription
    ShieldingDeviceDescription SlideIdentifier SmokingStatus SourceManufacturer SourceSerialNumber SpecialNeeds
    SpecimenAccessionNumber SpecimenDetailedDescription SpecimenShortDescription StartAcquisitionDateTime
    StationName StructureSetDescription StructureSetName StudyComments StudyDescription StudyIDIssuer
    TelephoneNumberTrial TextComments TextString TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject
    TopicTitle TransducerIdentificationSequence TreatmentDate TreatmentMachineName TreatmentTime UDISequence
    UniqueDeviceIdentifier VerbalSourceIdentifierCodeSequenceTrial VerbalSourceTrial VisitComments XRayDetectorLabel
"""

_EMPTIED_2021B = """
    AccessionNumber AcquisitionFieldOfViewLabel ClinicalTrialCoordinatingCenterName
    ClinicalTrialProtocolEthicsCommitteeName ClinicalTrialProtocolID ClinicalTrialProtocolName ClinicalTrialSiteID
    ClinicalTrialSiteName ClinicalTrialSponsorName ClinicalTrialSubjectID ClinicalTrialSubjectReadingID
    ClinicalTrialTimePointID ConceptualVolumeCombinationDescription ConceptualVolumeDescription
    ConsultingPhysicianName ContainerIdentifier ContentCreatorName ContentDate ContentSequence ContentTime
    ContrastBolusAgent DeviceAlternateIdentifier DeviceLabel EntityLabel EntityLongLabel
    FillerOrderNumberImagingServiceRequest FlowIdentifier FlowIdentifierSequence FractionationNotes
    FrameOriginTimestamp GraphicAnnotationSequence ImpedanceMeasurementDateTime InterlockDateTime
    InterlockDescription InterlockOriginDescription IssuerOfTheContainerIdentifierSequence
    IssuerOfTheSpecimenIdentifierSequence ManufacturerDeviceIdentifier OverrideDateTime PatientBirthDate PatientSex
    PersonIdentificationCodeSequence PersonName PlacerOrderNumberImagingServiceRequest PrescriptionNotes
    PrescriptionNotesSequence ROIInterpreter ROIName RTAccessoryDeviceSlotID RTAccessoryHolderSlotID
    RTPhysicianIntentNarrative RTPlanLabel RTPrescriptionLabel RTToleranceSetLabel RadiationDoseIdentificationLabel
    RadiationDoseInVivoMeasurementLabel RadiationGenerationModeDescription RadiationGenerationModeLabel
    ReasonForSuperseding RecordedRTControlPointDateTime ReferringPhysicianName SourceEndDateTime SourceIdentifier
    SourceStartDateTime SpecimenIdentifier SpecimenPreparationSequence StructureSetDate StructureSetLabel
    StructureSetTime StudyDate StudyID StudyTime TreatmentPositionGroupLabel TreatmentSite TreatmentTechniqueNotes
    TreatmentToleranceViolationDateTime TreatmentToleranceViolationDescription UserContentLabel UserContentLongLabel
    VerifyingObserverIdentificationCodeSequence VerifyingObserverName VerifyingObserverSequence
    VerifyingOrganization XRayDetectorID XRaySourceID
"""

_NEW_UIDS_2021B = """
    ConcatenationUID ConceptualVolumeUID ConstituentConceptualVolumeUID DeviceUID DigitalSignatureUID
    DimensionOrganizationUID DoseReferenceUID DosimetricObjectiveUID FailedSOPInstanceUIDList FiducialUID
    FrameOfReferenceUID InstanceCreatorUID IrradiationEventUID LargePaletteColorLookupTableUID
    ManufacturerDeviceClassUID MultiplexGroupUID ObservationSubjectUIDTrial ObservationUID
    PaletteColorLookupTableUID PatientSetupUID PresentationDisplayCollectionUID PresentationSequenceCollectionUID
    RTTreatmentPhaseUID ReferencedConceptualVolumeUID ReferencedDoseReferenceUID ReferencedDosimetricObjectiveUID
    ReferencedFiducialsUID ReferencedFrameOfReferenceUID
    ReferencedGeneralPurposeScheduledProcedureStepTransactionUID ReferencedObservationUIDTrial
    ReferencedSOPInstanceUID ReferencedSOPInstanceUIDInFile RelatedFrameOfReferenceUID SourceConceptualVolumeUID
    SpecimenUID StorageMediaFileSetUID SynchronizationFrameOfReferenceUID TargetUID TemplateExtensionCreatorUID
    TemplateExtensionOrganizationUID TrackingUID TransactionUID TreatmentPositionGroupUID TreatmentSessionUID UID
"""

_TABLES = {name: value for name, value in globals().items()
           if name.startswith(("_REMOVED_", "_EMPTIED_", "_NEW_UIDS_"))}
