"""Which SOP classes and transfer syntaxes the DICOM face negotiates, as the PS3.4 service classes group them."""

from __future__ import annotations

from pynetdicom import ALL_TRANSFER_SYNTAXES
from pynetdicom import sop_class as sop
from pynetdicom.presentation import PresentationContext, build_context

VERIFICATION = sop.Verification
STORAGE_SOP_CLASSES: tuple[str, ...] = tuple(str(uid) for uid in sop._STORAGE_CLASSES.values())
FIND_SOP_CLASSES = (sop.PatientRootQueryRetrieveInformationModelFind, sop.StudyRootQueryRetrieveInformationModelFind)
MOVE_SOP_CLASSES = (sop.PatientRootQueryRetrieveInformationModelMove, sop.StudyRootQueryRetrieveInformationModelMove)
GET_SOP_CLASSES = (sop.PatientRootQueryRetrieveInformationModelGet, sop.StudyRootQueryRetrieveInformationModelGet)
WORKLIST_FIND = str(sop.ModalityWorklistInformationFind)  # PS3.4 K.6
STORAGE_COMMITMENT = str(sop.StorageCommitmentPushModel)  # PS3.4 J.3, N-ACTION and N-EVENT-REPORT

# Uncompressed syntaxes first: they are what a peer is asked to use when it proposes several.
UNCOMPRESSED = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
)
# Compressed syntaxes are stored as received, as Orthanc does without ingest transcoding.
STORAGE_TRANSFER_SYNTAXES: tuple[str, ...] = UNCOMPRESSED + tuple(
    str(uid) for uid in ALL_TRANSFER_SYNTAXES if str(uid) not in UNCOMPRESSED
)


def contexts(sop_classes, transfer_syntaxes=UNCOMPRESSED) -> list[PresentationContext]:
    """One presentation context per SOP class, each offering every given transfer syntax."""
    return [build_context(uid, list(transfer_syntaxes)) for uid in sop_classes]
