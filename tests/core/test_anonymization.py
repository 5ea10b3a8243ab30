"""Anonymization in-process (core.modification with core.anonymization's profiles): no identifying attribute of
PS3.15's basic profile survives, at the top level or inside sequences, in any of the three editions."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword

from pacsbox.core.anonymization import METHODS, profile
from pacsbox.core.errors import OutOfRange
from pacsbox.core.modification import Modification, UidMap, apply
from tests.support.every_tag import actions, every_tag_dataset


def _words(text: str) -> list[str]:
    return text.split()


# Attributes that identify a patient, a person or a place in PS3.15 Table E.1-1 (basic profile), in every edition
IDENTIFYING_EVERYWHERE = _words("""
    PatientName PatientID PatientBirthDate PatientSex PatientAddress PatientTelephoneNumbers OtherPatientIDs
    OtherPatientNames PatientAge PatientSize PatientWeight EthnicGroup Occupation AdditionalPatientHistory
    PatientComments PatientBirthTime MedicalRecordLocator ReferringPhysicianName ReferringPhysicianAddress
    ReferringPhysicianTelephoneNumbers InstitutionName InstitutionAddress InstitutionalDepartmentName StationName
    OperatorsName PerformingPhysicianName PhysiciansOfRecord NameOfPhysiciansReadingStudy RequestingPhysician
    AccessionNumber StudyID StudyDescription SeriesDescription DeviceSerialNumber ProtocolName ImageComments
    RequestAttributesSequence ContentSequence DerivationDescription MedicalAlerts AdmittingDiagnosesDescription
""")
# ... and those the 2008 edition left alone but 2017c and 2021b remove or empty
IDENTIFYING_SINCE_2017 = _words("""
    StudyDate StudyTime ContentDate ContentTime AcquisitionDate AcquisitionTime AcquisitionDateTime SeriesDate
    SeriesTime PatientBirthName PatientMotherBirthName MilitaryRank BranchOfService CountryOfResidence
    RegionOfResidence Allergies PatientReligiousPreference SmokingStatus PregnancyStatus LastMenstrualDate
    ConsultingPhysicianName ReferencedPatientSequence IssuerOfPatientID PatientInsurancePlanCodeSequence
    PerformedProcedureStepDescription PerformedProcedureStepStartDate ScheduledProcedureStepDescription
    RequestedProcedureDescription ResponsiblePerson ResponsibleOrganization IconImageSequence
    PersonName VerifyingObserverName ContentCreatorName OriginalAttributesSequence DigitalSignaturesSequence
""")
UIDS = ["FrameOfReferenceUID", "ReferencedSOPInstanceUID", "InstanceCreatorUID", "StorageMediaFileSetUID"]


@pytest.fixture(scope="module")
def before():
    return every_tag_dataset()


def _anonymized(version: str):
    after = every_tag_dataset()
    apply(after, Modification.anonymization(profile(version)), UidMap())
    return after


@pytest.mark.parametrize("version", ["2008", "2017c", "2021b"])
def test_no_identifying_attribute_survives(before, version):
    after = _anonymized(version)
    listed = IDENTIFYING_EVERYWHERE + (IDENTIFYING_SINCE_2017 if version != "2008" else [])
    done = actions(before, after)
    survivors = [keyword for keyword in listed if tag_for_keyword(keyword) not in done]
    assert survivors == []
    for keyword in UIDS:
        assert after[keyword].value != before[keyword].value
    assert after.PatientName.family_name.startswith("Anonymized") and after.PatientID != before.PatientID
    assert after.PatientIdentityRemoved == "YES" and after.DeidentificationMethod == METHODS[version]


@pytest.mark.parametrize("version", ["2008", "2017c", "2021b"])
def test_sequences_and_private_tags(version):
    after = _anonymized(version)
    items = [item for element in after if element.VR == "SQ" for item in element.value]
    assert items, "some sequences are kept"
    for item in items:
        assert not any(element.tag.is_private for element in item)
        assert "InstitutionName" not in item
        assert item.ReferencedSOPInstanceUID == after.SOPInstanceUID  # (both were 1.2.3.4.100): one new UID
        assert item.ReferencedSOPInstanceUID != "1.2.3.4.100"
    assert not any(element.tag.is_private for element in after)


def test_the_same_old_uid_becomes_the_same_new_uid_across_instances():
    uids = UidMap()
    modification = Modification.anonymization(profile("2021b"))
    first, second = every_tag_dataset(), every_tag_dataset()
    second.SOPInstanceUID = "1.2.3.4.999"
    apply(first, modification, uids)
    apply(second, modification, uids)
    assert first.StudyInstanceUID == second.StudyInstanceUID != "1.2.3.4.101"
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.PatientID == second.PatientID and first.PatientName == second.PatientName
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID


def test_customized_anonymization_is_not_the_profile():
    modification = Modification.anonymization(profile("2017c"))
    modification.keep(tag_for_keyword("StudyDate"))
    dataset = every_tag_dataset()
    apply(dataset, modification, UidMap())
    assert dataset.StudyDate == "20200101" and "DeidentificationMethod" in dataset  # (the original's value)
    assert dataset.DeidentificationMethod != METHODS["2017c"]


def test_unknown_edition():
    with pytest.raises(OutOfRange, match="Unknown specific version of the DICOM standard: 2019"):
        profile("2019")


def test_profiles_do_not_overlap():
    for version in METHODS:
        edition = profile(version)
        assert not (edition.removed & edition.emptied or edition.removed & edition.new_uids
                    or edition.emptied & edition.new_uids)
