"""The DICOM side of fault injection and of the event log: what the DIMSE face's hooks call.

An ``AssociationWatch`` follows one association on either path (``direct_scp`` or pynetdicom's): it asks the rules
about the association request and each request on it, and records the association, each DIMSE message and the
association's end. Faults never corrupt the archive: a C-STORE answered with a failure status is not stored, one
answered with a warning status is stored first (PS3.4 B.2.3); an aborted request stores nothing.
``RecordedRemote`` records the outgoing SCU operations (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET to a modality).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .rules import ASSOCIATION, Action, Fired, Request
from .state import Faults

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

_PDU_HEADER = struct.Struct(">BBI")
_FAULTABLE = frozenset({"C-ECHO", "C-STORE", "C-FIND", "C-MOVE", "C-GET"})
_MAXIMUM_IDENTIFIER_KEYS = 64
_MAXIMUM_VALUE_LENGTH = 256
_MAXIMUM_IDENTIFIER_TEXT = 2048  # characters of one identifier kept: a full log stays in tens of megabytes
# A SOP class no association ever negotiates: a sub-operation sent under it fails before leaving (pynetdicom finds
# no presentation context), which is how a C-MOVE or C-GET sub-operation is made to fail (PS3.4 C.4.2.3.1)
_UNSENDABLE_SOP_CLASS = "1.2.826.0.1.3680043.10.1447.999.1"


def is_warning(status: int) -> bool:
    """PS3.4 C.4 and B.2.3 warning statuses: 0x0001, 0x0107, 0x0116 and 0xBxxx."""
    return status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF


def identifier_keys(identifier: Any) -> dict[str, str]:
    """A C-FIND/C-MOVE/C-GET identifier's keys as text (bounded: a hostile identifier cannot fill the log)."""
    keys: dict[str, str] = {}
    room = _MAXIMUM_IDENTIFIER_TEXT
    try:
        for element in identifier:
            if len(keys) >= _MAXIMUM_IDENTIFIER_KEYS or room <= 0:
                break
            if element.VR == "SQ":
                continue
            value = element.value
            text = "" if value is None else str(value) if not isinstance(value, bytes) else value.hex()
            keys[element.keyword or str(element.tag)] = text[:min(_MAXIMUM_VALUE_LENGTH, room)]
            room -= len(keys[element.keyword or str(element.tag)]) + 16
    except Exception:  # a value pydicom cannot decode: the keys read so far
        pass
    return keys


def send_slowly(send: Callable[[bytes], Any], data: bytes, delay: float) -> None:
    """Send ``data`` (whole PDUs) PDU by PDU, each after ``delay`` seconds."""
    offset = 0
    while offset < len(data):
        length = _PDU_HEADER.unpack_from(data, offset)[2] if offset + 6 <= len(data) else len(data)
        time.sleep(delay)
        send(data[offset:offset + 6 + length])
        offset += 6 + length


