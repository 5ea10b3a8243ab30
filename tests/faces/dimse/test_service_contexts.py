"""A request on a presentation context negotiated for another service is refused with 0x0122 (SOP class not
supported), on both paths, and the association goes on (issue 15).

A context carries the one SOP class negotiated for it (PS3.7 9.1.1, PS3.8 9.3.2.2). pynetdicom picks the service
from the SOP class the command names, and the real Orthanc 1.10.1 does not look either: both store a C-STORE sent
on a verification or C-FIND context. pacsbox refuses it, whatever SOP class the command names.
"""

from __future__ import annotations

import struct

import pytest

from tests.reliability.hostile_support import (
    CT_IMAGE_STORAGE,
    IMPLICIT_LE,
    VERIFICATION,
    RawAssociation,
    c_echo_rq,
    c_store_rq,
    command_set,
    pdu,
    pdv,
)
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.dimse import query
from tests.support.pacsbox_proc import RunningPacsbox

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
SOP_CLASS_NOT_SUPPORTED, SUCCESS = 0x0122, 0x0000
ECHO_CX, FIND_CX, STORE_CX, MOVE_CX = 1, 3, 5, 7
CONTEXTS = [(ECHO_CX, VERIFICATION, [IMPLICIT_LE]), (FIND_CX, STUDY_FIND, [IMPLICIT_LE]),
            (STORE_CX, CT_IMAGE_STORAGE, [IMPLICIT_LE])]
# a move context sends the association to pynetdicom
PATHS = {"direct": CONTEXTS, "pynetdicom": [*CONTEXTS, (MOVE_CX, STUDY_MOVE, [IMPLICIT_LE])]}


@pytest.fixture(scope="module")
def server():
    config = {"DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True, "DicomAlwaysAllowGet": True}
    with RunningPacsbox(config) as running:
        yield running


def _dataset(key: str) -> bytes:
    dataset = make_dataset(patient_id=f"PBX-CX-{key}", patient_name="Context^Mismatch", study_uid=uid("cx-st", key),
                           series_uid=uid("cx-se", key), sop_uid=uid("cx-in", key))
    return to_bytes(dataset, with_meta=False, implicit_vr=True)


def _identifier() -> bytes:
    return to_bytes(query("STUDY", PatientID="PBX-CX-*", StudyInstanceUID=""), with_meta=False, implicit_vr=True)


def _request(command_field: int, sop_class: str, with_dataset: bool) -> bytes:
    return command_set([(0x00000002, sop_class.encode()), (0x00000100, struct.pack("<H", command_field)),
                        (0x00000110, struct.pack("<H", 7)), (0x00000700, struct.pack("<H", 0)),
                        (0x00000800, struct.pack("<H", 0x0000 if with_dataset else 0x0101))])


def _store(context_id: int, key: str) -> list[bytes]:
    return [pdu(0x04, pdv(context_id, 0x03, c_store_rq(CT_IMAGE_STORAGE, uid("cx-in", key)))),
            pdu(0x04, pdv(context_id, 0x02, _dataset(key)))]


def _echo(context_id: int, key: str) -> list[bytes]:
    return [pdu(0x04, pdv(context_id, 0x03, c_echo_rq()))]


def _find(context_id: int, key: str) -> list[bytes]:
    return [pdu(0x04, pdv(context_id, 0x03, _request(0x0020, STUDY_FIND, True))),
            pdu(0x04, pdv(context_id, 0x02, _identifier()))]


def _move(context_id: int, key: str) -> list[bytes]:
    move = command_set([(0x00000002, STUDY_MOVE.encode()), (0x00000100, struct.pack("<H", 0x0021)),
                        (0x00000110, struct.pack("<H", 7)), (0x00000600, b"PEER"),
                        (0x00000700, struct.pack("<H", 0)), (0x00000800, struct.pack("<H", 0x0000))])
    return [pdu(0x04, pdv(context_id, 0x03, move)), pdu(0x04, pdv(context_id, 0x02, _identifier()))]


def _get(context_id: int, key: str) -> list[bytes]:
    return [pdu(0x04, pdv(context_id, 0x03, _request(0x0010, STUDY_GET, True))),
            pdu(0x04, pdv(context_id, 0x02, _identifier()))]


MISMATCHES = {
    "store-on-verification": (_store, ECHO_CX), "store-on-find": (_store, FIND_CX),
    "echo-on-storage": (_echo, STORE_CX), "echo-on-find": (_echo, FIND_CX),
    "find-on-storage": (_find, STORE_CX), "find-on-verification": (_find, ECHO_CX),
    "move-on-find": (_move, FIND_CX), "get-on-storage": (_get, STORE_CX),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", MISMATCHES)
def test_a_request_on_a_context_of_another_service_is_refused(server, path, name):
    request, context_id = MISMATCHES[name]
    key = f"{name}-{path}"
    with RawAssociation(server.dicom_port) as association:
        association.associate(PATHS[path], called=server.aet)
        for message in request(context_id, key):
            association.send(message)
        assert association.status() == SOP_CLASS_NOT_SUPPORTED
        assert association.c_echo() == SUCCESS  # the association goes on
        # and the same request on its own context is served
        for message in _store(STORE_CX, key + "-right"):
            association.send(message)
        assert association.status() == SUCCESS
        assert association.release()
    found = server.session().post(server.url + "/tools/lookup", data=uid("cx-in", key)).json()
    assert found == []  # nothing stored from the refused request
