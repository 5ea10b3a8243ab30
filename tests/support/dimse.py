"""pynetdicom as the SCU of the DIMSE tests: negotiation outcomes, C-FIND answers in comparable form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom import AE, build_context, evt
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

SCU_AET = "TESTSCU"
FIND_MODELS = {"patient": PatientRootQueryRetrieveInformationModelFind,
               "study": StudyRootQueryRetrieveInformationModelFind}


@dataclass
class Negotiation:
    """What an association request came to: accepted (with which abstract syntaxes), rejected (with PS3.8
    result/source/reason), or aborted because no context was accepted."""

    established: bool
    rejected: bool
    reject_reason: tuple[int, int, int] | None = None
    accepted: list[str] = field(default_factory=list)


def negotiate(port: int, called_aet: str, abstract_syntaxes: list[str], calling_aet: str = SCU_AET,
              transfer_syntaxes: list[str] | None = None) -> Negotiation:
    """The outcome of one association request; an inconclusive one (neither accepted nor rejected: a timeout
    or an abort on a loaded machine) is tried again, up to three times."""
    for _ in range(2):
        outcome = _negotiate_once(port, called_aet, abstract_syntaxes, calling_aet, transfer_syntaxes)
        if outcome.established or outcome.rejected:
            return outcome
    return _negotiate_once(port, called_aet, abstract_syntaxes, calling_aet, transfer_syntaxes)


def _negotiate_once(port: int, called_aet: str, abstract_syntaxes: list[str], calling_aet: str,
                    transfer_syntaxes: list[str] | None) -> Negotiation:
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.requested_contexts = [build_context(uid, transfer_syntaxes) if transfer_syntaxes else build_context(uid)
                             for uid in abstract_syntaxes]
    # What the peer sent, as pynetdicom's reader received it: when a peer rejects at once, pynetdicom's reader
    # can take the A-ASSOCIATE-RJ and close the connection before the requesting thread has looked at the
    # connection, which then calls the association aborted (not rejected), on a loaded machine a few times in a
    # hundred. The rejection the peer sent is the outcome.
    rejections: list = []

    def received(event) -> None:  # a pynetdicom Event
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            rejections.append(event.pdu.to_primitive())

    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet, evt_handlers=[(evt.EVT_PDU_RECV, received)])
    accepted = sorted(str(cx.abstract_syntax) for cx in assoc.accepted_contexts)
    reason = None
    rejected = assoc.is_rejected or (not assoc.is_established and bool(rejections))
    if rejected:
        primitive = assoc.acceptor.primitive if assoc.is_rejected else rejections[0]
        reason = (primitive.result, primitive.result_source, primitive.diagnostic)
    outcome = Negotiation(assoc.is_established, rejected, reason, accepted)
    if assoc.is_established:
        assoc.release()
    return outcome


def echo(port: int, called_aet: str, calling_aet: str = SCU_AET) -> int | None:
    """The C-ECHO status, or None when no association could be made."""
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def find(port: int, called_aet: str, query: Dataset, model: str = "study",
         calling_aet: str = SCU_AET) -> list[tuple[int, Dataset | None]]:
    """Every (status, identifier) a C-FIND returns, in arrival order."""
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(FIND_MODELS[model])
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet)
    assert assoc.is_established, f"C-FIND association to {called_aet} refused"
    try:
        return [(int(st.Status), ds) for st, ds in assoc.send_c_find(query, FIND_MODELS[model])]
    finally:
        assoc.release()


def comparable_answers(responses: list[tuple[int, Dataset | None]], ignore: tuple[str, ...] = ("00080054",)
                       ) -> tuple[list[int], list[str]]:
    """Statuses in order, and the answers as sorted canonical JSON (order of C-FIND answers is not specified)."""
    statuses = [status for status, _ in responses]
    answers = []
    for _, dataset in responses:
        if dataset is None:
            continue
        body = dataset.to_json_dict()
        for tag in ignore:
            body.pop(tag, None)
        answers.append(json.dumps(body, sort_keys=True))
    return statuses, sorted(answers)


def query(level: str, **keys: object) -> Dataset:
    """A C-FIND identifier: QueryRetrieveLevel plus keys (empty string = return key)."""
    dataset = Dataset()
    dataset.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(dataset, keyword, value)
    return dataset
