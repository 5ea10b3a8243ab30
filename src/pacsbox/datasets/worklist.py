"""``worklist``: modality worklist items (``.wl`` files) of a small radiology department's day.

Items cover what worklist matching meets: several modalities and scheduled station AETs, dates and times to match
by range, person names with accents (Latin-1) and in Greek (UTF-8), a lower-case name, an item with two scheduled
procedure steps, one without any, nested code sequences, and one scheduled for the AET ``WLSCU``. Same seed, same
bytes (the study UIDs derive from it). Serve them with ``Worklists.Database`` pointing at the folder, or add them
with ``pacsbox worklists add``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.uid import generate_uid

from ..core.worklists import item_from_json, write_item
from .model import DataFile, Options, Session

PROJECT = "WORKLIST"


def _step(modality: str, aet: str, date: str, time: str, description: str, step_id: str,
          **extra: Any) -> dict[str, Any]:
    return {"Modality": modality, "ScheduledStationAETitle": aet, "ScheduledProcedureStepStartDate": date,
            "ScheduledProcedureStepStartTime": time, "ScheduledProcedureStepDescription": description,
            "ScheduledProcedureStepID": step_id, "ScheduledPerformingPhysicianName": "Tech^Tina", **extra}


def items(seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """The items as (file stem, Orthanc simplified JSON)."""
    protocol = [{"CodeValue": "P-001", "CodingSchemeDesignator": "99LOCAL", "CodeMeaning": "Head routine"}]
    plain = [
        ("doe-john", "Doe^John", "P0001", "A0001", "19700101", "M",
         [_step("CT", "CTSCAN", "20240101", "101500", "CT head", "S0001", ScheduledProtocolCodeSequence=protocol)],
         None),
        ("smith-jane", "Smith^Jane", "P0002", "A0002", "19800215", "F",
         [_step("MR", "MRSCAN", "20240215", "083000", "MR knee", "S0002")], None),
        ("mueller-joerg", "Müller^Jörg", "P0003", "A0003", "19651224", "M",
         [_step("CT", "CTSCAN", "20240301", "140000", "CT thorax", "S0003")], "ISO_IR 100"),
        ("omega-alpha", "Ωμέγα^Άλφα", "P0004", "A0004", "19901010", "F",
         [_step("CT", "CTSCAN", "20240301", "160000", "CT abdomen", "S0004")], "ISO_IR 192"),
        ("two-steps", "Brown^Bob", "P0005", "A0005", "19551111", "M",
         [_step("CT", "CTSCAN", "20240401", "090000", "CT angio", "S0005"),
          _step("MR", "MRSCAN", "20240402", "100000", "MR angio", "S0006")], None),
        ("no-step", "Green^Gina", "P0006", "A0006", "", "F", None, None),
        ("lower-case", "van der berg^anna", "P0007", "A0007", "20000229", "F",
         [_step("US", "USROOM", "20240502", "113000", "US abdomen", "S0007")], None),
        ("for-wlscu", "White^Walter", "P0008", "A0008", "19750505", "M",
         [_step("DX", "WLSCU", "20240503", "073000", "DX chest", "S0008")], None),
    ]
    built = []
    for index, (stem, name, patient_id, accession, birth, sex, steps, charset) in enumerate(plain):
        body: dict[str, Any] = {
            "PatientName": name, "PatientID": patient_id, "AccessionNumber": accession, "PatientSex": sex,
            "PatientBirthDate": birth, "ReferringPhysicianName": "Referrer^Rita",
            "StudyInstanceUID": generate_uid(entropy_srcs=["worklist", str(seed), str(index)]),
            "RequestedProcedureID": f"RP{index + 1:04d}", "RequestedProcedureDescription": "Scheduled examination",
            "RequestedProcedureCodeSequence": [{"CodeValue": f"RP{index + 1}", "CodingSchemeDesignator": "99LOCAL",
                                                "CodeMeaning": "Examination"}],
        }
        if steps is not None:
            body["ScheduledProcedureStepSequence"] = steps
        if charset is not None:
            body["SpecificCharacterSet"] = charset
        built.append((stem, body))
    return built


def worklist(options: Options) -> Iterator[Session]:
    """The ``worklist`` data set: one session of ``.wl`` files (the size changes nothing)."""
    files = tuple(DataFile(f"worklists/{stem}.wl", write_item(item_from_json(body, default_charset="ISO_IR 100"),
                                                              instance_uid=generate_uid(entropy_srcs=[
                                                                  "worklist-file", str(options.seed), stem])))
                  for stem, body in items(options.seed))
    yield Session(files, PROJECT, "worklist", "worklist", scan="1", scan_type="worklist", resource="WORKLIST",
                  root="worklists")
