"""What one DICOM association may make the server hold (issue 15): a data set is bounded by
``DicomMaximumDatasetSize`` from its first fragment, a command by 64 KiB, a PDU by the 1 MiB announced in the
A-ASSOCIATE-AC. Each attack streams far more than the limit, on both association paths (pacsbox's direct one, and
pynetdicom's, taken when a move context is proposed too): the server aborts the association once the limit is
passed, having taken in at most the limit plus what the kernel buffers, and the RSS of the real server process
(psutil, sampled every few milliseconds) grows by less than ``RSS_BOUND`` (a stated multiple of the limit).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .hostile_support import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    SUCCESS,
    VERIFICATION,
    PeakRss,
    RawAssociation,
    assert_alive,
    associate_rq,
    c_store_rq,
    pdu,
    pdv,
)

LIMIT = 8 * 2**20  # DicomMaximumDatasetSize of the server under test
SENT = 96 * 2**20  # what each attack tries to send: twelve times the limit
# Received before the abort: the limit, one PDU, and what the kernel's socket buffers hold on both sides
TAKEN_BOUND = LIMIT + 24 * 2**20
# RSS growth allowed per attacking association: the data set held (one copy, twice while pynetdicom decodes it),
# one PDU and its decoding, and the allocator's slack
RSS_BOUND = 3 * LIMIT + 24 * 2**20
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PDU_BODY = 2**20 - 6  # the largest P-DATA-TF body the server announced it receives (its maximum length is 1 MiB)

DIRECT = [(1, VERIFICATION, [IMPLICIT_LE]), (3, CT_IMAGE_STORAGE, [EXPLICIT_LE]), (5, STUDY_FIND, [IMPLICIT_LE])]
# a move context sends the association to pynetdicom
PYNETDICOM = [*DIRECT, (7, STUDY_MOVE, [IMPLICIT_LE])]
PATHS = {"direct": DIRECT, "pynetdicom": PYNETDICOM}


@pytest.fixture(scope="module")
def server():
    config = {"DicomMaximumDatasetSize": LIMIT, "DicomScpTimeout": 10, "DicomAlwaysAllowStore": False,
              "DicomModalities": {"sender": ["HOSTILE", "127.0.0.1", 104]}, "StableAge": 100_000}
    with RunningPacsbox(config) as running:
        assert_alive(running)
        yield running


def _store_command(key: str) -> bytes:
    return pdu(0x04, pdv(3, 0x03, c_store_rq(CT_IMAGE_STORAGE, uid("mem-in", key))))


def _data_pdus(context_id: int, fragment: int = PDU_BODY - 6, last_at: int | None = None) -> Iterator[bytes]:
    """P-DATA-TF PDUs of data set fragments, none marked last, each PDU as full as the maximum length allows."""
    per_pdu = max(1, PDU_BODY // (fragment + 6))
    body = pdv(context_id, 0x00, b"\x00" * fragment) * per_pdu
    while True:
        yield pdu(0x04, body)


# -- the attacks: what each sends after the association is accepted ----------------------------------------------

def _never_last(key: str) -> Iterator[bytes]:
    """A C-STORE whose data set fragments are never marked last."""
    yield _store_command(key)
    yield from _data_pdus(3)


def _tiny_fragments(key: str) -> Iterator[bytes]:
    """The same in 2-byte fragments, about 100,000 to a PDU."""
    yield _store_command(key)
    yield from _data_pdus(3, fragment=2)


def _command_never_last(key: str) -> Iterator[bytes]:
    """Command fragments, none marked last."""
    while True:
        yield pdu(0x04, pdv(3, 0x01, b"\x00" * (PDU_BODY - 6)))


def _pdu_over_maximum(key: str) -> Iterator[bytes]:
    """One P-DATA-TF PDU declaring 1 GiB, over the 1 MiB announced, then its bytes."""
    yield struct.pack(">BBI", 0x04, 0, 2**30) + pdv(3, 0x03, c_store_rq(CT_IMAGE_STORAGE, uid("mem-in", key)))
    while True:
        yield b"\x00" * PDU_BODY


def _store_on_find_context(key: str) -> Iterator[bytes]:
    """A C-STORE on the find context (refused with 0x0122 once its data set ends, which it never does)."""
    yield pdu(0x04, pdv(5, 0x03, c_store_rq(CT_IMAGE_STORAGE, uid("mem-in", key))))
    yield from _data_pdus(5)


def _many_messages_one_unfinished(key: str) -> Iterator[bytes]:
    """Good data sets of half the limit each, then one that never ends: only the message counts, not the
    association."""
    data = to_bytes(make_dataset(patient_id="MEM", patient_name="Memory^Limit", study_uid=uid("mem-st"),
                                 series_uid=uid("mem-se"), sop_uid=uid("mem-in", key)), with_meta=False,
                    implicit_vr=False)
    for number in range(3):
        yield pdu(0x04, pdv(3, 0x03, c_store_rq(CT_IMAGE_STORAGE, uid("mem-in", key), message_id=number + 1)))
        yield pdu(0x04, pdv(3, 0x02, data))
    yield from _never_last(key)


ATTACKS: dict[str, Callable[[str], Iterator[bytes]]] = {
    "never-last": _never_last, "tiny-fragments": _tiny_fragments, "command-never-last": _command_never_last,
    "pdu-over-maximum": _pdu_over_maximum, "store-on-find-context": _store_on_find_context,
    "messages-then-one-unfinished": _many_messages_one_unfinished,
}


def _attack(server: RunningPacsbox, contexts, attack: Callable[[str], Iterator[bytes]], key: str,
            calling: str = "HOSTILE") -> int:
    """Associate, then send the attack's PDUs until ``SENT`` bytes or the server ends the connection; the bytes
    the server took in."""
    sock = socket.create_connection(("127.0.0.1", server.dicom_port), timeout=15)
    with sock:
        sock.sendall(associate_rq(contexts, calling=calling))
        assert sock.recv(1)[:1] == b"\x02"  # A-ASSOCIATE-AC
        sent = 0
        try:
            for chunk in attack(key):
                sock.sendall(chunk)
                sent += len(chunk)
                if sent >= SENT:
                    break
        except OSError:  # aborted: reset, broken pipe
            return sent
        sock.settimeout(5)
        try:
            while sock.recv(65536):  # the answers, then the end of the connection
                pass
        except OSError:
            pass
        return sent


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ATTACKS)
def test_a_message_over_the_limit_is_aborted_before_memory_grows(server, tally, path, name):
    with PeakRss(server, settle=0.2) as memory:
        taken = _attack(server, PATHS[path], ATTACKS[name], f"{name}-{path}")
    tally.count("DICOM memory", name)
    assert taken < TAKEN_BOUND, f"{taken} bytes taken in before the abort"
    assert memory.growth < RSS_BOUND, f"RSS grew {memory.growth / 2**20:.0f} MiB"
    assert_alive(server)


@pytest.mark.parametrize("path", PATHS)
def test_a_calling_aet_that_may_not_store_is_aborted_at_the_command(server, tally, path):
    """Permissions are per request, as in Orthanc: the C-STORE of an AET that may not store aborts the association
    as soon as its command has arrived, before its data set is held."""
    with PeakRss(server, settle=0.2) as memory:
        taken = _attack(server, PATHS[path], _never_last, f"stranger-{path}", calling="STRANGER")
    tally.count("DICOM memory", "refused AET")
    assert taken < TAKEN_BOUND
    assert memory.growth < RSS_BOUND


def test_parallel_attacks_are_bounded_per_association(server, tally):
    """Four associations at once, on both paths: growth stays within four times the bound of one."""
    results: list[int] = []
    attackers = [threading.Thread(target=lambda n=n: results.append(
        _attack(server, PATHS["direct" if n % 2 else "pynetdicom"], _never_last, f"parallel-{n}")))
        for n in range(4)]
    with PeakRss(server, settle=0.2) as memory:
        for attacker in attackers:
            attacker.start()
        for attacker in attackers:
            attacker.join(60)
    tally.count("DICOM memory", "parallel")
    assert len(results) == 4 and all(taken < TAKEN_BOUND for taken in results), results
    assert memory.growth < 4 * RSS_BOUND


@pytest.mark.parametrize("path", PATHS)
def test_a_data_set_just_under_the_limit_is_stored(server, path):
    """The limit is the data set's size: one a little under it is stored, on either path."""
    dataset = make_dataset(patient_id="MEM-BIG", patient_name="Memory^Limit", study_uid=uid("mem-st", "big"),
                           series_uid=uid("mem-se", "big"), sop_uid=uid("mem-in", "big", path), rows=1536, cols=1536)
    data = to_bytes(dataset, with_meta=False, implicit_vr=False)
    assert LIMIT // 2 < len(data) < LIMIT - 2**20
    with RawAssociation(server.dicom_port) as association:
        association.associate(PATHS[path])
        assert association.c_store(data, uid("mem-in", "big", path)) == SUCCESS
        assert association.release()
