"""pacsbox's DICOM conformance statement (``GET /tools/dicom-conformance``), written from what the SCP negotiates.

The layout is Orthanc 1.10.1's (one section per service, ``Name | UID`` lines); the content is pacsbox's own: the
SOP classes and transfer syntaxes are read from the contexts the association policy accepts right now, so the
statement follows ``PUT /tools/accepted-transfer-syntaxes``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.uid import UID

from . import contexts
from .policy import AssociationPolicy


def _title(text: str) -> str:
    rule = "-" * len(text)
    return f"\n{rule}\n{text}\n{rule}\n\n"


def _listing(uids: Iterable[str]) -> str:
    rows = sorted((UID(uid).keyword or UID(uid).name or uid, uid) for uid in uids)
    width = max((len(name) for name, _ in rows), default=0)
    return "".join(f"  {name.ljust(width)} | {uid}\n" for name, uid in rows)


def _section(service: str, role: str, uids: Iterable[str]) -> str:
    return (_title(f"{service} {role} Conformance")
            + f"pacsbox supports the following SOP Classes as an {role} for {service}:\n\n" + _listing(uids) + "\n")


def conformance_statement(policy: AssociationPolicy) -> str:
    """The statement as plain text."""
    offered = {str(cx.abstract_syntax): cx for cx in policy.contexts_for(())}
    storage = [uid for uid in contexts.STORAGE_SOP_CLASSES if uid in offered]
    syntaxes = [str(ts) for ts in offered[storage[0]].transfer_syntax] if storage else []
    text = "=" * 40 + "\nDICOM Conformance Statement of pacsbox\n" + "=" * 40 + "\n\n"
    text += _section("C-Echo", "SCP", [contexts.VERIFICATION])
    text += _section("C-Store", "SCP", storage)
    text += _section("C-Find", "SCP", [*contexts.FIND_SOP_CLASSES, contexts.WORKLIST_FIND])
    text += _section("C-Move", "SCP", contexts.MOVE_SOP_CLASSES)
    text += _section("C-Get", "SCP", contexts.GET_SOP_CLASSES)
    text += _section("C-Echo", "SCU", [contexts.VERIFICATION])
    text += _title("C-Store SCU Conformance") + (
        'Every SOP Class of the "C-Store SCP Conformance" section above is available as an SCU for C-Store;\n'
        "instances are sent in the transfer syntax they are stored in (pacsbox does not transcode).\n\n")
    text += _section("C-Find", "SCU", [*contexts.FIND_SOP_CLASSES, contexts.WORKLIST_FIND])
    text += _section("C-Move", "SCU", contexts.MOVE_SOP_CLASSES)
    text += _section("C-Get", "SCU", contexts.GET_SOP_CLASSES)
    text += _section("N-Action", "SCP", [contexts.STORAGE_COMMITMENT])
    text += _section("N-Action", "SCU", [contexts.STORAGE_COMMITMENT])
    text += _section("N-Event-Report", "SCP", [contexts.STORAGE_COMMITMENT])
    text += _section("N-Event-Report", "SCU", [contexts.STORAGE_COMMITMENT])
    text += _title("Transfer Syntaxes") + (
        "pacsbox accepts the storage SOP Classes above in any of the following transfer syntaxes, and stores each\n"
        "instance as received:\n\n" + _listing(syntaxes) + "\n"
        'The "AcceptedTransferSyntaxes" option and PUT /tools/accepted-transfer-syntaxes narrow this list.\n'
        "Verification and query/retrieve use the uncompressed transfer syntaxes; among several proposed, pacsbox\n"
        "prefers Explicit VR Little Endian (1.2.840.10008.1.2.1).\n")
    unknown = "accepted" if policy.accepts_unknown_sop_classes() else "refused"
    text += _title("Unknown SOP Classes") + (
        f"Storage of SOP Classes that are not listed above is {unknown} (\"UnknownSopClassAccepted\").\n")
    return text
