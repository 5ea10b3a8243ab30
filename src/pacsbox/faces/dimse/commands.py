"""DIMSE command sets (PS3.7 6.3 and E): group 0000 in implicit VR little endian, read and written directly.

Only what the direct path needs: reading any request's command set, writing C-ECHO, C-STORE and C-FIND responses
(and the C-MOVE or C-GET response refusing one sent on a context of another service).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# PS3.7 Table E.1-1, the command fields met here
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF
NO_DATASET = 0x0101  # CommandDataSetType: no data set follows
DATASET = 0x0102  # CommandDataSetType: a data set follows (any other value says so; this is dcmtk's)

_AFFECTED_SOP_CLASS_UID = 0x00000002
_COMMAND_FIELD = 0x00000100
_MESSAGE_ID = 0x00000110
_MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
_COMMAND_DATA_SET_TYPE = 0x00000800
_STATUS = 0x00000900
_AFFECTED_SOP_INSTANCE_UID = 0x00001000
_ELEMENT = struct.Struct("<HHI")
_US = struct.Struct("<H")


class CommandError(ValueError):
    """A command set that cannot be read (the association is aborted, as for any protocol error)."""


@dataclass(frozen=True)
class Command:
    """One received command set: the raw value of each element by tag."""

    elements: dict[int, bytes]

    def us(self, tag: int) -> int | None:
        value = self.elements.get(tag)
        return _US.unpack_from(value)[0] if value is not None and len(value) >= 2 else None

    def text(self, tag: int) -> str:
        return self.elements.get(tag, b"").decode("ascii", "replace").rstrip("\x00 ").lstrip(" ")

    @property
    def command_field(self) -> int | None:
        return self.us(_COMMAND_FIELD)

    @property
    def message_id(self) -> int:
        return self.us(_MESSAGE_ID) or 0

    @property
    def has_dataset(self) -> bool:
        return self.us(_COMMAND_DATA_SET_TYPE) != NO_DATASET

    @property
    def affected_sop_class_uid(self) -> str:
        return self.text(_AFFECTED_SOP_CLASS_UID)

    @property
    def affected_sop_instance_uid(self) -> str:
        return self.text(_AFFECTED_SOP_INSTANCE_UID)


def read_command(data: bytes) -> Command:
    """Read a command set (PS3.7 6.3.1: always implicit VR little endian, group 0000 only)."""
    elements: dict[int, bytes] = {}
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 8:
            raise CommandError("a command set element is cut short")
        group, element, length = _ELEMENT.unpack_from(data, offset)
        offset += 8
        if group != 0 or length > end - offset:
            raise CommandError(f"unexpected element ({group:04X},{element:04X}) in a command set")
        elements[element] = data[offset:offset + length]
        offset += length
    if _COMMAND_FIELD not in elements:
        raise CommandError("a command set without CommandField")
    return Command(elements)


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw  # PS3.5 6.2: UI values are padded with NUL


def encode_response(request: Command, command_field: int, status: int, *, with_dataset: bool = False) -> bytes:
    """The response to ``request`` (C-ECHO-RSP, C-STORE-RSP or C-FIND-RSP, PS3.7 9.3.1.2, 9.3.2.2 and 9.3.5.2),
    group length first; ``with_dataset`` when a data set (a C-FIND answer) follows it."""
    elements = [
        (_AFFECTED_SOP_CLASS_UID, _uid(request.affected_sop_class_uid)),
        (_COMMAND_FIELD, _US.pack(command_field)),
        (_MESSAGE_ID_BEING_RESPONDED_TO, _US.pack(request.message_id)),
        (_COMMAND_DATA_SET_TYPE, _US.pack(DATASET if with_dataset else NO_DATASET)),
        (_STATUS, _US.pack(status)),
    ]
    if command_field == C_STORE_RSP:
        elements.append((_AFFECTED_SOP_INSTANCE_UID, _uid(request.affected_sop_instance_uid)))
    body = b"".join(_ELEMENT.pack(0, tag, len(value)) + value for tag, value in elements)
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + body
