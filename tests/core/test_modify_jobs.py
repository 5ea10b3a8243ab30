"""Modification jobs in-process: interrupted between two instances, saved and rebuilt (as SaveJobs does across a
restart), they go on where they stopped and map UIDs as if never interrupted; merge and split the same."""

from __future__ import annotations

import json

import pytest

from pacsbox.core.anonymization import profile
from pacsbox.core.archive import Archive
from pacsbox.core.config import Config
from pacsbox.core.events import Origin
from pacsbox.core.ids import Level
from pacsbox.core.jobs import JobInterrupted
from pacsbox.core.modification import DicomPath, Modification
from pacsbox.core.modify_jobs import MergeStudyJob, ResourceModificationJob, SplitStudyJob
from pacsbox.core.modify_jobs_saved import load, load_modification, save_modification
from tests.support.dicomgen import standard_corpus


class StopAfter:
    """A jobs engine's context that interrupts the job after ``count`` instances (as a pause or a stop would)."""

    def __init__(self, count: int | None) -> None:
        self.count, self.content, self.fractions = count, {}, []

    def progress(self, fraction: float) -> None:
        self.fractions.append(fraction)

    def checkpoint(self) -> None:
        if self.count is not None and len(self.fractions) >= self.count:
            raise JobInterrupted()

    def add_output(self, key: str, data: bytes, mime: str) -> None:
        raise AssertionError("no outputs expected")


@pytest.fixture
def archive(tmp_path):
    opened = Archive(Config(StorageDirectory=str(tmp_path / "storage")))
    for _, data in standard_corpus():
        opened.store(data)
    yield opened
    opened.close()


def _study_of(archive: Archive, patient_id: str, index: int = 0) -> str:
    patient = next(row for row in archive.list_resources(Level.PATIENT) if row.main_tags["PatientID"] == patient_id)
    return sorted(row.public_id for row in archive.related(Level.PATIENT, patient.public_id, Level.STUDY))[index]


def _interrupted_then_resumed(archive: Archive, job, stop_after: int):
    with pytest.raises(JobInterrupted):
        job.run(StopAfter(stop_after))
    saved = json.loads(json.dumps(job.serialize()))  # (as the engine keeps it in the index)
    return load(archive, saved).run(StopAfter(None))


def test_anonymization_resumes_after_a_restart(archive):
    study = next(s for s in (_study_of(archive, "PBX-001", i) for i in (0, 1))
                 if len(archive.related(Level.STUDY, s, Level.SERIES)) == 3)  # the MR study: 3 series, 8 instances
    job = ResourceModificationJob(archive, Modification.anonymization(profile("2021b")), [(Level.STUDY, study)],
                                  bulk=False, keep_source=True, origin=Origin("RestApi"))
    answer = _interrupted_then_resumed(archive, job, 3)
    assert answer["Type"] == "Study" and answer["InstancesCount"] == 8
    new = archive.resource(Level.STUDY, answer["ID"])
    assert len(archive.instance_ids_below(Level.STUDY, new.public_id)) == 8  # one study, whatever the restart
    assert len(archive.related(Level.STUDY, new.public_id, Level.SERIES)) == 3
    assert archive.metadata(Level.STUDY, new.public_id)["AnonymizedFrom"] == study


def test_merge_and_split_resume(archive):
    target, source = _study_of(archive, "PBX-002", 0), _study_of(archive, "PBX-002", 1)
    merge = MergeStudyJob(archive, target, [source], keep_source=False, origin=Origin("RestApi"))
    assert _interrupted_then_resumed(archive, merge, 1)["TargetStudy"] == target
    assert not archive.exists(Level.STUDY, source)
    assert len(archive.related(Level.STUDY, target, Level.SERIES)) == 2
    series = sorted(row.public_id for row in archive.related(Level.STUDY, target, Level.SERIES))[0]
    split = SplitStudyJob(archive, target, archive.instance_ids_below(Level.SERIES, series), Modification(Level.STUDY),
                          keep_source=False, origin=Origin("RestApi"))
    answer = _interrupted_then_resumed(archive, split, 1)
    assert len(archive.instance_ids_below(Level.STUDY, answer["TargetStudy"])) == 2
    assert archive.resource(Level.STUDY, answer["TargetStudy"]).main_tags["StudyInstanceUID"] == \
        answer["TargetStudyUID"]


def test_a_saved_modification_is_the_same_modification():
    modification = Modification.anonymization(profile("2017c"))
    modification.keep(0x00081030)
    modification.replace(0x00100010, "Given^Name")
    modification.remove_path(DicomPath(((0x00081140, None),), 0x00081150))
    modification.replace_path(DicomPath(((0x00081140, 1), (0x00081115, 0)), 0x00081155), "1.2.3")
    assert load_modification(json.loads(json.dumps(save_modification(modification)))) == modification
