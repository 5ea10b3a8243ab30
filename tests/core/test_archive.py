"""The archive core in-process: ingest, identifiers, deletes, changes, metadata, find, recovery, threads."""

from __future__ import annotations

import io
import threading
import zipfile

import pytest

from pacsbox.core.archive import Archive, FindQuery, Origin
from pacsbox.core.config import Config
from pacsbox.core.errors import InexistentItem, InvalidDicom, OutOfRange, UnknownResource
from pacsbox.core.ids import Level, hash_id
from tests.support.dicomgen import make_dataset, to_bytes, uid, zip_of


def instance(n: int, *, patient: str = "P1", study: int = 0, series: int = 0, **extra) -> bytes:
    return to_bytes(make_dataset(patient_id=patient, patient_name="Doe^John", study_uid=uid("study", patient, study),
                                 series_uid=uid("series", patient, study, series), sop_uid=uid("sop", patient, study,
                                 series, n), instance_number=n, extra=extra or None))


@pytest.fixture
def archive(tmp_path):
    opened = Archive(Config(StorageDirectory=str(tmp_path / "storage")))
    yield opened
    opened.close()


def test_ids_follow_orthanc(archive):
    result = archive.store(instance(1), Origin("RestApi"))
    study_uid, series_uid, sop_uid = uid("study", "P1", 0), uid("series", "P1", 0, 0), uid("sop", "P1", 0, 0, 1)
    assert result.patient_id == hash_id("P1")
    assert result.instance_id == hash_id("P1", study_uid, series_uid, sop_uid)
    # The documented example: DummyCT's instance ID.
    assert hash_id("ozp00SjY2xG", "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390",
                   "1.2.840.113619.2.176.2025.1499492.7391.1171285944.394",
                   "1.2.840.113619.2.176.2025.1499492.7040.1171286242.109") == \
        "66a662ce-7430e543-bad44d47-0dc5a943-ec7a538d"


def test_second_upload_is_already_stored_and_changes_nothing(archive):
    first = archive.store(instance(1))
    before = archive.statistics()
    again = archive.store(instance(1))
    assert (first.status, again.status) == ("Success", "AlreadyStored")
    assert archive.statistics() == before
    assert archive.changes(0, 100)[2] == 4


def test_overwrite_replaces_the_file(tmp_path):
    archive = Archive(Config(StorageDirectory=str(tmp_path), OverwriteInstances=True))
    try:
        archive.store(instance(1, SeriesDescription="old"))
        result = archive.store(instance(1, SeriesDescription="new"))
        assert result.status == "Success"
        assert archive.instance_dataset(result.instance_id).SeriesDescription == "new"
        assert archive.statistics()["instances"] == 1
        assert len(list(archive.store_area.all_uuids())) == 1
    finally:
        archive.close()


def test_files_without_meta_header_and_implicit_vr(archive):
    data = to_bytes(make_dataset(patient_id="NM", patient_name="No^Meta", study_uid=uid("a"), series_uid=uid("b"),
                                 sop_uid=uid("c")), with_meta=False)
    result = archive.store(data)
    assert archive.metadata(Level.INSTANCE, result.instance_id)["TransferSyntax"] == "1.2.840.10008.1.2"
    assert archive.instance_bytes(result.instance_id) == data


@pytest.mark.parametrize("data", [b"", b"hello, not dicom" * 20, b"{\"json\": true}"], ids=["empty", "text", "json"])
def test_non_dicom_is_rejected(archive, data):
    with pytest.raises(InvalidDicom, match=rf"Cannot parse an invalid DICOM file \(size: {len(data)} bytes\)"):
        archive.store(data)
    assert archive.statistics()["instances"] == 0


def test_truncated_file_is_rejected(archive):
    data = instance(1)
    with pytest.raises(InvalidDicom, match="truncated"):
        archive.store(data[:-100])
    assert archive.statistics()["instances"] == 0
    assert list(archive.store_area.all_uuids()) == []


def test_zip_is_all_or_nothing(archive):
    good = [("a.dcm", instance(1)), ("b.dcm", instance(2))]
    with pytest.raises(InvalidDicom, match=r"Zip member 'bad\.txt'"):
        archive.store_zip(io.BytesIO(zip_of(good + [("bad.txt", b"not dicom")])))
    with pytest.raises(InvalidDicom, match="Unsafe path"):
        archive.store_zip(io.BytesIO(zip_of(good + [("../../evil.dcm", instance(3))])))
    assert archive.statistics()["instances"] == 0
    results = archive.store_zip(io.BytesIO(zip_of(good + [("DICOMDIR", b"ignored")])))
    assert [r.status for r in results] == ["Success", "Success"]


def test_delete_cascades_and_reports_the_remaining_ancestor(archive):
    one = archive.store(instance(1))
    two = archive.store(instance(2))
    assert archive.delete(Level.INSTANCE, one.instance_id) == (Level.SERIES, one.series_id)
    assert archive.delete(Level.INSTANCE, two.instance_id) is None
    assert archive.statistics() == {"patients": 0, "studies": 0, "series": 0, "instances": 0, "size": 0,
                                   "disk_size": 0}
    assert list(archive.store_area.all_uuids()) == []
    with pytest.raises(UnknownResource):
        archive.delete(Level.INSTANCE, one.instance_id)


def test_changes_order_and_paging(archive):
    result = archive.store(instance(1))
    archive.store(instance(2))
    page, done, last = archive.changes(0, 3)
    assert [(c.change_type, c.public_id) for c in page] == [
        ("NewInstance", result.instance_id), ("NewSeries", result.series_id), ("NewStudy", result.study_id)]
    assert (done, last) == (False, 3)
    page, done, last = archive.changes(3, 100)
    assert [c.change_type for c in page] == ["NewPatient", "NewInstance"]
    assert (done, last) == (True, 5)


