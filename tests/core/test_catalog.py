"""The XNAT catalog in-process: C-STORE routing into the prearchive, persistence, reset, crash sweep, field
paths, label rules and safe archive names."""

from __future__ import annotations

import io
import os
import time

import pytest

from pacsbox.core.archive import Origin
from pacsbox.core.assembly import open_archive
from pacsbox.core.catalog_fields import apply_updates
from pacsbox.core.catalog_import import UNASSIGNED, ImportRequest, routing_of
from pacsbox.core.catalog_layout import TEMPORARY_SUFFIX
from pacsbox.core.config import Config
from pacsbox.core.dicom import parse_instance
from pacsbox.core.errors import BadRequest, Conflict
from pacsbox.core.ids import Level
from pacsbox.core.unpack import safe_relative_path
from tests.support.dicomgen import make_dataset, to_bytes, uid, zip_of

DICOM = Origin("DicomProtocol", remote_ip="127.0.0.1", remote_aet="MODALITY", called_aet="PACSBOX")


def instance(key: str, number: int = 1, **extra) -> bytes:
    ds = make_dataset(patient_id=f"PID_{key}", patient_name=f"Name^{key}", study_uid=uid("study", key),
                      series_uid=uid("series", key), sop_uid=uid("instance", key, number), modality="MR",
                      instance_number=number, extra=extra)
    return to_bytes(ds)


@pytest.fixture
def archive(tmp_path):
    opened = open_archive(Config(StorageDirectory=str(tmp_path), SyncStorageArea=False, StableAge=1, XnatSiteId="T"))
    yield opened
    opened.close()


def test_cstore_routes_to_the_project_the_tags_name(archive, tmp_path):
    archive.catalog.put_project("ROUTED", {})
    for number in (1, 2):
        archive.store(instance("routed", number, PatientComments="Project:ROUTED Subject:s1 Session:sess1"), DICOM)
    archive.store(instance("lost"), DICOM)
    archive.store(instance("rest"), Origin("RestApi"))  # not received over DICOM: not in the prearchive
    # receiving writes rows only: the prearchive folder appears when the prearchive is read
    assert not (tmp_path / "prearchive").exists()
    prearchive = archive.catalog.importer.prearchive
    sessions = {s.project: s for s in prearchive.sessions()}
    assert set(sessions) == {"ROUTED", UNASSIGNED}
    routed = sessions["ROUTED"]
    assert (routed.name, routed.subject, routed.instance_count, routed.status) == ("sess1", "s1", 2, "RECEIVING")
    assert (sessions[UNASSIGNED].name, sessions[UNASSIGNED].subject) == ("PID_lost", "Name_lost")
    files = prearchive.scans(routed)[0].files
    folder = tmp_path / "prearchive/ROUTED" / routed.timestamp / "sess1/SCANS/1/DICOM"
    for entry in files:  # hard links to the stored files, no copies
        assert (folder / entry.path).stat().st_ino == entry.disk.stat().st_ino
    time.sleep(1.1)
    assert prearchive.session("ROUTED", routed.timestamp, "sess1").status == "READY"
    experiment = prearchive.archive(prearchive.session("ROUTED", routed.timestamp, "sess1"))
    assert (experiment.project, experiment.label, experiment.subject_label) == ("ROUTED", "sess1", "s1")
    assert [s.project for s in prearchive.sessions()] == [UNASSIGNED]
    with pytest.raises(BadRequest, match="project"):
        prearchive.archive(prearchive.sessions()[0])  # Unassigned needs a project


def test_catalog_survives_a_restart_and_reset_empties_it(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False)
    first = open_archive(config)
    first.catalog.put_project("KEPT", {"description": "kept"})
    paths = first.catalog.importer.import_upload(io.BytesIO(zip_of([("a.dcm", instance("kept"))])),
                                                 ImportRequest(True, "KEPT", "subj", "sess"), Origin("RestApi"))
    first.close()
    second = open_archive(config)
    try:
        assert second.catalog.project("KEPT").fields["data"]["description"] == "kept"
        experiment = second.catalog.experiment("KEPT", "sess")
        assert paths == [f"/archive/projects/KEPT/subjects/{experiment.subject}/experiments/{experiment.id}"]
        assert experiment.id == "XNAT_E00001"
        second.catalog.put_experiment("KEPT", "subj", "sess2", "xnat:mrSessionData", {})
        assert second.catalog.experiment("KEPT", "sess2").id == "XNAT_E00002"  # counters persist too
        second.reset()
        assert second.catalog.list_projects() == []
        assert not (tmp_path / "archive").exists()
        assert second.statistics()["instances"] == 0
    finally:
        second.close()


