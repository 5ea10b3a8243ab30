"""Modification, merge and split jobs saved with ``SaveJobs`` and rebuilt after a restart, where they left off.

Orthanc saves these jobs in its database and resumes them on start; so does pacsbox, through the jobs engine's
``serialize`` / ``register_loader`` seam. What is saved: the request (the modification, the instances, the
options), the position reached, and what a job needs to go on consistently (the UIDs it has already mapped, the
resources it made).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .events import Origin
from .ids import Level

if TYPE_CHECKING:  # the modification modules (and pydicom) load with the first job, not with the server
    from .archive import Archive
    from .modification import DicomPath, Modification
    from .modify_jobs import _InstancesJob

# the ``job_type`` of ResourceModificationJob, MergeStudyJob and SplitStudyJob: the engine is taught to rebuild them
# at start without importing them, as most starts have no saved job to rebuild
JOB_TYPES = ("ResourceModification", "MergeStudy", "SplitStudy")


def save_modification(modification: Modification) -> dict[str, Any]:
    return {
        "Level": int(modification.level),
        "Replacements": [[tag, value] for tag, value in modification.replacements.items()],
        "Removals": sorted(modification.removals), "Clearings": sorted(modification.clearings),
        "Kept": sorted(modification.kept), "KeptUids": sorted(modification.kept_uids),
        "PrivateTagsToKeep": sorted(modification.private_tags_to_keep),
        "RemovePrivateTags": modification.remove_private_tags,
        "Profile": modification.profile.version if modification.profile else None,
        "PrivateCreator": modification.private_creator, "OrthancProfile": modification._orthanc_profile,
        "PathRemovals": [[list(map(list, path.prefix)), path.tag] for path in modification.path_removals],
        "PathReplacements": [[list(map(list, path.prefix)), path.tag, value]
                             for path, value in modification.path_replacements],
    }


def load_modification(saved: dict[str, Any]) -> Modification:
    from .anonymization import profile
    from .modification import Modification

    return Modification(
        Level(saved["Level"]), replacements={int(tag): value for tag, value in saved["Replacements"]},
        removals=set(saved["Removals"]), clearings=set(saved["Clearings"]), kept=set(saved["Kept"]),
        kept_uids=set(saved["KeptUids"]), private_tags_to_keep=set(saved["PrivateTagsToKeep"]),
        remove_private_tags=saved["RemovePrivateTags"],
        profile=profile(saved["Profile"]) if saved["Profile"] else None, private_creator=saved["PrivateCreator"],
        _orthanc_profile=saved["OrthancProfile"],
        path_removals=[_path(prefix, tag) for prefix, tag in saved["PathRemovals"]],
        path_replacements=[(_path(prefix, tag), value) for prefix, tag, value in saved["PathReplacements"]])


def _path(prefix: list, tag: int) -> DicomPath:
    from .modification import DicomPath

    return DicomPath(tuple((parent, index) for parent, index in prefix), tag)


def serialize(job: _InstancesJob) -> dict[str, Any]:
    """What to save of one of the three jobs (its position included), read consistently while it runs."""
    with job.state_lock, job.uids._lock:
        return _serialize(job)


def _serialize(job: _InstancesJob) -> dict[str, Any]:
    from .modify_jobs import MergeStudyJob, ResourceModificationJob, SplitStudyJob

    saved: dict[str, Any] = {
        "Type": job.job_type, "Instances": job.instance_ids, "KeepSource": job.keep_source,
        "Origin": asdict(job.origin), "Permissive": job.permissive, "Position": job.position, "Failed": job.failed,
        "Stored": sorted(job.stored), "Uids": [[kind, old, new] for (kind, old), new in job.uids._uids.items()],
        "Patients": [[old, *new] for old, new in job.uids._patients.items()],
    }
    if isinstance(job, ResourceModificationJob):
        output = job.output
        saved.update(Modification=save_modification(job.modification), Transcode=job.transcode_to,
                     OutputLevel=int(job.output_level), Bulk=job.bulk,
                     First=asdict(output.first) if output.first else None,
                     Made={int(level): sorted(ids) for level, ids in output.resources.items()})
    elif isinstance(job, MergeStudyJob):
        saved.update(TargetStudy=job.target_study)
    elif isinstance(job, SplitStudyJob):
        saved.update(SourceStudy=job.source_study, Changes=save_modification(job.changes))
    return saved


def load(archive: Archive, saved: dict[str, Any]) -> _InstancesJob:
    """A saved job rebuilt over ``archive``, ready to go on from where it was."""
    from .archive import StoreResult
    from .modification import UidMap
    from .modify_jobs import MergeStudyJob, ResourceModificationJob, SplitStudyJob, _InstancesJob, _Output

    origin = Origin(**saved["Origin"])
    job: _InstancesJob
    if saved["Type"] == ResourceModificationJob.job_type:
        job = ResourceModificationJob.__new__(ResourceModificationJob)
        job.modification, job.transcode_to = load_modification(saved["Modification"]), saved["Transcode"]
        job.output_level, job.bulk = Level(saved["OutputLevel"]), saved["Bulk"]
        _InstancesJob.__init__(job, archive, saved["Instances"], keep_source=saved["KeepSource"], origin=origin,
                               permissive=saved["Permissive"])
        job.output = _Output(job.output_level, single=not job.bulk,
                             first=StoreResult(**saved["First"]) if saved["First"] else None)
        for level, ids in saved["Made"].items():
            job.output.resources[Level(int(level))] = set(ids)
    elif saved["Type"] == MergeStudyJob.job_type:
        job = MergeStudyJob(archive, saved["TargetStudy"], [], keep_source=saved["KeepSource"], origin=origin)
        job.instance_ids = saved["Instances"]
    else:
        job = SplitStudyJob(archive, saved["SourceStudy"], saved["Instances"],
                            load_modification(saved["Changes"]), keep_source=saved["KeepSource"], origin=origin)
    job.position, job.failed, job.stored = saved["Position"], saved["Failed"], set(saved["Stored"])
    numbers = job.uids._next_patient_number
    job.uids = UidMap(numbers)
    job.uids._uids = {(kind, old): new for kind, old, new in saved["Uids"]}
    job.uids._patients = {old: (patient_id, name) for old, patient_id, name in saved["Patients"]}
    if isinstance(job, SplitStudyJob):
        job.target_uid = job.uids.uid(Level.STUDY.name, job.source_uid)
    return job


def register(jobs: Any, archive: Archive) -> None:
    """Teach the jobs engine to rebuild these jobs (``JobsEngine.register_loader``)."""
    for job_type in JOB_TYPES:
        jobs.register_loader(job_type, lambda saved: load(archive, saved))
