"""pdf, module, module-patient, instances-tags, ordered-slices, export and reconstruct, compared with the real
Orthanc 1.10.1 (status, JSON, bytes); export's refusals of hostile paths, on a server that allows exports."""

from __future__ import annotations

import base64
import os

import pytest

from tests.faces.orthanc.test_attachments import Pair
from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

# a small PDF of odd length: the DICOM value gets a pad byte, which /pdf must drop again
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
assert len(PDF) % 2 == 1


def _loaded_pair(files):
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox() as ours:
        both = Pair(ours, reference)
        for _, data in files:
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200
        yield both


@pytest.fixture(scope="module")
def pair(corpus):
    """Both servers holding the corpus; tests that use it leave both as they found them (any order)."""
    yield from _loaded_pair(corpus)


@pytest.fixture
def own_pair(corpus):
    """A pair of this test's own, holding the first file of the corpus: for tests that add resources (created
    ones get different IDs on each side, which the module pair's every-resource comparisons could not match)."""
    yield from _loaded_pair(corpus[:1])


def _ids(pair: Pair, level: str) -> list[str]:
    return pair.reference_session.get(f"{pair.reference.url}/{level}").json()


def test_module_at_every_level(pair):
    for level in ("patients", "studies", "series", "instances"):
        for public_id in _ids(pair, level):
            for query in ("", "?simplify", "?short"):
                pair.same("GET", f"/{level}/{public_id}/module{query}", compare=("Content-Type",))
    for public_id in _ids(pair, "studies"):
        for query in ("", "?simplify"):
            pair.same("GET", f"/studies/{public_id}/module-patient{query}")
    instance = _ids(pair, "instances")[0]
    for path in (f"/series/{_ids(pair, 'series')[0]}/module-patient", f"/instances/{instance}/module-patient",
                 "/studies/nosuchstudy/module", f"/patients/{_ids(pair, 'patients')[0]}/module-patient"):
        assert pair.same("GET", path).status_code == 404


def test_instances_tags(pair):
    for level in ("patients", "studies", "series"):
        for public_id in _ids(pair, level)[:4]:
            for query in ("", "?simplify", "?short"):
                pair.same("GET", f"/{level}/{public_id}/instances-tags{query}")
    assert pair.same("GET", f"/instances/{_ids(pair, 'instances')[0]}/instances-tags").status_code == 404


def test_ordered_slices_of_every_series(pair):
    for series in _ids(pair, "series"):
        pair.same("GET", f"/series/{series}/ordered-slices")
    assert pair.same("GET", "/series/nosuchseries/ordered-slices").status_code == 404


def test_ordered_slices_of_series_without_order(own_pair):
    """Slices without positions: by InstanceNumber, or (two alike) no order at all."""
    pair = own_pair
    for series_key, numbers in (("by-number", (3, 1, 2)), ("alike", (1, 1)), ("unordered", (1, None)),
                                ("alone", (None,))):
        for index, number in enumerate(numbers):
            dataset = make_dataset(patient_id="ORDER", patient_name="Order^Olga", study_uid=uid("order-st"),
                                   series_uid=uid("order-se", series_key), sop_uid=uid("order-in", series_key, index),
                                   instance_number=number or 1)
            del dataset.ImagePositionPatient
            if number is None:
                del dataset.InstanceNumber
            ours, reference = pair.call("POST", "/instances", data=to_bytes(dataset))
            assert ours.status_code == reference.status_code == 200
        ordered = pair.same("GET", f"/series/{ours.json()['ParentSeries']}/ordered-slices")
        assert ordered.status_code == (500 if series_key == "unordered" else 200), series_key


def test_pdf(own_pair):
    pair = own_pair
    request = {"Tags": {"PatientID": "PDF-1", "PatientName": "Pdf^Paula"},
               "Content": "data:application/pdf;base64," + base64.b64encode(PDF).decode()}
    ours, reference = pair.call("POST", "/tools/create-dicom", json=request)
    assert ours.status_code == reference.status_code == 200
    mine = pair.ours_session.get(f"{pair.ours.url}/instances/{ours.json()['ID']}/pdf")
    theirs = pair.reference_session.get(f"{pair.reference.url}/instances/{reference.json()['ID']}/pdf")
    assert mine.status_code == theirs.status_code == 200
    assert mine.content == theirs.content == PDF
    assert mine.headers["content-type"] == theirs.headers["content-type"] == "application/pdf"
    ours = pair.same("GET", f"/instances/{_ids(pair, 'instances')[0]}/pdf")  # not a PDF: a bare 404
    assert ours.status_code == 404 and ours.content == b""
    assert pair.same("GET", "/instances/nosuchinstance/pdf").status_code == 404


def test_reconstruct_keeps_everything(pair):
    instance, series = _ids(pair, "instances")[0], _ids(pair, "series")[0]
    before = pair.ours_session.get(f"{pair.ours.url}/series/{series}?expand").json()
    statistics = pair.ours_session.get(f"{pair.ours.url}/statistics").json()
    for path in (f"/instances/{instance}/reconstruct", f"/series/{series}/reconstruct", "/tools/reconstruct"):
        pair.same("POST", path, compare=("Content-Type",))
        pair.same("POST", path, data=b'{"ReconstructFiles": false}')
    assert pair.same("POST", "/series/nosuchseries/reconstruct").status_code == 404
    assert pair.ours_session.get(f"{pair.ours.url}/series/{series}?expand").json() == before
    assert pair.ours_session.get(f"{pair.ours.url}/statistics").json() == statistics
    pair.same("GET", f"/series/{series}")


def test_export_is_off_by_default(pair, tmp_path):
    instance = _ids(pair, "instances")[0]
    ours = pair.same("POST", f"/instances/{instance}/export", data=str(tmp_path / "x.dcm").encode())
    assert ours.status_code == 403 and ours.content == b""
    assert not (tmp_path / "x.dcm").exists()
    ours, reference = pair.call("GET", f"/instances/{instance}/export")
    assert ours.status_code == reference.status_code == 405


def test_export_refuses_hostile_paths(corpus, tmp_path):
    with RunningPacsbox({"RestApiWriteToFileSystemEnabled": True}) as ours:
        session = ours.session()
        instance = session.post(f"{ours.url}/instances", data=corpus[0][1]).json()["ID"]
        url = f"{ours.url}/instances/{instance}/export"
        (tmp_path / "folder").mkdir()
        (tmp_path / "elsewhere.dcm").write_bytes(b"keep me")
        os.symlink(tmp_path / "elsewhere.dcm", tmp_path / "link.dcm")
        storage = ours.data_dir
        hostile = ["relative.dcm", "", f"{tmp_path}/../{tmp_path.name}/x.dcm", f"{tmp_path}/nosuchfolder/x.dcm",
                   str(tmp_path / "folder"), str(tmp_path / "link.dcm"), f"{storage}/x.dcm", f"{tmp_path}/x\0.dcm"]
        for path in hostile:
            answer = session.post(url, data=path.encode())
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["OrthancStatus"] == 14 and answer.json()["Message"] == "Cannot write to file"
        assert (tmp_path / "elsewhere.dcm").read_bytes() == b"keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.dcm", "folder", "link.dcm"]
        answer = session.post(url, data=str(tmp_path / "copy.dcm").encode())
        assert answer.status_code == 200 and answer.json() == {}
        assert (tmp_path / "copy.dcm").read_bytes() == session.get(f"{ours.url}/instances/{instance}/file").content
        assert session.get(f"{ours.url}/statistics").json()["CountInstances"] == 1
