"""Orthanc's association policy (its OrthancApplicationEntityFilter), shared by both association paths of the SCP."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import uid_to_service_class

from ...core.archive import Archive
from ...core.config import Config
from ...core.settings import match_transfer_syntaxes
from . import contexts

LOG = logging.getLogger("pacsbox.dimse")

# PS3.8 9.3.4 A-ASSOCIATE-RJ (result, source, reason)
REJECT_CALLING_AET = (0x01, 0x01, 0x03)
REJECT_CALLED_AET = (0x01, 0x01, 0x07)
REJECT_TOO_MANY_ASSOCIATIONS = (0x02, 0x03, 0x02)  # transient, provider (presentation), local limit exceeded


_STORAGE = frozenset(contexts.STORAGE_SOP_CLASSES)
_QUERY_RETRIEVE = {**dict.fromkeys(map(str, contexts.FIND_SOP_CLASSES), "Find"),
                   **dict.fromkeys(map(str, contexts.MOVE_SOP_CLASSES), "Move"),
                   **dict.fromkeys(map(str, contexts.GET_SOP_CLASSES), "Get"),
                   contexts.WORKLIST_FIND: "Find",  # a C-FIND; its handler checks the FindWorklist permission
                   contexts.STORAGE_COMMITMENT: "NAction"}  # N-ACTION and N-EVENT-REPORT only, no C-* request


class SharedContexts(list):
    """The supported presentation contexts, built once. pynetdicom deep-copies a server's contexts for every
    association (~150 SOP classes x ~45 transfer syntaxes, over 100 ms); negotiation only reads them, so a
    shallow copy is enough."""

    def __deepcopy__(self, memo) -> list[PresentationContext]:
        return list(self)


# Built ahead (0.3-0.5 s) by the warm-start template (lifecycle/template.py) before it forks, and handed to the
# first server of the forked process only: every other server builds its own set.
_PREBUILT: list[SharedContexts] = []


def prebuild_contexts() -> None:
    """Build the contexts now, for the next :func:`all_contexts` call (the warm-start template's)."""
    _PREBUILT[:] = [_build_contexts()]


def all_contexts() -> SharedContexts:
    """Every context the SCP supports: verification, storage (either role, for C-GET), query and retrieve."""
    if _PREBUILT:
        return _PREBUILT.pop()
    return _build_contexts()


def _build_contexts() -> SharedContexts:
    storage = contexts.contexts(contexts.STORAGE_SOP_CLASSES, contexts.STORAGE_TRANSFER_SYNTAXES)
    for cx in storage:
        # Accept the roles a C-GET SCU proposes (it is the storage SCP of the sub-operations), PS3.7 D.3.3.4.
        cx.scu_role = True
        cx.scp_role = True
    commitment = contexts.contexts([contexts.STORAGE_COMMITMENT])
    for cx in commitment:  # pacsbox is the SCP of N-ACTION, and receives N-EVENT-REPORTs as their SCU
        cx.scu_role = True
        cx.scp_role = True
    return SharedContexts(
        contexts.contexts([contexts.VERIFICATION])
        + storage
        + contexts.contexts(contexts.FIND_SOP_CLASSES + contexts.MOVE_SOP_CLASSES)
        + contexts.contexts(contexts.GET_SOP_CLASSES)
        + contexts.contexts([contexts.WORKLIST_FIND])
        + commitment
    )


def is_unknown(sop_class_uid: str) -> bool:
    """Whether no DICOM service class is known for a SOP class (a private or future storage class, say)."""
    return uid_to_service_class(sop_class_uid).__name__ == "ServiceClass"


class AssociationPolicy:
    """Who may associate and what they may ask, as Orthanc decides it from its configuration."""

    def __init__(self, archive: Archive, config: Config, supported: list[PresentationContext]) -> None:
        self.archive = archive
        self.config = config
        self.supported = supported  # every context, as the server was made with (before AcceptedTransferSyntaxes)
        self._known_uids = frozenset(str(cx.abstract_syntax) for cx in supported)
        self._narrowed: _Narrowed | None = None

    def _current(self) -> _Narrowed:
        """The contexts as AcceptedTransferSyntaxes narrows them now (PUT /tools/accepted-transfer-syntaxes may
        change it at any time; rebuilt only when it did)."""
        patterns = self.archive.settings.transfer_syntax_patterns
        narrowed = self._narrowed
        if narrowed is None or narrowed.patterns is not patterns:
            narrowed = self._narrowed = _Narrowed.build(self.supported, patterns)
        return narrowed

    def rejection(self, calling_aet: str, called_aet: str) -> tuple[int, int, int] | None:
        """The A-ASSOCIATE-RJ reason for a request, or None to go on with the negotiation."""
        if self.config.DicomCheckCalledAet and called_aet != self.config.DicomAet:
            LOG.warning("association refused: called AET %r is not %r", called_aet, self.config.DicomAet)
            return REJECT_CALLED_AET
        known = bool(self.archive.modalities.by_aet(calling_aet))
        if not (self.config.DicomAlwaysAllowEcho or self.config.DicomAlwaysAllowStore or known):
            LOG.warning("association refused: unknown calling AET %r", calling_aet)
            return REJECT_CALLING_AET
        return None

    def allowed(self, calling_aet: str, request: str) -> bool:
        """Whether a peer calling as ``calling_aet`` may send ``request`` (``Echo``, ``Store``, ``Find``, ...)."""
        if getattr(self.config, f"DicomAlwaysAllow{request}", False):
            return True
        return any(m.allows(request) for m in self.archive.modalities.by_aet(calling_aet))

    def service_of(self, abstract_syntax: str) -> str | None:
        """The request a presentation context is for (``Echo``, ``Store``, ``Find``, ``Move`` or ``Get``), by its
        abstract syntax; None for none. A request on a context of another service is refused: the SOP class
        negotiated is the only one a context carries (PS3.7 9.1.1, PS3.8 9.3.2.2)."""
        uid = str(abstract_syntax)
        if uid == contexts.VERIFICATION:
            return "Echo"
        if uid in _STORAGE or (self.accepts_unknown_sop_classes() and is_unknown(uid)):
            return "Store"
        return _QUERY_RETRIEVE.get(uid)

    def syntaxes_for(self, proposed: Iterable[str]) -> Mapping[str, tuple[str, ...]]:
        """``contexts_for`` as a mapping of abstract syntax to transfer syntaxes, in order of preference."""
        current = self._current()
        extra = self._unknown(proposed)
        if not extra:
            return current.syntaxes
        return {**current.syntaxes, **dict.fromkeys(extra, current.storage_syntaxes)}

    def accepts_unknown_sop_classes(self) -> bool:
        """UnknownSopClassAccepted, as PUT /tools/unknown-sop-class-accepted left it."""
        return self.archive.settings.unknown_sop_class_accepted

    def _unknown(self, proposed: Iterable[str]) -> list[str]:
        if not self.accepts_unknown_sop_classes():
            return []
        return sorted({uid for uid in map(str, proposed) if uid not in self._known_uids and is_unknown(uid)})

    def contexts_for(self, proposed: Iterable[str]) -> list[PresentationContext]:
        """The contexts to negotiate against: the supported ones (storage in the accepted transfer syntaxes only),
        plus the unknown SOP classes a peer proposes when ``UnknownSopClassAccepted`` (stored like any instance)."""
        current = self._current()
        extra = self._unknown(proposed)
        if not extra:
            return current.contexts
        return list(current.contexts) + [build_context(uid, list(current.storage_syntaxes)) for uid in extra]


class _Narrowed:
    """The supported contexts with storage limited to the accepted transfer syntaxes (Orthanc applies its
    AcceptedTransferSyntaxes to the storage SOP classes; verification and query/retrieve keep theirs)."""

    def __init__(self, patterns: tuple[str, ...], contexts: list[PresentationContext],
                 storage_syntaxes: tuple[str, ...]) -> None:
        self.patterns = patterns
        self.contexts = contexts
        self.storage_syntaxes = storage_syntaxes
        self.syntaxes = {str(cx.abstract_syntax): tuple(str(ts) for ts in cx.transfer_syntax) for cx in contexts}

    @classmethod
    def build(cls, supported: list[PresentationContext], patterns: tuple[str, ...]) -> _Narrowed:
        storage_syntaxes = match_transfer_syntaxes(patterns, contexts.STORAGE_TRANSFER_SYNTAXES)
        if storage_syntaxes == contexts.STORAGE_TRANSFER_SYNTAXES:
            return cls(patterns, supported, storage_syntaxes)
        storage = frozenset(contexts.STORAGE_SOP_CLASSES)
        narrowed = SharedContexts()
        for cx in supported:
            if str(cx.abstract_syntax) not in storage:
                narrowed.append(cx)
            elif storage_syntaxes:  # none accepted: the storage classes are not offered at all
                copy = build_context(cx.abstract_syntax, list(storage_syntaxes))
                copy.scu_role, copy.scp_role = cx.scu_role, cx.scp_role
                narrowed.append(copy)
        return cls(patterns, narrowed, storage_syntaxes)