def test_completed_series_change(archive):
    for n in (1, 2):
        archive.store(instance(n, CardiacNumberOfImages="2"))
    kinds = [c.change_type for c in archive.changes(0, 100)[0]]
    assert kinds[-1] == "CompletedSeries"
    series = archive.list_resources(Level.SERIES)[0]
    assert series.children_indexes == [1, 2]


def test_user_metadata_rules(tmp_path):
    archive = Archive(Config(StorageDirectory=str(tmp_path), UserMetadata={"Sample": 1024}))
    try:
        result = archive.store(instance(1))
        archive.set_metadata(Level.INSTANCE, result.instance_id, "Sample", "x")
        assert archive.metadata(Level.INSTANCE, result.instance_id)["Sample"] == "x"
        with pytest.raises(PermissionError):
            archive.set_metadata(Level.INSTANCE, result.instance_id, "RemoteAET", "x")
        with pytest.raises(InexistentItem):
            archive.set_metadata(Level.INSTANCE, result.instance_id, "Undeclared", "x")
        archive.delete_metadata(Level.INSTANCE, result.instance_id, "Sample")
        with pytest.raises(UnknownResource):
            archive.delete_metadata(Level.INSTANCE, result.instance_id, "Sample")
    finally:
        archive.close()


def _found(archive, level, query, **options):
    return [row.public_id for row in archive.find(FindQuery(level, query, **options))]


def test_find_matching_kinds(archive):
    ct = archive.store(instance(1, patient="A1", StudyDate="20200105", Modality="CT"))
    mr = archive.store(instance(1, patient="B2", StudyDate="20230707", Modality="MR", PatientName="Roe^Jane"))
    assert _found(archive, Level.PATIENT, {"PatientID": "A1"}) == [ct.patient_id]
    assert _found(archive, Level.PATIENT, {"PatientID": "a1"}) == [ct.patient_id]
    assert _found(archive, Level.PATIENT, {"PatientID": "a1"}, case_sensitive=True) == []
    assert _found(archive, Level.STUDY, {"PatientName": "r*^J?NE"}) == [mr.study_id]
    assert _found(archive, Level.STUDY, {"PatientID": "A1\\B2"}) == [ct.study_id, mr.study_id]
    assert _found(archive, Level.STUDY, {"StudyDate": "20210101-"}) == [mr.study_id]
    assert _found(archive, Level.STUDY, {"StudyDate": "-20210101"}) == [ct.study_id]
    assert _found(archive, Level.STUDY, {"StudyDate": "20200101-20201231"}) == [ct.study_id]
    assert _found(archive, Level.STUDY, {"ModalitiesInStudy": "MR"}) == [mr.study_id]
    assert _found(archive, Level.INSTANCE, {"Modality": "MR", "PatientName": "*"}) == [mr.instance_id]
    assert _found(archive, Level.INSTANCE, {}, since=1, limit=1) == [mr.instance_id]
    with pytest.raises(OutOfRange, match="Wildcards are not allowed on tag 0008,0020"):
        _found(archive, Level.STUDY, {"StudyDate": "2020*"})
    with pytest.raises(OutOfRange, match="Unknown DICOM tag"):
        _found(archive, Level.STUDY, {"NoSuchKeyword": "x"})


def test_find_on_tags_read_from_files(archive):
    thin = archive.store(instance(1, SliceThickness="1.25"))
    archive.store(instance(1, patient="P2", SliceThickness="5"))
    assert _found(archive, Level.SERIES, {"SliceThickness": "1.25"}) == [thin.series_id]
    assert _found(archive, Level.INSTANCE, {"SliceThickness": "1.25\\5"}, limit=1) == [thin.instance_id]


def test_lookup(archive):
    result = archive.store(instance(1))
    assert archive.lookup(uid("study", "P1", 0)) == [(Level.STUDY, result.study_id)]
    assert archive.lookup("P1") == [(Level.PATIENT, result.patient_id)]
    assert archive.lookup("nothing") == []


def test_files_left_by_a_crash_are_removed_at_the_next_start(tmp_path):
    config = Config(StorageDirectory=str(tmp_path))
    archive = Archive(config)
    kept = archive.store(instance(1))
    orphan_uuid, _ = archive.store_area.write(b"written, never committed")
    archive.index.close()  # no close(): the archive stays marked open, as after kill -9
    reopened = Archive(config)
    try:
        assert reopened.recovery is not None  # swept in the background once the server answers (core.recovery)
        reopened.recovery.run()
        assert not reopened.store_area.path_of(orphan_uuid).exists()
        assert reopened.instance_bytes(kept.instance_id) == instance(1)
    finally:
        reopened.close()


def test_concurrent_writers_from_threads(archive):
    files = [instance(n, patient=f"T{n % 3}", series=n % 4) for n in range(200)]
    errors: list[BaseException] = []

    def upload(part: list[bytes]) -> None:
        try:
            for data in part:
                archive.store(data)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(files[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = archive.statistics()
    assert (stats["patients"], stats["instances"]) == (3, 200)
    assert stats["size"] == sum(len(f) for f in files)


def test_zip_archive_bytes_are_not_a_member_name_check(archive):
    # A zip whose member is a directory entry only: nothing to store, no error.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("folder/", b"")
    assert archive.store_zip(io.BytesIO(buffer.getvalue())) == []