def test_an_unclean_stop_leaves_no_temporary_file(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), SyncStorageArea=False)
    first = open_archive(config)
    first.catalog.put_project("P", {})
    leftover = tmp_path / "archive/P/resources/R" / f".half.txt.123{TEMPORARY_SUFFIX}"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    first.index.close()  # no clean close: the "open" mark stays, as after a crash
    second = open_archive(config)
    try:
        assert second.recovery is not None  # swept in the background once the server answers (core.recovery)
        second.recovery.run()
        assert not leftover.exists()
        assert second.catalog.project("P").id == "P"
    finally:
        second.close()


def test_deleting_through_the_archive_refreshes_the_session_folder(archive, tmp_path):
    archive.catalog.put_project("P", {})
    body = zip_of([("1.dcm", instance("del", 1)), ("2.dcm", instance("del", 2))])
    archive.catalog.importer.import_upload(io.BytesIO(body), ImportRequest(True, "P", "s", "e"), Origin("RestApi"))
    folder = tmp_path / "archive/P/arc001/e/SCANS/1/DICOM"
    assert len(os.listdir(folder)) == 2
    victim = archive.list_ids(Level.INSTANCE)[0]
    archive.delete(Level.INSTANCE, victim)
    assert len(os.listdir(folder)) == 1
    with pytest.raises(Conflict):
        archive.catalog.importer.import_upload(io.BytesIO(body), ImportRequest(True, "P", "s", "e"),
                                               Origin("RestApi"))


def test_field_paths():
    fields = apply_updates({}, {
        "name": "n",
        "PI/firstname": "Ada",
        "demographics[@xsi:type=xnat:demographicData]/gender": "female",
        "fields/field[name=group]/field": "control",
        "fields/field[name=site]/field": "A",
    }, "xnat:subjectData")
    assert fields["data"] == {"name": "n", "PI/firstname": "Ada"}
    assert fields["children"]["demographics"] == {"xsi_type": "xnat:demographicData", "key": None,
                                                  "items": [{"gender": "female"}]}
    assert fields["children"]["fields/field"]["items"] == [{"name": "group", "field": "control"},
                                                           {"name": "site", "field": "A"}]
    removed = apply_updates(fields, {"name": "NULL", "fields/field[name=group]/field": "NULL",
                                     "demographics[@xsi:type=xnat:demographicData]/gender": "NULL"},
                            "xnat:subjectData")
    assert removed["data"] == {"PI/firstname": "Ada"}
    assert removed["children"]["fields/field"]["items"] == [{"name": "site", "field": "A"}]
    assert "demographics" not in removed["children"]
    with pytest.raises(BadRequest):
        apply_updates({}, {"demographics[@xsi:type=xnat:demographicData]": "x"}, "xnat:subjectData")


def test_label_rules():
    comments = parse_instance(instance("r", PatientComments="Project: P1; Subject: S1; Session: E1"))
    assert (comments.study_uid and routing_of(comments).projects[0], routing_of(comments).subject,
            routing_of(comments).session) == ("P1", "S1", "E1")
    study = parse_instance(instance("r", StudyComments="Project:P2 Session:E2", StudyDescription="Desc"))
    assert routing_of(study).projects[:2] == ("P2", "Desc")
    assert routing_of(study).session == "E2"
    assert routing_of(study).subject == "Name_r"  # from PatientName, made a label
    plain = parse_instance(instance("r"))
    assert routing_of(plain).session == "PID_r"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\..\\..\\x", "a\x00b"])
def test_unsafe_names(name):
    with pytest.raises(BadRequest):
        safe_relative_path(name)


def test_safe_names():
    assert safe_relative_path("./a//b/c.txt") == "a/b/c.txt"
    assert safe_relative_path("dir\\file.dcm") == "dir/file.dcm"
