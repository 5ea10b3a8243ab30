"""The DICOM SCU of the server (``archive.remote``): cheap to make at start, it loads pynetdicom and pydicom
(``scu_services``) when it first sends, so a server that never calls a modality never imports them.

Failures raise ``NetworkError`` with the wording Orthanc 1.10 uses in its error details (``scu_services``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ...core.archive import Archive
    from ...core.config import Config
    from ...core.modalities import Modality, StoreReport
    from . import commitment
    from .scu_services import ServiceClassUser


class DicomClient:
    """Associations to remote modalities on behalf of one archive (implements ``core.modalities.RemoteDicom``);
    each call goes to the ``scu_services.ServiceClassUser`` made on the first one."""

    def __init__(self, archive: Archive, config: Config) -> None:
        self.archive = archive
        self.config = config
        self._user: ServiceClassUser | None = None
        self._lock = threading.Lock()

    def _services(self) -> ServiceClassUser:
        user = self._user
        if user is None:
            with self._lock:  # one load, however many jobs send at once
                if self._user is None:
                    from .scu_services import ServiceClassUser

                    self._user = ServiceClassUser(self.archive, self.config)
                user = self._user
        return user

    def echo(self, modality: Modality) -> None:
        """C-ECHO."""
        self._services().echo(modality)

    def store(self, modality: Modality, instance_ids: Sequence[str], move_originator: tuple[str, int] | None = None,
              permissive: bool = False, before_each: Callable[[int], None] | None = None) -> StoreReport:
        """C-STORE each archived instance, as stored (``core.modalities.RemoteDicom.store``)."""
        return self._services().store(modality, instance_ids, move_originator, permissive, before_each)

    def find(self, modality: Modality, level: str, identifier: Dataset) -> list[Dataset]:
        """C-FIND at a query/retrieve ``level``; the answers."""
        return self._services().find(modality, level, identifier)

    def find_worklist(self, modality: Modality, identifier: Dataset) -> list[Dataset]:
        """C-FIND in the Modality Worklist Information Model (PS3.4 K.6); the answers."""
        return self._services().find_worklist(modality, identifier)

    def store_file(self, modality: Modality, data: bytes, dataset: Dataset) -> tuple[str, str]:
        """C-STORE a file that is not archived (store-straight); its SOP class and instance UIDs."""
        return self._services().store_file(modality, data, dataset)

    def storage_commitment(self, modality: Modality, transaction_uid: str,
                           references: Sequence[commitment.Reference]) -> None:
        """N-ACTION Request Storage Commitment; the report comes back to the SCP as an N-EVENT-REPORT."""
        self._services().storage_commitment(modality, transaction_uid, references)

    def event_report(self, modality: Modality, event_type: int, info: Dataset) -> None:
        """N-EVENT-REPORT of a storage commitment result, pacsbox in the SCP role of the SOP class."""
        self._services().event_report(modality, event_type, info)

    def move(self, modality: Modality, level: str, identifiers: Sequence[Dataset], target_aet: str) -> None:
        """C-MOVE each identifier from the modality to ``target_aet``, on one association."""
        self._services().move(modality, level, identifiers, target_aet)

    def get(self, modality: Modality, level: str, identifiers: Sequence[Dataset]) -> StoreReport:
        """C-GET each identifier from the modality; the received instances are stored in the archive."""
        return self._services().get(modality, level, identifiers)
