"""The worklist SCP against the real Orthanc 1.10.1 running its worklist plugin on the same ``.wl`` folder: the same
queries (pynetdicom and dcmtk's ``findscu -W``) get the same statuses and the same answers, in the same order.

Two set-ups: DefaultEncoding Latin1 without limits; Utf8 with FilterIssuerAet and LimitAnswers 2; and a missing
folder. Both servers run the same Lua IncomingWorklistRequestFilter. The folder holds the ``worklist`` data set,
a file that is no DICOM, an empty one, a ``.txt`` file and an item without SpecificCharacterSet (Latin-1 bytes,
read in each DefaultEncoding).
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE

from pacsbox.core.worklists import item_from_json, write_item
from pacsbox.datasets import registry
from tests.support import dcmtk
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

WORKLIST_PLUGIN = "/usr/share/orthanc/plugins/libModalityWorklists.so"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
SCU = "WLSCU"
LUA = """
function IncomingWorklistRequestFilter(query, origin)
  if query['0010,0020'] == 'LUA' then
    query['0010,0020'] = 'P0002'
  end
  return query
end
"""

pytestmark = pytest.mark.skipif(not (have_orthanc() and os.path.isfile(WORKLIST_PLUGIN)), reason=SKIP_REASON)


def query(charset: str | None = None, **keys) -> Dataset:
    """An identifier; a list value is a sequence of items given as dicts (nested alike)."""
    identifier = Dataset()
    if charset:
        identifier.SpecificCharacterSet = charset
    for keyword, value in keys.items():
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            setattr(identifier, keyword, Sequence([query(**item) for item in value]))
        else:
            setattr(identifier, keyword, value)
    return identifier


BASE = {"PatientName": "", "PatientID": "", "AccessionNumber": ""}
QUERIES = {
    "everything": query(**BASE, PatientSex="", ScheduledProcedureStepSequence=[{}]),
    "single value": query(**{**BASE, "PatientID": "P0003"}),
    "list": query(**{**BASE, "PatientID": "P0001\\P0004\\P0099"}),
    "wildcard, person name": query(**{**BASE, "PatientName": "*LLER*"}),
    "wildcard, lower case stored": query(**{**BASE, "PatientName": "VAN DER*"}),
    "wildcard ?": query(**{**BASE, "AccessionNumber": "A000?"}),
    "case-sensitive LO": query(**{**BASE, "PatientID": "p0003"}),
    "date range in a sequence": query(**BASE, ScheduledProcedureStepSequence=[
        {"ScheduledProcedureStepStartDate": "20240301-20240401", "Modality": ""}]),
    "open date range": query(**BASE, ScheduledProcedureStepSequence=[
        {"ScheduledProcedureStepStartDate": "-20240215"}]),
    "time range": query(**BASE, ScheduledProcedureStepSequence=[
        {"ScheduledProcedureStepStartTime": "080000-100000", "ScheduledStationAETitle": ""}]),
    "two keys in one step": query(**BASE, ScheduledProcedureStepSequence=[
        {"Modality": "MR", "ScheduledStationAETitle": "MRSCAN", "ScheduledProcedureStepID": ""}]),
    "two keys in different steps": query(**BASE, ScheduledProcedureStepSequence=[
        {"Modality": "CT", "ScheduledStationAETitle": "MRSCAN"}]),
    "nested code sequence": query(**BASE, ScheduledProcedureStepSequence=[
        {"ScheduledProtocolCodeSequence": [{"CodeValue": "P-001", "CodeMeaning": ""}]}]),
    "universal sequence": query(PatientID="", RequestedProcedureCodeSequence=[]),
    "constraint on an absent tag": query(**BASE, PatientWeight="70"),
    "absent tag, universal": query(**BASE, PatientWeight="", Occupation=""),
    "empty stored value": query(**{**BASE, "PatientBirthDate": "19700101-"}),
    "UTF-8 query, Greek": query("ISO_IR 192", **{**BASE, "PatientName": "ωμέγα*"}),
    "UTF-8 query, accents": query("ISO_IR 192", **{**BASE, "PatientName": "müller^jörg"}),
    "Latin-1 query": query("ISO_IR 100", **{**BASE, "PatientName": "Müller*"}),
    "a file without SpecificCharacterSet": query("ISO_IR 192", **{**BASE, "PatientName": "Çelik*"}),
    "Lua rewrites the query": query(**{**BASE, "PatientID": "LUA"}),
    "a sequence key with two items": query(**BASE, ScheduledProcedureStepSequence=[{"Modality": "CT"},
                                                                                   {"Modality": "MR"}]),
    "after the invalid one": query(**BASE, ScheduledProcedureStepSequence=[{"Modality": "CT"}]),
}
SETUPS = {
    "latin1": {"DefaultEncoding": "Latin1"},
    "utf8-issuer-limit": {"DefaultEncoding": "Utf8", "Worklists": {"FilterIssuerAet": True, "LimitAnswers": 2}},
}


def _servers(root: Path, setup: dict, database: Path | None = None):
    """(pacsbox, Orthanc) on the same worklist folder and configuration, as a context manager."""
    folder = root / "worklists"
    registry.generate("worklist", root)
    (folder / "broken.wl").write_bytes(b"not DICOM at all")
    (folder / "empty.wl").write_bytes(b"")
    (folder / "notes.txt").write_bytes((folder / "doe-john.wl").read_bytes())
    step = {"Modality": "CT", "ScheduledStationAETitle": SCU}
    no_charset = item_from_json({"PatientName": "Çelik^Ömer", "PatientID": "P0099", "AccessionNumber": "A0099",
                                 "ScheduledProcedureStepSequence": [step]}, "ISO_IR 100")
    del no_charset.SpecificCharacterSet  # Latin-1 bytes, read in the DefaultEncoding
    (folder / "no-charset.wl").write_bytes(write_item(no_charset))
    (root / "filter.lua").write_text(LUA)
    section = {"Enable": True, "Database": str(database or folder), **setup.get("Worklists", {})}
    config = {**setup, "Worklists": section, "DicomAlwaysAllowFindWorklist": True,
              "LuaScripts": [str(root / "filter.lua")]}
    return RunningPacsbox(config), ReferenceOrthanc(extra_config={**config, "Plugins": [WORKLIST_PLUGIN]},
                                                    graceful_stop=False)


@pytest.fixture(scope="module", params=list(SETUPS))
def servers(request, tmp_path_factory):
    ours, reference = _servers(tmp_path_factory.mktemp(request.param), SETUPS[request.param])
    with ours, reference:
        yield ours, reference


def find(port: int, called_aet: str, identifier: Dataset) -> tuple[list[int], list[dict]]:
    """The statuses and answers (DICOM JSON) of one worklist C-FIND."""
    ae = AE(ae_title=SCU)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(WORKLIST_FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet)
    assert assoc.is_established
    statuses, answers = [], []
    try:
        for status, answer in assoc.send_c_find(identifier, WORKLIST_FIND):
            statuses.append(int(status.Status) if status else None)
            if answer is not None:
                answers.append(answer.to_json_dict())
    finally:
        assoc.release()
    return statuses, answers


@pytest.mark.parametrize("name", list(QUERIES))
def test_same_answers_as_orthanc(servers, name):
    ours, reference = servers
    expected = find(reference.dicom_port, reference.aet, QUERIES[name])
    assert find(ours.dicom_port, ours.aet, QUERIES[name]) == expected


def test_the_queries_say_something(servers):
    """Guard against a vacuous comparison: the set-ups give answers, limits and failures."""
    ours, _ = servers
    statuses = {name: find(ours.dicom_port, ours.aet, QUERIES[name])[0]
                for name in ("everything", "a sequence key with two items", "after the invalid one")}
    assert statuses["a sequence key with two items"] == [0xC000]
    assert len(statuses["everything"]) > 2
    assert statuses["after the invalid one"][-1] in (0x0000, 0xFE00)


def test_a_missing_folder_fails_as_orthanc(tmp_path):
    ours, reference = _servers(tmp_path, {}, database=tmp_path / "missing")
    with ours, reference:
        for name in ("everything", "single value"):
            expected = find(reference.dicom_port, reference.aet, QUERIES[name])
            assert find(ours.dicom_port, ours.aet, QUERIES[name]) == expected == ([0xC000], [])


@pytest.mark.parametrize("keys", [
    ["PatientName", "PatientID", "(0040,0100)[0].Modality=CT", "(0040,0100)[0].ScheduledStationAETitle"],
    ["PatientName=*LLER*", "SpecificCharacterSet=ISO_IR 192", "(0040,0100)[0].ScheduledProcedureStepStartDate"],
    ["AccessionNumber=A000?", "(0032,1064)"],
], ids=["modality", "charset", "wildcard"])
def test_findscu_gets_the_same_files(servers, keys, tmp_path):
    if not dcmtk.have_dcmtk():
        pytest.skip(dcmtk.SKIP_REASON)
    ours, reference = servers
    results = []
    for server, port, aet in (("ours", ours.dicom_port, ours.aet), ("reference", reference.dicom_port,
                                                                     reference.aet)):
        out = tmp_path / server
        out.mkdir()
        args = ["-W", "-aet", SCU, "-aec", aet, "-X", "-od", out, "127.0.0.1", str(port)]
        for key in keys:
            args += ["-k", key]
        run = dcmtk.run("findscu", *args)
        assert run.returncode == 0, run.stderr
        results.append([pydicom.dcmread(path).to_json_dict() for path in sorted(Path(out).iterdir())])
    assert results[0] == results[1]