class AssociationWatch:
    """The rules and the event log as one association meets them."""

    def __init__(self, faults: Faults, calling_aet: str, called_aet: str, peer: str) -> None:
        self.faults = faults
        self.log = faults.log
        self.calling_aet, self.called_aet, self.peer = calling_aet, called_aet, peer
        self.pdu_delay = 0.0
        self.ended_as: str | None = None
        self.retrieves: dict[int, dict[str, Any]] = {}  # pynetdicom path: C-MOVE/C-GET waiting for their answer

    # -- the association -------------------------------------------------------------------------------------
    def requested(self, sop_classes: Iterable[str]) -> Fired | None:
        """The association rule that fires on this request (its delay already waited), if any."""
        if not self.faults.rules.active:
            return None
        fired = self.faults.rules.fire(Request("dimse", operation=ASSOCIATION, calling_aet=self.calling_aet,
                                               called_aet=self.called_aet, sop_classes=tuple(sop_classes)))
        if fired is not None:
            if fired.action.delay:
                time.sleep(fired.action.delay)
            self.pdu_delay = fired.action.pdu_delay
        return fired

    def answered(self, outcome: str, contexts: Sequence[str] = (), rejection: Sequence[int] | None = None,
                 fired: Fired | None = None) -> None:
        """Record the answer to the association request: ``accepted`` (with the accepted abstract syntaxes),
        ``rejected`` (result, source, reason) or ``aborted``."""
        self.log.record("association", "dimse", calling_aet=self.calling_aet, called_aet=self.called_aet,
                        peer=self.peer, outcome=outcome, accepted_contexts=list(contexts) if contexts else None,
                        rejection=dict(zip(("result", "source", "reason"), rejection, strict=False))
                        if rejection else None, fault=fired.rule_id if fired else None)

    def ended(self, outcome: str) -> None:
        """Record how the association ended (``released``, ``aborted``, ``closed``), once."""
        if self.ended_as is None:
            self.ended_as = outcome
            self.log.record("association-end", "dimse", calling_aet=self.calling_aet, called_aet=self.called_aet,
                            peer=self.peer, outcome=outcome)

    # -- requests --------------------------------------------------------------------------------------------
    def request_fault(self, operation: str, sop_class: str) -> Fired | None:
        """The rule that fires on a request (its delay already waited), if any."""
        if not self.faults.rules.active:
            return None
        fired = self.faults.rules.fire(Request("dimse", operation=operation, calling_aet=self.calling_aet,
                                               called_aet=self.called_aet, sop_classes=(sop_class,)))
        if fired is not None and fired.action.delay:
            time.sleep(fired.action.delay)
        return fired

    def message(self, operation: str, status: int | None, fired: Fired | None = None, **fields: Any) -> None:
        """Record one DIMSE request and its (final) status."""
        self.log.record("dimse", "dimse", operation=operation, calling_aet=self.calling_aet,
                        called_aet=self.called_aet, status=status, fault=fired.rule_id if fired else None, **fields)

    # -- the pynetdicom path ---------------------------------------------------------------------------------
    def serve_pynetdicom(self, event: Any, operation: str, serve: Callable[[Any], Any]) -> Any:
        """Run a pynetdicom handler under the rules, recording the request. Requests of other services than
        C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET (N-ACTION of storage commitment) are served as they are."""
        if operation not in _FAULTABLE:
            return serve(event)
        request = event.request
        sop_class = str(getattr(request, "AffectedSOPClassUID", "") or "")
        fired = self.request_fault(operation, sop_class)
        action = fired.action if fired is not None else None
        message_id = int(getattr(request, "MessageID", 0) or 0)
        if action is not None and action.abort is not None:
            self.message(operation, None, fired, sop_class_uid=sop_class, outcome="aborted")
            event.assoc.abort()
            return _nothing_for(operation)
        if operation in ("C-STORE", "C-ECHO"):
            fields: dict[str, Any] = {"sop_class_uid": sop_class}
            if operation == "C-STORE":
                fields["sop_instance_uid"] = str(getattr(request, "AffectedSOPInstanceUID", "") or "")
            status = None
            if action is not None and action.dimse_status is not None and not is_warning(action.dimse_status):
                status = action.dimse_status  # refused before anything is stored
            else:
                status = int(serve(event))
                if action is not None and action.dimse_status is not None and status == 0:
                    status = action.dimse_status  # a warning: stored, then answered with the warning
            self.message(operation, status, fired, message_id=message_id, **fields)
            return status
        identifier = _identifier(event)
        fields = {"sop_class_uid": sop_class, "identifier": identifier_keys(identifier) if identifier else None}
        if operation == "C-FIND":
            return self._find(serve(event), action, fired, fields)
        if operation == "C-MOVE":
            fields["move_destination"] = _text(getattr(request, "MoveDestination", ""))
        self.retrieves[message_id] = {**fields, "fault": fired.rule_id if fired else None}
        return _faulted_retrieve(serve(event), operation, action)

    def _find(self, answers: Iterator[Any], action: Action | None, fired: Fired | None,
              fields: dict[str, Any]) -> Iterator[Any]:
        failure = action.dimse_status if action is not None and action.dimse_status is not None else None
        matches, final = 0, 0
        try:
            if failure is not None and not is_warning(failure):
                final = failure
                yield failure, None
                return
            for answer in answers:
                code = answer[0] if isinstance(answer, tuple) else answer
                if code in (0xFF00, 0xFF01):
                    matches += 1
                else:
                    final = code
                yield answer
            if failure is not None and not final:
                final = failure
                yield failure, None
        finally:
            self.message("C-FIND", final, fired, matches=matches, **fields)

    def sent(self, event: Any) -> None:
        """pynetdicom's EVT_DIMSE_SENT: a final C-MOVE-RSP or C-GET-RSP completes its request's event."""
        kind = type(event.message).__name__
        if kind not in ("C_MOVE_RSP", "C_GET_RSP"):
            return
        command = event.message.command_set
        status = int(getattr(command, "Status", 0) or 0)
        if status in (0xFF00, 0xFF01):
            return
        fields = self.retrieves.pop(int(getattr(command, "MessageIDBeingRespondedTo", 0) or 0), None)
        if fields is None:
            return
        fault = fields.pop("fault", None)
        counts = {name: int(getattr(command, f"Number{name}Suboperations", 0) or 0)
                  for name in ("OfCompleted", "OfFailed", "OfWarning")}
        self.log.record("dimse", "dimse", operation=kind[:-4].replace("_", "-"), calling_aet=self.calling_aet,
                        called_aet=self.called_aet, status=status, fault=fault,
                        suboperations={"completed": counts["OfCompleted"], "failed": counts["OfFailed"],
                                       "warning": counts["OfWarning"]}, **fields)


