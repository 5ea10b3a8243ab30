"""The catalog's relations in-process: shares (labels per project, conflicts, clean-up), assessors (their folders,
their end with the session), reconstructions, the catalog refresh, the prearchive code and headers pulled from
uploaded DICOM files."""

from __future__ import annotations

import io

import pytest

from pacsbox.core.archive import Origin
from pacsbox.core.assembly import open_archive
from pacsbox.core.catalog_import import ImportRequest
from pacsbox.core.config import Config
from pacsbox.core.errors import BadRequest, Conflict, UnknownResource
from tests.support.dicomgen import make_dataset, to_bytes, uid, zip_of


@pytest.fixture
def archive(tmp_path):
    opened = open_archive(Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, XnatSiteId="T"))
    yield opened
    opened.close()


@pytest.fixture
def session(archive):
    catalog = archive.catalog
    for project in ("P", "Q"):
        catalog.put_project(project, {})
    experiment, _ = catalog.put_experiment("P", "s1", "e1", "xnat:mrSessionData", {})
    return experiment


def test_shares(archive, session):
    catalog = archive.catalog
    subject = catalog.subject("P", "s1")
    catalog.sharing.share("subject", subject.id, "Q", "alias")
    assert catalog.subject("Q", "alias").id == subject.id
    assert [s.id for s in catalog.list_subjects("Q")] == [subject.id]
    catalog.put_subject("Q", "native", {})
    other, _ = catalog.put_subject("P", "s2", {})
    with pytest.raises(Conflict):  # the label is taken in Q
        catalog.sharing.share("subject", other.id, "Q", "native")
    with pytest.raises(BadRequest):
        catalog.sharing.share("subject", subject.id, "P")
    with pytest.raises(UnknownResource):
        catalog.sharing.share("subject", subject.id, "NOPE")
    catalog.delete_subject("P", "s1", remove_files=False)
    assert [s.label for s in catalog.list_subjects("Q")] == ["native"]
    with archive.index.reading() as db:
        assert db.execute("SELECT COUNT(*) FROM xnat_shares").fetchone()[0] == 0


def test_assessors_live_in_their_session(archive, session, tmp_path):
    catalog = archive.catalog
    assessor, created = catalog.assessors.put(session, "qc", "xnat:qcAssessmentData", {"type": "manual"})
    assert created and assessor.fields["data"]["type"] == "manual"
    owner = catalog.resources.owner(project="P", experiment=assessor)
    catalog.resources.upload(owner, "OUT", "a.txt", io.BytesIO(b"a"), overwrite=False, extract=False, fields={})
    assert (tmp_path / "archive/P/arc001/e1/ASSESSORS/qc/OUT/a.txt").read_bytes() == b"a"
    with pytest.raises(BadRequest):
        catalog.assessors.put(assessor, "qc_of_qc", "xnat:qcAssessmentData", {})
    catalog.delete_experiment("P", "e1", remove_files=False)
    with pytest.raises(UnknownResource):
        catalog.experiment(None, assessor.id)


def test_reconstructions_and_refresh(archive, session, tmp_path):
    catalog = archive.catalog
    reconstruction, _ = catalog.reconstructions.put(session, "r1", "xnat:reconstructedImageData", {"type": "T1"})
    owner = catalog.resources.owner(project="P", experiment=session, reconstruction=reconstruction.id)
    catalog.resources.upload(owner, "NII", "t1.nii", io.BytesIO(b"nii"), overwrite=False, extract=False, fields={})
    folder = tmp_path / "archive/P/arc001/e1/PROCESSED/r1/NII"
    (folder / "by_hand.txt").write_bytes(b"hand")
    (folder / "t1.nii").unlink()
    resource = catalog.resources.get(owner, "NII")
    assert catalog.resources.refresh(resource, append=True, delete=True, checksum=True) == {
        "appended": 1, "deleted": 1, "checksummed": 0}
    assert [entry.path for entry in catalog.resources.files(resource)] == ["by_hand.txt"]
    catalog.reconstructions.delete(session, "r1")
    assert not folder.exists()
    with pytest.raises(UnknownResource):
        catalog.resources.get(owner, "NII")


def test_prearchive_code_decides_an_import_without_destination(archive):
    catalog = archive.catalog
    catalog.put_project("AUTO", {})
    catalog.put_project("HOLD", {})
    catalog.set_project_setting("HOLD", "prearchive_code", 0)
    origin = Origin("RestApi")

    def upload(project: str, key: str) -> str:
        files = [(f"{n}.dcm", to_bytes(make_dataset(patient_id=key, patient_name="N", study_uid=uid("st", key),
                                                    series_uid=uid("se", key), sop_uid=uid("in", key, n))))
                 for n in (1, 2)]
        request = ImportRequest(to_archive=None, project=project, subject="s", session=key)
        return catalog.importer.import_upload(io.BytesIO(zip_of([*files, ("notes.txt", b"text")])), request,
                                              origin)[0]

    assert upload("AUTO", "a1").startswith("/archive/projects/AUTO/")
    assert upload("HOLD", "h1").startswith("/prearchive/projects/HOLD/")


def test_pull_data_from_headers(archive, session):
    catalog = archive.catalog
    catalog.put_scan(session, "1", "xnat:mrScanData", {})
    owner = catalog.resources.owner(project="P", experiment=session, scan="1")
    for n in (1, 2):
        data = to_bytes(make_dataset(patient_id="p", patient_name="N", study_uid=uid("hs"), series_uid=uid("hse"),
                                     sop_uid=uid("hi", n), modality="MR", extra={"SeriesDescription": "t1"}))
        catalog.resources.upload(owner, "DICOM", f"{n}.dcm", io.BytesIO(data), overwrite=False, extract=False,
                                 fields={})
    declared = {"UID", "frames", "type", "series_description", "modality"}
    catalog.headers.pull_data_from_headers(session, lambda xsi_type, path: path in declared)
    data = catalog.scan(session, "1").fields["data"]
    assert (data["UID"], data["frames"], data["type"], data["modality"]) == (uid("hse"), "2", "t1", "MR")
    assert "scanner/manufacturer" not in data  # not declared: left out
