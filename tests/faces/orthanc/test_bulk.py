"""Differential tests of POST /tools/bulk-content and /tools/bulk-delete (Orthanc 1.9.4+, present in 1.10.1): the
same resources in pacsbox and the real Orthanc (made by create-dicom with fixed identifiers and dates, so that every
ID and main tag is equal), the same requests, the answers compared as JSON (dates and storage identity ignored)."""

from __future__ import annotations

import pytest

from tests.support.compare import DEFAULT_IGNORE_KEYS, assert_equivalent
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

ROOT = "1.2.826.0.1.3680043.10.1137.79"
STAMPS = {"InstanceCreationDate": "20240101", "InstanceCreationTime": "120000", "StudyDate": "20240101",
          "StudyTime": "120000", "SeriesDate": "20240101", "SeriesTime": "120000", "AcquisitionDate": "20240101",
          "AcquisitionTime": "120000", "ContentDate": "20240101", "ContentTime": "120000"}
# patient, study, series, instance numbers: two patients, the first with two studies, a series of two instances
LAYOUT = [(1, 1, 1, 1), (1, 1, 1, 2), (1, 1, 2, 1), (1, 2, 1, 1), (2, 1, 1, 1)]


def _tags(patient: int, study: int, series: int, instance: int) -> dict[str, str]:
    study_uid = f"{ROOT}.{patient}.{study}"
    return {**STAMPS, "PatientID": f"BULK-{patient}", "PatientName": f"Bulk^{patient}", "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": f"{study_uid}.{series}", "SOPInstanceUID": f"{study_uid}.{series}.{instance}",
            "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "Modality": "OT", "StudyDescription": f"Study {study}",
            "SeriesNumber": str(series), "InstanceNumber": str(instance), "AccessionNumber": f"A{patient}{study}"}


class Pair:
    def __init__(self, ours, reference) -> None:
        self.servers = (ours, reference)
        self.sessions = (ours.session(), reference.session)

    def post(self, path: str, **kwargs):
        return tuple(session.post(server.url + path, timeout=30, **kwargs)
                     for session, server in zip(self.sessions, self.servers, strict=True))

    def get(self, path: str):
        return tuple(session.get(server.url + path, timeout=30).json()
                     for session, server in zip(self.sessions, self.servers, strict=True))

    def populate(self) -> dict[str, list[str]]:
        for numbers in LAYOUT:
            ours, reference = self.post("/tools/create-dicom", json={"Tags": _tags(*numbers), "Force": True})
            assert ours.status_code == reference.status_code == 200, (ours.text, reference.text)
            assert ours.json() == reference.json()
        listed = {}
        for level in ("patients", "studies", "series", "instances"):
            mine, theirs = self.get(f"/{level}")
            assert sorted(mine) == sorted(theirs)
            listed[level] = sorted(theirs)
        return listed


@pytest.fixture(scope="module")
def pair(reference_orthanc):
    with RunningPacsbox() as ours:
        both = Pair(ours, reference_orthanc)
        both.listed = both.populate()
        yield both


def compare(pair: Pair, path: str, body) -> object:
    ours, reference = pair.post(path, json=body)
    assert ours.status_code == reference.status_code, (body, ours.text, reference.text)
    if reference.content.strip():  # JSON (Orthanc labels its error bodies text/plain)
        assert_equivalent(ours.json(), reference.json(), context=f"{path} {body}", ignore_keys=DEFAULT_IGNORE_KEYS)
        return ours.json()
    assert ours.content == reference.content
    return ours.content


def test_each_resource_at_its_own_level_in_order(pair):
    listed = pair.listed
    mixed = [listed["instances"][2], listed["series"][0], "unknown-id", listed["studies"][1], listed["patients"][0],
             listed["instances"][2]]
    answer = compare(pair, "/tools/bulk-content", {"Resources": mixed})
    assert [item["Type"] for item in answer] == ["Instance", "Series", "Study", "Patient", "Instance"]
    assert all("Metadata" in item for item in answer)


@pytest.mark.parametrize("level", ["Patient", "Study", "Series", "Instance", "series", "instance"])
def test_level_moves_up_and_down(pair, level):
    listed = pair.listed
    resources = [listed["patients"][0], listed["studies"][0], listed["series"][1], listed["instances"][3], "nope"]
    answer = compare(pair, "/tools/bulk-content", {"Resources": resources, "Level": level})
    assert len({item["ID"] for item in answer}) == len(answer) > 0


@pytest.mark.parametrize("options", [
    {"Metadata": False}, {"Full": True}, {"Short": True}, {"Full": True, "Short": True},
    {"Full": True, "Level": "Study"}, {"Short": True, "Level": "Patient", "Metadata": False}, {"Expand": True},
])
def test_forms_and_metadata(pair, options):
    resources = [pair.listed["studies"][0], pair.listed["instances"][0], pair.listed["series"][2]]
    compare(pair, "/tools/bulk-content", {"Resources": resources, **options})


@pytest.mark.parametrize("body", [
    {"Resources": []}, {"Resources": ["nope"]}, {}, {"Resources": "x"}, {"Resources": [1]},
    {"Resources": [], "Level": "Foo"}, {"Resources": [], "Level": 3}, {"Resources": [], "Metadata": "no"},
    {"Resources": [], "Full": "x"}, {"Resources": [], "Short": 1}, [], "text",
], ids=lambda body: repr(body)[:40])
def test_bulk_content_bad_or_empty(pair, body):
    compare(pair, "/tools/bulk-content", body)


@pytest.mark.parametrize("body", [{}, {"Resources": "x"}, {"Resources": [1]}, [], "text"],
                         ids=lambda body: repr(body)[:40])
def test_bulk_delete_bad_bodies(pair, body):
    compare(pair, "/tools/bulk-delete", body)
    for level in ("patients", "instances"):
        mine, theirs = pair.get(f"/{level}")
        assert sorted(mine) == sorted(theirs) == pair.listed[level]


def test_bulk_delete(reference_orthanc):
    """Its own servers: one of each level, an unknown ID, a resource gone with its parent, a duplicate."""
    with RunningPacsbox() as ours, ReferenceOrthanc(graceful_stop=False) as reference:
        both = Pair(ours, reference)
        listed = both.populate()
        first_patient_studies = both.get(f"/patients/{listed['patients'][0]}")[1]["Studies"]
        instance_of_second_patient = both.get(f"/patients/{listed['patients'][1]}/instances")[1][0]["ID"]
        compare(both, "/tools/bulk-delete", {"Resources": ["unknown-id", first_patient_studies[0]]})
        for level in ("patients", "studies", "series", "instances"):
            mine, theirs = both.get(f"/{level}")
            assert sorted(mine) == sorted(theirs), level
        assert len(theirs) == 2  # the second study's instance and the second patient's
        doomed = [instance_of_second_patient, "unknown-id", first_patient_studies[0], listed["patients"][0],
                  first_patient_studies[1], instance_of_second_patient]
        compare(both, "/tools/bulk-delete", {"Resources": doomed})
        for level in ("patients", "studies", "series", "instances"):
            mine, theirs = both.get(f"/{level}")
            assert sorted(mine) == sorted(theirs) == [], level
        changes = both.get("/changes?limit=100")
        assert [c["ChangeType"] for c in changes[0]["Changes"]] == [c["ChangeType"] for c in changes[1]["Changes"]]
        compare(both, "/tools/bulk-delete", {"Resources": []})
        compare(both, "/tools/bulk-delete", {"Resources": ["nope"]})
