"""The DICOM SCU: how the archive reaches remote modalities (Orthanc's /modalities routes call it)."""

from __future__ import annotations

from ...core.archive import Archive
from ...core.config import Config
from ...core.errors import NetworkError
from ...core.modalities import Modality
from . import contexts
from .network import NoDelayAE


class DicomClient:
    """Associations to remote modalities on behalf of one archive (implements ``core.modalities.RemoteDicom``)."""

    def __init__(self, archive: Archive, config: Config) -> None:
        self.archive = archive
        self.config = config

    def _ae(self, modality: Modality) -> NoDelayAE:
        ae = NoDelayAE(ae_title=modality.local_aet or self.config.DicomAet)
        timeout = modality.timeout or self.config.DicomScuTimeout
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        return ae

    def echo(self, modality: Modality) -> None:
        ae = self._ae(modality)
        ae.requested_contexts = contexts.contexts([contexts.VERIFICATION])
        assoc = ae.associate(modality.host, modality.port, ae_title=modality.aet)
        if not assoc.is_established:
            raise NetworkError(f"DicomAssociation - connecting to AET \"{modality.aet}\": association refused")
        try:
            result = assoc.send_c_echo()
        finally:
            assoc.release()
        if not result or result.get("Status") != 0:
            raise NetworkError(f"C-ECHO to AET \"{modality.aet}\" failed")
