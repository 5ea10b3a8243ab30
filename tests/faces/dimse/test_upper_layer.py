"""The direct path's own PDU and command codecs, checked against pynetdicom's encoders and decoders."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.filereader import read_dataset
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context

from pacsbox.faces.dimse import commands, upper_layer

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT, IMPLICIT, JPEG = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"


def request_pdu(contexts, *extra_items, maximum_length: int = 16384) -> bytes:
    """An A-ASSOCIATE-RQ as pynetdicom's SCU encodes it."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = upper_layer.APPLICATION_CONTEXT_NAME
    primitive.calling_ae_title = "STORESCU"
    primitive.called_ae_title = "PACSBOX"
    for number, cx in enumerate(contexts):
        cx.context_id = 2 * number + 1
    primitive.presentation_context_definition_list = contexts
    length = MaximumLengthNotification()
    length.maximum_length_received = maximum_length
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = "1.2.3.4"
    primitive.user_information = [length, implementation, *extra_items]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def test_a_plain_request_is_read_as_pynetdicom_writes_it():
    request = upper_layer.read_request(request_pdu([build_context(CT, [JPEG, EXPLICIT]), build_context(MR)]))
    assert request is not None and request.plain
    assert (request.calling_aet, request.called_aet, request.maximum_length) == ("STORESCU", "PACSBOX", 16384)
    assert [(cx.context_id, cx.abstract_syntax, cx.transfer_syntaxes) for cx in request.contexts] == [
        (1, CT, [JPEG, EXPLICIT]), (3, MR, [IMPLICIT, EXPLICIT, "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"])]


@pytest.mark.parametrize("item", ["roles", "async"])
def test_requests_with_other_items_are_left_to_pynetdicom(item):
    if item == "roles":
        extra = SCP_SCU_RoleSelectionNegotiation()
        extra.sop_class_uid, extra.scu_role, extra.scp_role = CT, True, True
    else:
        extra = AsynchronousOperationsWindowNegotiation()
        extra.maximum_number_operations_invoked = extra.maximum_number_operations_performed = 2
    request = upper_layer.read_request(request_pdu([build_context(CT)], extra))
    assert request is not None and not request.plain


def test_malformed_requests_are_not_read():
    data = request_pdu([build_context(CT)])
    assert upper_layer.read_request(data[:-3]) is None
    assert upper_layer.read_request(b"\x04" + data[1:]) is None


def test_negotiation_and_accept_match_pynetdicom():
    """Accepted with the acceptor's first syntax the peer offered; unknown abstract and transfer syntaxes refused
    with reasons 3 and 4; the A-ASSOCIATE-AC decodes in pynetdicom as what was decided."""
    proposed = [build_context(CT, [JPEG, IMPLICIT, EXPLICIT]), build_context("1.2.3.999", [EXPLICIT]),
                build_context(MR, ["1.2.840.10008.1.2.4.90"])]
    request = upper_layer.read_request(request_pdu(proposed))
    supported = {CT: (EXPLICIT, IMPLICIT, JPEG), MR: (EXPLICIT, IMPLICIT)}
    answers = upper_layer.negotiate(request, supported)
    assert [(a.context_id, a.result, a.transfer_syntax) for a in answers] == [
        (1, 0, EXPLICIT), (3, 3, EXPLICIT), (5, 4, "1.2.840.10008.1.2.4.90")]
    pdu = A_ASSOCIATE_AC()
    pdu.decode(upper_layer.accept(request, answers, maximum_length=0))
    primitive = pdu.to_primitive()
    assert primitive.application_context_name == upper_layer.APPLICATION_CONTEXT_NAME
    assert [(cx.context_id, cx.result) for cx in primitive.presentation_context_definition_results_list] == [
        (1, 0), (3, 3), (5, 4)]
    assert primitive.presentation_context_definition_results_list[0].transfer_syntax == [EXPLICIT]
    items = {type(item).__name__: item for item in primitive.user_information}
    assert items["MaximumLengthNotification"].maximum_length_received == 0
    assert items["ImplementationClassUIDNotification"].implementation_class_uid == upper_layer.IMPLEMENTATION_CLASS_UID
    assert items["ImplementationVersionNameNotification"].implementation_version_name == \
        upper_layer.IMPLEMENTATION_VERSION_NAME


@pytest.mark.parametrize("maximum_length", [0, 64, 1000])
def test_p_data_fragments_to_the_peers_maximum(maximum_length):
    payload = bytes(range(256)) * 3
    data = upper_layer.p_data(7, payload, command=True, maximum_length=maximum_length)
    received, offset = [], 0
    while offset < len(data):
        pdu = P_DATA_TF()
        length = int.from_bytes(data[offset + 2:offset + 6], "big")
        assert maximum_length == 0 or length <= maximum_length
        pdu.decode(data[offset:offset + 6 + length])
        for context_id, value in pdu.to_primitive().presentation_data_value_list:
            assert context_id == 7
            received.append(value)
        offset += 6 + length
    assert b"".join(value[1:] for value in received) == payload
    assert [value[0] for value in received] == [0x01] * (len(received) - 1) + [0x03]  # command; last fragment


def test_responses_decode_as_dimse_command_sets():
    request = commands.Command({0x0002: b"1.2.840.10008.5.1.4.1.1.2\x00", 0x0100: b"\x01\x00", 0x0110: b"\x07\x00",
                                0x0800: b"\x00\x00", 0x1000: b"1.2.3.4.5\x00"})
    encoded = commands.encode_response(request, commands.C_STORE_RSP, 0xC000)
    dataset = read_dataset(BytesIO(encoded), is_implicit_VR=True, is_little_endian=True)
    assert dataset.CommandGroupLength == len(encoded) - 12
    assert (dataset.AffectedSOPClassUID, dataset.AffectedSOPInstanceUID) == (CT, "1.2.3.4.5")
    assert (dataset.CommandField, dataset.MessageIDBeingRespondedTo, dataset.CommandDataSetType, dataset.Status) \
        == (0x8001, 7, 0x0101, 0xC000)
    assert commands.read_command(encoded).us(0x0900) == 0xC000


def test_unreadable_command_sets_are_refused():
    with pytest.raises(commands.CommandError):
        commands.read_command(b"\x08\x00\x16\x00\x02\x00\x00\x00ab")  # an element outside group 0000
    with pytest.raises(commands.CommandError):
        commands.read_command(b"\x00\x00\x10\x00\x02\x00\x00\x00ab")  # no CommandField
