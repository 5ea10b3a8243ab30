"""The fault rules and the event log of one server, and their wiring to the archive's events."""

from __future__ import annotations

from typing import Any

from ..core.config import Config
from ..core.events import ArchiveReset, InstanceStored, JobFailure, JobSubmitted, JobSuccess, ResourceDeleted
from .eventlog import EventLog
from .rules import FaultRules, Fired, Request, RuleError


class Faults:
    """The fault rules and the event log of one server (``archive.faults``)."""

    def __init__(self, rules: FaultRules, log: EventLog) -> None:
        self.rules = rules
        self.log = log

    @classmethod
    def from_config(cls, config: Config) -> Faults:
        """The rules of ``PacsboxFaults`` and an event log of ``PacsboxEventLogSize`` events."""
        try:
            rules = FaultRules(config.PacsboxFaults)
        except RuleError as error:
            raise ValueError(f"PacsboxFaults: {error}") from None
        return cls(rules, EventLog(config.PacsboxEventLogSize))

    def fire(self, request: Request) -> Fired | None:
        """The rule that fires on ``request``, if any (None at once while there is no rule)."""
        return self.rules.fire(request) if self.rules.active else None


def install(archive: Any, config: Config) -> Faults:
    """Give ``archive`` its ``faults`` and record the archive's changes in the event log."""
    faults = Faults.from_config(config)
    log = faults.log

    def stored(event: InstanceStored) -> None:
        origin = event.origin
        log.record("stored", _face_of(origin.kind), instance=event.instance_id, series=event.series_id,
                   study=event.study_id, patient=event.patient_id, sop_instance_uid=event.parsed.sop_uid,
                   sop_class_uid=event.parsed.sop_class_uid, new=event.is_new, origin=origin.kind,
                   calling_aet=origin.remote_aet or None, user=origin.http_username or None)

    def deleted(event: ResourceDeleted) -> None:
        log.record("deleted", "archive", level=event.level.title, id=event.public_id)

    def reset(event: ArchiveReset) -> None:
        log.record("reset", "archive")

    def job(state: str) -> Any:
        def recorded(event: JobSubmitted | JobSuccess | JobFailure) -> None:
            log.record("job", "archive", id=event.job_id, type=event.job_type, state=state)

        return recorded

    if log.size:
        archive.events.subscribe(InstanceStored, stored)
        archive.events.subscribe(ResourceDeleted, deleted)
        archive.events.subscribe(ArchiveReset, reset)
        for event_type, state in ((JobSubmitted, "Submitted"), (JobSuccess, "Success"), (JobFailure, "Failure")):
            archive.events.subscribe(event_type, job(state))
    archive.faults = faults
    return faults


def _face_of(origin_kind: str) -> str:
    return {"DicomProtocol": "dimse", "RestApi": "http"}.get(origin_kind, "archive")