def _identifier(event: Any) -> Dataset | None:
    try:
        return event.identifier
    except Exception:  # an identifier pynetdicom cannot decode: the handler answers it
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value or "").strip()


def _nothing_for(operation: str) -> Any:
    """What a pynetdicom handler returns once it has aborted the association."""
    if operation in ("C-STORE", "C-ECHO"):
        return 0xC000
    if operation == "C-MOVE":
        return iter([(None, None)])
    if operation == "C-GET":
        return iter([0])
    return iter([(0xC000, None)])


def _unsendable(dataset: Any) -> Dataset:
    """A stand-in for a sub-operation's instance that cannot be sent: the sub-operation fails, and the instance's
    SOPInstanceUID goes into the Failed SOP Instance UID List."""
    from pydicom.dataset import Dataset

    stand_in = Dataset()
    stand_in.SOPClassUID = _UNSENDABLE_SOP_CLASS
    stand_in.SOPInstanceUID = str(getattr(dataset, "SOPInstanceUID", "") or "")
    return stand_in


def _faulted_retrieve(answers: Iterator[Any], operation: str, action: Action | None) -> Iterator[Any]:
    """pynetdicom's C-MOVE or C-GET answers under a fault: the first ``failed_suboperations`` sub-operations fail,
    or the request is answered with the fault's status once its destination and count are given."""
    if action is None or (action.dimse_status is None and not action.failed_suboperations):
        yield from answers
        return
    preamble = 2 if operation == "C-MOVE" else 1  # (destination), then the number of sub-operations
    for index in range(preamble):
        item = next(answers, None)
        if item is None:
            return
        yield item
        if operation == "C-MOVE" and index == 0 and isinstance(item, tuple) and item[0] is None:
            yield from answers  # an unknown destination: answered as without a fault
            return
    if action.dimse_status is not None:
        yield action.dimse_status, None
        return
    failing = action.failed_suboperations
    for item in answers:
        if failing and isinstance(item, tuple) and item[0] in (0xFF00, 0xFF01) and item[1] is not None:
            failing -= 1
            yield item[0], _unsendable(item[1])
            continue
        yield item


class RecordedRemote:
    """The DICOM SCU (``core.modalities.RemoteDicom``) with every operation recorded: to whom, what, the result."""

    def __init__(self, remote: Any, faults: Faults) -> None:
        self.remote = remote
        self.log = faults.log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.remote, name)

    def _call(self, operation: str, modality: Any, what: dict[str, Any], call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result, details, answer = "failure", {}, None
        try:
            answer = call()
            failed = getattr(answer, "failed", 0)
            result = "partial" if failed else "success"
            if hasattr(answer, "instances"):  # a StoreReport
                details = {"instances": answer.instances, "failed": failed}
        except Exception as failure:
            details = {"error": str(getattr(failure, "details", None) or failure)[:500]}
            raise
        finally:
            self.log.record("scu", "dimse", operation=operation, aet=getattr(modality, "aet", None),
                            host=getattr(modality, "host", None), port=getattr(modality, "port", None),
                            result=result, duration_ms=round((time.perf_counter() - started) * 1000, 3),
                            **{**what, **details})
        return answer

    def echo(self, modality: Any) -> None:
        return self._call("C-ECHO", modality, {}, lambda: self.remote.echo(modality))

    def store(self, modality: Any, instance_ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        return self._call("C-STORE", modality, {"instances": len(instance_ids)},
                          lambda: self.remote.store(modality, instance_ids, *args, **kwargs))

    def find(self, modality: Any, level: str, identifier: Dataset) -> Any:
        return self._call("C-FIND", modality, {"level": level, "identifier": identifier_keys(identifier)},
                          lambda: self.remote.find(modality, level, identifier))

    def move(self, modality: Any, level: str, identifiers: Sequence[Dataset], target_aet: str) -> Any:
        return self._call("C-MOVE", modality, {"level": level, "move_destination": target_aet,
                                                "identifiers": len(identifiers)},
                          lambda: self.remote.move(modality, level, identifiers, target_aet))

    def get(self, modality: Any, level: str, identifiers: Sequence[Dataset]) -> Any:
        return self._call("C-GET", modality, {"level": level, "identifiers": len(identifiers)},
                          lambda: self.remote.get(modality, level, identifiers))
