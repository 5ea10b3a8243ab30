"""find-worklist, the deprecated find routes and store-straight, compared with the real Orthanc 1.10.1.

The real Orthanc (with its worklist plugin) is the remote modality of both clients: pacsbox asks it, and it asks
itself, with the same body; the answers must be the same. The real Orthanc also asks pacsbox's worklist SCP,
which serves the same ``.wl`` folder, and must get what its own plugin answers.
"""

from __future__ import annotations

import json
import os

import pytest

from pacsbox.datasets import registry
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, free_port, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

WORKLIST_PLUGIN = "/usr/share/orthanc/plugins/libModalityWorklists.so"
pytestmark = pytest.mark.skipif(not (have_orthanc() and os.path.isfile(WORKLIST_PLUGIN)), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """pacsbox and the real Orthanc, each with the other as ``peer``; Orthanc also knows itself as ``self``; both
    serve the same worklist folder; Orthanc holds a CT study."""
    root = tmp_path_factory.mktemp("scu-finds")
    registry.generate("worklist", root)
    folder = str(root / "worklists")
    ours_port, reference_port = free_port(), free_port()
    allow = {"DicomAlwaysAllowFindWorklist": True, "DicomAlwaysAllowFind": True}
    with RunningPacsbox({"DicomPort": ours_port, "Worklists": {"Database": folder}, **allow,
                         "DicomModalities": {"peer": ["ORTHANC", "127.0.0.1", reference_port]}}) as ours, \
            ReferenceOrthanc(extra_config={
                "DicomPort": reference_port, "Plugins": [WORKLIST_PLUGIN], **allow,
                "Worklists": {"Enable": True, "Database": folder},
                "DicomModalities": {"peer": ["PACSBOX", "127.0.0.1", ours_port],
                                    "self": ["ORTHANC", "127.0.0.1", reference_port]}}, graceful_stop=False) as ref:
        for n in (1, 2):
            ref.upload(to_bytes(make_dataset(patient_id="FIND01", patient_name="Find^Fiona",
                                             study_uid=uid("finds", "study"), series_uid=uid("finds", "series"),
                                             sop_uid=uid("finds", n), instance_number=n,
                                             extra={"AccessionNumber": "ACC-FIND"})))
        yield ours, ours.session(), ref


def _post(session, url: str, path: str, body) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body)
    answer = session.post(url + path, data=data)
    body = answer.json() if answer.content else None
    if isinstance(body, dict):
        body.pop("Uri", None)  # the modality's name in it differs (peer, self)
    return answer.status_code, body


def _both(pair, route: str, body) -> tuple:
    """(pacsbox asking Orthanc, Orthanc asking itself)."""
    ours, session, reference = pair
    return (_post(session, ours.url, f"/modalities/peer/{route}", body),
            _post(reference.session, reference.url, f"/modalities/self/{route}", body))


WORKLIST_QUERIES = {
    "simplified with a sequence": {"PatientName": "", "PatientID": "", "ScheduledProcedureStepSequence": [
        {"Modality": "CT", "ScheduledStationAETitle": "", "ScheduledProcedureStepStartDate": ""}]},
    "short": {"Query": {"PatientID": "P0003", "PatientName": ""}, "Short": True},
    "full": {"Query": {"PatientName": "*LLER*", "AccessionNumber": ""}, "Full": True},
    "tags by number": {"0010,0020": "P0001\\P0004", "0010,0010": ""},
    "accents": {"PatientName": "müller*", "SpecificCharacterSet": "ISO_IR 192"},
    "no match": {"PatientID": "NOBODY"},
    "not JSON": b"x",
}


@pytest.mark.parametrize("name", list(WORKLIST_QUERIES))
def test_find_worklist_as_orthanc(pair, name):
    ours, theirs = _both(pair, "find-worklist", WORKLIST_QUERIES[name])
    assert ours == theirs
    if name in ("simplified with a sequence", "short", "full"):
        assert ours[0] == 200 and ours[1]


@pytest.mark.parametrize("name", [n for n in WORKLIST_QUERIES if n != "not JSON"])
def test_orthanc_queries_pacsbox_worklists(pair, name):
    """The real Orthanc's find-worklist gets from pacsbox what its own plugin answers."""
    _, _, reference = pair
    from_pacsbox = _post(reference.session, reference.url, "/modalities/peer/find-worklist", WORKLIST_QUERIES[name])
    from_itself = _post(reference.session, reference.url, "/modalities/self/find-worklist", WORKLIST_QUERIES[name])
    assert from_pacsbox == from_itself


@pytest.mark.parametrize("body", [{"Nope": "1"}, []])
def test_find_worklist_client_mistakes_are_400(pair, body):
    """Orthanc answers 500 to an unknown tag or a JSON array; pacsbox answers 400 with Orthanc's code."""
    ours, theirs = _both(pair, "find-worklist", body)
    assert theirs[0] == 500 and ours[0] == 400


FIND_QUERIES = [
    ("find-patient", {"PatientName": "*"}),
    ("find-patient", {"PatientID": "FIND01", "PatientSex": ""}),
    ("find-study", {"PatientID": "FIND01"}),
    ("find-study", {"PatientID": "P1"}),  # too broad: Orthanc answers an empty 400
    ("find-study", {"AccessionNumber": "ACC-FIND", "StudyDescription": ""}),
    ("find-series", {"PatientID": "FIND01", "StudyInstanceUID": uid("finds", "study")}),
    ("find-series", {"PatientID": "FIND01"}),
    ("find-instance", {"PatientID": "FIND01", "StudyInstanceUID": uid("finds", "study"),
                       "SeriesInstanceUID": uid("finds", "series")}),
    ("find-instance", {"PatientID": "FIND01", "StudyInstanceUID": uid("finds", "study")}),
    ("find", {"PatientName": "Find*"}),
    ("find", {}),
    ("find-patient", []),
]


@pytest.mark.parametrize("route,body", FIND_QUERIES)
def test_deprecated_finds_as_orthanc(pair, route, body):
    ours, theirs = _both(pair, route, body)
    assert ours == theirs


def test_store_straight_as_orthanc(pair):
    ours_session, reference = pair[1], pair[2]
    sent = make_dataset(patient_id="STRAIGHT", patient_name="Straight^Sam", study_uid=uid("straight", "study"),
                        series_uid=uid("straight", "series"), sop_uid=uid("straight", 1))
    ours, theirs = _both(pair, "store-straight", to_bytes(sent))
    assert ours == theirs == (200, {"SOPClassUID": str(sent.SOPClassUID), "SOPInstanceUID": str(sent.SOPInstanceUID)})
    assert reference.session.post(reference.url + "/tools/lookup", data=str(sent.SOPInstanceUID)).json()
    assert not ours_session.post(pair[0].url + "/tools/lookup", data=str(sent.SOPInstanceUID)).json()
    for garbage in (b"garbage", b""):
        ours, theirs = _both(pair, "store-straight", garbage)
        assert ours[0] == theirs[0] == 400 and ours[1]["Details"] == theirs[1]["Details"]
